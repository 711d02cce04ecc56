"""Continuous reconciliation with the venues (arbframe.reconcile), drilled on a scripted
market whose every moment is known in advance.

The script: venues `a` and `b` publish a book every second from 0 s; at the listed seconds
b's bid jumps (100.60 against a's ask 100.00: an entry, buy a / sell b), back the second
after (a reversion exit). Latency 10 ms both ways. Periodic checks start at the first book
(0 s), so with a 5 s period they are asked at 5, 10, 15 s... and answered 10 ms later.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from arbframe_plugins.exchanges.paper import PaperExchange
from arbframe_plugins.state.memory import MemoryStore
from conftest import book, two_venue_scenario
from jsonschema import Draft202012Validator
from test_paper_venue import Venue

from arbframe.components import Exchange
from arbframe.errors import ArbframeError
from arbframe.hookspecs import hookimpl
from arbframe.model import LIMIT, OrderRequest
from arbframe.orderflow import OrderFlow, session_mark
from arbframe.orders import OrderState
from arbframe.reconcile import Reconciler
from arbframe.runner import Run

S = 1_000_000_000
SUMMARY_SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "schemas" / "summary.schema.json").read_text()
)
EVERY_5S = {"open_orders_every": "5s", "balances_every": "5s"}


def market(spikes: set[int], seconds: int = 30, low: set[int] = frozenset()) -> list[dict]:
    """b's bid jumps at `spikes`; at `low` both venues trade lower (a's ask 99.40: a resting
    buy at 99.50 fills), with no spread worth entering."""
    events = []
    for t in range(seconds):
        if t in low:
            events += [book(f"{t}s", "a", 99.30, 99.40), book(f"{t}s", "b", 99.30, 99.35)]
            continue
        events.append(book(f"{t}s", "a", 99.90, 100.00))
        bid, ask = (100.60, 100.70) if t in spikes else (99.80, 99.85)
        events.append(book(f"{t}s", "b", bid, ask))
    return events


def scenario(
    spikes: set[int],
    faults: list[dict[str, Any]] | None = None,
    reconcile: dict[str, Any] | None = None,
    seconds: int = 30,
    low: set[int] = frozenset(),
    **execution: Any,
) -> dict[str, Any]:
    sc = two_venue_scenario(market(spikes, seconds, low))
    sc["execution"] = execution  # the scenario's: orphans taken over work for no strategy
    sc["faults"] = faults or []
    if reconcile is not None:
        sc["reconcile"] = reconcile
    return sc


def run(run_scenario, sc: dict[str, Any], **options: Any):
    result = run_scenario(sc, **options)
    Draft202012Validator(SUMMARY_SCHEMA).validate(result.summary)
    return result


def at(result, ts: int) -> float:
    return round((ts - result.summary["time"]["start_ns"]) / S, 3)


def timeline(result, name: str) -> tuple[Any, Any, Any]:
    t = result.summary["faults"]["timeline"][name]
    return t["injected_at_s"], t["detected_at_s"], t["recovered_at_s"]


STRAY = session_mark("hand_checked") + "x-stray"  # the orphan_order fault's default id: a
# dead process of this session left it (reconcile's default cancels those)


def orphan(**extra: Any) -> dict[str, Any]:
    return {"type": "orphan_order", "name": "stray", "venue": "a", "at": "3s", "amount": 0.1,
            **extra}  # fmt: skip


class Journal:
    """A plugin recording the balance changes and alerts the kernel publishes."""

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self.alerts: list[Any] = []

    @hookimpl
    def arbframe_on_balance_change(self, entry: Any) -> None:
        self.entries.append(entry)

    @hookimpl
    def arbframe_on_alert(self, alert: Any) -> None:
        self.alerts.append(alert)


# ---- in flight: a lost acknowledgement, a lost cancel confirmation ------------------------------


def test_a_lost_ack_is_found_by_the_in_flight_check(run_scenario):
    """b's entry order at 5 s executes at 5.01 s, but its ack, fill and final report are
    lost. At 5.5 s (order_timeout) the kernel asks b; the answer (5.51 s) brings every fill,
    the trade opens and exits at 6 s as if nothing happened."""
    lost = {"type": "lost_ack", "name": "silent_b", "venue": "b", "role": "entering", "count": 1}
    result = run(run_scenario, scenario({5}, [lost], order_timeout="500ms"))
    s = result.summary
    assert s["faults"]["lost_ack"] == 1
    assert timeline(result, "silent_b") == (5.01, 5.5, 5.51)
    assert s["orders"]["queries"] == 1 and s["reconciliation"]["inflight_queries"] == 1
    [trade] = result.trades
    assert trade.exit_reason == "reversion" and at(result, trade.closed_at) == 6.01
    b_entry = [f for f in trade.fills if f.venue == "b" and f.role == "entering"]
    assert [at(result, f.ts) for f in b_entry] == [5.01]  # executed then, heard at 5.51
    assert s["integrity"]["state_integrity"] is True and s["reconciliation"]["passed"] is True


def test_without_the_in_flight_check_a_lost_ack_leaves_the_trade_stuck(run_scenario, monkeypatch):
    monkeypatch.setattr(OrderFlow, "_check", lambda self, client_id: None)
    lost = {"type": "lost_ack", "name": "silent_b", "venue": "b", "role": "entering", "count": 1}
    result = run(run_scenario, scenario({5}, [lost], order_timeout="500ms"))
    assert result.summary["portfolio"]["open_trades"] == 1  # entering forever
    assert timeline(result, "silent_b")[1:] == (None, None)


def test_a_lost_cancel_confirmation_is_found_by_the_cancel_timeout(run_scenario):
    """The orphan placed at 3 s is found at 5.01 s and its cancel sent; the venue cancels it
    at 5.02 s but the confirmation is lost. At 6.01 s (order_timeout 1 s) the kernel asks;
    the answer at 6.02 s says canceled."""
    lose = {"type": "report_loss", "name": "no_confirm", "venue": "a", "reports": "final",
            "role": "orphan"}  # fmt: skip
    result = run(
        run_scenario,
        scenario(set(), [orphan(), lose], {"open_orders_every": "5s"}, order_timeout="1s"),
    )
    s, rec = result.summary, result.summary["reconciliation"]
    assert s["faults"]["report_loss"] == 1
    assert rec["orphans"] == {"found": 1, "canceled": 1, "adopted": 0, "alerted": 0}
    assert rec["cancel_timeouts"] == 1 and rec["inflight_queries"] == 1
    assert timeline(result, "stray") == (3.0, 5.01, 6.02)
    order = result.run.execution.orders[STRAY]
    assert (order.state, order.role, order.queries) == (OrderState.CANCELED, "orphan", 1)
    venue = result.run.venues["a"]
    assert not venue.resting["BTC"] and venue.available("USDT") == venue.balances()["USDT"]


def test_a_cancel_lost_on_its_way_is_sent_again(run_scenario, monkeypatch):
    """The first cancel never reaches a. At 6.01 s the kernel asks; a says the order is
    still open (6.02 s), so the cancel is sent again, and confirmed at 6.03 s."""
    cancel, lost = PaperExchange.cancel, []

    def lossy(self, order):
        if not lost:
            lost.append(order.client_id)
            return
        cancel(self, order)

    monkeypatch.setattr(PaperExchange, "cancel", lossy)
    sc = scenario(set(), [orphan()], {"open_orders_every": "5s"}, order_timeout="1s")
    result = run(run_scenario, sc)
    s = result.summary
    assert lost == [STRAY]
    assert s["orders"]["cancels"] == 1 and s["orders"]["cancels_resent"] == 1
    assert s["reconciliation"]["cancel_timeouts"] == 1
    assert timeline(result, "stray") == (3.0, 5.01, 6.03)
    assert result.run.venues["a"].orders[STRAY].state is OrderState.CANCELED


def test_a_cancel_never_confirmed_is_escalated(run_scenario):
    """Every report about the orphan is lost, the answers to queries included: three
    queries (6.01, 7.01, 8.01 s), then at 9.01 s a P0 and the order unresolved."""
    lose = {"type": "report_loss", "venue": "a", "role": "orphan"}
    sc = scenario(set(), [orphan(), lose], {"open_orders_every": "5s"}, order_timeout="1s")
    result = run(run_scenario, sc)
    s = result.summary
    assert s["reconciliation"]["cancel_timeouts"] == 4 and s["orders"]["queries"] == 3
    assert s["orders"]["unresolved"] == 1 and s["alerts"]["P0"] == 1
    assert s["reconciliation"]["orphans"]["canceled"] == 0  # never confirmed
    order = result.run.execution.orders[STRAY]
    assert order.state is OrderState.PENDING_CANCEL and "not confirmed" in order.reason
    assert s["faults"]["unrecovered"] == 1


# ---- orphans ------------------------------------------------------------------------------------


def test_an_orphan_is_found_alerted_and_canceled(run_scenario):
    journal = Journal()
    result = run(run_scenario, scenario({20}, [orphan()], EVERY_5S), plugins=(journal,))
    rec = result.summary["reconciliation"]
    assert rec["orphans"] == {"found": 1, "canceled": 1, "adopted": 0, "alerted": 0}
    assert timeline(result, "stray") == (3.0, 5.01, 5.02)
    [alert] = [a for a in journal.alerts if "orphan" in a.title]
    assert alert.severity == "P1" and "buy 0.1 BTC at 94.9" in alert.detail  # 5 % under 99.90
    venue = result.run.venues["a"]
    assert venue.orders[STRAY].state is OrderState.CANCELED
    assert venue.available("USDT") == venue.balances()["USDT"]  # its lock released
    assert rec["checks"]["a"]["open_orders"] == 5  # 5, 10, 15, 20, 25 s
    assert result.summary["portfolio"]["entries"] == 1  # trading went on
    assert result.summary["integrity"]["state_integrity"] is True


def test_without_reconcile_an_orphan_stays_open_unnoticed(run_scenario):
    """Paper venues without an account do not outlive the process: without `reconcile:`
    nothing asks them, and the orphan rests there to the end (what the check prevents)."""
    result = run(run_scenario, scenario({20}, [orphan()]))
    rec = result.summary["reconciliation"]
    assert rec["checks"] == {} and rec["orphans"]["found"] == 0
    assert timeline(result, "stray") == (3.0, None, None)
    assert result.run.venues["a"].orders[STRAY].state is OrderState.OPEN


def adopt_run(run_scenario, policy: str):
    """A buy at 99.50 placed by hand at 3 s; at 15-17 s a's ask is 99.40: it fills."""
    stray = orphan(price="99.50")
    reconcile = {"orphans": policy, **EVERY_5S}
    return run(run_scenario, scenario(set(), [stray], reconcile, low={15, 16, 17}))


