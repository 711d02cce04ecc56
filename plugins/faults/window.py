"""What the outage faults share: a venue, and a window from `at` for `duration` after the
run's first feed event (not a plugin module: the faults built on it register themselves)."""

from __future__ import annotations

from typing import Any

from arbframe.components import Fault
from arbframe.errors import ConfigError
from arbframe.schema import DURATION
from arbframe.units import parse_duration

NEVER = 1 << 63
WINDOW: dict[str, Any] = {
    "venue": {"type": "string", "description": "The venue it acts on."},
    "at": {**DURATION, "description": "When it starts, after the run's first feed event."},
    "duration": {**DURATION, "description": "How long it lasts (> 0)."},
}
REQUIRED = ["venue", "at", "duration"]


class WindowFault(Fault):
    interface_version = 2
    needs = ""  # the venue attribute (fault hook) it acts through

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.at = parse_duration(config["at"])
        self.duration = parse_duration(config["duration"])
        if self.duration <= 0:
            raise ConfigError("must be longer than 0", ("duration",))
        venue = ctx.venues.get(config["venue"])
        if venue is None:
            known = ", ".join(ctx.venues)
            raise ConfigError(f"unknown venue {config['venue']!r} (venues: {known})", ("venue",))
        if self.needs and not hasattr(venue, self.needs):
            raise ConfigError(
                f"venue {config['venue']!r} ({venue.type_name}) does not support {self.type_name}",
                ("venue",),
            )
        self.venue = venue
        self.begins = self.ends = NEVER  # known when the run starts
        self.over = self.opened = False

    def arm(self) -> None:
        pass

    def on_start(self, ts: int) -> None:
        self.begins = ts + self.at
        self.ends = self.begins + self.duration
        self.ctx.clock.call_at(self.begins, self._open)
        self.ctx.clock.call_at(self.ends, self._close)

    def on_end(self) -> None:
        self.over = True  # a window after the data never opens (the wind-down runs the clock)

    def _open(self) -> None:
        if not self.over:
            self.opened = True
            self.begin()

    def _close(self) -> None:
        if self.opened:
            self.end()

    def active(self, now: int) -> bool:
        return self.opened and self.begins <= now < self.ends

    def begin(self) -> None:
        """The window opens (scheduled)."""

    def end(self) -> None:
        """The window closes (scheduled)."""
