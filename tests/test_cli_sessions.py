"""Sessions end to end through the `arbframe` command: run with --reset, list with `sessions`,
stop early, resume, a damaged snapshot skipped, `reset` and the resume it then refuses.
Every command is a real subprocess; the state is a sqlite file beside the scenario."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "scenarios" / "_campaign_base.yaml"
SERVICE_ENV = ("ARBFRAME_DATABASE_URL", "ARBFRAME_REDIS_URL", "ARBFRAME_STATE_DIR")
# A dislocation every second, held for three: trades within the first seconds of a wall run.
WALL = """\
clock: wall
venues:
  upbit: {latency: 100ms}
  binance: {latency: 50ms}
feeds:
  - type: synthetic
    symbols: {BTC: 60000}
    venues: [upbit, binance]
    pattern: mixed
    tick: {upbit: 1000, binance: 0.01}
    episode_every: 1s
    persist_for: 3s
strategy: {max_hold: 2s}
guards: null
"""


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-P", "-m", "arbframe", *map(str, args)]


def clean_env() -> dict[str, str]:
    """The environment without the variables that choose stores or the state dir: each test
    keeps its state (and run files, in .arbframe/) in its own directory."""
    return {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}


def arbframe(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120
    )


def start(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def scenario(
    tmp_path: Path,
    name: str = "sess",
    duration: str = "5m",
    body: str = "",
    file: str = "s.yaml",
    state: bool = True,
) -> Path:
    """The campaign base with its state in ``state.db`` beside the file (unless not ``state``)."""
    path = tmp_path / file
    kept = "state: [{type: sqlite, path: state.db}]\n" if state else ""
    path.write_text(f"extends: {BASE}\nname: {name}\nduration: {duration}\n{kept}{body}")
    return path


def set_speed(path: Path, speed: float) -> None:
    path.write_text(path.read_text() + f"speed: {speed}\n")


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"{what}: not within 60 s"
        time.sleep(0.05)


def has_fills(out: Path) -> Callable[[], bool]:
    """The run has traded and flushed (it flushes at least once a second)."""
    fills = out / "fills.jsonl"
    return lambda: fills.exists() and fills.stat().st_size > 0


def sessions(path: Path) -> list[dict[str, Any]]:
    result = arbframe("sessions", path, "--json", cwd=path.parent)
    assert result.returncode == 0, result.stderr
    [store] = json.loads(result.stdout)["stores"]
    return store["sessions"]


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(result.stdout)


def test_a_run_with_reset_is_listed_with_its_last_valid_snapshot(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    result = arbframe("run", path, "--reset", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    state = summary_of(result)["state"]
    [held] = sessions(path)
    assert held["session"] == "sess"
    assert held["last_seq"] == state["last_seq"] and held["valid_seq"] == held["last_seq"]
    assert held["valid_reason"] == "shutdown" and held["corrupt"] == []
    assert 0 < time.time() - held["valid_taken_at"] < 120


def test_a_run_interrupted_early_is_continued_by_resume(tmp_path: Path) -> None:
    path = scenario(tmp_path, duration="60s", body=WALL)  # a minute of real time
    out = tmp_path / "out"
    proc = start("run", path, "--json", "--out", out, cwd=tmp_path)
    wait_until(has_fills(out), proc, "fills")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    first = json.loads(stdout)
    assert first["complete"] is False
    assert "continue with --resume (session sess)" in stderr
    [held] = sessions(path)
    assert held["valid_reason"] == "shutdown" and held["valid_seq"] == first["state"]["last_seq"]
    stopped_at = held["valid_ts"]

    set_speed(path, 300)  # the rest of the minute in a fraction of a second
    result = arbframe("run", path, "--resume", "--json", "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resumed = summary_of(result)
    assert resumed["complete"] is True and resumed["passed"] is True
    assert resumed["state"]["resumed_from"] == held["valid_seq"]
    assert resumed["time"]["start_ns"] == first["time"]["start_ns"]  # the same session, going on
    assert resumed["time"]["end_ns"] - resumed["time"]["start_ns"] == 60 * 10**9
    assert resumed["portfolio"]["entries"] > first["portfolio"]["entries"]
    assert resumed["time"]["end_ns"] > stopped_at


def test_resume_without_a_snapshot_exits_2_naming_the_session(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    result = arbframe("run", path, "--resume", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert result.stderr.startswith("session 'sess' has no snapshot to resume from")
    other = arbframe("run", path, "--resume", "elsewhere", cwd=tmp_path)
    assert other.returncode == 2 and "session 'elsewhere' has no snapshot" in other.stderr


def damage_newest(db: Path, session: str) -> int:
    """Flip bytes in the payload of the session's newest snapshot row; its seq."""
    with sqlite3.connect(db) as conn:
        seq, payload = conn.execute(
            "SELECT seq, payload FROM snapshots WHERE session = ? ORDER BY seq DESC LIMIT 1",
            (session,),
        ).fetchone()
        flipped = bytearray(payload)
        flipped[100:108] = bytes(b ^ 0xFF for b in flipped[100:108])
        conn.execute(
            "UPDATE snapshots SET payload = ? WHERE session = ? AND seq = ?",
            (bytes(flipped), session, seq),
        )
    conn.close()
    return seq


def test_a_damaged_newest_snapshot_is_reported_and_skipped(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    first = arbframe("run", path, "--reset", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    damaged = damage_newest(tmp_path / "state.db", "sess")

    [held] = sessions(path)
    assert held["corrupt"] == [damaged] and held["last_seq"] == damaged
    assert held["valid_seq"] is not None and held["valid_seq"] < damaged
    text = arbframe("sessions", path, cwd=tmp_path).stdout.splitlines()
    assert text[2].split()[0] == "sess" and text[2].split()[-1] == str(damaged)

    result = arbframe("run", path, "--resume", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resumed = summary_of(result)
    assert resumed["state"]["corrupt_skipped"] == 1
    assert resumed["state"]["resumed_from"] == held["valid_seq"]
    assert resumed["alerts"].get("P1", 0) >= 1  # the damage is reported, not just survived
    # Resumed from the snapshot before, it ends where the run it continues ended.
    assert resumed["portfolio"] == summary_of(first)["portfolio"]


def test_reset_empties_a_session_and_resume_then_refuses(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    assert arbframe("run", path, "--reset", cwd=tmp_path).returncode == 0
    assert sessions(path)[0]["snapshots"] > 0
    reset = arbframe("reset", "sess", path, "--yes", cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.startswith(f"state[0] (sqlite {tmp_path / 'state.db'}): ")
    assert sessions(path) == []
    result = arbframe("run", path, "--resume", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "session 'sess' has no snapshot to resume from" in result.stderr
