"""Risk-guard tiers `symbol` and `global` (and the registration of every built-in tier:
`exchange` and `route` live in their own modules), asked about every entry intent.

* symbol (per route label): `max_notional` per trade (DEGRADE to fit), `max_exposure` (open
  legs plus the intent, DEGRADE to fit, BLOCK when nothing fits), `max_open_trades`,
  `daily_loss_limit` (realised, the scenario-time day), `max_consecutive_losses` then a
  `cooldown` of the symbol, `stale_book` (a leg's book older than it: BLOCK).
* global: `daily_loss_limit`, `max_drawdown` (realised, from the peak), `max_open_trades`,
  `max_exposure` (every open leg plus the intent).
Each verdict names its rule (the config key). Guard state is plain data (``state()``) and is
part of the snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from arbframe.components import Guard
from arbframe.hookspecs import hookimpl
from arbframe.model import Action, GuardDecision, Intent, Trade
from arbframe.schema import DURATION
from arbframe.units import NS, parse_duration

from .common import (
    COOLDOWN,
    MONEY,
    ZERO,
    DailyLoss,
    dec,
    decision,
    duration,
    fit,
    leg_values,
    stale,
)

DAY = NS["d"]


class SymbolGuard(Guard):
    type_name = "symbol"
    interface_version = 2
    description = (
        "Per symbol: notional cap, exposure, open trades, daily loss, loss streak cooldown, "
        "stale books."
    )
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "max_notional": {**MONEY, "description": "Per trade; larger intents DEGRADE."},
            "max_exposure": {**MONEY, "description": "Open legs of the symbol plus the intent."},
            "max_open_trades": {"type": "integer", "minimum": 1},
            "daily_loss_limit": {**MONEY, "description": "Realised loss of the symbol today."},
            "max_consecutive_losses": {"type": "integer", "minimum": 1},
            "cooldown": COOLDOWN,
            "stale_book": {**DURATION, "description": "Max age of a leg's book: older BLOCKs."},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.max_notional = dec(config.get("max_notional"))
        self.max_exposure = dec(config.get("max_exposure"))
        self.max_open = config.get("max_open_trades")
        self.daily_limit = dec(config.get("daily_loss_limit"))
        self.max_losses = config.get("max_consecutive_losses")
        self.cooldown = duration(config, "cooldown", "1m")
        age = config.get("stale_book")
        self.max_age = None if age is None else parse_duration(age)
        self.streak: dict[str, int] = defaultdict(int)
        self.until: dict[str, int] = {}
        self.open: dict[str, int] = defaultdict(int)
        self.daily = DailyLoss()

    def check(self, intent: Intent) -> GuardDecision | None:
        symbol = intent.symbol
        until = self.until.get(symbol, 0)
        if intent.ts < until:
            return GuardDecision(
                intent.ts,
                self.name,
                Action.COOLDOWN,
                f"{self.max_losses} losses in a row",
                until=until,
                symbol=symbol,
                rule="max_consecutive_losses",
            )
        if (
            self.daily_limit is not None
            and self.daily.today(symbol, intent.ts) <= -self.daily_limit
        ):
            return decision(
                self, intent, Action.BLOCK, "daily_loss_limit",
                f"{symbol} lost {-self.daily.today(symbol, intent.ts)} today, limit "
                f"{self.daily_limit}",
            )  # fmt: skip
        if self.max_open is not None and self.open[symbol] >= self.max_open:
            return decision(
                self, intent, Action.BLOCK, "max_open_trades", f"{self.max_open} trades open"
            )
        if self.max_age is not None:
            refused = stale(self, intent, self.max_age)
            if refused is not None:
                return refused
        verdict = None
        if self.max_notional is not None and intent.notional > self.max_notional:
            verdict = decision(
                self, intent, Action.DEGRADE, "max_notional",
                f"notional above {self.max_notional}",
                scale=float(self.max_notional / intent.notional),
            )  # fmt: skip
        if self.max_exposure is not None:
            notional = intent.notional * (Decimal(verdict.scale) if verdict else 1)
            adds = notional * sum(abs(leg.ratio) for leg in intent.route.legs)
            trades = (t for t in self.ctx.open_trades() if t.symbol == symbol)
            held = sum((v for _, _, v in leg_values(self.ctx.market, trades)), ZERO)
            fitted = fit(self, intent, "max_exposure", symbol, held, adds, self.max_exposure)
            if fitted is not None:
                if fitted.action is Action.DEGRADE and verdict is not None:
                    fitted.scale *= verdict.scale
                verdict = fitted
        return verdict

    def on_trade_opened(self, trade: Trade) -> None:
        self.open[trade.symbol] += 1

    def on_trade_closed(self, trade: Trade) -> None:
        self.open[trade.symbol] -= 1
        if not trade.fills:
            return
        self.daily.closed(trade.symbol, trade)
        self.streak[trade.symbol] = 0 if trade.won else self.streak[trade.symbol] + 1
        if self.max_losses and self.streak[trade.symbol] >= self.max_losses:
            self.until[trade.symbol] = (trade.closed_at or 0) + self.cooldown
            self.streak[trade.symbol] = 0

    def state(self) -> dict[str, Any]:
        return {
            "streak": dict(self.streak),
            "cooldown_until": dict(self.until),
            "open_trades": {s: n for s, n in self.open.items() if n},
            "day_pnl": {s: str(p) for s, p in self.daily.pnl.items()},
        }


class GlobalGuard(Guard):
    type_name = "global"
    interface_version = 2
    description = "Portfolio limits: daily realised loss, drawdown, open trades, exposure."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "daily_loss_limit": MONEY,
            "max_drawdown": MONEY,
            "max_open_trades": {"type": "integer", "minimum": 1},
            "max_exposure": {**MONEY, "description": "Every open leg plus the intent."},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.daily_limit = dec(config.get("daily_loss_limit"))
        self.max_drawdown = dec(config.get("max_drawdown"))
        self.max_open = config.get("max_open_trades")
        self.max_exposure = dec(config.get("max_exposure"))
        self.day = -1
        self.day_pnl = Decimal(0)
        self.cumulative = Decimal(0)
        self.peak = Decimal(0)
        self.open = 0  # trades opened and not yet closed

    def check(self, intent: Intent) -> GuardDecision | None:
        if intent.ts // DAY != self.day:
            self.day, self.day_pnl = intent.ts // DAY, Decimal(0)
        reason = rule = ""
        if self.daily_limit is not None and self.day_pnl <= -self.daily_limit:
            rule = "daily_loss_limit"
            reason = f"daily loss {self.day_pnl} reached the limit {self.daily_limit}"
        elif self.max_drawdown is not None and self.peak - self.cumulative >= self.max_drawdown:
            rule = "max_drawdown"
            reason = f"drawdown {self.peak - self.cumulative} reached {self.max_drawdown}"
        elif self.max_open is not None and self.open >= self.max_open:
            rule, reason = "max_open_trades", f"{self.max_open} trades open"
        if reason:
            return decision(self, intent, Action.BLOCK, rule, reason)
        if self.max_exposure is not None:
            adds = intent.notional * sum(abs(leg.ratio) for leg in intent.route.legs)
            values = leg_values(self.ctx.market, self.ctx.open_trades())
            held = sum((v for _, _, v in values), ZERO)
            return fit(self, intent, "max_exposure", "total", held, adds, self.max_exposure)
        return None

    def on_trade_opened(self, trade: Trade) -> None:
        self.open += 1

    def on_trade_closed(self, trade: Trade) -> None:
        self.open -= 1
        if (trade.closed_at or 0) // NS["d"] != self.day:
            self.day, self.day_pnl = (trade.closed_at or 0) // NS["d"], Decimal(0)
        self.day_pnl += trade.net_pnl
        self.cumulative += trade.net_pnl
        self.peak = max(self.peak, self.cumulative)

    def state(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "day_pnl": str(self.day_pnl),
            "cumulative": str(self.cumulative),
            "peak": str(self.peak),
            "open_trades": self.open,
        }


@hookimpl
def arbframe_register_guards(register: Any) -> None:
    from .exchange import ExchangeGuard
    from .route import RouteGuard

    register(ExchangeGuard)
    register(RouteGuard)
    register(SymbolGuard)
    register(GlobalGuard)