def test_an_adopted_orphan_has_its_fills_booked_and_explained(run_scenario):
    result = adopt_run(run_scenario, "adopt")
    s, rec = result.summary, result.summary["reconciliation"]
    assert rec["orphans"] == {"found": 1, "canceled": 0, "adopted": 1, "alerted": 0}
    assert timeline(result, "stray") == (3.0, 5.01, 5.01)
    [fill] = result.fills
    assert (fill.client_id, fill.role, fill.trade_id) == (STRAY, "adopted", None)
    assert (fill.price, fill.amount, fill.liquidity, at(result, fill.ts)) == (
        D("99.50"), D("0.1"), "maker", 15.0
    )  # fmt: skip
    assert result.run.execution.orders[STRAY].state is OrderState.FILLED
    assert "unknown_order_fills" not in s["orders"]
    assert s["integrity"]["position_loss"] == 0 and s["integrity"]["state_integrity"] is True
    # While it rested the balances were not compared (a fill could be on its way); after.
    assert rec["checks"]["a"]["balances_skipped"] >= 2 and rec["checks"]["a"]["balances"] >= 2
    assert rec["balance_mismatches"] == 0 and s["reconciliation"]["passed"] is True


def test_an_adopted_order_whose_reports_are_lost_is_brought_into_line(run_scenario):
    """The adopted buy fills at 15 s but its fill and final report are lost. The open-orders
    check asked at 15 s (answered 15.01 s, after the fill) no longer lists it: the kernel
    asks, and the answer (15.02 s) books the fill it never heard of."""
    lose = {"type": "report_loss", "venue": "a", "role": "adopted", "count": 2}
    stray = orphan(price="99.50")
    reconcile = {"orphans": "adopt", **EVERY_5S}
    result = run(run_scenario, scenario(set(), [stray, lose], reconcile, low={15, 16, 17}))
    s = result.summary
    assert s["faults"]["report_loss"] == 2 and s["reconciliation"]["status_queries"] == 1
    [fill] = result.fills
    assert fill.client_id == STRAY and at(result, fill.ts) == 15.0
    assert result.run.execution.orders[STRAY].state is OrderState.FILLED
    assert s["integrity"]["state_integrity"] is True and s["reconciliation"]["passed"] is True


