"""Venue outages: a slow venue (`latency_spike`) and a venue answering with errors
(`venue_errors`), each from `at` for `duration` after the run's first feed event.

Both are detected and recovered from what the kernel receives (``ctx.watch_reports``), not
from their own schedule:

* `latency_spike`: every request sent to the venue in the window takes `extra` longer.
  *Detected* at the first answer to an order (acknowledgement, fill or final report)
  that came more than `detect_over` after the order was sent; *recovered* at the first
  order sent after the window that is answered within `detect_over`.
* `venue_errors`: orders reaching the venue in the window get, each with probability `rate`
  (the fault's own seeded generator), `error`: `429` (rejected "429 Too Many Requests"),
  `5xx` (rejected "503 Service Unavailable") or `timeout` (the order vanishes: no answer,
  and the venue does not know it, so the kernel's order timeout queries it, hears "not
  found", and after `execution.max_queries` such answers books it rejected as lost).
  *Detected* at the first rejection with that reason the kernel receives, or for `timeout`
  the first "not found" answer to its queries; *recovered* at the first acknowledgement
  the kernel receives after the window.
"""

from __future__ import annotations

from typing import Any

from arbframe.hookspecs import hookimpl
from arbframe.model import Accepted, Closed, FillReport, OrderNotFound, OrderRequest, OrderStatus
from arbframe.orders import OrderState
from arbframe.schema import DURATION
from arbframe.units import parse_duration

from .window import REQUIRED, WINDOW, WindowFault

MS = 1_000_000
ANSWERS = (Accepted, FillReport, Closed, OrderStatus)
REASONS = {"429": "429 Too Many Requests", "5xx": "503 Service Unavailable", "timeout": ""}


class LatencySpike(WindowFault):
    type_name = "latency_spike"
    description = "The venue answers `extra` later; detected when an order's answer is slow."
    needs = "extra_latency"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": [*REQUIRED, "extra"],
        "properties": {
            **WINDOW,
            "extra": {**DURATION, "description": "Latency added to every request in the window."},
            "detect_over": {
                **DURATION,
                "description": "An order answered later than this is slow (default 500ms).",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.extra = parse_duration(config["extra"])
        self.bound = parse_duration(config.get("detect_over", "500ms"))
        self.slow = 0

    def arm(self) -> None:
        self.ctx.watch_reports(self._answer)

    def begin(self) -> None:
        self.venue.extra_latency += self.extra
        self.ctx.fired(self.type_name, venue=self.venue.name, extra_ms=self.extra / MS)

    def end(self) -> None:
        self.venue.extra_latency -= self.extra

    def _answer(self, report: Any) -> None:
        if report.venue != self.venue.name or not isinstance(report, ANSWERS):
            return
        order = self.ctx.order(report.client_id)
        if order is None or order.state is not OrderState.SUBMITTED:
            return  # not the order's first answer
        took = self.ctx.clock.now - order.created_at
        if took > self.bound:
            self.slow += 1
            self.ctx.detected(venue=self.venue.name, client_id=order.client_id, ms=took / MS)
        elif order.created_at >= self.ends:
            self.ctx.recovered(venue=self.venue.name, client_id=order.client_id, ms=took / MS)

    def stats(self) -> dict[str, Any]:
        return {"slow_answers": self.slow}


class VenueErrors(WindowFault):
    type_name = "venue_errors"
    description = "The venue answers orders with 429, 5xx or nothing at all (timeout)."
    needs = "order_filters"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": [*REQUIRED, "error"],
        "properties": {
            **WINDOW,
            "error": {"enum": [429, "429", "5xx", "timeout"]},
            "rate": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.error = str(config["error"])
        self.reason = REASONS[self.error]
        self.rate = float(config.get("rate", 1))

    def arm(self) -> None:
        self.venue.order_filters.append(self._filter)
        self.ctx.watch_reports(self._answer)

    def _filter(self, request: OrderRequest, now: int) -> tuple[str, Any] | None:
        if not self.active(now):
            return None
        if self.rate < 1 and self.ctx.random.random() >= self.rate:
            return None
        self.ctx.fired(
            self.type_name, venue=self.venue.name, client_id=request.client_id, error=self.error
        )
        return ("drop", "timeout") if self.error == "timeout" else ("reject", self.reason)

    def _answer(self, report: Any) -> None:
        if report.venue != self.venue.name:
            return
        if self.error == "timeout":
            noticed = isinstance(report, OrderNotFound)
        else:
            noticed = isinstance(report, Closed) and report.reason == self.reason
        if noticed:
            self.ctx.detected(venue=self.venue.name, client_id=report.client_id)
        elif isinstance(report, Accepted) and self.ctx.clock.now >= self.ends:
            self.ctx.recovered(venue=self.venue.name, client_id=report.client_id)


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(LatencySpike)
    register(VenueErrors)
