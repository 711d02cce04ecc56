"""`log`: writes alerts at or above a severity to stderr or a file, one line each."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from arbframe.components import AlertChannel
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import Alert
from arbframe.paths import output_file_problem

SEVERITIES = ["P0", "P1", "P2", "P3"]


class LogAlerts(AlertChannel):
    type_name = "log"
    interface_version = 2
    description = "Alerts as lines on stderr or in a file."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_severity": {"enum": SEVERITIES},
            "path": {
                "type": "string",
                "format": "path",
                "description": "File to append to (default stderr).",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.max_rank = SEVERITIES.index(config.get("min_severity", "P1"))
        problem = "path" in config and output_file_problem(ctx.resolve_path(config["path"]))
        if problem:  # found now, not after the run
            raise ConfigError(problem, ("path",))
        self.stream: TextIO = sys.stderr
        self.sent = 0

    @hookimpl
    def arbframe_on_run_start(self, run: Any) -> None:
        if "path" in self.config:  # opened when the run starts: validating writes nothing
            self.stream = self.ctx.resolve_path(self.config["path"]).open("a")

    @hookimpl
    def arbframe_on_alert(self, run: Any, alert: Alert) -> None:
        if SEVERITIES.index(alert.severity) <= self.max_rank:
            self.sent += 1
            self.stream.write(f"[{alert.severity}] t={alert.ts} {alert.title}: {alert.detail}\n")

    def close(self) -> None:
        if self.stream is not sys.stderr:
            self.stream.close()


@hookimpl
def arbframe_register_alerts(register: Any) -> None:
    register(LogAlerts)
