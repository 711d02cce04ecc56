"""Guard tier `exchange`: per venue of the intent's route.

* `max_exposure`: the report-currency value of the open trades' legs on the venue plus what
  the intent adds there (its notional times the legs' ratios): DEGRADE to fit, BLOCK when
  nothing fits. A number for every venue, or ``{venue: number}``.
* `circuit_breaker`: the venue's error rate over the health monitor's window (429/5xx
  rejections, unanswered orders) at or above `max_error_rate` with at least `min_orders`
  answers: COOLDOWN of the venue (every route through it) for `cooldown`. Set the
  cooldown no shorter than `health.window`, or the errors still in the window trip it again.
* `stale_book`: a leg's book older than this (or never published): BLOCK.
* `rate_limit`: the venue's order rate (``health.rate_limits``) past its soft limit:
  DEGRADE to `scale`; past its hard limit: BLOCK.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from arbframe.components import Guard
from arbframe.errors import ConfigError
from arbframe.model import Action, GuardDecision, Intent
from arbframe.schema import DURATION
from arbframe.units import parse_duration

from .common import (
    COOLDOWN,
    MONEY,
    ZERO,
    decision,
    duration,
    fit,
    intent_by_venue,
    leg_values,
    stale,
)


class ExchangeGuard(Guard):
    type_name = "exchange"
    interface_version = 2
    description = "Per venue: exposure, circuit breaker on errors, stale books, order rate."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "max_exposure": {
                "anyOf": [MONEY, {"type": "object", "additionalProperties": MONEY}],
                "description": "Report currency, per venue: one number, or {venue: number}.",
            },
            "circuit_breaker": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "max_error_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                    "min_orders": {"type": "integer", "minimum": 1},
                    "cooldown": COOLDOWN,
                },
            },
            "stale_book": {**DURATION, "description": "Max age of a leg's book: older BLOCKs."},
            "rate_limit": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "scale": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 1,
                        "description": "DEGRADE to this past the soft limit (default 0.5).",
                    }
                },
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        venues = list(ctx.market.venues) if ctx.market is not None else []
        cap = config.get("max_exposure")
        self.max_exposure: dict[str, Decimal] = {}
        if isinstance(cap, dict):
            for venue, value in cap.items():
                if venues and venue not in venues:
                    raise ConfigError(
                        f"unknown venue {venue!r} (venues: {', '.join(venues)})",
                        ("max_exposure", venue),
                    )
                self.max_exposure[venue] = Decimal(str(value))
        elif cap is not None:
            self.max_exposure = dict.fromkeys(venues, Decimal(str(cap)))
        breaker = config.get("circuit_breaker")
        self.breaker = breaker is not None
        breaker = breaker or {}
        self.max_error_rate = float(breaker.get("max_error_rate", 0.5))
        self.min_orders = int(breaker.get("min_orders", 5))
        self.cooldown = duration(breaker, "cooldown", "1m", "circuit_breaker")
        age = config.get("stale_book")
        self.max_age = None if age is None else parse_duration(age)
        limit = config.get("rate_limit")
        self.rate_scale = None if limit is None else float(limit.get("scale", 0.5))
        self.until: dict[str, int] = {}  # venue -> end of its circuit-breaker cooldown

    def check(self, intent: Intent) -> GuardDecision | None:
        health, ts = self.ctx.health, intent.ts
        verdict = None
        for leg in intent.route.legs:
            venue = leg.venue
            until = self.until.get(venue, 0)
            if ts < until:
                return self._trip(intent, venue, until, "circuit breaker open")
            if self.breaker and health is not None:
                rate, n = health.error_rate(venue)
                if n >= self.min_orders and rate >= self.max_error_rate:
                    until = self.until[venue] = ts + self.cooldown
                    return self._trip(
                        intent, venue, until, f"error rate {rate:.0%} over {n} orders"
                    )
            if self.rate_scale is not None and health is not None:
                level = health.rate_level(venue)
                if level == 2:
                    return decision(
                        self,
                        intent,
                        Action.BLOCK,
                        "rate_limit",
                        f"{venue} past its hard order rate",
                    )
                if level == 1 and verdict is None:
                    verdict = decision(
                        self, intent, Action.DEGRADE, "rate_limit",
                        f"{venue} past its soft order rate", scale=self.rate_scale,
                    )  # fmt: skip
        if self.max_age is not None:
            refused = stale(self, intent, self.max_age)
            if refused is not None:
                return refused
        if self.max_exposure:
            fitted = self._exposure(intent, verdict.scale if verdict else 1.0)
            if fitted is not None:
                if fitted.action is Action.BLOCK or verdict is None:
                    return fitted
                fitted.scale *= verdict.scale
                return fitted
        return verdict

    def _trip(self, intent: Intent, venue: str, until: int, why: str) -> GuardDecision:
        return decision(
            self, intent, Action.COOLDOWN, "circuit_breaker", f"{venue}: {why}",
            until=until, scope=f"venue:{venue}",
        )  # fmt: skip

    def _exposure(self, intent: Intent, scale: float) -> GuardDecision | None:
        adds = intent_by_venue(intent)
        held: dict[str, Decimal] = {}
        for _, venue, value in leg_values(self.ctx.market, self.ctx.open_trades()):
            held[venue] = held.get(venue, ZERO) + value
        worst = None
        for venue, add in adds.items():
            limit = self.max_exposure.get(venue)
            if limit is None:
                continue
            fitted = fit(
                self, intent, "max_exposure", venue, held.get(venue, ZERO),
                add * Decimal(repr(scale)), limit,
            )  # fmt: skip
            if fitted is None:
                continue
            if fitted.action is Action.BLOCK:
                return fitted
            if worst is None or fitted.scale < worst.scale:
                worst = fitted
        return worst

    def state(self) -> dict[str, Any]:
        return {"breaker_until": dict(self.until)}
