"""The run summary (summary.json) and the `expect:` assertions evaluated against it."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from arbframe.kpi import kpis
from arbframe.model import BalanceChange, Trade, money

if TYPE_CHECKING:
    from arbframe.audit import Audit
    from arbframe.components import Exchange, RunInfo
    from arbframe.driver import DriveStats
    from arbframe.execution import ExecutionEngine
    from arbframe.inventory import Inventory
    from arbframe.market import MarketView
    from arbframe.risk import GuardChain
    from arbframe.universe import UniverseKernel

# Every run asserts this on top of the scenario's own `expect:`.
BUILTIN_EXPECT = {"reconciliation.passed": {"eq": True}}
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
EQUITY_QUANTUM = Decimal("1e-8")


def build_summary(
    *,
    info: RunInfo,
    scenario: dict[str, Any],
    stats: DriveStats,
    execution: ExecutionEngine,
    guards: GuardChain,
    market: MarketView,
    audit: Audit,
    venues: dict[str, Exchange],
    faults: dict[str, Any],
    complete: bool,
    loop: dict[str, Any] | None = None,
    universe: UniverseKernel | None = None,
    inventory: Inventory | None = None,
) -> dict[str, Any]:
    ledger = execution.ledger
    health = execution.flow.venue_health
    opened = [t for t in execution.trades.values() if t.fills]
    closed = [t for t in execution.closed if t.fills]
    valuation = _Valuation(market, audit)
    equity_start = valuation.equity(ledger.start_balances, start=True)
    equity_end = valuation.equity(ledger.balances, start=False)
    moved = valuation.entries(ledger.entries)
    portfolio = kpis(closed, equity_start, opened)
    portfolio["equity_start"] = money(equity_start)
    portfolio["equity_end"] = money(equity_end)
    portfolio["balance_changes"] = money(moved)
    # What the marks moved besides trading and the money moved in or out.
    portfolio["inventory_pnl"] = money(
        equity_end - equity_start - moved - Decimal(portfolio["pnl"])
    )
    portfolio["entry_failures"] = sum(1 for t in execution.closed if not t.fills)
    venue_stats = {name: venue.stats() for name, venue in venues.items()}
    # The venues' own count of orders sent twice: what every failure drill expects to be 0.
    faults = {**faults, "duplicate_orders": sum(
        v.get("duplicate_orders", 0) for v in venue_stats.values()
    )}  # fmt: skip
    summary: dict[str, Any] = {
        "scenario": info.name,
        "seed": info.seed,
        "mode": info.mode,
        "clock": info.clock,
        "session": info.session,
        "report_currency": info.report_currency,
        "complete": complete,
        "time": {
            "start_ns": stats.start,
            "end_ns": stats.end,
            "elapsed_s": round((stats.end - stats.start) / 1e9, 6),
            "first": _iso(stats.start),
            "last": _iso(stats.end),
        },
        "events": {
            "quotes": stats.quotes,
            "fx_updates": stats.fx_updates,
            "instants": stats.instants,
        },
        "portfolio": portfolio,
        "symbols": _grouped(closed, opened, equity_start, lambda t: t.symbol),
        "routes": _routes(closed, opened, equity_start),
        "breadth": _breadth(opened),
        "strategies": _grouped(closed, opened, equity_start, lambda t: t.strategy),
        "orders": dict(sorted(execution.order_counts.items())),
        "execution": {
            "refused": dict(sorted(execution.refusals.items())),
            "halts": list(execution.halts),
        },
        "guards": guards.summary(),
        "guard_first": {
            name: {
                action: {"ts": ts, "at": _iso(ts), "reason": reason, "rule": rule}
                for action, (ts, reason, rule) in sorted(first.items())
            }
            for name, first in sorted(guards.first.items())
            if first
        },
        "guard_state": guards.state(),
        # The venues as the order flow saw them (arbframe.health).
        "health": {} if health is None else health.summary(),
        "alerts": dict(sorted(execution.alert_counts.items())),
        "faults": faults,  # arbframe.faults.FaultLog.summary
        "venues": venue_stats,
        "reconciliation": audit.report(ledger, venues),
    }
    if loop is not None:  # the wall-clock driver's loop health
        summary["loop"] = loop
    if universe is not None:
        summary["universe"] = universe_section(universe)
    if inventory is not None:
        summary["inventory"] = inventory_section(inventory)
    return summary


def universe_section(universe: UniverseKernel) -> dict[str, Any]:
    """``summary.universe``: the active symbols and every change, with its time."""
    return universe.summary(_iso)


def inventory_section(inventory: Inventory) -> dict[str, Any]:
    """``summary.inventory``: balances, imbalance, exposure, signals and transfers."""
    return inventory.summary(_iso)


def judge(summary: dict[str, Any], scenario: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the scenario's `expect:` (and the built-in ones) on the finished summary."""
    expect = {**scenario.get("expect", {}), **BUILTIN_EXPECT}
    summary["expectations"] = evaluate(expect, summary)
    # A partial run proves nothing, whatever its expectations say so far.
    summary["passed"] = summary["complete"] and all(e["passed"] for e in summary["expectations"])
    return summary


