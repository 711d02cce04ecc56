"""`sqlite` and `postgres`: snapshots in SQL through SQLAlchemy 2.

Both use the tables of :mod:`arbframe.db.tables` and the same Alembic history, so one schema
path is tested on both. `sqlite` is the embedded default (a file, no server); `postgres`
keeps snapshots where several hosts and tools can read them. The schema is created or
upgraded by the first use; an outage raises StoreUnavailable, and the store works again
as soon as the database is back (the first use after an outage also retries a migration
that could not run).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL

from arbframe.components import SnapshotRecord, StateStore, StoreUnavailable
from arbframe.db.engine import (
    POSTGRES_CONFIG,
    describe,
    make_engine,
    postgres_url_from,
    sqlite_url,
    unavailable_as,
)
from arbframe.db.migrate import SchemaConflict, upgrade
from arbframe.db.tables import sessions, snapshots
from arbframe.errors import ArbframeError, ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.paths import output_file_problem
from arbframe.stores import STATE_DIR_ENV
from arbframe.tcpproxy import TcpProxy

METADATA_COLUMNS = [c for c in snapshots.c if c.name != "payload"]


def default_sqlite_path() -> Path:
    """``$ARBFRAME_STATE_DIR/state.db``, else ``.arbframe/state.db``: relative to the current
    directory (where an operator runs ``arbframe``), not to a scenario file."""
    return (Path(os.environ.get(STATE_DIR_ENV) or ".arbframe") / "state.db").absolute()


class SqlStore(StateStore):
    """The queries both databases share; a subclass says where its database is."""

    durable = True
    interface_version = 2

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.url = self.database_url(config)  # construction checks, no connection
        self.engine: Engine | None = None
        self.migrated = False

    def database_url(self, config: dict[str, Any]) -> URL:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.type_name} {describe(self.url)})"

    # ---- connection -------------------------------------------------------------------------

    def open(self) -> None:
        with self._connection():
            pass

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection in a transaction (committed on success), the schema at head first."""
        with unavailable_as(StoreUnavailable, self.describe()):
            if self.engine is None:
                self.engine = self.create_engine()
            if not self.migrated:
                try:
                    upgrade(self.engine)
                except SchemaConflict as err:
                    raise ArbframeError(f"{self.describe()}: {err}") from None
                self.migrated = True
            with self.engine.begin() as connection:
                yield connection

    def create_engine(self) -> Engine:
        return make_engine(self.url)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    # ---- the contract -----------------------------------------------------------------------

    def save(self, record: SnapshotRecord) -> None:
        now = time.time()
        with self._connection() as db:
            _upsert(db, sessions, {"session": record.session, "created_at": now, "updated_at": now})
            _upsert(
                db,
                snapshots,
                {
                    "session": record.session,
                    "seq": record.seq,
                    "ts": record.ts,
                    "taken_at": record.taken_at,
                    "reason": record.reason,
                    "version": record.version,
                    "checksum": record.checksum,
                    "payload": record.payload,
                    "manifest": record.manifest,
                },
            )

    def load(self, session: str, seq: int) -> SnapshotRecord | None:
        query = select(snapshots).where(snapshots.c.session == session, snapshots.c.seq == seq)
        with self._connection() as db:
            row = db.execute(query).mappings().first()
        return None if row is None else _record(row, bytes(row["payload"]))

    def snapshots(self, session: str) -> list[SnapshotRecord]:
        query = (
            select(*METADATA_COLUMNS)
            .where(snapshots.c.session == session)
            .order_by(snapshots.c.seq.desc())
        )
        with self._connection() as db:
            return [_record(row, b"") for row in db.execute(query).mappings()]

    def sessions(self) -> list[dict[str, Any]]:
        counts = (
            select(
                snapshots.c.session,
                func.count().label("snapshots"),
                func.max(snapshots.c.seq).label("last_seq"),
            )
            .group_by(snapshots.c.session)
            .subquery()
        )
        last = snapshots.alias("last")
        query = (
            select(counts, last.c.ts.label("last_ts"), last.c.taken_at.label("last_taken_at"))
            .join(last, (last.c.session == counts.c.session) & (last.c.seq == counts.c.last_seq))
            .order_by(counts.c.session)
        )
        with self._connection() as db:
            return [dict(row) for row in db.execute(query).mappings()]

    def reset(self, session: str) -> int:
        with self._connection() as db:
            gone = db.execute(delete(snapshots).where(snapshots.c.session == session)).rowcount
            db.execute(delete(sessions).where(sessions.c.session == session))
        return gone

    def prune(self, session: str, keep: int) -> None:
        oldest_kept = (
            select(snapshots.c.seq)
            .where(snapshots.c.session == session)
            .order_by(snapshots.c.seq.desc())
            .offset(keep - 1)
            .limit(1)
        )
        with self._connection() as db:
            seq = db.execute(oldest_kept).scalar()
            if seq is not None:
                db.execute(
                    delete(snapshots).where(snapshots.c.session == session, snapshots.c.seq < seq)
                )


