"""KPI definitions on hand-made trades."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from arbframe.kpi import kpis
from arbframe.model import Fill, Trade


def trade(
    net: str, notional: str = "1000", risk: str = "10", hold_s: int = 2, reason: str = "reversion"
) -> Trade:
    fill = Fill(
        0, "a", "BTC", "BTC", "USDT", "buy", D(1), D(1), D(0), "USDT", D(1), "c", "x", "f",
        "t", "entering", "taker", D(0), D(1),
    )  # fmt: skip
    t = Trade("t", "s", "BTC", "a_to_b", [], 0, 100.0, fills=[fill])
    t.net_pnl, t.closed_at, t.exit_reason = D(net), hold_s * 10**9, reason
    t.notional, t.risk, t.exited = D(notional), D(risk), reason != "leg_failure"
    return t


def test_counts_winrate_r_and_expectancy():
    trades = [
        trade("5"),
        trade("-2", reason="stop_loss"),
        trade("0", reason="max_hold"),
        trade("3", reason="leg_failure"),
    ]
    k = kpis(trades, D(10000), trades)
    assert (k["entries"], k["exits"], k["trades_closed"], k["wins"], k["losses"]) == (4, 3, 4, 2, 2)
    assert k["winrate"] == 0.5  # a zero-PnL trade is not a win
    assert k["avg_r"] == pytest.approx((0.5 - 0.2 + 0 + 0.3) / 4)
    assert k["expectancy"] == "1.5"
    assert k["pnl"] == "6"
    assert k["exit_reasons"] == {"leg_failure": 1, "max_hold": 1, "reversion": 1, "stop_loss": 1}
    assert k["avg_hold_s"] == 2.0


def test_max_drawdown_is_peak_to_trough_of_realised_equity():
    trades = [trade("10"), trade("-4"), trade("-8"), trade("5"), trade("-1")]
    k = kpis(trades, D(100), trades)
    assert k["max_drawdown"] == "12"  # peak 110 -> trough 98
    assert k["max_drawdown_pct"] == pytest.approx(12 / 110 * 100, rel=1e-6)


def test_sharpe_is_mean_over_stdev_of_trade_returns():
    trades = [trade("10"), trade("20"), trade("30")]  # returns 1 %, 2 %, 3 %
    assert kpis(trades, D(0), trades)["sharpe"] == pytest.approx(0.02 / 0.01)
    assert kpis(trades[:1], D(0), trades)["sharpe"] is None  # undefined, not 0
