"""Run files: which ``arbframe run`` processes are running, so ``arbframe stop`` can reach them.

A run writes ``<state dir>/sessions/<session>.json`` (its pid, session, scenario and start
time) when it starts and removes it when it ends, whatever the exit path. A process killed
outright (SIGKILL, a power cut) leaves its file behind: a file whose process is gone, or
whose pid now belongs to another process, is *stale*. It names no running session, and the
next run of the session replaces it.

The state dir is ``$ARBFRAME_STATE_DIR``, else ``.arbframe`` in the current directory (where
the embedded ``sqlite`` store keeps ``state.db``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from arbframe.errors import ArbframeError
from arbframe.stores import STATE_DIR_ENV


class SessionRunning(ArbframeError):
    """Another live process already runs the session (exit 2)."""

    def __init__(self, holder: RunFile) -> None:
        self.holder = holder
        super().__init__(
            f"session {holder.session} is already running (pid {holder.pid}, "
            f"{holder.scenario}): stop it first with `arbframe stop {holder.session}`"
        )


def runs_dir() -> Path:
    return (Path(os.environ.get(STATE_DIR_ENV) or ".arbframe") / "sessions").absolute()


@dataclass
class RunFile:
    session: str
    pid: int
    scenario: str
    started_at: float
    """Wall time (s since the epoch) the run started."""
    process_start: str | None = None
    """The process's start time as the OS counts it (Linux), to tell a reused pid apart."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def alive(self) -> bool:
        """The process that wrote this file still runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        stat = _proc_stat(self.pid)
        if stat is None:  # no /proc (macOS): the pid is all there is to go by
            return True
        if stat[0] == "Z":  # ended, not yet reaped by its parent
            return False
        # Another start time: the pid was reused by a process that is not this run.
        return self.process_start is None or stat[19] == self.process_start

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; True when it has."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def process_start(pid: int) -> str | None:
    """When the process started, in the OS's own count (None where there is no /proc)."""
    stat = _proc_stat(pid)
    return stat[19] if stat else None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from the state on (``[0]`` state, ``[19]`` start)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # after the command name, which may hold spaces


def _path(session: str) -> Path:
    return runs_dir() / f"{quote(session, safe='')}.json"  # a --resume SESSION may hold a /


def _read(path: Path) -> RunFile | None:
    try:
        return RunFile(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):  # gone meanwhile, or not a run file
        return None


def running() -> list[RunFile]:
    """The sessions running now (stale files left out), by session."""
    found = [_read(path) for path in sorted(runs_dir().glob("*.json"))]
    return sorted((f for f in found if f is not None and f.alive()), key=lambda f: f.session)


def claim(session: str, scenario: Path) -> RunFile:
    """Write this process's run file for ``session``; SessionRunning when a live process
    holds it."""
    path, pid = _path(session), os.getpid()
    held = _read(path)
    if held is not None and held.pid != pid and held.alive():
        raise SessionRunning(held)
    mine = RunFile(session, pid, str(scenario.absolute()), time.time(), process_start(pid))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{pid}")  # renamed whole: never half-read
    partial.write_text(json.dumps(mine.as_dict()) + "\n", encoding="utf-8")
    partial.replace(path)
    return mine


def release(run_file: RunFile) -> None:
    """Remove the run file, if it is still this process's."""
    path = _path(run_file.session)
    held = _read(path)
    if held is not None and held.pid == run_file.pid:
        path.unlink(missing_ok=True)