def _grouped(
    closed: list[Trade], opened: list[Trade], equity_start: Decimal, key: Any
) -> dict[str, Any]:
    groups: dict[str, list[Trade]] = defaultdict(list)
    for trade in opened:
        groups[key(trade)].append(trade)
    return {
        name: kpis([t for t in closed if key(t) == name], equity_start, trades)
        for name, trades in sorted(groups.items())
    }


def _breadth(opened: list[Trade]) -> dict[str, int]:
    """How widely the run traded: distinct symbols, (symbol, route) pairs, route names
    (``<buy>_to_<sell>`` whatever the symbol) and venues with at least one entry fill."""
    entered = [t for t in opened if any(f.role == "entering" for f in t.fills)]
    return {
        "symbols_traded": len({t.symbol for t in entered}),
        "routes_traded": len({(t.symbol, t.route) for t in entered}),
        "route_names_traded": len({t.route for t in entered}),
        "venues_traded": len({f.venue for t in entered for f in t.fills}),
    }


def _routes(closed: list[Trade], opened: list[Trade], equity_start: Decimal) -> dict[str, Any]:
    """KPIs per symbol and route, plus the route's mean expected and realised slippage (bps,
    over its closed trades that carry each figure; null without one)."""
    routes: dict[str, Any] = {}
    for symbol in sorted({t.symbol for t in opened}):
        mine = [t for t in closed if t.symbol == symbol]
        figures = _grouped(mine, [t for t in opened if t.symbol == symbol], equity_start,
                           lambda t: t.route)  # fmt: skip
        for route, kpi in figures.items():
            trades = [t for t in mine if t.route == route]
            kpi["expected_slippage_bps"] = _mean([t.expected_slippage_bps for t in trades])
            kpi["slippage_bps"] = _mean([t.slippage_bps for t in trades])
        routes[symbol] = figures
    return routes


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 4) if known else None


class _Valuation:
    """Balances in the report currency: currencies at their FX rate, a venue's traded
    assets at the mid of that venue's first (or last) published book; anything else 0."""

    def __init__(self, market: MarketView, audit: Audit) -> None:
        self.market = market
        self.audit = audit

    def price(self, venue: str, asset: str, start: bool) -> Decimal | None:
        fx = self.market.start_fx if start else self.market.fx_exact
        if asset in fx:
            return 1 / fx[asset]
        for instrument in self.market.instruments(venue):
            if instrument.base != asset or instrument.quote not in fx:
                continue
            key = (venue, instrument.symbol)
            if start:
                mid = self.audit.first_mid.get(key)
            else:
                history = self.audit.history.get(key)
                mid = _mid(history[-1]) if history else None
            if mid is not None:
                return Decimal(repr(mid)) / fx[instrument.quote]
        return None

    def equity(self, balances: dict[str, Any], start: bool) -> Decimal:
        total = Decimal(0)
        for venue, assets in balances.items():
            for asset, amount in assets.items():
                price = self.price(venue, asset, start)
                if price is not None:
                    total += amount * price
        return total.quantize(EQUITY_QUANTUM)

    def entries(self, entries: list[BalanceChange]) -> Decimal:
        total = Decimal(0)
        for entry in entries:
            price = self.price(entry.venue, entry.asset, start=False)
            if price is not None:
                total += entry.amount * price
        return total.quantize(EQUITY_QUANTUM)


