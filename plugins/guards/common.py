"""What the guard tiers share (not a plugin module: `basic` registers every tier).

Keys: a route's state is kept under ``<symbol>|<route name>``, computed once per Route
object (a strategy usually keeps its routes; one that builds a Route per entry only costs
a string each time). Exposure is the report-currency value of the open trades' legs, each
leg at the larger of its target and its position, at the book's mid.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from arbframe.errors import ConfigError
from arbframe.model import Action, GuardDecision, Intent, Route, Trade
from arbframe.schema import DURATION
from arbframe.units import NS, parse_duration

DAY = NS["d"]
ZERO = Decimal(0)
BPS = 10_000
MONEY = {"type": "number", "exclusiveMinimum": 0}
COOLDOWN = {**DURATION, "description": "How long the scope cools down (default 1m)."}
KEYS_MAX = 4096


def dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def duration(config: dict[str, Any], key: str, default: str, *path: str) -> int:
    value = parse_duration(config.get(key, default))
    if value <= 0:
        raise ConfigError("must be longer than 0", (*path, key))
    return value


def decision(
    guard: Any, intent: Intent, action: Action, rule: str, reason: str, **extra: Any
) -> GuardDecision:
    return GuardDecision(
        intent.ts, guard.name, action, reason, symbol=intent.symbol, rule=rule, **extra
    )


class RouteKeys:
    """``<symbol>|<route name>`` of a Route, cached per object (held, so its id is not
    reused). Pickles empty: ids do not survive a resume."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Route, str]] = {}

    def __call__(self, route: Route) -> str:
        hit = self._cache.get(id(route))
        if hit is not None and hit[0] is route:
            return hit[1]
        if len(self._cache) >= KEYS_MAX:
            self._cache.clear()
        key = f"{route.label}|{route.name}"
        self._cache[id(route)] = (route, key)
        return key

    def __reduce__(self) -> Any:
        return (RouteKeys, ())


def trade_key(trade: Trade) -> str:
    return f"{trade.symbol}|{trade.route}"


def leg_values(market: Any, trades: Iterable[Trade]) -> Iterable[tuple[Trade, str, Decimal]]:
    """(trade, venue, report-currency value) of every leg of ``trades``."""
    for trade in trades:
        for leg in trade.legs:
            amount = max(abs(leg.target), abs(leg.position))
            if not amount:
                continue
            mid = market.mid(leg.venue, leg.symbol)
            if mid is not None:
                yield trade, leg.venue, amount * Decimal(repr(mid))


def intent_by_venue(intent: Intent) -> dict[str, Decimal]:
    """What the intent adds on each venue: its notional times the legs' ratios there."""
    out: dict[str, Decimal] = {}
    for leg in intent.route.legs:
        out[leg.venue] = out.get(leg.venue, ZERO) + intent.notional * abs(leg.ratio)
    return out


def fit(
    guard: Any, intent: Intent, rule: str, what: str, held: Decimal, adds: Decimal, limit: Decimal
) -> GuardDecision | None:
    """DEGRADE so that ``held + adds * scale`` fits ``limit``; BLOCK when nothing fits."""
    if held + adds <= limit:
        return None
    room = limit - held
    if room <= 0 or not adds:
        return decision(
            guard, intent, Action.BLOCK, rule, f"{what} exposure {held:.2f} at the limit {limit}"
        )
    return decision(
        guard,
        intent,
        Action.DEGRADE,
        rule,
        f"{what} exposure would pass {limit}",
        scale=float(room / adds),
    )


def stale(
    guard: Any, intent: Intent, max_age: int, rule: str = "stale_book"
) -> GuardDecision | None:
    market, ts = guard.ctx.market, intent.ts
    for leg in intent.route.legs:
        book = market.book(leg.venue, leg.symbol)
        if not book.ts or ts - book.ts > max_age:
            return decision(
                guard,
                intent,
                Action.BLOCK,
                rule,
                f"{leg.venue} {leg.symbol} book older than {max_age // 1_000_000} ms",
            )
    return None


class LossStreaks:
    """Consecutive losing trades per key, and the cooldown they start."""

    def __init__(self, limit: int | None, cooldown: int) -> None:
        self.limit, self.cooldown = limit, cooldown
        self.streak: dict[str, int] = {}
        self.until: dict[str, int] = {}

    def closed(self, key: str, trade: Trade) -> None:
        if not trade.fills:
            return
        streak = 0 if trade.won else self.streak.get(key, 0) + 1
        if self.limit and streak >= self.limit:
            self.until[key] = (trade.closed_at or 0) + self.cooldown
            streak = 0
        self.streak[key] = streak


class DailyLoss:
    """Realised PnL of the current (scenario-time) day, per key."""

    def __init__(self) -> None:
        self.day: dict[str, int] = {}
        self.pnl: dict[str, Decimal] = {}

    def closed(self, key: str, trade: Trade) -> None:
        day = (trade.closed_at or 0) // DAY
        if self.day.get(key) != day:
            self.day[key], self.pnl[key] = day, ZERO
        self.pnl[key] += trade.net_pnl

    def today(self, key: str, ts: int) -> Decimal:
        return self.pnl.get(key, ZERO) if self.day.get(key) == ts // DAY else ZERO
