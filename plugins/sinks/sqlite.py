"""`sqlite`: an embedded store of fills, closed trades and the run summary (no server).

Uses the standard library's sqlite3: one file, one transaction per run, rows as JSON
text plus the columns one filters on.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from arbframe.components import Sink
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import Fill, Trade
from arbframe.paths import output_file_problem

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id INTEGER PRIMARY KEY, scenario TEXT, seed INTEGER,
    passed INTEGER, summary TEXT);
CREATE TABLE IF NOT EXISTS fills (run_id INTEGER, client_id TEXT, trade_id TEXT, venue TEXT,
    symbol TEXT, side TEXT, price TEXT, amount TEXT, fee TEXT, ts INTEGER, data TEXT);
CREATE TABLE IF NOT EXISTS trades (run_id INTEGER, trade_id TEXT, symbol TEXT, net_pnl TEXT,
    exit_reason TEXT, data TEXT);
"""


class SqliteSink(Sink):
    type_name = "sqlite"
    interface_version = 2
    description = "Fills, trades and the summary in an embedded SQLite file."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": {"type": "string", "format": "path", "description": "Database file."}
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.db_path = ctx.resolve_path(config["path"])
        problem = output_file_problem(self.db_path)
        if problem:  # found now, not after the run
            raise ConfigError(problem, ("path",))
        self.db: sqlite3.Connection | None = None

    @hookimpl
    def arbframe_on_run_start(self, run: Any) -> None:
        # Opened here, not at construction: `arbframe validate` builds sinks without running.
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.db_path)
        self.db.executescript(SCHEMA)
        cur = self.db.execute(
            "INSERT INTO runs (scenario, seed) VALUES (?, ?)", (run.name, run.seed)
        )
        self.run_id = cur.lastrowid

    @hookimpl
    def arbframe_on_fill(self, run: Any, fill: Fill) -> None:
        d = fill.as_dict()
        assert self.db is not None
        self.db.execute(
            "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                self.run_id,
                fill.client_id,
                fill.trade_id,
                fill.venue,
                fill.symbol,
                fill.side,
                d["price"],
                d["amount"],
                d["fee"],
                fill.ts,
                json.dumps(d),
            ),
        )

    @hookimpl
    def arbframe_on_trade_closed(self, run: Any, trade: Trade) -> None:
        d = trade.as_dict()
        assert self.db is not None
        self.db.execute(
            "INSERT INTO trades VALUES (?,?,?,?,?,?)",
            (
                self.run_id,
                trade.trade_id,
                trade.symbol,
                d["net_pnl"],
                trade.exit_reason,
                json.dumps(d),
            ),
        )

    @hookimpl
    def arbframe_on_run_end(self, run: Any, summary: dict[str, Any]) -> None:
        assert self.db is not None
        self.db.execute(
            "UPDATE runs SET passed = ?, summary = ? WHERE run_id = ?",
            (int(summary["passed"]), json.dumps(summary, default=str), self.run_id),
        )

    def close(self) -> None:
        if self.db is not None:
            self.db.commit()
            self.db.close()


@hookimpl
def arbframe_register_sinks(register: Any) -> None:
    register(SqliteSink)