def test_an_orphan_only_alerted_fills_as_a_position_nobody_explains(run_scenario):
    """The same order left open (`alert`): its fill arrives as an unknown order's, and the
    venue's BTC moved by 0.1 with no trade and no adopted order to explain it."""
    result = adopt_run(run_scenario, "alert")
    s = result.summary
    assert s["reconciliation"]["orphans"] == {"found": 1, "canceled": 0, "adopted": 0,
                                             "alerted": 1}  # fmt: skip
    assert s["orders"]["unknown_order_fills"] == 1
    assert s["integrity"]["position_loss"] == 1
    assert s["integrity"]["unexplained"] == {"a:BTC": "0.1"}
    assert timeline(result, "stray") == (3.0, 5.01, None)


# ---- balances -----------------------------------------------------------------------------------


def drift_run(run_scenario, asset: str, amount: str, balances_every: Any = "5s", **options):
    drift = {"type": "balance_drift", "name": "drift", "venue": "a", "at": "12s", "asset": asset,
             "amount": amount}  # fmt: skip
    reconcile = {"open_orders_every": "5s", "balances_every": balances_every}
    return run(run_scenario, scenario({7, 23}, [drift], reconcile, seconds=40), **options)


def test_silent_balance_drift_is_found_within_a_period_and_booked(run_scenario):
    """25 USDT leave a at 12 s with no report. The read asked at 15 s (answered 15.01 s,
    nothing in flight) finds the ledger 25 over: a P1 alert and a `reconciliation` entry
    of -25; the read of 20 s agrees again (recovered)."""
    journal = Journal()
    result = drift_run(run_scenario, "USDT", "-25", plugins=(journal,))
    s, rec = result.summary, result.summary["reconciliation"]
    injected, detected, recovered = timeline(result, "drift")
    assert (injected, detected, recovered) == (12.0, 15.01, 20.01)
    assert detected - injected <= 5  # within one period
    assert rec["balance_mismatches"] == 1
    assert rec["adjustments"] == [{"venue": "a", "asset": "USDT", "amount": "-25", "at_s": 15.01}]
    [entry] = [e for e in journal.entries if e.kind == "reconciliation"]
    assert (entry.venue, entry.asset, entry.amount) == ("a", "USDT", D(-25))
    assert entry in result.run.ledger.entries
    assert any(a.severity == "P1" and "balance mismatch on a: USDT" in a.title
               for a in journal.alerts)  # fmt: skip
    # Afterwards the ledger is the venue's account, to the unit, and trading went on.
    venue, ledger = result.run.venues["a"].balances(), result.run.ledger.balances["a"]
    assert all(ledger[asset] == amount for asset, amount in venue.items())
    assert rec["passed"] is True and s["integrity"]["state_integrity"] is True
    assert s["portfolio"]["entries"] == 2 and D(s["portfolio"]["balance_changes"]) == D(-25)


