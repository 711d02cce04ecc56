"""``upgrade(engine)``: bring a database to the newest schema with the shipped migrations.

Alembic is configured in code (no alembic.ini at run time): the scripts live beside this
module and travel in the package. The upgrade runs in one transaction, serialised between
processes (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), so a run and an
`arbframe sessions` opening a fresh database at once do not both create the tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from arbframe.db.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x61726266  # "arbf": the advisory lock that serialises upgrades on PostgreSQL


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision the package ships."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class SchemaConflict(Exception):
    """The database holds tables of ours that no migration made (an older arbframe's)."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        if MigrationContext.configure(connection).get_current_revision() is None:
            clashing = sorted(set(metadata.tables) & set(inspect(connection).get_table_names()))
            if clashing:  # e.g. a sink file written before migrations existed
                raise SchemaConflict(
                    f"holds tables no arbframe migration created ({', '.join(clashing)}): "
                    "an older arbframe's; move it aside or use another database"
                )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
