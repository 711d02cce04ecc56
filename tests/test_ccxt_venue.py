"""The `ccxt` venue through the real ccxt client against local fakes of Binance and Upbit
(tests/fakevenues): scenarios/live_upbit_binance_btc.yaml in shadow and live mode, and what
goes wrong on real venues (a partial fill, a lost acknowledgement, a dropped websocket, a
429). Money is checked against the fake venues' own accounts and order books of record, not
against what arbframe booked."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from fakevenues.server import FakeVenues

from arbframe.orderflow import session_mark
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "live_upbit_binance_btc.yaml"


def run_live(
    fake: FakeVenues,
    tmp_path: Path,
    mode: str = "live",
    duration: str = "6s",
    overrides: str = "",
) -> tuple[dict[str, Any], Run, Path]:
    """The example scenario against the fakes (``overrides``: YAML merged over it)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "scenario.yaml"
    path.write_text(f"extends: {SCENARIO}\nname: ccxt_test\n{overrides}")
    pm = get_plugin_manager()
    registry = build_registry(pm)
    env = {**fake.env(), "ARBFRAME_MODE": mode, "ARBFRAME_DURATION": duration}
    run = Run(load_scenario(path, registry, env=env), registry, pm, live=mode == "live")
    out = tmp_path / "out"
    summary = run.execute(out_dir=out)
    return summary, run, out


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ours(fake: FakeVenues) -> dict[str, Any]:
    """Every order the fake venues hold for our accounts, by client id."""
    orders = {}
    for venue, key in ((fake.binance, fake.binance_key), (fake.upbit, fake.upbit_key)):
        for order in fake.call(venue.all_orders, key):
            orders[order.client_id] = order
    return orders


def check_against_the_venues(fake: FakeVenues, out: Path, start: dict[str, dict[str, Decimal]]):
    """What the venues hold moved by exactly the fills arbframe recorded; every order the
    venues received is one arbframe knows, once."""
    moved: dict[str, dict[str, Decimal]] = {
        "binance": defaultdict(Decimal),
        "upbit": defaultdict(Decimal),
    }
    for fill in jsonl(out / "fills.jsonl"):
        m = moved[fill["venue"]]
        amount, price, fee = Decimal(fill["amount"]), Decimal(fill["price"]), Decimal(fill["fee"])
        base, quote = fill["base"], fill["quote"]
        sign = 1 if fill["side"] == "buy" else -1
        m[base] += sign * amount
        m[quote] -= sign * amount * price
        m[fill["fee_asset"]] -= fee
    for name, venue, key in (
        ("binance", fake.binance, fake.binance_key),
        ("upbit", fake.upbit, fake.upbit_key),
    ):
        account = fake.call(venue.account, key)
        for asset in set(moved[name]) | set(start[name]):
            held = fake.call(account.total, asset)
            assert held == start[name].get(asset, Decimal(0)) + moved[name][asset], (name, asset)
        assert venue.duplicates == 0
    kernel = {o["client_id"]: o for o in jsonl(out / "orders.jsonl")}
    venue_orders = ours(fake)
    assert set(venue_orders) <= set(kernel)  # nothing at the venues that arbframe did not send
    for cid, order in venue_orders.items():
        assert Decimal(kernel[cid]["filled"]) == order.filled, cid


def balances(fake: FakeVenues) -> dict[str, dict[str, Decimal]]:
    out = {}
    for name, venue, key in (
        ("binance", fake.binance, fake.binance_key),
        ("upbit", fake.upbit, fake.upbit_key),
    ):
        account = fake.call(venue.account, key)
        out[name] = {a: fake.call(account.total, a) for a in fake.call(account.assets)}
    return out


def test_shadow_trades_on_real_books_and_sends_nothing(fake_venues: FakeVenues, tmp_path: Path):
    summary, _, out = run_live(fake_venues, tmp_path, mode="shadow")
    assert summary["passed"], summary["expectations"]
    assert summary["mode"] == "shadow" and summary["portfolio"]["entries"] >= 1
    assert ours(fake_venues) == {}  # paper fills only: not one order reached an exchange
    fills = summary["reconciliation"]["fills"]
    assert fills["checked"] == len(jsonl(out / "fills.jsonl")) > 0
    assert fills["price_violations"] == 0 and fills["unverifiable"] == 0  # priced on real books
    assert summary["venues"]["binance"]["ws_books"] > 10


def test_live_fills_and_balances_are_the_venues(fake_venues: FakeVenues, tmp_path: Path):
    start = balances(fake_venues)
    summary, _, out = run_live(fake_venues, tmp_path)
    assert summary["passed"], summary["expectations"]
    assert summary["portfolio"]["entries"] >= 1 and summary["portfolio"]["exits"] >= 1
    check_against_the_venues(fake_venues, out, start)
    venue_orders = ours(fake_venues)
    assert len(venue_orders) == summary["orders"]["submitted"] > 0
    # Upbit charged its fee in KRW, Binance in the asset each fill delivered.
    fills = jsonl(out / "fills.jsonl")
    assert {f["fee_asset"] for f in fills if f["venue"] == "upbit"} == {"KRW"}
    binance = {(f["side"], f["fee_asset"]) for f in fills if f["venue"] == "binance"}
    assert binance <= {("buy", "BTC"), ("sell", "USDT")} and binance
    assert summary["venues"]["upbit"]["order_events"] >= 1  # the myOrder stream woke followers
    stats = summary["venues"]["binance"]
    assert stats["quote_to_ack_ms_p50"] > 0 and stats["orders_sent"] == len(
        [o for o in venue_orders.values() if o.market.quote == "USDT"]
    )


