"""Alembic's environment: migrations run on the connection ``arbframe.db.migrate`` hands
over (never a URL of their own), against the package's table metadata."""

from __future__ import annotations

from alembic import context

from arbframe.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # ALTERs on SQLite rebuild the table, as Alembic's batch mode does
)
with context.begin_transaction():
    context.run_migrations()
