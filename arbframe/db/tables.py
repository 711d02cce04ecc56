"""Every table arbframe keeps in SQL, on SQLite and PostgreSQL alike.

The Alembic migrations in ``migrations/versions`` create exactly these; a test compares
them. Money is exact decimal text (never a float column), times are integer nanoseconds of
scenario time (``ts``) or Unix seconds of wall time (``*_at`` floats), and every sink row
carries the session and the run it came from.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

# Named constraints: Alembic can then alter them on both databases (SQLite batch mode).
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JSONDoc = JSON().with_variant(JSONB(), "postgresql")  # JSONB: queryable by tools
Money = Text  # exact decimal text, e.g. "0.00012345"

# ---- state store --------------------------------------------------------------------------

sessions = Table(
    "sessions",
    metadata,
    Column("session", String(200), primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# The primary key (session, seq) is the "by session, newest seq first" index: a B-tree
# serves a descending scan, so a second index would only slow saves down.
snapshots = Table(
    "snapshots",
    metadata,
    Column(
        "session",
        String(200),
        ForeignKey("sessions.session", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("taken_at", Double, nullable=False),
    Column("reason", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("manifest", JSONDoc, nullable=False),
    Index("ix_snapshots_session_taken_at", "session", "taken_at"),
)

# ---- sinks ----------------------------------------------------------------------------------

runs = Table(
    "runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("session", String(200), nullable=False),
    Column("scenario", String(200), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("mode", String(20), nullable=False),
    Column("report_currency", String(20), nullable=False),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double),
    Column("passed", Boolean),
    Column("complete", Boolean),
    Column("net_pnl", Money),
    Column("summary", JSONDoc),
    Index("ix_runs_session_started_at", "session", "started_at"),
)


def _event_table(name: str, *columns: Column, time: str = "ts", symbol: bool = True) -> Table:
    """A sink table: its own id, the run and session it belongs to, ``columns``; indexed by
    run and time, session and time, and symbol and time."""
    indexes = [
        Index(f"ix_{name}_run_id_{time}", "run_id", time),
        Index(f"ix_{name}_session_{time}", "session", time),
    ]
    if symbol:
        indexes.append(Index(f"ix_{name}_symbol_{time}", "symbol", time))
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", Integer, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        Column("session", String(200), nullable=False),
        *columns,
        *indexes,
    )


fills = _event_table(
    "fills",
    Column("ts", BigInteger, nullable=False),
    Column("fill_id", String(200), nullable=False),
    Column("client_id", String(200), nullable=False),
    Column("exchange_id", String(200), nullable=False),
    Column("trade_id", String(200)),
    Column("role", String(20), nullable=False),
    Column("venue", String(100), nullable=False),
    Column("symbol", String(100), nullable=False),
    Column("base", String(40), nullable=False),
    Column("quote", String(40), nullable=False),
    Column("side", String(4), nullable=False),
    Column("price", Money, nullable=False),
    Column("amount", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("fee_asset", String(40), nullable=False),
    Column("fee_price", Money, nullable=False),
    Column("liquidity", String(10), nullable=False),
    Column("slippage", Money, nullable=False),
    Column("fx", Money, nullable=False),
)

order_updates = _event_table(
    "order_updates",
    Column("ts", BigInteger, nullable=False),
    Column("client_id", String(200), nullable=False),
    Column("exchange_id", String(200)),
    Column("trade_id", String(200)),
    Column("role", String(20), nullable=False),
    Column("venue", String(100), nullable=False),
    Column("symbol", String(100), nullable=False),
    Column("side", String(4), nullable=False),
    Column("event", String(40), nullable=False),
    Column("previous", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("filled", Money, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_order_updates_client_id", "client_id"),
)

trades = _event_table(
    "trades",
    Column("trade_id", String(200), nullable=False),
    Column("strategy", String(200), nullable=False),
    Column("symbol", String(100), nullable=False),
    Column("route", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger),
    Column("exit_reason", String(100), nullable=False),
    Column("notional", Money, nullable=False),
    Column("gross_pnl", Money, nullable=False),
    Column("fees", Money, nullable=False),
    Column("slippage", Money, nullable=False),
    Column("net_pnl", Money, nullable=False),
    Column("r", Money, nullable=False),
    Column("entry_spread_bps", Double),
    Column("exit_spread_bps", Double),
    Column("data", JSONDoc, nullable=False),  # legs, residue, fill ids: Trade.as_dict()
    time="closed_at",
)

guard_decisions = _event_table(
    "guard_decisions",
    Column("ts", BigInteger, nullable=False),
    Column("guard", String(200), nullable=False),
    Column("symbol", String(100), nullable=False),
    Column("action", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("scale", Double, nullable=False),
    Column("until", BigInteger),
)

alerts = _event_table(
    "alerts",
    Column("ts", BigInteger, nullable=False),
    Column("severity", String(2), nullable=False),
    Column("title", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("rule", String(40), nullable=False, server_default=""),  # the alerting rule, if on
    symbol=False,
)

faults = _event_table(
    "faults",
    Column("seq", Integer, nullable=False),  # the fault hook carries no time: its order
    Column("name", String(100), nullable=False),
    Column("detail", JSONDoc, nullable=False),
    time="seq",
    symbol=False,
)