def test_partial_fill_is_booked_as_the_venue_filled(fake_venues: FakeVenues, tmp_path: Path):
    start = balances(fake_venues)
    faults = fake_venues.binance.faults
    fake_venues.call(faults.cap_next_fill, fraction=Decimal("0.4"))
    summary, _, out = run_live(fake_venues, tmp_path)
    assert faults.counts["cap_next_fill"] == 1
    partial = [o for o in ours(fake_venues).values() if 0 < o.filled < (o.amount or 0)]
    assert len(partial) == 1
    kernel = {o["client_id"]: o for o in jsonl(out / "orders.jsonl")}
    assert kernel[partial[0].client_id]["state"] in ("expired", "canceled")
    assert Decimal(kernel[partial[0].client_id]["filled"]) == partial[0].filled
    check_against_the_venues(fake_venues, out, start)
    assert summary["faults"]["position_loss"] == 0


def test_lost_acknowledgement_is_found_not_resent(fake_venues: FakeVenues, tmp_path: Path):
    start = balances(fake_venues)
    faults = fake_venues.binance.faults
    fake_venues.call(faults.lose_ack, 1)
    summary, _, out = run_live(
        fake_venues, tmp_path, overrides="venues: {binance: {timeout: 1500ms}}\n"
    )
    stats = summary["venues"]["binance"]
    assert stats["unknown_outcome"] == 1  # the request timed out...
    assert stats["lookups"] >= 1  # ...and the order was looked up by its client id
    check_against_the_venues(fake_venues, out, start)  # found, booked once, never sent twice
    lost = [o for o in jsonl(out / "orders.jsonl") if o["venue"] == "binance"][0]
    assert lost["state"] == "filled" and lost["exchange_id"]


def test_dropped_book_stream_reconnects(fake_venues: FakeVenues, tmp_path: Path):
    import threading

    timer = threading.Timer(
        2.0, lambda: fake_venues.call(fake_venues.binance.faults.drop_streams, "book")
    )
    timer.start()
    try:
        summary, _, _ = run_live(fake_venues, tmp_path, mode="shadow", duration="6s")
    finally:
        timer.cancel()
    stats = summary["venues"]["binance"]
    assert stats["ws_disconnects"] >= 1 and stats["ws_reconnects"] >= 1
    assert stats["rest_books"] >= 1  # a REST snapshot while the socket was down
    assert summary["events"]["quotes"] > 60  # books kept coming after it


def test_rate_limited_order_is_rejected_not_retried(fake_venues: FakeVenues, tmp_path: Path):
    start = balances(fake_venues)
    fake_venues.call(fake_venues.upbit.faults.fail_next, 1, 429, "POST /v1/orders")
    summary, _, out = run_live(fake_venues, tmp_path)
    assert summary["venues"]["upbit"]["rate_limited"] == 1
    rejected = [o for o in jsonl(out / "orders.jsonl") if o["state"] == "rejected"]
    assert len(rejected) == 1 and "rate limited" in rejected[0]["reason"]
    assert rejected[0]["client_id"] not in ours(fake_venues)
    check_against_the_venues(fake_venues, out, start)


def test_orphan_left_by_a_dead_process_is_canceled_before_trading(
    fake_venues: FakeVenues, tmp_path: Path
):
    """Orders open at Binance that this process never sent: one left by an earlier process
    of the session (its client id carries the session's mark) is canceled at start-up,
    before the first new order; one placed by hand is reported (P1) and left alone."""
    price = Decimal("30000")  # far below the market: they rest
    dead = session_mark("ccxt_test") + "0000beef-7"  # this session's mark: an earlier process
    for cid in (dead, "by-hand-1"):  # ...and an order placed by hand
        orphan = fake_venues.call(
            fake_venues.binance.faults.orphan,
            fake_venues.binance_key, "BTC/USDT", "buy", Decimal("0.001"), price, cid,
        )  # fmt: skip
        assert orphan.is_open
    summary, _, out = run_live(fake_venues, tmp_path)
    orphans = summary["reconciliation"]["orphans"]
    assert orphans == {"found": 2, "canceled": 1, "adopted": 0, "alerted": 1}
    get = fake_venues.binance.get
    at_venue = fake_venues.call(get, fake_venues.binance_key, client_id=dead)
    assert at_venue.state == "canceled" and at_venue.filled == 0
    sent = [o for o in ours(fake_venues).values() if o.client_id not in (dead, "by-hand-1")]
    assert sent and at_venue.updated_ms <= min(o.created_ms for o in sent)  # before any order
    open_now = fake_venues.call(fake_venues.binance.open_orders, fake_venues.binance_key)
    assert [o.client_id for o in open_now] == ["by-hand-1"]  # not this session's to cancel
    assert summary["portfolio"]["entries"] >= 1 and summary["passed"]