def _mid(entry: tuple[int, Any, Any]) -> float | None:
    _, bids, asks = entry
    return (bids[0][0] + asks[0][0]) / 2 if bids and asks else None


def _iso(ts: int) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts / 1e9, UTC).isoformat(timespec="milliseconds")


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


# An expected value may refer to other summary values: `{sum: "symbols.*.pnl"}`.
AGGREGATES = ("sum", "min", "max", "ref")


class _Unresolved(Exception):
    """A reference that names no value, or values that cannot be aggregated."""


def reference(expected: Any) -> tuple[str, str] | None:
    """(aggregate, path) when `expected` is a reference to other summary values: a mapping
    of exactly one of sum/min/max/ref to a dotted path, where `*` stands for every key at
    that level. Anything else is a literal."""
    if isinstance(expected, dict) and len(expected) == 1:
        [(how, path)] = expected.items()
        if how in AGGREGATES and isinstance(path, str):
            return how, path
    return None


def expand(summary: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    """Every (concrete path, value) that `path` names; `*` expands over a mapping's keys."""
    found: list[tuple[str, Any]] = [("", summary)]
    for part in path.split("."):
        below: list[tuple[str, Any]] = []
        for where, node in found:
            if not isinstance(node, dict):
                continue
            keys = sorted(node) if part == "*" else [part] if part in node else []
            below += [(f"{where}.{k}" if where else k, node[k]) for k in keys]
        found = below
    return found


def _resolve(summary: dict[str, Any], how: str, path: str) -> Any:
    matches = expand(summary, path)
    if not matches:
        raise _Unresolved(f"{path} matches nothing in the summary")
    if how == "ref":
        if len(matches) > 1:
            raise _Unresolved(f"{path} matches {len(matches)} values; ref takes one")
        return matches[0][1]
    values = []
    for where, value in matches:
        number = _number(value)
        # bool is an int: a flag summed or compared as a count would be a silent mistake.
        if isinstance(number, bool) or not isinstance(number, int | Decimal):
            raise _Unresolved(f"{where} is {value!r}, not a number")
        values.append(Decimal(number))
    if how == "sum":
        return sum(values, Decimal(0))  # exact: money strings and floats become Decimals
    return min(values) if how == "min" else max(values)


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
        resolved: dict[str, Any] = {}
        problems: list[str] = []
        for op, expected in checks.items():
            ref = reference(expected)
            if ref is not None:
                try:
                    expected = resolved[op] = _resolve(summary, *ref)
                except _Unresolved as err:
                    problems.append(str(err))
                    passed = False
                    continue
            a, b = _number(actual), _number(expected)
            try:
                passed = passed and bool(COMPARATORS[op](a, b))
            except (TypeError, InvalidOperation):
                passed = False
        result = {"name": path, "expected": checks, "actual": actual, "passed": passed}
        if resolved:  # what each reference came to, beside the reference itself
            result["resolved"] = {op: _plain(v) for op, v in resolved.items()}
        if problems:
            result["error"] = "; ".join(problems)
        results.append(result)
    return results


def _plain(value: Any) -> Any:
    """A resolved value as summary.json holds values: Decimals as exact strings."""
    return money(value) if isinstance(value, Decimal) else value
