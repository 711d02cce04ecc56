"""The run summary (summary.json) and the `expect:` assertions evaluated against it."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from arbframe.kpi import kpis
from arbframe.model import Trade, money

if TYPE_CHECKING:
    from arbframe.driver import DriveStats
    from arbframe.runner import Run

# Every run asserts this on top of the scenario's own `expect:`.
BUILTIN_EXPECT = {"ledger.reconciled": {"eq": True}}
COMPARATORS = {
    "min": lambda a, b: a >= b,
    "ge": lambda a, b: a >= b,
    "max": lambda a, b: a <= b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "lt": lambda a, b: a < b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


def build_summary(run: Run, stats: DriveStats) -> dict[str, Any]:
    engine = run.engine
    ledger = engine.ledger
    opened = [t for t in ledger.trades.values() if t.fills]
    closed = [t for t in ledger.closed if t.fills]
    equity_start = _equity(run, start=True)
    portfolio = kpis(closed, equity_start, opened)
    equity_end = _equity(run, start=False)
    portfolio["equity_start"] = money(equity_start)
    portfolio["equity_end"] = money(equity_end)
    # What the marks moved besides the strategy: inventory revalued at the last mids.
    portfolio["inventory_pnl"] = money(equity_end - equity_start - Decimal(portfolio["pnl"]))
    portfolio["entry_failures"] = sum(1 for t in ledger.closed if not t.fills)
    by_symbol: dict[str, list[Trade]] = defaultdict(list)
    by_route: dict[str, dict[str, list[Trade]]] = defaultdict(lambda: defaultdict(list))
    for trade in opened:
        by_symbol[trade.symbol].append(trade)
        by_route[trade.symbol][f"{trade.buy_venue}_to_{trade.sell_venue}"].append(trade)
    symbols = {
        sym: kpis([t for t in closed if t.symbol == sym], equity_start, trades)
        for sym, trades in sorted(by_symbol.items())
    }
    routes = {
        sym: {
            route: kpis(
                [
                    t
                    for t in closed
                    if t.symbol == sym and f"{t.buy_venue}_to_{t.sell_venue}" == route
                ],
                equity_start,
                trades,
            )
            for route, trades in sorted(per.items())
        }
        for sym, per in sorted(by_route.items())
    }
    summary: dict[str, Any] = {
        "scenario": run.name,
        "seed": run.seed,
        "mode": run.scenario.get("mode", "paper"),
        "clock": run.scenario.get("clock", "simulated"),
        "report_currency": run.report_currency,
        "time": {
            "start_ns": stats.start,
            "end_ns": stats.end,
            "elapsed_s": round((stats.end - stats.start) / 1e9, 6),
        },
        "events": {"quotes": stats.quotes, "fx_updates": stats.fx_updates},
        "portfolio": portfolio,
        "symbols": symbols,
        "routes": routes,
        "orders": dict(sorted(engine.order_counts.items())),
        "guards": {
            name: dict(sorted(c.items())) for name, c in sorted(engine.guard_counts.items())
        },
        "guard_state": {guard.name: guard.state() for guard in engine.guards},
        "alerts": dict(sorted(engine.alert_counts.items())),
        "faults": dict(sorted(run.fault_counts.items())),
        "ledger": ledger.reconcile(engine.venues),
    }
    expect = {**run.scenario.get("expect", {}), **BUILTIN_EXPECT}
    summary["expectations"] = evaluate(expect, summary)
    summary["passed"] = all(e["passed"] for e in summary["expectations"])
    return summary


def _equity(run: Run, start: bool) -> Decimal:
    """Balances valued in the report currency at the first (or last) mid of each venue,
    and the FX rates of the scenario's `fx:` (or those in force at the end)."""
    total = Decimal(0)
    engine = run.engine
    for name, venue in engine.venues.items():
        balances = engine.ledger.start_balances[name] if start else venue.balances
        rate = (engine.start_fx if start else engine.fx)[venue.quote]
        for asset, amount in balances.items():
            if asset == venue.quote:
                total += amount / rate
            elif asset in venue.books and venue.books[asset].ready:
                book = venue.books[asset]
                mid = venue.first_mid[asset] if start else (book.bids[0][0] + book.asks[0][0]) / 2
                total += amount * Decimal(repr(mid)) / rate
    return total.quantize(Decimal("1e-8"))


def lookup(summary: dict[str, Any], path: str) -> Any:
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def _number(value: Any) -> Any:
    """Money travels as decimal strings; compare it as a number."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def evaluate(expect: dict[str, dict[str, Any]], summary: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for path, checks in expect.items():
        try:
            actual = lookup(summary, path)
        except KeyError:
            results.append(
                {
                    "name": path,
                    "expected": checks,
                    "actual": None,
                    "passed": False,
                    "error": "no such value in the summary",
                }
            )
            continue
        passed = True
        for op, expected in checks.items():
            a, b = _number(actual), _number(expected)
            try:
                passed = passed and bool(COMPARATORS[op](a, b))
            except TypeError:
                passed = False
        results.append({"name": path, "expected": checks, "actual": actual, "passed": passed})
    return results
