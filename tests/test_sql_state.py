"""The SQL stores beyond the shared contract: one Alembic history on both databases,
SQLite's durability and default path, PostgreSQL's configuration."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import pg_url
from sqlalchemy import create_engine
from test_state_stores import build, record

from arbframe.db.engine import make_engine, postgres_url, sqlite_url
from arbframe.db.migrate import head, upgrade
from arbframe.db.tables import metadata
from arbframe.errors import ArbframeError, ConfigError

pytestmark = pytest.mark.services

TESTS = Path(__file__).parent


def engine_for(dialect: str, tmp_path, request):
    if dialect == "sqlite":
        return make_engine(sqlite_url(tmp_path / "schema.db"))
    return make_engine(postgres_url(pg_url(request.getfixturevalue("pg_schema"))))


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_the_migrations_create_exactly_the_tables_the_code_uses(dialect, tmp_path, request):
    engine = engine_for(dialect, tmp_path, request)
    upgrade(engine)
    upgrade(engine)  # at head already: nothing to do
    with engine.connect() as db:
        context = MigrationContext.configure(db)
        assert context.get_current_revision() == head()
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_an_older_sink_file_is_refused_with_a_clear_error(tmp_path):
    old = sqlite3.connect(tmp_path / "run.db")  # what the stdlib sink used to write
    old.executescript("CREATE TABLE runs (run_id INTEGER PRIMARY KEY, summary TEXT);")
    old.close()
    store = build("sqlite", {"path": "run.db"}, tmp_path)
    with pytest.raises(ArbframeError, match=r"older arbframe's.*\(runs\)|\(runs\).*older"):
        store.open()


@pytest.mark.parametrize(("config", "level"), [({}, 1), ({"synchronous": "full"}, 2)])
def test_sqlite_runs_in_wal_mode_synced_as_configured(tmp_path, config, level):
    store = build("sqlite", {"path": "s.db", **config}, tmp_path)
    store.open()
    with store.engine.connect() as db:  # type: ignore[union-attr]
        assert db.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert db.exec_driver_sql("PRAGMA synchronous").scalar() == level  # 1 NORMAL, 2 FULL
    store.close()


def test_a_saved_snapshot_survives_a_process_killed_right_after(tmp_path):
    child = f"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
from test_state_stores import build, record
store = build("sqlite", {{"path": "s.db"}}, Path({str(tmp_path)!r}))
store.open()
store.save(record(1))
os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit, nothing flushed after save
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    store = build("sqlite", {"path": "s.db"}, tmp_path)
    assert store.load("s1", 1) == record(1)
    store.close()


def test_the_default_sqlite_file_is_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("ARBFRAME_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    scenario_dir = tmp_path / "scenarios"
    store = build("sqlite", {}, scenario_dir)  # not beside the scenario
    assert store.path == tmp_path / ".arbframe" / "state.db"
    monkeypatch.setenv("ARBFRAME_STATE_DIR", "var/state")
    assert build("sqlite", {}, scenario_dir).path == tmp_path / "var" / "state" / "state.db"
    # A path written in a scenario is relative to it, like every path there.
    assert build("sqlite", {"path": "x.db"}, scenario_dir).path == scenario_dir / "x.db"


def test_an_unwritable_sqlite_path_is_a_config_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory is needed")
    with pytest.raises(ConfigError, match="is a file") as err:
        build("sqlite", {"path": "blocker/s.db"}, tmp_path)
    assert err.value.key == ("path",)


def test_postgres_needs_a_url_from_its_block_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ARBFRAME_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="ARBFRAME_DATABASE_URL"):
        build("postgres", {}, tmp_path)
    monkeypatch.setenv("ARBFRAME_DATABASE_URL", "postgresql://u:secret@db.example:5433/x")
    store = build("postgres", {}, tmp_path)
    assert store.url.drivername == "postgresql+psycopg"  # psycopg 3 whatever the scheme
    assert "secret" not in store.describe()
    with pytest.raises(ConfigError) as err:
        build("postgres", {"url": "mysql://u@h/x"}, tmp_path)
    assert err.value.key == ("url",)


def test_a_postgres_store_shares_the_database_with_other_tables(pg_schema, tmp_path):
    # the sinks' tables and the state's live side by side: one history, one upgrade
    store = build("postgres", {"url": pg_url(pg_schema)}, tmp_path)
    store.open()
    store.save(record(1))
    engine = create_engine(pg_url(pg_schema))
    with engine.connect() as db:
        tables = set(
            db.exec_driver_sql(
                f"SELECT tablename FROM pg_tables WHERE schemaname = '{pg_schema}'"
            ).scalars()
        )
    engine.dispose()
    store.close()
    assert tables == set(metadata.tables) | {"alembic_version"}
