"""`arbframe sessions` and `arbframe reset`, and `open_stores`, which picks a scenario's stores
(or the environment's, or the default sqlite file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pg_url, redis_url
from test_state_stores import build, record

from arbframe import cli
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.scenario import load_scenario
from arbframe.stores import DEFAULT_SQLITE, build_stores, open_stores

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "scenarios" / "c1_mixed.yaml"
REGISTRY = build_registry(get_plugin_manager())
SERVICE_ENV = ("ARBFRAME_DATABASE_URL", "ARBFRAME_REDIS_URL", "ARBFRAME_STATE_DIR")


@pytest.fixture(autouse=True)
def no_service_env(monkeypatch):
    for name in SERVICE_ENV:
        monkeypatch.delenv(name, raising=False)


def scenario_with_state(tmp_path: Path, state: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nname: x\n{state}")
    return path


def arbframe(*args, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None):
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}
    return subprocess.run(
        [sys.executable, "-P", "-m", "arbframe", *map(str, args)],
        cwd=cwd,
        env={**clean, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
    )


# ---- which stores ---------------------------------------------------------------------------


def types(stores) -> list[str]:
    return [s.type_name for s in stores]


def test_a_scenario_s_state_blocks_are_its_stores(tmp_path, redis_env):
    path = scenario_with_state(
        tmp_path,
        f"state:\n  - {{type: sqlite, path: st.db}}\n  - {{type: redis, url: '{redis_url()}'}}\n",
    )
    stores = open_stores(load_scenario(path, REGISTRY), REGISTRY, DEFAULT_SQLITE)
    assert types(stores) == ["sqlite", "redis"]
    assert [s.name for s in stores] == ["state[0]", "state[1]"]
    assert stores[0].path == tmp_path / "st.db" and stores[1].env == "paper"  # the run's mode
    for store in stores:
        store.close()


def test_without_state_blocks_the_environment_decides(tmp_path, monkeypatch):
    loaded = load_scenario(scenario_with_state(tmp_path), REGISTRY)
    monkeypatch.chdir(tmp_path)

    def build_only():
        return build_stores(loaded, REGISTRY, DEFAULT_SQLITE)

    assert types(build_only()) == ["sqlite"]
    assert build_only()[0].path == tmp_path / ".arbframe" / "state.db"
    monkeypatch.setenv("ARBFRAME_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    assert types(build_only()) == ["postgres"]
    monkeypatch.setenv("ARBFRAME_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert types(build_only()) == ["redis", "postgres"]
    monkeypatch.delenv("ARBFRAME_DATABASE_URL")
    assert types(build_only()) == ["redis", "sqlite"]  # redis alone is not durable


def test_a_bad_store_block_is_a_located_error(tmp_path):
    path = scenario_with_state(tmp_path, "state:\n  - {type: postgres, url: 'mysql://x@y/z'}\n")
    result = arbframe("sessions", path, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"{path}:4:27: state[0].url: not a PostgreSQL URL: mysql://x@y/z\n"


# ---- sessions -------------------------------------------------------------------------------


def test_sessions_reports_the_last_valid_snapshot_and_corrupt_ones(tmp_path, pg_schema):
    postgres = f"{{type: postgres, url: '{pg_url(pg_schema)}'}}"
    path = scenario_with_state(tmp_path, f"state: [{{type: sqlite, path: st.db}}, {postgres}]\n")
    sqlite_store = build("sqlite", {"path": "st.db"}, tmp_path)
    for seq in (1, 2):
        sqlite_store.save(record(seq))
    sqlite_store.save(record(3, checksum="f" * 64))  # damaged: the newest is not valid
    sqlite_store.save(record(1, session="other"))
    sqlite_store.close()
    result = arbframe("sessions", path, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [sqlite_entry, postgres_entry] = json.loads(result.stdout)["stores"]
    assert sqlite_entry["store"] == f"state[0] (sqlite {tmp_path / 'st.db'})"
    assert postgres_entry["type"] == "postgres" and postgres_entry["sessions"] == []
    other, s1 = sorted(sqlite_entry["sessions"], key=lambda s: s["session"])
    assert s1 == {
        "session": "s1",
        "snapshots": 3,
        "last_seq": 3,
        "last_ts": record(3).ts,
        "valid_seq": 2,
        "valid_ts": record(2).ts,
        "valid_taken_at": record(2).taken_at,
        "valid_reason": "periodic",
        "corrupt": [3],
    }
    assert other["valid_seq"] == 1 and other["corrupt"] == []
    text = arbframe("sessions", path, cwd=tmp_path)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0] == f"state[0] (sqlite {tmp_path / 'st.db'})"
    assert lines[1].split() == [
        "SESSION",
        "SNAPSHOTS",
        "LAST",
        "VALID",
        "VALID",
        "TAKEN",
        "AT",
        "(UTC)",
        "CORRUPT",
    ]
    assert lines[3].split()[:4] == ["s1", "3", "3", "2"] and lines[3].split()[-1] == "3"
    assert lines[-1] == "  no sessions"


def test_sessions_without_a_scenario_reads_the_default_file(tmp_path):
    store = build("sqlite", {"path": "state/state.db"}, tmp_path)
    store.save(record(1))
    store.close()
    result = arbframe("sessions", "--json", cwd=tmp_path, env={"ARBFRAME_STATE_DIR": "state"})
    [entry] = json.loads(result.stdout)["stores"]
    assert entry["store"] == f"sqlite (sqlite {tmp_path / 'state' / 'state.db'})"
    assert [s["session"] for s in entry["sessions"]] == ["s1"]


def test_sessions_exits_1_when_a_store_is_unreachable(tmp_path):
    from arbframe.testing import TcpProxy

    with TcpProxy("127.0.0.1", 6379) as proxy:
        proxy.cut()
        path = scenario_with_state(
            tmp_path, f"state: [{{type: redis, url: '{redis_url(proxy.port)}'}}]\n"
        )
        result = arbframe("sessions", path, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[1].startswith("  unreachable: state[0] (redis 127.0.0.1:")


# ---- reset ----------------------------------------------------------------------------------


def test_reset_refuses_without_yes_when_no_one_can_confirm(tmp_path):
    result = arbframe("reset", "s1", cwd=tmp_path, stdin="y\n")  # a pipe is not a terminal
    assert result.returncode == 2
    assert "refusing to reset session s1 without --yes" in result.stderr
    assert not (tmp_path / ".arbframe").exists()  # nothing was even opened


def test_reset_with_yes_clears_the_session_everywhere(tmp_path, redis_env):
    redis = f"{{type: redis, url: '{redis_url()}', env: {redis_env}}}"
    path = scenario_with_state(tmp_path, f"state: [{{type: sqlite, path: st.db}}, {redis}]\n")
    stores = [
        build("sqlite", {"path": "st.db"}, tmp_path),
        build("redis", {"url": redis_url(), "env": redis_env}, tmp_path),
    ]
    for store in stores:
        store.save(record(1))
        store.save(record(2))
        store.save(record(1, session="kept"))
    result = arbframe("reset", "s1", path, "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"state[0] (sqlite {tmp_path / 'st.db'}): 2 snapshots removed",
        "state[1] (redis 127.0.0.1:6379): 2 snapshots removed",
    ]
    for store in stores:
        assert [s["session"] for s in store.sessions()] == ["kept"]
        store.close()


@pytest.mark.parametrize(("answer", "status", "left"), [("y\n", 0, 0), ("n\n", 1, 1), ("\n", 1, 1)])
def test_reset_asks_on_a_terminal(tmp_path, monkeypatch, capsys, answer, status, left):
    monkeypatch.chdir(tmp_path)
    store = build("sqlite", {"path": ".arbframe/state.db"}, tmp_path)
    store.save(record(1))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    assert cli.main(["reset", "s1"]) == status
    where = tmp_path / ".arbframe" / "state.db"
    assert prompts == [f"Delete every snapshot of session s1 in sqlite (sqlite {where})? [y/N] "]
    assert len(store.snapshots("s1")) == left
    store.close()


def test_the_operations_commands_have_help():
    for command in ("sessions", "reset", "stop", "keyspace"):
        result = arbframe(command, "--help", cwd=REPO)
        assert result.returncode == 0 and "usage: arbframe " + command in result.stdout