def test_with_the_balance_check_off_the_drift_goes_unnoticed(run_scenario):
    checked = drift_run(run_scenario, "USDT", "-25").summary
    blind = drift_run(run_scenario, "USDT", "-25", balances_every=False)
    s = blind.summary
    assert timeline(blind, "drift") == (12.0, None, None)
    assert (
        s["reconciliation"]["balance_mismatches"] == 0 and s["reconciliation"]["adjustments"] == []
    )
    assert not [e for e in blind.run.ledger.entries if e.kind == "reconciliation"]
    # Only the audit at the end sees it: the run fails, the ledger is 25 over.
    assert s["reconciliation"]["passed"] is False and s["passed"] is False
    assert s["integrity"]["mismatched"] == {"a:USDT": "-25"}
    assert checked["reconciliation"]["passed"] is True and checked["integrity"]["mismatched"] == {}


def test_a_reconciliation_entry_does_not_explain_a_position(run_scenario):
    """Drift in the traded asset: the entry brings the ledger in line, but 0.01 BTC moved
    that no trade holds, and position_loss says so."""
    s = drift_run(run_scenario, "BTC", "-0.01").summary
    assert s["reconciliation"]["adjustments"][0]["amount"] == "-0.01"
    assert s["integrity"]["ledger_mismatches"] == 0 and s["integrity"]["position_loss"] == 1
    assert s["integrity"]["unexplained"] == {"a:BTC": "-0.01"}


