"""Balances reconcile with the fills to the unit, and PnL is the sum of the fills."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal as D
from pathlib import Path

from arbframe.testing import run_scenario_file

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def test_campaign_reconciles_to_the_unit():
    result = run_scenario_file(SCENARIOS / "c1_mixed.yaml")
    ledger, venues = result.run.engine.ledger, result.run.venues
    assert len(result.trades) > 40
    # Rebuild every balance from the start balances and the fills alone.
    expected = {name: defaultdict(D, ledger.start_balances[name]) for name in venues}
    for f in result.fills:
        sign = 1 if f.side == "buy" else -1
        expected[f.venue][f.symbol] += sign * f.amount
        expected[f.venue][f.quote] -= sign * f.price * f.amount
        expected[f.venue][f.fee_asset] -= f.fee
    for name, venue in venues.items():
        for asset in set(venue.balances) | set(expected[name]):
            assert venue.balances[asset] == expected[name][asset], (name, asset)
    # All trades closed: base inventory is back where it started on every venue...
    for name, venue in venues.items():
        assert venue.balances["BTC"] == ledger.start_balances[name]["BTC"]
    # ...so the portfolio PnL is exactly the change in quote balances, converted per fill.
    pnl = D(result.summary["portfolio"]["pnl"])
    assert pnl == sum((t.net_pnl for t in result.trades), D(0))
    krw = venues["upbit"].balances["KRW"] - ledger.start_balances["upbit"]["KRW"]
    usdt = venues["binance"].balances["USDT"] - ledger.start_balances["binance"]["USDT"]
    # each KRW fill flow is converted at 1350 and rounded to 1e-12: at most that per fill
    assert abs(pnl - (usdt + krw / 1350)) <= D("1e-12") * len(result.fills)
    assert result.summary["ledger"]["reconciled"] is True


def test_reconcile_catches_money_moved_without_a_fill():
    result = run_scenario_file(SCENARIOS / "always_win.yaml")
    run = result.run
    assert run.engine.ledger.reconcile(run.venues)["reconciled"] is True
    run.venues["binance"].balances["USDT"] += D("0.00000001")
    report = run.engine.ledger.reconcile(run.venues)
    assert report["reconciled"] is False
    assert report["venues"]["binance"]["USDT"]["difference"] == "0.00000001"


def test_every_trade_pnl_is_explained_by_its_fills():
    result = run_scenario_file(SCENARIOS / "c3_low_winrate.yaml")
    by_trade = defaultdict(list)
    for f in result.fills:
        by_trade[f.trade_id].append(f)
    for trade in result.trades:
        fills = by_trade[trade.trade_id]
        assert fills == trade.fills
        gross = fees = D(0)
        for f in fills:
            flow = f.price * f.amount * (1 if f.side == "sell" else -1)
            if f.quote == "KRW":
                flow, fee = (flow / f.fx).quantize(D("1e-12")), (f.fee / f.fx).quantize(D("1e-12"))
            else:
                fee = f.fee
            gross += flow
            fees += fee
        assert (trade.gross_pnl, trade.fees, trade.net_pnl) == (gross, fees, gross - fees)
        assert trade.won == (trade.net_pnl > 0)
