"""Engines for the two databases arbframe supports, and what an outage looks like.

Both fail fast: a database that cannot be reached costs a run at most a few seconds, never
a hang (connect timeouts, TCP keepalives and a send timeout on PostgreSQL, a busy timeout on
SQLite). A pooled connection that died in an outage is noticed before use (pre-ping), so a
store or sink works again as soon as the server is back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from arbframe.errors import ConfigError
from arbframe.stores import DATABASE_URL_ENV

CONNECT_TIMEOUT_S = 2
POSTGRES_CONFIG: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "description": "postgresql://user:password@host:port/database (default: "
            "$ARBFRAME_DATABASE_URL).",
        }
    },
}
"""The config schema of the `postgres` store and sink: a URL, else the environment's."""
"""How long opening a connection may take (PostgreSQL), or waiting for SQLite's write lock."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached (refused, timed out, connection lost, file locked)."""


def postgres_url(url: str) -> URL:
    """``url`` with the psycopg 3 driver: ``postgresql://`` and ``postgres://`` work too."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed


def postgres_url_from(config: dict[str, Any]) -> URL:
    """The PostgreSQL URL of a block's ``url``, else ``$ARBFRAME_DATABASE_URL``."""
    url = config.get("url") or os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise ConfigError(f"needs a url: set url, or the environment variable {DATABASE_URL_ENV}")
    try:
        return postgres_url(url)
    except (ArgumentError, ValueError) as err:
        key = ("url",) if config.get("url") else ()
        raise ConfigError(f"{err}", key) from None


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite", database=str(path))


def describe(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def make_engine(url: URL, *, synchronous: str = "NORMAL") -> Engine:
    """An engine for ``url``; ``synchronous``: SQLite's ``NORMAL`` or ``FULL`` (see
    ``_sqlite_settings``)."""
    common: dict[str, Any] = {
        "pool_pre_ping": True,
        "json_serializer": lambda doc: json.dumps(doc, default=str),
    }
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": CONNECT_TIMEOUT_S}, **common)
        _sqlite_settings(engine, synchronous)
        return engine
    return create_engine(
        url,
        pool_size=2,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S,
            # A peer that vanished without closing (a cut cable, not a refused port) is
            # noticed within seconds instead of the kernel's default two hours.
            "keepalives": 1,
            "keepalives_idle": 2,
            "keepalives_interval": 1,
            "keepalives_count": 2,
            "tcp_user_timeout": 3000,  # ms: unacknowledged data gives up after 3 s
        },
        **common,
    )


def _sqlite_settings(engine: Engine, synchronous: str) -> None:
    """WAL: readers never block the writer, so `arbframe sessions` can read a live run's file.

    ``synchronous=NORMAL`` (the default) writes every commit to the WAL file before it
    returns, so a killed process loses nothing; only a power cut or an OS crash may lose
    the last commits, because the WAL is fsynced at checkpoints rather than at each commit.
    ``FULL`` fsyncs every commit and survives those too, at about 4 ms per commit here
    against 0.07 ms: a save runs on the kernel's thread (before orders are sent), and a
    resume after a power cut reconciles with the venues by client id anyway.

    The driver's own transaction handling is switched off so that SQLAlchemy's BEGIN starts
    every transaction, DDL included, as BEGIN IMMEDIATE: two processes migrating or writing
    one file queue on the lock (within the busy timeout) instead of failing half-way."""
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def unavailable_as(error: type[Exception], what: str) -> Iterator[None]:
    """Raise ``error`` (e.g. StoreUnavailable) for a database that cannot be reached.

    Operational errors are the driver saying the server or file is not there (refused,
    timed out, connection lost, locked); anything else (a bad query) stays a bug."""
    try:
        yield
    except exc.OperationalError as err:
        raise error(f"{what}: {_first_line(err.orig or err)}") from err
    except exc.DatabaseError as err:
        if "not a database" in str(err) or "malformed" in str(err):  # a damaged file
            raise error(f"{what}: the file is damaged: {_first_line(err.orig or err)}") from err
        if not isinstance(err, exc.DBAPIError) or not err.connection_invalidated:
            raise
        raise error(f"{what}: connection lost: {_first_line(err.orig or err)}") from err
    except exc.DBAPIError as err:
        if err.connection_invalidated:  # the connection died under the statement
            raise error(f"{what}: connection lost: {_first_line(err.orig or err)}") from err
        raise


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
