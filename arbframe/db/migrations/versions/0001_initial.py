"""The state store's and the sinks' tables.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("scenario", sa.String(length=200), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("report_currency", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=True),
        sa.Column("net_pnl", sa.Text(), nullable=True),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_session_started_at", ["session", "started_at"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("session", name=op.f("pk_sessions")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("severity", sa.String(length=2), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_alerts_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_run_id_ts", ["run_id", "ts"], unique=False)
        batch_op.create_index("ix_alerts_session_ts", ["session", "ts"], unique=False)

    op.create_table(
        "faults",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_faults_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faults")),
    )
    with op.batch_alter_table("faults", schema=None) as batch_op:
        batch_op.create_index("ix_faults_run_id_seq", ["run_id", "seq"], unique=False)
        batch_op.create_index("ix_faults_session_seq", ["session", "seq"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("fill_id", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("exchange_id", sa.String(length=200), nullable=False),
        sa.Column("trade_id", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("venue", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("base", sa.String(length=40), nullable=False),
        sa.Column("quote", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("price", sa.Text(), nullable=False),
        sa.Column("amount", sa.Text(), nullable=False),
        sa.Column("fee", sa.Text(), nullable=False),
        sa.Column("fee_asset", sa.String(length=40), nullable=False),
        sa.Column("fee_price", sa.Text(), nullable=False),
        sa.Column("liquidity", sa.String(length=10), nullable=False),
        sa.Column("slippage", sa.Text(), nullable=False),
        sa.Column("fx", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_fills_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index("ix_fills_run_id_ts", ["run_id", "ts"], unique=False)
        batch_op.create_index("ix_fills_session_ts", ["session", "ts"], unique=False)
        batch_op.create_index("ix_fills_symbol_ts", ["symbol", "ts"], unique=False)

    op.create_table(
        "guard_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("guard", sa.String(length=200), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("scale", sa.Double(), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name=op.f("fk_guard_decisions_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guard_decisions")),
    )
    with op.batch_alter_table("guard_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_guard_decisions_run_id_ts", ["run_id", "ts"], unique=False)
        batch_op.create_index("ix_guard_decisions_session_ts", ["session", "ts"], unique=False)
        batch_op.create_index("ix_guard_decisions_symbol_ts", ["symbol", "ts"], unique=False)

    op.create_table(
        "order_updates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("exchange_id", sa.String(length=200), nullable=True),
        sa.Column("trade_id", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("venue", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("previous", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("filled", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name=op.f("fk_order_updates_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_updates")),
    )
    with op.batch_alter_table("order_updates", schema=None) as batch_op:
        batch_op.create_index("ix_order_updates_client_id", ["client_id"], unique=False)
        batch_op.create_index("ix_order_updates_run_id_ts", ["run_id", "ts"], unique=False)
        batch_op.create_index("ix_order_updates_session_ts", ["session", "ts"], unique=False)
        batch_op.create_index("ix_order_updates_symbol_ts", ["symbol", "ts"], unique=False)

    op.create_table(
        "snapshots",
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", sa.Double(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column(
            "manifest",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.session"],
            name=op.f("fk_snapshots_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session", "seq", name=op.f("pk_snapshots")),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_snapshots_session_taken_at", ["session", "taken_at"], unique=False
        )

    op.create_table(
        "trades",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=200), nullable=False),
        sa.Column("trade_id", sa.String(length=200), nullable=False),
        sa.Column("strategy", sa.String(length=200), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("exit_reason", sa.String(length=100), nullable=False),
        sa.Column("notional", sa.Text(), nullable=False),
        sa.Column("gross_pnl", sa.Text(), nullable=False),
        sa.Column("fees", sa.Text(), nullable=False),
        sa.Column("slippage", sa.Text(), nullable=False),
        sa.Column("net_pnl", sa.Text(), nullable=False),
        sa.Column("r", sa.Text(), nullable=False),
        sa.Column("entry_spread_bps", sa.Double(), nullable=True),
        sa.Column("exit_spread_bps", sa.Double(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_trades_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
    )
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.create_index("ix_trades_run_id_closed_at", ["run_id", "closed_at"], unique=False)
        batch_op.create_index("ix_trades_session_closed_at", ["session", "closed_at"], unique=False)
        batch_op.create_index("ix_trades_symbol_closed_at", ["symbol", "closed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_index("ix_trades_symbol_closed_at")
        batch_op.drop_index("ix_trades_session_closed_at")
        batch_op.drop_index("ix_trades_run_id_closed_at")

    op.drop_table("trades")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshots_session_taken_at")

    op.drop_table("snapshots")
    with op.batch_alter_table("order_updates", schema=None) as batch_op:
        batch_op.drop_index("ix_order_updates_symbol_ts")
        batch_op.drop_index("ix_order_updates_session_ts")
        batch_op.drop_index("ix_order_updates_run_id_ts")
        batch_op.drop_index("ix_order_updates_client_id")

    op.drop_table("order_updates")
    with op.batch_alter_table("guard_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_guard_decisions_symbol_ts")
        batch_op.drop_index("ix_guard_decisions_session_ts")
        batch_op.drop_index("ix_guard_decisions_run_id_ts")

    op.drop_table("guard_decisions")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index("ix_fills_symbol_ts")
        batch_op.drop_index("ix_fills_session_ts")
        batch_op.drop_index("ix_fills_run_id_ts")

    op.drop_table("fills")
    with op.batch_alter_table("faults", schema=None) as batch_op:
        batch_op.drop_index("ix_faults_session_seq")
        batch_op.drop_index("ix_faults_run_id_seq")

    op.drop_table("faults")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_session_ts")
        batch_op.drop_index("ix_alerts_run_id_ts")

    op.drop_table("alerts")
    op.drop_table("sessions")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_session_started_at")

    op.drop_table("runs")
