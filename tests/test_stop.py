"""`arbframe stop`: a running session found by its run file, stopped gracefully, resumed.

The runs are real subprocesses; where a test needs a process that behaves in a particular
way (ignores SIGTERM, is long gone), a plain Python process stands in for the run and the
test writes its run file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_sessions import (
    WALL,
    arbframe,
    has_fills,
    scenario,
    sessions,
    set_speed,
    start,
    wait_until,
)

from arbframe import runfiles


def run_file(tmp_path: Path, session: str) -> Path:
    return tmp_path / ".arbframe" / "sessions" / f"{session}.json"


def records(path: Path) -> list[str]:
    """A JSON-lines file's records, sorted: a resumed run may write them in another order."""
    return sorted(path.read_text().splitlines())


def test_stop_ends_a_wall_clock_session_gracefully_and_resume_continues_it(tmp_path):
    path = scenario(tmp_path, name="live", duration="60s", body=WALL)  # a minute of real time
    out = tmp_path / "out"
    proc = start("run", path, "--json", "--out", out, cwd=tmp_path)
    wait_until(has_fills(out), proc, "fills")
    written = json.loads(run_file(tmp_path, "live").read_text())
    assert written["pid"] == proc.pid and written["session"] == "live"
    assert written["scenario"] == str(path) and 0 < time.time() - written["started_at"] < 60

    asked = time.monotonic()
    stop = arbframe("stop", "live", "--json", cwd=tmp_path)
    assert stop.returncode == 0, stop.stderr
    report = json.loads(stop.stdout)
    assert report.pop("waited_s") < 5 and report == {**written, "stopped": True}
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - asked < 5  # at once, not at the end of the minute
    assert proc.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["complete"] is False and summary["passed"] is False
    assert json.loads((out / "summary.json").read_text())["complete"] is False
    [held] = sessions(path)
    assert held["valid_reason"] == "shutdown" and held["valid_seq"] == held["last_seq"]
    assert not run_file(tmp_path, "live").exists()
    again = arbframe("stop", "live", cwd=tmp_path)
    assert again.returncode == 2 and "session live is not running" in again.stderr

    set_speed(path, 300)
    result = arbframe("run", path, "--resume", "--json", "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resumed = json.loads(result.stdout)
    assert resumed["complete"] is True and resumed["state"]["resumed_from"] == held["valid_seq"]
    assert json.loads((out / "summary.json").read_text()) == resumed

    # Stopped and resumed, the session's record is the one it would have had uninterrupted
    # (the same session in another state file): each fill, trade and order once, final.
    other = tmp_path / "once"
    other.mkdir()
    once = scenario(other, name="live", duration="60s", body=WALL + "speed: 300\n")
    assert arbframe("run", once, "--out", other / "out", cwd=other).returncode == 0
    for kind in ("fills", "trades", "orders"):
        assert records(out / f"{kind}.jsonl") == records(other / "out" / f"{kind}.jsonl"), kind
    uninterrupted = json.loads((other / "out" / "summary.json").read_text())
    assert resumed["portfolio"] == uninterrupted["portfolio"]


# ---- which session: stand-in processes -------------------------------------------------------


@pytest.fixture
def stand_in() -> Iterator[Any]:
    """``stand_in(tmp_path, session, ignore_term=False)``: a sleeping process registered as
    running ``session`` (a run file as a run writes it); killed at the end of the test."""
    procs: list[subprocess.Popen[str]] = []

    def make(tmp_path: Path, session: str, ignore_term: bool = False) -> subprocess.Popen[str]:
        code = "import signal, sys, time\n"
        if ignore_term:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        code += "print('ready', flush=True)\ntime.sleep(60)\n"
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        write_run_file(tmp_path, session, proc.pid, runfiles.process_start(proc.pid))
        return proc

    yield make
    for proc in procs:
        proc.kill()
        proc.wait()


def write_run_file(tmp_path: Path, session: str, pid: int, process_start: str | None) -> None:
    path = run_file(tmp_path, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = runfiles.RunFile(session, pid, str(tmp_path / "s.yaml"), time.time(), process_start)
    path.write_text(json.dumps(entry.as_dict()))


def test_stop_without_a_session_stops_the_only_one_running(tmp_path, stand_in):
    proc = stand_in(tmp_path, "only")
    result = arbframe("stop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"stopped session only (pid {proc.pid}) in ")
    assert proc.wait(timeout=5) == -signal.SIGTERM


def test_stop_without_a_session_refuses_when_several_or_none_run(tmp_path, stand_in):
    none = arbframe("stop", cwd=tmp_path)
    assert none.returncode == 2
    assert none.stderr == "arbframe stop: no session is running; name one (running: none)\n"
    a, b = stand_in(tmp_path, "a"), stand_in(tmp_path, "b")
    result = arbframe("stop", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("arbframe stop: several sessions are running; name one ")
    assert f"a (pid {a.pid}, " in result.stderr and f"b (pid {b.pid}, " in result.stderr
    assert a.poll() is None and b.poll() is None  # neither was signalled


def test_stop_of_a_session_not_running_lists_those_that_are(tmp_path, stand_in):
    a = stand_in(tmp_path, "a")
    result = arbframe("stop", "b", "--json", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    running = f"a (pid {a.pid}, {tmp_path / 's.yaml'})"
    assert result.stderr == f"arbframe stop: session b is not running (running: {running})\n"
    assert a.poll() is None


def test_stop_exits_1_when_the_session_outlives_the_timeout(tmp_path, stand_in):
    stubborn = stand_in(tmp_path, "stubborn", ignore_term=True)
    result = arbframe("stop", "stubborn", "--timeout", "0.5", "--json", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == ""
    report = json.loads(result.stdout)
    assert report["stopped"] is False and report["waited_s"] >= 0.5
    text = arbframe("stop", "stubborn", "--timeout", "0.2", cwd=tmp_path)
    assert text.returncode == 1 and text.stdout == ""
    assert text.stderr.startswith(f"session stubborn (pid {stubborn.pid}) still runs after 0.")
    assert stubborn.poll() is None


def test_a_stale_run_file_is_no_running_session(tmp_path, stand_in):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    write_run_file(tmp_path, "gone", ended.pid, None)
    # A live pid that started at another time: the run's pid, reused by an unrelated process.
    unrelated = stand_in(tmp_path, "reused")
    write_run_file(tmp_path, "reused", unrelated.pid, "1")
    for session in ("gone", "reused"):
        result = arbframe("stop", session, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.endswith(f"session {session} is not running (running: none)\n")
    assert unrelated.poll() is None  # never signalled


# ---- the run's side: its file, whatever the exit ---------------------------------------------


def test_the_run_file_is_removed_whatever_the_exit(tmp_path):
    sessions_dir = tmp_path / ".arbframe" / "sessions"
    path = scenario(tmp_path)
    assert arbframe("run", path, "--reset", cwd=tmp_path).returncode == 0
    failing = scenario(tmp_path, file="f.yaml", body="expect: {portfolio.entries: {eq: -1}}\n")
    assert arbframe("run", failing, "--reset", cwd=tmp_path).returncode == 1
    refused = arbframe("run", path, "--resume", "nothing", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert sessions_dir.is_dir() and list(sessions_dir.iterdir()) == []


def test_a_killed_run_leaves_a_stale_file_the_next_run_replaces(tmp_path):
    path = scenario(tmp_path, name="killed", duration="200h")
    proc = start("run", path, "--reset", cwd=tmp_path)
    wait_until(run_file(tmp_path, "killed").exists, proc, "run file")
    proc.kill()
    proc.wait()
    assert run_file(tmp_path, "killed").exists()  # a kill gives no chance to remove it
    result = arbframe("stop", "killed", cwd=tmp_path)
    assert result.returncode == 2 and "session killed is not running" in result.stderr
    short = scenario(tmp_path, name="killed", file="short.yaml")
    again = arbframe("run", short, "--reset", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "warning" not in again.stderr and not run_file(tmp_path, "killed").exists()


def test_a_session_already_running_is_refused_when_it_keeps_state(tmp_path, stand_in):
    holder = stand_in(tmp_path, "sess")
    held = run_file(tmp_path, "sess").read_text()
    result = arbframe("run", scenario(tmp_path), "--reset", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"session sess is already running (pid {holder.pid}, {tmp_path / 's.yaml'}): "
        "stop it first with `arbframe stop sess`\n"
    )
    # Without state nothing is shared: it runs, but `arbframe stop` cannot reach it.
    free = arbframe("run", scenario(tmp_path, file="free.yaml", state=False), cwd=tmp_path)
    assert free.returncode == 0, free.stderr
    assert free.stderr == (
        f"warning: session sess is already running (pid {holder.pid}); "
        "`arbframe stop` cannot reach this run\n"
    )
    assert run_file(tmp_path, "sess").read_text() == held and holder.poll() is None
