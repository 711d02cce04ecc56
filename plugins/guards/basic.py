"""Risk-guard tiers `symbol` and `global`, asked about every entry intent.

* symbol: caps the notional per trade (DEGRADE to fit) and cools a symbol down after a run
  of consecutive losing trades on it.
* global: blocks entries once realised losses in the current (scenario-time) day reach
  `daily_loss_limit`, once realised drawdown from the peak reaches `max_drawdown`, or while
  `max_open_trades` trades are open.
Guard state is plain data (``state()``) so it can be persisted and restored.
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

DAY = NS["d"]


class SymbolGuard(Guard):
    type_name = "symbol"
    interface_version = 2
    description = "Per-symbol notional cap and cooldown after consecutive losses."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "max_notional": {"type": "number", "exclusiveMinimum": 0},
            "max_consecutive_losses": {"type": "integer", "minimum": 1},
            "cooldown": DURATION,
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        cap = config.get("max_notional")
        self.max_notional = None if cap is None else Decimal(str(cap))
        self.max_losses = config.get("max_consecutive_losses")
        self.cooldown = parse_duration(config.get("cooldown", "1m"))
        self.streak: dict[str, int] = defaultdict(int)
        self.until: dict[str, int] = {}

    def check(self, intent: Intent) -> GuardDecision | None:
        until = self.until.get(intent.symbol, 0)
        if intent.ts < until:
            return GuardDecision(
                intent.ts,
                self.name,
                Action.COOLDOWN,
                f"{self.max_losses} losses in a row",
                until=until,
                symbol=intent.symbol,
            )
        if self.max_notional is not None and intent.notional > self.max_notional:
            scale = float(self.max_notional / intent.notional)
            return GuardDecision(
                intent.ts,
                self.name,
                Action.DEGRADE,
                f"notional above {self.max_notional}",
                scale=scale,
                symbol=intent.symbol,
            )
        return None

    def on_trade_closed(self, trade: Trade) -> None:
        if not trade.fills:
            return
        self.streak[trade.symbol] = 0 if trade.won else self.streak[trade.symbol] + 1
        if self.max_losses and self.streak[trade.symbol] >= self.max_losses:
            self.until[trade.symbol] = (trade.closed_at or 0) + self.cooldown
            self.streak[trade.symbol] = 0

    def state(self) -> dict[str, Any]:
        return {"streak": dict(self.streak), "cooldown_until": dict(self.until)}


class GlobalGuard(Guard):
    type_name = "global"
    interface_version = 2
    description = "Portfolio limits: daily realised loss, drawdown, open trades."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "daily_loss_limit": {"type": "number", "exclusiveMinimum": 0},
            "max_drawdown": {"type": "number", "exclusiveMinimum": 0},
            "max_open_trades": {"type": "integer", "minimum": 1},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        limit, drawdown = config.get("daily_loss_limit"), config.get("max_drawdown")
        self.daily_limit = None if limit is None else Decimal(str(limit))
        self.max_drawdown = None if drawdown is None else Decimal(str(drawdown))
        self.max_open = config.get("max_open_trades")
        self.day = -1
        self.day_pnl = Decimal(0)
        self.cumulative = Decimal(0)
        self.peak = Decimal(0)
        self.open = 0  # trades opened and not yet closed

    def check(self, intent: Intent) -> GuardDecision | None:
        if intent.ts // DAY != self.day:
            self.day, self.day_pnl = intent.ts // DAY, Decimal(0)
        reason = ""
        if self.daily_limit is not None and self.day_pnl <= -self.daily_limit:
            reason = f"daily loss {self.day_pnl} reached the limit {self.daily_limit}"
        elif self.max_drawdown is not None and self.peak - self.cumulative >= self.max_drawdown:
            reason = f"drawdown {self.peak - self.cumulative} reached {self.max_drawdown}"
        elif self.max_open is not None and self.open >= self.max_open:
            reason = f"{self.max_open} trades open"
        if reason:
            return GuardDecision(intent.ts, self.name, Action.BLOCK, reason, symbol=intent.symbol)
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
    register(SymbolGuard)
    register(GlobalGuard)
