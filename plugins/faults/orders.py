"""Order faults on a simulated venue, for leg-risk and lost-message drills.

* `order_reject`: the venue rejects orders (optionally only a role: entering, exiting...)
  within a time window, at most `count` times.
* `partial_fill`: the venue fills at most `fraction` of each matching order (the rest is
  canceled), within a window, at most `count` times.
* `report_loss`: reports of matching orders never leave the venue (`reports`: ack, fill,
  final, status (answers to queries) or all), so the kernel must notice the silence and
  ask the venue, and escalate when even that goes unanswered.
* `lost_ack`: matching orders (at most `count`) go silent: the venue executes them, but their
  acknowledgement and every report after it are lost until the kernel asks (the answer to
  its query gets through). *Detected* when the kernel's in-flight check queries such an
  order, *recovered* when the kernel receives the answer.
Each acts at the venue and counts each firing in `summary.faults`.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from arbframe.components import Fault
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import (
    Accepted,
    CancelRejected,
    Closed,
    FillReport,
    Finding,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    Report,
)
from arbframe.schema import DURATION
from arbframe.units import parse_duration

COMMON = {
    "venue": {"type": "string"},
    "role": {
        "type": "string",
        "description": "Only orders of this role (entering, resizing, exiting, unwinding).",
    },
    "side": {"enum": ["buy", "sell"]},
    "after": DURATION,
    "until": DURATION,
    "count": {"type": "integer", "minimum": 1},
}
REPORTS: dict[str, tuple[type, ...]] = {
    "ack": (Accepted,),
    "fill": (FillReport,),
    "final": (Closed,),
    "status": (OrderStatus, OrderNotFound),  # answers to the kernel's queries
}
REPORTS["all"] = tuple(kind for kinds in REPORTS.values() for kind in kinds)


class _OrderFault(Fault):
    interface_version = 2
    hook = "order_filters"  # the paper venue's list this fault installs itself in

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.after = parse_duration(config.get("after", 0))
        self.until = parse_duration(config["until"]) if "until" in config else None
        self.left = config.get("count")
        venue = ctx.venues.get(config["venue"])
        if venue is None:
            raise ConfigError(
                f"unknown venue {config['venue']!r} (venues: {', '.join(ctx.venues)})", ("venue",)
            )
        if not hasattr(venue, self.hook):  # what the paper venue offers
            raise ConfigError(
                f"venue {config['venue']!r} ({venue.type_name}) does not support {self.type_name}",
                ("venue",),
            )

    def arm(self) -> None:
        getattr(self.ctx.venues[self.config["venue"]], self.hook).append(self._filter)

    def _matches(self, client_id: str, side: str) -> bool:
        elapsed = self.ctx.clock.now - self.ctx.clock.start
        order = self.ctx.order(client_id)
        role = order.role if order is not None else ""
        return (
            elapsed >= self.after
            and (self.until is None or elapsed < self.until)
            and (self.left is None or self.left > 0)
            and self.config.get("role", role) == role
            and self.config.get("side", side) == side
        )

    def _fire(self, client_id: str) -> None:
        if self.left is not None:
            self.left -= 1
        self.ctx.fired(self.type_name, venue=self.config["venue"], client_id=client_id)

    def _filter(self, *args: Any) -> Any:
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

    def _filter(self, order: OrderRequest, now: int) -> tuple[str, Any] | None:
        if not self._matches(order.client_id, order.side):
            return None
        self._fire(order.client_id)
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

    def _filter(self, order: OrderRequest, now: int) -> tuple[str, Any] | None:
        if not self._matches(order.client_id, order.side):
            return None
        self._fire(order.client_id)
        step = self.ctx.venues[order.venue].instruments()[order.symbol].amount_step
        cap = (order.amount * Decimal(str(self.config["fraction"]))).quantize(step, ROUND_DOWN)
        return ("cap", cap)


class ReportLoss(_OrderFault):
    type_name = "report_loss"
    description = "Reports of matching orders are lost on their way from the venue."
    hook = "report_filters"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venue"],
        "properties": {**COMMON, "reports": {"enum": sorted(REPORTS)}},
    }

    def _filter(self, report: Report) -> bool:
        kinds = REPORTS[self.config.get("reports", "all")]
        if not isinstance(report, kinds):
            return False
        side = getattr(report, "side", None)
        if side is None:
            order = self.ctx.order(report.client_id)  # type: ignore[union-attr]
            side = order.side if order is not None else ""
        if not self._matches(report.client_id, side):  # type: ignore[union-attr]
            return False
        self._fire(report.client_id)  # type: ignore[union-attr]
        return True


class LostAck(_OrderFault):
    type_name = "lost_ack"
    description = "Matching orders go silent (ack and all after it lost) until the kernel asks."
    hook = "report_filters"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venue"],
        "properties": COMMON,
    }
    SILENCED = (Accepted, FillReport, Closed, CancelRejected)

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.silent: set[str] = set()  # orders whose reports are lost until they are asked about
        self.asked: set[str] = set()  # ... and those the kernel asked about

    def arm(self) -> None:
        super().arm()
        self.ctx.watch_reconciliation(self._noticed)
        self.ctx.watch_reports(self._received)

    def _filter(self, report: Report) -> bool:
        client_id = getattr(report, "client_id", None)
        if client_id is None or not isinstance(report, self.SILENCED):
            return False
        if client_id not in self.silent:
            if not isinstance(report, Accepted) or not self._matches(client_id, self._side(report)):
                return False
            self.silent.add(client_id)  # its first report, the ack: silence from here
            self._fire(client_id)
        return True

    def _side(self, report: Report) -> str:
        order = self.ctx.order(report.client_id)  # type: ignore[union-attr]
        return order.side if order is not None else ""

    def _noticed(self, finding: Finding) -> None:
        if finding.kind == "inflight_query" and finding.client_id in self.silent:
            self.asked.add(finding.client_id)
            self.ctx.detected(venue=finding.venue, client_id=finding.client_id)

    def _received(self, report: Report) -> None:
        if isinstance(report, OrderStatus) and report.client_id in self.asked:
            self.silent.discard(report.client_id)  # the truth is out: nothing more is lost
            self.asked.discard(report.client_id)
            self.ctx.recovered(venue=report.venue, client_id=report.client_id)


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(OrderReject)
    register(PartialFill)
    register(ReportLoss)
    register(LostAck)
