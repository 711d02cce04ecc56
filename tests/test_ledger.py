"""Reconciliation against sources that could disagree, and PnL explained by the fills.

Each check is broken on purpose here (a fee three times the schedule, a price 5 % off the
book, a fill the ledger drops or books twice): the run must fail. A check that stayed
green through these would be checking the ledger against itself.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal as D
from pathlib import Path

import pytest
from arbframe_plugins.exchanges.paper import PaperExchange

from arbframe.ledger import Ledger
from arbframe.testing import run_scenario_file

SCENARIOS = Path(__file__).parent.parent / "scenarios"
C1 = SCENARIOS / "c1_mixed.yaml"


def test_campaign_reconciles_to_the_unit():
    result = run_scenario_file(C1)
    run = result.run
    ledger, venues = run.ledger, run.venues
    assert len(result.trades) > 40
    assert result.summary["reconciliation"]["passed"] is True
    assert result.summary["reconciliation"]["fills"]["checked"] == len(result.fills)
    # The venue's own account, rebuilt here from the start balances and the fills.
    expected = {name: defaultdict(D, ledger.start_balances[name]) for name in venues}
    for f in result.fills:
        sign = 1 if f.side == "buy" else -1
        expected[f.venue][f.base] += sign * f.amount
        expected[f.venue][f.quote] -= sign * f.price * f.amount
        expected[f.venue][f.fee_asset] -= f.fee
    for name, venue in venues.items():
        account = venue.balances()
        for asset in set(account) | set(expected[name]):
            assert account.get(asset, D(0)) == expected[name][asset], (name, asset)
    # All trades closed: base inventory is back where it started on every venue...
    for name, venue in venues.items():
        assert venue.balances()["BTC"] == ledger.start_balances[name]["BTC"]
    # ...so the portfolio PnL is exactly the change in quote balances, converted per fill.
    pnl = D(result.summary["portfolio"]["pnl"])
    assert pnl == sum((t.net_pnl for t in result.trades), D(0))
    krw = venues["upbit"].balances()["KRW"] - ledger.start_balances["upbit"]["KRW"]
    usdt = venues["binance"].balances()["USDT"] - ledger.start_balances["binance"]["USDT"]
    # each KRW fill flow is converted at 1350 and rounded to 1e-12: at most that per fill
    assert abs(pnl - (usdt + krw / 1350)) <= D("1e-12") * len(result.fills)


def failed(summary: dict) -> dict:
    rec = summary["reconciliation"]
    assert summary["passed"] is False and rec["passed"] is False
    [builtin] = [e for e in summary["expectations"] if e["name"] == "reconciliation.passed"]
    assert builtin["passed"] is False
    return rec


def test_a_fee_off_the_schedule_fails_the_run(monkeypatch):
    fee = PaperExchange.fee

    def triple(self, side, price, amount, instrument, maker):
        value, asset, fee_price = fee(self, side, price, amount, instrument, maker)
        return value * 3, asset, fee_price

    monkeypatch.setattr(PaperExchange, "fee", triple)
    rec = failed(run_scenario_file(C1).summary)
    assert rec["fills"]["fee_violations"] == rec["fills"]["checked"] > 0
    assert rec["fills"]["price_violations"] == 0
    assert rec["balances"]["mismatches"] == 0  # the venue charged what it reported
    assert "the schedule says" in rec["violations"][0]


def test_a_price_off_the_book_fails_the_run(monkeypatch):
    fill = PaperExchange._fill

    def skewed(self, order, price, amount, instrument, maker):
        price = (price * D("1.05")).quantize(instrument.price_tick)
        return fill(self, order, price, amount, instrument, maker)

    monkeypatch.setattr(PaperExchange, "_fill", skewed)
    rec = failed(run_scenario_file(C1).summary)
    assert rec["fills"]["price_violations"] == rec["fills"]["checked"] > 0
    assert "is not a level of the book" in rec["violations"][0]


def test_a_fill_the_ledger_drops_fails_the_run(monkeypatch):
    book = Ledger.book_fill
    seen = []

    def dropping(self, fill):
        seen.append(fill)
        if len(seen) != 3:
            book(self, fill)

    monkeypatch.setattr(Ledger, "book_fill", dropping)
    rec = failed(run_scenario_file(C1).summary)
    assert rec["balances"]["mismatches"] > 0
    dropped = seen[2]
    row = rec["balances"]["venues"][dropped.venue][dropped.base]
    side = 1 if dropped.side == "buy" else -1
    assert D(row["difference"]) == side * dropped.amount


def test_a_fill_the_ledger_books_twice_fails_the_run(monkeypatch):
    book = Ledger.book_fill
    seen = []

    def doubling(self, fill):
        seen.append(fill)
        book(self, fill)
        if len(seen) == 3:
            book(self, fill)

    monkeypatch.setattr(Ledger, "book_fill", doubling)
    rec = failed(run_scenario_file(C1).summary)
    assert rec["balances"]["mismatches"] > 0


def test_repeated_reports_from_the_venue_are_applied_once(run_scenario):
    from conftest import book, two_venue_scenario

    events = [
        book("0s", "a", 99.90, 100.00),
        book("1s", "b", 100.60, 100.70),
        book("3s", "b", 99.80, 99.85),
    ]
    scenario = two_venue_scenario(events)
    for venue in scenario["venues"].values():
        venue["duplicate_reports"] = True
    result = run_scenario(scenario)
    s = result.summary
    assert s["orders"]["duplicate_fills"] == 4 and s["orders"]["filled"] == 4
    assert len(result.fills) == 4
    assert s["reconciliation"]["passed"] is True and s["passed"] is True


@pytest.mark.parametrize("name", ["c3_low_winrate.yaml", "always_lose.yaml"])
def test_every_trade_pnl_is_explained_by_its_fills(name):
    result = run_scenario_file(SCENARIOS / name)
    by_trade = defaultdict(list)
    for f in result.fills:
        by_trade[f.trade_id].append(f)
    assert result.trades
    for trade in result.trades:
        fills = by_trade[trade.trade_id]
        assert fills == trade.fills
        net = fees = D(0)
        for f in fills:
            flow = f.price * f.amount * (1 if f.side == "sell" else -1)
            fee = f.fee * f.fee_price
            if f.quote == "KRW":
                flow, fee = (flow / f.fx).quantize(D("1e-12")), (fee / f.fx).quantize(D("1e-12"))
            net += flow - fee
            fees += fee
        assert (trade.net_pnl, trade.fees, trade.gross_pnl) == (net, fees, net + fees)
        assert trade.won == (trade.net_pnl > 0)
        # notional: the larger leg filled while entering, in USDT
        legs = defaultdict(D)
        for f in fills:
            if f.role == "entering":
                value = f.price * f.amount
                legs[f.venue] += (value / f.fx).quantize(D("1e-12")) if f.quote == "KRW" else value
        assert trade.notional == max(legs.values())
