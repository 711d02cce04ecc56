"""A third-party arbframe plugin: a ``sine`` feed and a ``jsonl_alerts`` alert channel."""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, TextIO

from arbframe.components import AlertChannel, Context, Feed, FeedContext, FeedEvent, RunInfo
from arbframe.errors import ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.model import Alert
from arbframe.schema import DURATION
from arbframe.units import parse_duration

START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z: scenario time of the first book
SEVERITIES = ["P0", "P1", "P2", "P3"]


class SineFeed(Feed):
    """Two venues quote one symbol around a constant mid; the second venue's premium over the
    first is ``amplitude_bps * sin(2 pi t / period)``. One level per side, ``size`` deep and
    ``spread_bps`` wide, on both venues every ``interval``. Deterministic: no seed used."""

    type_name = "sine"
    interface_version = 2
    description = "Two venues, constant mid, the second's premium a sine wave (deterministic)."
    config_schema = {
        "type": "object", "additionalProperties": False,
        "required": ["symbol", "price", "venues"],
        "properties": {
            "symbol": {"type": "string", "minLength": 1},
            "price": {"type": "number", "exclusiveMinimum": 0},  # mid, in the report currency
            "venues": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
            "amplitude_bps": {"type": "number", "minimum": 0, "default": 50},
            "period": {**DURATION, "default": "1m"},
            "interval": {**DURATION, "default": "1s"},
            "spread_bps": {"type": "number", "minimum": 0, "default": 2},
            "size": {"type": "number", "exclusiveMinimum": 0, "default": 10},  # base per level
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: FeedContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.period = parse_duration(config.get("period", "1m"))
        self.interval = parse_duration(config.get("interval", "1s"))
        for key in ("period", "interval"):
            if getattr(self, key) <= 0:  # the DURATION schema allows 0
                raise ConfigError("must be longer than 0", (key,))

    def venues(self) -> list[str]:
        return list(self.config["venues"])

    def symbols(self) -> list[str]:
        return [self.config["symbol"]]

    def events(self) -> Iterator[FeedEvent]:
        cfg, ctx = self.config, self.ctx
        symbol, size = cfg["symbol"], float(cfg.get("size", 10))
        half, amplitude = cfg.get("spread_bps", 2) / 2e4, cfg.get("amplitude_bps", 50)
        # Mid in each venue's own quote currency (fx: units per report-currency unit).
        mids = [(v, cfg["price"] * ctx.fx_rate(ctx.venue_quote(v))) for v in self.venues()]
        t = 0
        while True:  # endless: the run's `duration` stops it
            premium = amplitude * math.sin(2 * math.pi * t / self.period) / 1e4
            for i, (venue, mid) in enumerate(mids):
                m = mid * (1 + premium) if i else mid
                yield (START_NS + t, venue, symbol, ((m * (1 - half), size),),
                       ((m * (1 + half), size),))
            t += self.interval


class JsonlAlerts(AlertChannel):
    """Appends each alert at or above ``min_severity`` to ``path`` as one JSON object."""

    type_name = "jsonl_alerts"
    interface_version = 2
    description = "Alerts as JSON lines in a file."
    config_schema = {
        "type": "object", "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": {"type": "string", "minLength": 1, "format": "path"},  # relative to its file
            "min_severity": {"enum": SEVERITIES, "default": "P3"},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Context) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.rank = SEVERITIES.index(config.get("min_severity", "P3"))
        self.path = ctx.resolve_path(config["path"])
        self.file: TextIO | None = None

    @hookimpl
    def arbframe_on_run_start(self, run: RunInfo) -> None:
        # Opened here, not in __init__: `arbframe validate` builds components without a run.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a", encoding="utf-8")

    @hookimpl
    def arbframe_on_alert(self, run: RunInfo, alert: Alert) -> None:
        if self.file is not None and SEVERITIES.index(alert.severity) <= self.rank:
            row = {"run": run.name, "ts": alert.ts, "severity": alert.severity,
                   "title": alert.title, "detail": alert.detail}
            self.file.write(json.dumps(row) + "\n")

    def close(self) -> None:  # after every run, also a failed one
        if self.file is not None:
            self.file.close()


@hookimpl
def arbframe_register_feeds(register: Register) -> None:
    register(SineFeed)


@hookimpl
def arbframe_register_alerts(register: Register) -> None:
    register(JsonlAlerts)