CAMPAIGN: dict[str, Any] = {
    "name": "recon_campaign",
    "duration": "4m",
    "seed": 14,
    "fx": {"KRW": 1350},
    "venues": {
        "upbit": {"type": "paper", "quote": "KRW", "fees": {"taker_bps": 5}, "latency": "1500ms",
                  "report_delays": {"fill": "700ms"},
                  "markets": {"default": {"price_tick": 1000, "amount_step": "0.00001",
                                          "min_notional": 5000}}},
        "binance": {"type": "paper", "quote": "USDT", "fees": {"taker_bps": 10}, "latency": "20ms",
                    "markets": {"default": {"price_tick": "0.01", "amount_step": "0.00001",
                                            "min_notional": 5}}},
    },
    "capital": {"upbit": {"KRW": 13500000, "BTC": 0.2}, "binance": {"USDT": 10000, "BTC": 0.2}},
    "feeds": [{"type": "synthetic", "symbols": {"BTC": 60000}, "venues": ["upbit", "binance"],
               "pattern": "mixed", "tick": {"upbit": 1000, "binance": 0.01}}],
    "strategy": {"type": "spread_arb", "entry_bps": 20, "exit_bps": 5, "take_profit_bps": 80,
                 "stop_loss_bps": 60, "max_hold": "15s", "size": {"quote": 1000}},
    "reconcile": {"open_orders_every": "1s", "balances_every": "1s"},
}  # fmt: skip


def test_no_false_alarm_while_orders_are_in_flight(run_scenario):
    """Upbit executes 1.5 s after an order leaves and reports its fills 0.7 s after that: for
    a while its account holds fills the ledger has not heard of. Read every second, it is
    compared only when nothing is in flight: no mismatch, many reads skipped, many compared."""
    s = run(run_scenario, CAMPAIGN).summary
    rec = s["reconciliation"]
    assert s["portfolio"]["entries"] >= 10
    assert rec["balance_mismatches"] == 0 and rec["orphans"]["found"] == 0
    assert rec["status_queries"] == 0  # orders closed there, fills on their way: not queried
    upbit = rec["checks"]["upbit"]
    assert upbit["balances_skipped"] >= 10 and upbit["balances"] >= 60
    assert rec["checks"]["binance"]["balances"] >= 60
    assert rec["passed"] is True and s["integrity"]["state_integrity"] is True


def test_comparing_while_orders_are_in_flight_raises_false_alarms(run_scenario, monkeypatch):
    """The rule above is what keeps the count at 0: a reconciler that compares every read
    books fills in flight as mismatches."""
    monkeypatch.setattr(Reconciler, "_busy", lambda self, name: False)
    rec = run(run_scenario, CAMPAIGN).summary["reconciliation"]
    assert rec["balance_mismatches"] > 0


# ---- start-up ---------------------------------------------------------------------------------


def account_scenario(**reconcile: Any) -> dict[str, Any]:
    """Spikes at 5 s and at 11-15 s; a answers queries, open orders, balances and cancels
    1.5 s late (its fills are not delayed)."""
    sc = scenario({5, 11, 12, 13, 14, 15}, seconds=20)
    for name in ("a", "b"):
        sc["venues"][name]["account"] = {"path": "accounts.db"}
    sc["venues"]["a"]["report_delays"] = {"final": "1500ms"}
    sc["state"] = [{"type": "sqlite", "path": "state.db"}]
    sc["snapshots"] = {"every": "1s"}
    if reconcile:
        sc["reconcile"] = reconcile
    return sc


