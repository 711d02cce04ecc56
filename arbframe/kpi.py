"""Trade KPIs, each defined exactly (docs/scenarios.md repeats these definitions).

They are computed from trade records alone, whatever strategy opened them:

* entries: trades with at least one fill while entering; exits: trades closed by an exit
  decision (a strategy's ``exit`` with any reason, or ``end_of_run``); trades_closed: every
  closed trade with fills (exits plus the kernel's ``leg_failure`` / ``late_fill`` closes).
* win: a closed trade whose net PnL (after all fees) is > 0; winrate = wins / trades_closed.
* R = net PnL / risk, risk = notional * risk_bps / 1e4 (notional: what was filled while
  entering; risk_bps: the strategy's stop distance); avg_r is the mean R; expectancy is
  the mean net PnL per closed trade.
* max_drawdown: the largest fall from a peak of realised equity (equity_start plus net PnL,
  stepped at each close, in close order); max_drawdown_pct: the largest such fall as a
  percentage of the peak it fell from (the two may come from different falls).
* sharpe: mean / sample standard deviation of per-trade returns (net PnL / notional), not
  annualised; null with fewer than two trades or no variance.
* avg_hold_s: mean seconds from entry decision to the close of the last leg.
Money values are exact decimal strings in the report currency; ratios are floats. A ratio
that is not defined (no closed trade) is null, not 0.
"""

from __future__ import annotations

import statistics
from collections import Counter
from decimal import Decimal
from typing import Any

from arbframe.model import Trade, money

ZERO = Decimal(0)


def kpis(trades: list[Trade], equity_start: Decimal, opened: list[Trade]) -> dict[str, Any]:
    """KPIs of `trades` (closed, in close order); `opened` are all trades with fills."""
    closed = [t for t in trades if t.fills]
    n = len(closed)
    wins = sum(1 for t in closed if t.won)
    net = sum((t.net_pnl for t in closed), ZERO)
    returns = [float(t.net_pnl / t.notional) for t in closed if t.notional]
    drawdown, drawdown_pct = _max_drawdown(closed, equity_start)
    return {
        "entries": sum(1 for t in opened if any(f.role == "entering" for f in t.fills)),
        "exits": sum(1 for t in closed if t.exited),
        "trades_closed": n,
        "open_trades": sum(1 for t in opened if t.closed_at is None),
        "wins": wins,
        "losses": n - wins,
        "winrate": round(wins / n, 6) if n else None,
        "avg_r": round(float(sum((t.r_multiple for t in closed), ZERO)) / n, 6) if n else None,
        "expectancy": money((net / n).quantize(Decimal("1e-8"))) if n else None,
        "gross_pnl": money(sum((t.gross_pnl for t in closed), ZERO)),
        "pnl": money(net),
        "fees": money(sum((t.fees for t in closed), ZERO)),
        "slippage": money(sum((t.slippage for t in closed), ZERO)),
        "max_drawdown": money(drawdown),
        "max_drawdown_pct": round(drawdown_pct * 100, 6),
        "sharpe": _sharpe(returns),
        "avg_hold_s": round(sum((t.closed_at or 0) - t.opened_at for t in closed) / n / 1e9, 6)
        if n
        else None,
        "exit_reasons": dict(sorted(Counter(t.exit_reason for t in closed).items())),
    }


def _max_drawdown(closed: list[Trade], equity_start: Decimal) -> tuple[Decimal, float]:
    """Largest fall from a peak, in money and (separately) as a fraction of that peak."""
    equity = peak = equity_start
    worst, worst_pct = ZERO, 0.0
    for trade in closed:
        equity += trade.net_pnl
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
        if peak > 0:
            worst_pct = max(worst_pct, float((peak - equity) / peak))
    return worst, worst_pct


def _sharpe(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    stdev = statistics.stdev(returns)
    return round(statistics.fmean(returns) / stdev, 6) if stdev > 0 else None
