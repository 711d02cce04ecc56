"""`engine_kill`: the engine dies mid-run and is revived from its snapshots.

At `at` (or, with `when: orders_in_flight`, right after the first orders sent from then
on leave, so both legs of a trade are on their way) the engine loses everything since its
last snapshot: the kernel builds a new one from the latest valid snapshot and the orders
written ahead since, while the simulated venues carry on as exchanges would (orders keep
filling, books keep moving). The revived engine asks the venues about every open order
before it sends anything new. Restarting takes no scenario time; what is measured is the
time until every question is answered.
"""

from __future__ import annotations

from typing import Any

from arbframe.components import Fault
from arbframe.hookspecs import hookimpl
from arbframe.schema import DURATION
from arbframe.units import parse_duration


class EngineKill(Fault):
    type_name = "engine_kill"
    interface_version = 2
    description = "Kills the engine and revives it from its snapshots; venues carry on."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["at"],
        "properties": {
            "at": {**DURATION, "description": "When, after the run's first event."},
            "when": {
                "enum": ["at_once", "orders_in_flight"],
                "default": "orders_in_flight",
                "description": "Die at `at`, or right after the next orders leave from then on.",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.at = parse_duration(config["at"])
        self.wait = config.get("when", "orders_in_flight") == "orders_in_flight"

    def arm(self) -> None:
        pass

    def on_start(self, ts: int) -> None:
        self.ctx.clock.call_at(ts + self.at, self.fire)

    def fire(self) -> None:
        self.ctx.fired(self.type_name, wait_for_orders=self.wait)
        self.ctx.kill_engine(self.wait)


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(EngineKill)
