"""Order faults on a venue, for leg-risk drills.

* `order_reject`: the venue rejects orders (optionally only a role: entering, exiting...)
  within a time window, at most `count` times.
* `partial_fill`: the venue fills at most `fraction` of each matching order (the rest is
  canceled), within a window, at most `count` times.
Both act when the order reaches the venue; each firing is counted in `summary.faults`.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from arbframe.components import Fault
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import Order
from arbframe.schema import DURATION
from arbframe.units import parse_duration

COMMON = {
    "venue": {"type": "string"},
    "role": {"type": "string", "description": "Only orders of this role (entering, exiting, ...)."},
    "side": {"enum": ["buy", "sell"]},
    "after": DURATION,
    "until": DURATION,
    "count": {"type": "integer", "minimum": 1},
}


class _OrderFault(Fault):
    def __init__(self, config: dict[str, Any], *, name: str, run: Any) -> None:
        super().__init__(config, name=name, run=run)
        self.after = parse_duration(config.get("after", 0))
        self.until = parse_duration(config["until"]) if "until" in config else None
        self.left = config.get("count")
        venue = run.venues.get(config["venue"])
        if venue is None:
            raise ConfigError(
                f"unknown venue {config['venue']!r} (venues: {', '.join(run.venues)})", ("venue",)
            )
        if not hasattr(venue, "order_filters"):  # the hook the paper venue offers
            raise ConfigError(
                f"venue {config['venue']!r} ({venue.type_name}) does not support order faults",
                ("venue",),
            )

    def arm(self) -> None:
        self.run.venues[self.config["venue"]].order_filters.append(self._filter)

    def _matches(self, order: Order, now: int) -> bool:
        elapsed = now - self.run.engine.start
        return (
            elapsed >= self.after
            and (self.until is None or elapsed < self.until)
            and (self.left is None or self.left > 0)
            and self.config.get("role", order.role) == order.role
            and self.config.get("side", order.side) == order.side
        )

    def _fire(self, order: Order) -> None:
        if self.left is not None:
            self.left -= 1
        self.run.fault(self.type_name, venue=order.venue, client_id=order.client_id)

    def _filter(self, order: Order, now: int) -> tuple[str, Any] | None:
        raise NotImplementedError


class OrderReject(_OrderFault):
    type_name = "order_reject"
    description = "The venue rejects matching orders."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venue"],
        "properties": COMMON,
    }

    def _filter(self, order: Order, now: int) -> tuple[str, Any] | None:
        if not self._matches(order, now):
            return None
        self._fire(order)
        return ("reject", "rejected by fault injection")


class PartialFill(_OrderFault):
    type_name = "partial_fill"
    description = "The venue fills only a fraction of matching orders."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venue", "fraction"],
        "properties": {
            **COMMON,
            "fraction": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        },
    }

    def _filter(self, order: Order, now: int) -> tuple[str, Any] | None:
        if not self._matches(order, now):
            return None
        self._fire(order)
        step = self.run.venues[order.venue].markets[order.symbol].amount_step
        cap = (order.amount * Decimal(str(self.config["fraction"]))).quantize(step, ROUND_DOWN)
        return ("cap", cap)


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(OrderReject)
    register(PartialFill)