def place_by_hand(path: Path) -> None:
    """While no process runs, someone places a buy on a's account."""
    hand = Venue(account={"path": str(path)})
    hand.paper.place_outside(OrderRequest("by-hand-1", "a", "BTC", "buy", D("0.2"), LIMIT, D(90)))


def stopped_at(seconds: int):
    """Run._between that stops the run once the instant at `seconds` is done."""
    between = Run._between

    def stopping(self, now, next_ts):
        between(self, now, next_ts)
        if now - self.stats.start >= seconds * S:
            self.stop.requested = True

    return stopping


def test_startup_mass_status_gates_the_first_entry_of_a_resumed_session(
    run_scenario, tmp_path, monkeypatch
):
    """Stopped after 10 s; an order placed by hand meanwhile. The resumed session asks both
    venues for open orders and balances before anything else. A resumed run picks up at the
    next instant (11 s) on the books it had, so the venues take the questions then; b
    answers at once, a's answer arrives 1.5 s later (12.5 s) and lists the orphan, whose cancel
    is confirmed 1.51 s after that (10 ms latency, then the 1.5 s delay: 14.01 s). The entry
    signals of 11 to 14 s are refused (reconciling); the one of 15 s trades, the orphan
    gone."""
    sc = account_scenario()
    sc["reconcile"] = {"orphans": "cancel"}  # an order placed by hand is canceled too
    monkeypatch.setattr(Run, "_between", stopped_at(10))
    first = run(run_scenario, sc)
    monkeypatch.undo()
    assert first.summary["complete"] is False and len(first.trades) == 1
    place_by_hand(tmp_path / "accounts.db")

    resumed = run(run_scenario, sc, resume=True)
    s, rec = resumed.summary, resumed.summary["reconciliation"]
    assert s["state"]["resumed_from"] is not None
    assert s["execution"]["refused"]["reconciling"] == 4  # the signals of 11-14 s
    after = [t for t in resumed.trades if t.opened_at > first.summary["time"]["end_ns"]]
    assert [at(resumed, t.opened_at) for t in after] == [15.0]
    assert rec["orphans"]["found"] == 1 and rec["orphans"]["canceled"] == 1
    cancel = resumed.run.execution.orders["by-hand-1"]
    assert cancel.state is OrderState.CANCELED and at(resumed, cancel.updated_at) == 14.01
    assert cancel.updated_at <= after[0].opened_at  # gone before the first entry
    assert rec["checks"]["a"]["open_orders"] >= 2 and rec["checks"]["b"]["balances"] >= 2
    assert rec["balance_mismatches"] == 0 and s["integrity"]["state_integrity"] is True


def test_without_the_startup_check_the_resumed_session_trades_blind(
    run_scenario, tmp_path, monkeypatch
):
    sc = account_scenario()
    monkeypatch.setattr(Run, "_between", stopped_at(10))
    first = run(run_scenario, sc)
    monkeypatch.undo()
    place_by_hand(tmp_path / "accounts.db")
    monkeypatch.setattr(Reconciler, "startup", lambda self, names: None)
    resumed = run(run_scenario, sc, resume=True)
    s = resumed.summary
    assert "reconciling" not in s["execution"]["refused"]
    after = [t for t in resumed.trades if t.opened_at > first.summary["time"]["end_ns"]]
    assert at(resumed, after[0].opened_at) == 11.0  # before anyone looked at the venue
    assert s["reconciliation"]["orphans"]["found"] == 0  # the next periodic check is at 30 s