def _upsert(db: Connection, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row``, or update every column but the key and ``created_at``."""
    insert = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
    keys = [c.name for c in table.primary_key]
    statement = insert(table).values(row)
    changed = {k: statement.excluded[k] for k in row if k not in keys and k != "created_at"}
    db.execute(statement.on_conflict_do_update(index_elements=keys, set_=changed))


def _record(row: Any, payload: bytes) -> SnapshotRecord:
    return SnapshotRecord(
        session=row["session"],
        seq=row["seq"],
        ts=row["ts"],
        taken_at=row["taken_at"],
        reason=row["reason"],
        version=row["version"],
        checksum=row["checksum"],
        payload=payload,
        manifest=row["manifest"],
    )


class SqliteStore(SqlStore):
    type_name = "sqlite"
    description = "Snapshots in an embedded SQLite file (the default; no server)."
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": {
                "type": "string",
                "format": "path",
                "description": "Database file (default: $ARBFRAME_STATE_DIR/state.db, else "
                ".arbframe/state.db in the current directory).",
            },
            "synchronous": {
                "enum": ["normal", "full"],
                "default": "normal",
                "description": "normal: a save survives a killed process; full: also a power "
                "cut or OS crash (an fsync per save, milliseconds).",
            },
        },
    }

    def database_url(self, config: dict[str, Any]) -> URL:
        given = config.get("path")
        self.path = self.ctx.resolve_path(given) if given else default_sqlite_path()
        problem = output_file_problem(self.path)
        if problem:  # found at wiring, not at the first snapshot
            raise ConfigError(problem, ("path",) if given else ())
        return sqlite_url(self.path)

    def create_engine(self) -> Engine:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return make_engine(self.url, synchronous=self.config.get("synchronous", "normal").upper())

    def describe(self) -> str:
        return f"{self.name} (sqlite {self.path})"


class PostgresStore(SqlStore):
    type_name = "postgres"
    description = "Snapshots in PostgreSQL (durable, shared; schema by Alembic migrations)."
    config_schema: ClassVar[dict[str, Any]] = POSTGRES_CONFIG

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.proxy: TcpProxy | None = None

    def database_url(self, config: dict[str, Any]) -> URL:
        return postgres_url_from(config)

    def describe(self) -> str:
        via = f" through {self.proxy.host}:{self.proxy.port}" if self.proxy else ""
        return f"{self.name} (postgres {describe(self.url)}{via})"

    def route_through_proxy(self) -> TcpProxy | None:
        """Reconnect through a local TcpProxy in front of the server (for the `state_outage`
        fault); None for a unix socket, or TLS that checks the host name (the certificate
        names the server, not the proxy)."""
        if self.proxy is None:
            if not self.url.host or self.url.query.get("sslmode") == "verify-full":
                return None
            self.proxy = TcpProxy(self.url.host, self.url.port or 5432)
            super().close()  # the next use builds an engine that connects through the proxy
        return self.proxy

    def create_engine(self) -> Engine:
        if self.proxy is None:
            return make_engine(self.url)
        # URL.set keeps the password (and every query option) as they were
        return make_engine(self.url.set(host=self.proxy.host, port=self.proxy.port))

    def close(self) -> None:
        super().close()
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None


@hookimpl
def arbframe_register_state_stores(register: Register) -> None:
    register(SqliteStore)
    register(PostgresStore)
