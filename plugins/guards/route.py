"""Guard tier `route`: per route on a symbol (``<symbol>|<route name>``, e.g.
``BTC|binance_to_upbit``); its cooldowns apply to that route only (scope ``route``).

* `max_open_trades` on the route: BLOCK.
* `max_consecutive_losses` then `cooldown`.
* `slippage`: a closed trade's realised slippage (``Trade.slippage / Trade.notional``, in
  bps; positive is a cost) beyond what was expected (``Trade.expected_slippage_bps``, 0
  where the trade does not carry it) by more than `max_excess_bps`: COOLDOWN for its
  `cooldown`.
* `leg_imbalance`: a trade of the route ended in ``leg_failure`` (an entry unwound) or was
  halted: COOLDOWN for its `cooldown`.
"""

from __future__ import annotations

from typing import Any

from arbframe.components import Guard
from arbframe.model import Action, GuardDecision, Intent, Trade, TradeState

from .common import BPS, COOLDOWN, LossStreaks, RouteKeys, decision, duration, trade_key

WINDOWED = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"cooldown": COOLDOWN},
}


class RouteGuard(Guard):
    type_name = "route"
    interface_version = 2
    description = "Per route: open trades, loss streaks, slippage beyond expected, leg failures."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "max_open_trades": {"type": "integer", "minimum": 1},
            "max_consecutive_losses": {"type": "integer", "minimum": 1},
            "cooldown": COOLDOWN,
            "slippage": {
                "type": "object",
                "additionalProperties": False,
                "required": ["max_excess_bps"],
                "properties": {
                    "max_excess_bps": {"type": "number", "minimum": 0},
                    "cooldown": COOLDOWN,
                },
            },
            "leg_imbalance": WINDOWED,
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.max_open = config.get("max_open_trades")
        self.losses = LossStreaks(
            config.get("max_consecutive_losses"), duration(config, "cooldown", "1m")
        )
        slippage = config.get("slippage")
        self.max_excess = None if slippage is None else float(slippage["max_excess_bps"])
        self.slip_cooldown = duration(slippage or {}, "cooldown", "1m", "slippage")
        imbalance = config.get("leg_imbalance")
        self.imbalance = imbalance is not None
        self.imbalance_cooldown = duration(imbalance or {}, "cooldown", "1m", "leg_imbalance")
        self.open: dict[str, int] = {}
        self.until: dict[str, tuple[int, str, str]] = {}  # key -> (until, rule, reason)
        self._key = RouteKeys()

    def check(self, intent: Intent) -> GuardDecision | None:
        key = self._key(intent.route)
        held = self.until.get(key)
        if held is not None and intent.ts < held[0]:
            return decision(
                self, intent, Action.COOLDOWN, held[1], held[2], until=held[0], scope="route"
            )
        until = self.losses.until.get(key, 0)
        if intent.ts < until:
            return decision(
                self, intent, Action.COOLDOWN, "max_consecutive_losses",
                f"{self.losses.limit} losses in a row on {key}", until=until, scope="route",
            )  # fmt: skip
        if self.max_open is not None and self.open.get(key, 0) >= self.max_open:
            return decision(
                self,
                intent,
                Action.BLOCK,
                "max_open_trades",
                f"{self.max_open} trades open on {key}",
            )
        return None

    def on_trade_opened(self, trade: Trade) -> None:
        key = trade_key(trade)
        self.open[key] = self.open.get(key, 0) + 1

    def on_trade_closed(self, trade: Trade) -> None:
        key = trade_key(trade)
        self.open[key] = self.open.get(key, 0) - 1
        if not trade.fills:
            return
        self.losses.closed(key, trade)
        now = trade.closed_at or 0
        if self.imbalance and (
            trade.exit_reason == "leg_failure" or trade.state is TradeState.HALTED
        ):
            why = f"trade {trade.trade_id} ended in {trade.exit_reason or 'a halt'}"
            self._hold(key, now + self.imbalance_cooldown, "leg_imbalance", why)
        if self.max_excess is not None and trade.notional:
            realised = float(trade.slippage / trade.notional) * BPS
            expected = float(getattr(trade, "expected_slippage_bps", 0.0) or 0.0)
            if realised - expected > self.max_excess:
                self._hold(
                    key, now + self.slip_cooldown, "slippage",
                    f"trade {trade.trade_id} slipped {realised:.1f} bp, expected {expected:.1f}",
                )  # fmt: skip

    def _hold(self, key: str, until: int, rule: str, reason: str) -> None:
        if until > self.until.get(key, (0, "", ""))[0]:
            self.until[key] = (until, rule, reason)

    def state(self) -> dict[str, Any]:
        return {
            "open_trades": {k: n for k, n in self.open.items() if n},
            "streak": dict(self.losses.streak),
            "cooldown_until": {k: v[0] for k, v in self.until.items()}
            | {k: v for k, v in self.losses.until.items()},
        }