def test_a_fresh_start_on_a_living_account_handles_a_dead_process_orphans(run_scenario, tmp_path):
    """A new session (not resumed) on accounts that outlive the process: the open-orders check
    runs at the first book, so the order left by hand is canceled before any entry."""
    sc = account_scenario()
    del sc["state"], sc["snapshots"]
    sc["reconcile"] = {"orphans": "cancel"}  # an order placed by hand is canceled too
    place_by_hand(tmp_path / "accounts.db")
    result = run(run_scenario, sc)
    rec = result.summary["reconciliation"]
    assert rec["orphans"] == {"found": 1, "canceled": 1, "adopted": 0, "alerted": 0}
    assert result.summary["execution"]["refused"].get("reconciling", 0) == 0  # no signal then
    venue = result.run.venues["a"]
    assert venue.orders["by-hand-1"].state is OrderState.CANCELED


def test_a_venue_silent_at_startup_is_asked_again_then_escalated(run_scenario, monkeypatch):
    """a never answers for its open orders: asked at 0 s, again at 1, 2 and 3 s
    (order_timeout 1 s, max_queries 3), and at 4 s a P0 lets trading go on without it: the
    signal of 2 s is refused, the one of 5 s trades."""
    asked, fetch = [], PaperExchange.fetch_open_orders

    def silent_a(self):
        asked.append(self.name)
        if self.name != "a":
            fetch(self)

    monkeypatch.setattr(PaperExchange, "fetch_open_orders", silent_a)
    sc = scenario({2, 5}, seconds=10, order_timeout="1s")
    for name in ("a", "b"):
        sc["venues"][name]["account"] = {"path": "accounts.db"}
    journal = Journal()
    result = run(run_scenario, sc, plugins=(journal,))
    s = result.summary
    assert asked == ["a", "b", "a", "a", "a"]  # b answered at once; no periodic ask in 10 s
    [p0] = [a for a in journal.alerts if a.severity == "P0"]
    assert p0.title == "a did not answer open_orders at start-up" and at(result, p0.ts) == 4.0
    assert s["execution"]["refused"]["reconciling"] == 1
    assert [at(result, t.opened_at) for t in result.trades] == [5.0]


# ---- configuration and defaults -----------------------------------------------------------------


def test_a_backtest_without_reconcile_schedules_nothing(run_scenario):
    result = run(run_scenario, scenario({5}))
    assert result.summary["reconciliation"]["checks"] == {}
    assert not result.run.reconciler.watch


def test_a_venue_without_the_optional_methods_is_not_reconciled_that_way(run_scenario, monkeypatch):
    monkeypatch.setattr(PaperExchange, "fetch_balances", Exchange.fetch_balances)
    rec = run(run_scenario, scenario({5}, reconcile=EVERY_5S)).summary["reconciliation"]
    assert rec["checks"]["a"]["not_supported"] == ["fetch_balances"]
    assert rec["checks"]["a"]["balances"] == 0 and rec["checks"]["a"]["open_orders"] == 5


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"balances_every": "0s"}, "reconcile.balances_every: must be longer than 0"),
        ({"orphans": "ignore"}, "reconcile.orphans"),
        ({"every": "5s"}, "reconcile"),
    ],
)
def test_reconcile_block_errors_name_the_key(run_scenario, block, message):
    with pytest.raises(ArbframeError, match=message):
        run_scenario(scenario(set(), reconcile=block, seconds=2))


def test_a_strategy_cannot_override_reconcile(run_scenario):
    sc = scenario(set(), seconds=2)
    sc["strategy"]["reconcile"] = {"orphans": "adopt"}
    with pytest.raises(ArbframeError, match="reconcile"):
        run_scenario(sc)


@pytest.fixture(autouse=True)
def _empty_memory_store():
    MemoryStore.records.clear()
    yield
    MemoryStore.records.clear()


def test_by_default_a_strangers_order_is_only_alerted(run_scenario, tmp_path):
    """Without `orphans:`, an order placed by hand (not this session's mark) is not the
    session's to cancel: found, alerted, left open."""
    sc = account_scenario()
    del sc["state"], sc["snapshots"]
    place_by_hand(tmp_path / "accounts.db")
    result = run(run_scenario, sc)
    rec = result.summary["reconciliation"]
    assert rec["orphans"] == {"found": 1, "canceled": 0, "adopted": 0, "alerted": 1}
    assert result.run.venues["a"].orders["by-hand-1"].state is OrderState.OPEN