def test_orphan_appearing_mid_session_is_found_by_the_periodic_check(
    fake_venues: FakeVenues, tmp_path: Path
):
    import threading

    def place() -> None:
        fake_venues.call(
            fake_venues.upbit.faults.orphan,
            fake_venues.upbit_key, "BTC/KRW", "sell", Decimal("0.001"), Decimal("900000000"),
            "by-hand-1",
        )  # fmt: skip

    timer = threading.Timer(2.5, place)
    timer.start()
    try:
        summary, _, _ = run_live(
            fake_venues,
            tmp_path,
            duration="7s",
            overrides="reconcile: {orphans: cancel, open_orders_every: 2s}\n",
        )
    finally:
        timer.cancel()
    orphans = summary["reconciliation"]["orphans"]
    assert orphans["found"] == 1 and orphans["canceled"] == 1
    assert summary["reconciliation"]["checks"]["upbit"]["open_orders"] >= 3  # start + periodic
    gone = fake_venues.call(fake_venues.upbit.get, fake_venues.upbit_key, client_id="by-hand-1")
    assert gone.state == "canceled"


def test_silent_balance_change_is_a_p1_and_a_ledger_entry(fake_venues: FakeVenues, tmp_path: Path):
    """Money moves at the exchange with no fill (a deposit): the periodic balance read finds
    it, alerts, and books it as a reconciliation entry; the final audit then agrees with the
    exchange to the unit."""
    import threading

    start = balances(fake_venues)
    amount = Decimal("123.45")

    def deposit() -> None:
        fake_venues.call(
            fake_venues.binance.faults.deposit, fake_venues.binance_key, "USDT", amount
        )

    timer = threading.Timer(2.0, deposit)
    timer.start()
    try:
        summary, _, out = run_live(
            fake_venues, tmp_path, duration="7s", overrides="reconcile: {balances_every: 1s}\n"
        )
    finally:
        timer.cancel()
    rec = summary["reconciliation"]
    assert rec["balance_mismatches"] == 1
    [adjustment] = rec["adjustments"]
    assert adjustment["venue"] == "binance" and adjustment["asset"] == "USDT"
    assert Decimal(adjustment["amount"]) == amount
    assert summary["alerts"]["P1"] >= 1
    assert rec["balances"]["mismatches"] == 0  # the ledger agrees with the exchange again
    start["binance"]["USDT"] += amount
    check_against_the_venues(fake_venues, out, start)


def test_without_order_stream_orders_resolve_by_polling(fake_venues: FakeVenues, tmp_path: Path):
    """Upbit answers an order before it trades: with its order stream off, REST polling
    alone brings every outcome in."""
    start = balances(fake_venues)
    summary, _, out = run_live(
        fake_venues, tmp_path, overrides="venues: {upbit: {order_updates: poll}}\n"
    )
    upbit = summary["venues"]["upbit"]
    assert upbit.get("order_events", 0) == 0 and upbit["lookups"] >= upbit["orders_sent"] > 0
    assert summary["orders"].get("unresolved", 0) == 0
    check_against_the_venues(fake_venues, out, start)


def test_request_budget_holds_orders_back(fake_venues: FakeVenues, tmp_path: Path):
    """A budget of one request a second: orders wait for their token (and still go out)."""
    start = balances(fake_venues)
    overrides = "venues: {binance: {rate_limit: {per_second: 1, burst: 1}}}\n"
    summary, _, out = run_live(fake_venues, tmp_path, overrides=overrides)
    binance = summary["venues"]["binance"]
    assert binance["rate_limit_waits"] >= 1 and binance["orders_sent"] >= 1
    assert summary["venues"]["upbit"]["rate_limit_waits"] == 0
    check_against_the_venues(fake_venues, out, start)


def test_a_session_started_again_never_reuses_a_client_id(fake_venues: FakeVenues, tmp_path):
    """The same session run twice against the same exchanges (a fresh start, not a resume):
    the exchanges have seen the first run's client ids and would refuse them (Upbit) or take
    them for the old orders (Binance); the second run's ids are its own."""
    first, _, _ = run_live(fake_venues, tmp_path / "1", duration="5s")
    second, _, out = run_live(fake_venues, tmp_path / "2", duration="5s")
    assert first["orders"]["submitted"] > 0 and second["orders"]["submitted"] > 0
    assert second["orders"].get("rejected", 0) == 0
    assert fake_venues.binance.duplicates == 0 and fake_venues.upbit.duplicates == 0
    ids = [o["client_id"] for o in jsonl(out / "orders.jsonl")]
    assert len(ours(fake_venues)) == first["orders"]["submitted"] + len(ids)
