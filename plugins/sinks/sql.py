"""`sqlite` and `postgres` sinks: the run's record in SQL, through SQLAlchemy 2.

Fills, order updates, closed trades, guard decisions, alerts, faults and a row per run with
its summary, in the tables of :mod:`arbframe.db.tables` (the state stores' schema and
migrations: one Alembic history). Money is exact decimal text; every row names its session
and ``run_id``. Rows are buffered and written in one transaction at least once a second of
wall time and when the run ends, so a long run's record is readable while it runs. A
database that goes away mid-run costs no trading: rows wait in memory and are written
once it is back (or counted as lost on stderr when the run ends first).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, insert, update
from sqlalchemy.engine import URL

from arbframe.components import RunInfo, Sink
from arbframe.db import tables
from arbframe.db.engine import (
    POSTGRES_CONFIG,
    DatabaseUnavailable,
    describe,
    make_engine,
    postgres_url_from,
    sqlite_url,
    unavailable_as,
)
from arbframe.db.migrate import SchemaConflict, upgrade
from arbframe.errors import ArbframeError, ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.model import Alert, Fill, GuardDecision, OrderUpdate, Trade, money
from arbframe.paths import output_file_problem

FLUSH_EVERY_S = 1.0
RETRY_EVERY_S = 5.0  # after a failed write: do not knock on a dead server at every event


class SqlSink(Sink):
    """What both databases share; a subclass says where its database is."""

    interface_version = 2

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.url = self.database_url(config)
        self.engine: Engine | None = None
        self.run_id: int | None = None
        self.session = ""
        self.pending: dict[Table, list[dict[str, Any]]] = {}
        self.next_write = 0.0
        self.faults = 0
        self.ending: Any = None  # the runs row's final update, until written

    def database_url(self, config: dict[str, Any]) -> URL:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.type_name} sink, {describe(self.url)})"

    def create_engine(self) -> Engine:
        return make_engine(self.url)

    # ---- writing ------------------------------------------------------------------------------

    @hookimpl
    def arbframe_on_run_start(self, run: RunInfo) -> None:
        # Opened here, not at construction: `arbframe validate` builds sinks without running.
        # A database that cannot be reached now stops the run before it trades.
        self.session = run.session
        try:
            with unavailable_as(DatabaseUnavailable, self.describe()):
                self.engine = self.create_engine()
                upgrade(self.engine)
                with self.engine.begin() as db:
                    row = {
                        "session": run.session,
                        "scenario": run.name,
                        "seed": run.seed,
                        "mode": run.mode,
                        "report_currency": run.report_currency,
                        "started_at": time.time(),
                    }
                    self.run_id = db.execute(insert(tables.runs).values(row)).inserted_primary_key[
                        0
                    ]
        except (DatabaseUnavailable, SchemaConflict) as err:
            raise ArbframeError(f"{self.describe()}: {err}") from None
        self.next_write = time.monotonic() + FLUSH_EVERY_S

    def _add(self, table: Table, row: dict[str, Any]) -> None:
        self.pending.setdefault(table, []).append(
            {"run_id": self.run_id, "session": self.session, **row}
        )
        if time.monotonic() >= self.next_write:
            self.flush()

    def flush(self, *, final: Callable[[Any], None] | None = None) -> bool:
        """Write every pending row (and ``final(db)``) in one transaction; False when the
        database cannot be reached (the rows stay pending)."""
        assert self.engine is not None
        try:
            with unavailable_as(DatabaseUnavailable, self.describe()), self.engine.begin() as db:
                for table, rows in self.pending.items():
                    if rows:
                        db.execute(insert(table), rows)
                if final is not None:
                    final(db)
        except DatabaseUnavailable:
            self.next_write = time.monotonic() + RETRY_EVERY_S
            return False
        self.pending.clear()
        self.next_write = time.monotonic() + FLUSH_EVERY_S
        return True

    @hookimpl
    def arbframe_on_fill(self, run: RunInfo, fill: Fill) -> None:
        record = fill.as_dict()
        self._add(tables.fills, {c: record[c] for c in FILL_COLUMNS})

    @hookimpl
    def arbframe_on_order_update(self, run: RunInfo, update: OrderUpdate) -> None:
        self._add(
            tables.order_updates,
            {
                "ts": update.ts,
                "client_id": update.client_id,
                "exchange_id": update.exchange_id,
                "trade_id": update.trade_id,
                "role": update.role,
                "venue": update.venue,
                "symbol": update.symbol,
                "side": update.side,
                "event": update.event,
                "previous": update.previous.value,
                "state": update.state.value,
                "final": update.state.final,
                "filled": money(update.filled),
                "reason": update.reason,
            },
        )

    @hookimpl
    def arbframe_on_trade_closed(self, run: RunInfo, trade: Trade) -> None:
        record = trade.as_dict()
        self._add(tables.trades, {**{c: record[c] for c in TRADE_COLUMNS}, "data": record})

    @hookimpl
    def arbframe_on_guard_decision(self, run: RunInfo, decision: GuardDecision) -> None:
        self._add(
            tables.guard_decisions,
            {
                "ts": decision.ts,
                "guard": decision.guard,
                "symbol": decision.symbol,
                "action": decision.action.value,
                "reason": decision.reason,
                "scale": decision.scale,
                "until": decision.until,
            },
        )

    @hookimpl
    def arbframe_on_alert(self, run: RunInfo, alert: Alert) -> None:
        self._add(
            tables.alerts,
            {
                "ts": alert.ts,
                "severity": alert.severity,
                "title": alert.title,
                "detail": alert.detail,
                "rule": alert.rule,
            },
        )

    @hookimpl
    def arbframe_on_fault(self, run: RunInfo, name: str, detail: dict[str, Any]) -> None:
        self.faults += 1
        self._add(tables.faults, {"seq": self.faults, "name": name, "detail": detail})

    @hookimpl
    def arbframe_on_run_end(self, run: RunInfo, summary: dict[str, Any]) -> None:
        values = {
            "ended_at": time.time(),
            "passed": bool(summary.get("passed")),
            "complete": bool(summary.get("complete", True)),
            "net_pnl": summary.get("portfolio", {}).get("pnl"),  # decimal text already
            "summary": summary,
        }
        self.ending = update(tables.runs).where(tables.runs.c.run_id == self.run_id).values(values)
        self._write_all()

    def _write_all(self) -> bool:
        ending = self.ending
        written = self.flush(final=None if ending is None else lambda db: db.execute(ending))
        if written:
            self.ending = None
        return written

    def close(self) -> None:
        if self.engine is None:
            return
        if (self.pending or self.ending is not None) and not self._write_all():
            lost = sum(len(rows) for rows in self.pending.values())
            print(
                f"warning: {self.describe()}: database unreachable, {lost} rows and the run "
                "summary not written",
                file=sys.stderr,
            )
        self.engine.dispose()
        self.engine = None


FILL_COLUMNS = [c.name for c in tables.fills.c if c.name not in ("id", "run_id", "session")]
TRADE_COLUMNS = [
    c.name for c in tables.trades.c if c.name not in ("id", "run_id", "session", "data")
]


class SqliteSink(SqlSink):
    type_name = "sqlite"
    description = (
        "The run's record (fills, orders, trades, guards, alerts, faults, summary) in SQLite."
    )
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": {"type": "string", "format": "path", "description": "Database file."}
        },
    }

    def database_url(self, config: dict[str, Any]) -> URL:
        self.path = self.ctx.resolve_path(config["path"])
        problem = output_file_problem(self.path)
        if problem:  # found now, not after the run
            raise ConfigError(problem, ("path",))
        return sqlite_url(self.path)

    def create_engine(self) -> Engine:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return super().create_engine()


class PostgresSink(SqlSink):
    type_name = "postgres"
    description = (
        "The run's record (fills, orders, trades, guards, alerts, faults, summary) in PostgreSQL."
    )
    config_schema: ClassVar[dict[str, Any]] = POSTGRES_CONFIG

    def database_url(self, config: dict[str, Any]) -> URL:
        return postgres_url_from(config)


@hookimpl
def arbframe_register_sinks(register: Register) -> None:
    register(SqliteSink)
    register(PostgresSink)
