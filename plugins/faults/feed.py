"""`feed_disconnect`: a venue's market-data link drops at `at` for `duration`.

While the link is down the venue's books reach neither the kernel nor the simulated venue
(which shares the kernel's books): they go stale, and with `execution.max_book_age` the
kernel refuses entries on them (`summary.execution.refused.stale_book`). The link notices
the drop at once (a closed socket is noticed at once: *detected*), then tries to reconnect
after each delay of an exponential backoff, `min(initial * factor**k, max)`, each scaled by
a uniform draw in `[1 - jitter, 1 + jitter]` from the fault's own seeded generator (the
same seed gives the same attempts). Attempts fail while the outage lasts; the first one at
or after its end succeeds, and the first book of the venue after it is the *recovery*.
`summary.faults.timeline.<name>` adds `reconnect_attempts` and `books_dropped`.

Modelling note: the driver still counts a dropped book in `events.quotes` and still calls
the strategies' `on_market` for its instant, with the books unchanged.
"""

from __future__ import annotations

from typing import Any

from arbframe.components import SimulatedExchange
from arbframe.errors import ConfigError
from arbframe.faults import Link, LinkListener, backoff
from arbframe.hookspecs import hookimpl
from arbframe.schema import DURATION
from arbframe.units import parse_duration

from .window import REQUIRED, WINDOW, WindowFault

BACKOFF = {"initial": "1s", "max": "30s", "factor": 2, "jitter": 0.2}


class FeedDisconnect(WindowFault, LinkListener):
    type_name = "feed_disconnect"
    description = "A venue's market-data link drops; it reconnects with backoff and jitter."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": REQUIRED,
        "properties": {
            **WINDOW,
            "backoff": {
                "type": "object",
                "additionalProperties": False,
                "description": "Reconnection: delays initial, x factor, capped at max, +/- jitter.",
                "properties": {
                    "initial": DURATION,
                    "max": DURATION,
                    "factor": {"type": "number", "minimum": 1},
                    "jitter": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        if not isinstance(self.venue, SimulatedExchange):
            raise ConfigError(f"venue {config['venue']!r} has no feed to cut", ("venue",))
        spec = {**BACKOFF, **config.get("backoff", {})}
        self.initial = parse_duration(spec["initial"])
        self.maximum = parse_duration(spec["max"])
        if self.initial <= 0:
            raise ConfigError("must be longer than 0", ("backoff", "initial"))
        if self.maximum < self.initial:
            raise ConfigError("must not be shorter than backoff.initial", ("backoff", "max"))
        self.factor, self.jitter = float(spec["factor"]), float(spec["jitter"])
        self.attempts = 0
        self.link: Link | None = None

    def arm(self) -> None:
        self.link = self.ctx.link(self.config["venue"])

    def begin(self) -> None:
        assert self.link is not None
        self.ctx.fired(self.type_name, venue=self.config["venue"])
        delays = backoff(self.initial, self.maximum, self.factor, self.jitter, self.ctx.random)
        self.link.cut(delays, self)

    def end(self) -> None:
        assert self.link is not None
        self.link.heal()

    def on_end(self) -> None:
        super().on_end()
        if self.link is not None:
            self.link.stop()

    # ---- what the link tells -------------------------------------------------------------------

    def link_down(self, link: Link) -> None:
        self.ctx.detected(venue=link.venue, why="market-data link closed")

    def link_attempt(self, link: Link, ok: bool) -> None:
        self.attempts += 1

    def link_recovered(self, link: Link) -> None:
        self.ctx.recovered(venue=link.venue, attempts=self.attempts)

    def stats(self) -> dict[str, Any]:
        dropped = self.link.dropped if self.link is not None else 0
        return {"reconnect_attempts": self.attempts, "books_dropped": dropped}


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(FeedDisconnect)
