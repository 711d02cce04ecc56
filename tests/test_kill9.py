"""A real crash: the engine process is SIGKILLed from another process while orders are in
flight (wall clock), and restarted with --resume. The venues (paper venues whose accounts
live in a file, as an exchange's would) are the judge: every position and balance is
accounted for, and no client id ever reached a venue twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = f"""\
extends: {ROOT / "scenarios" / "_campaign_base.yaml"}
name: kill9
clock: wall
speed: 10
duration: 60s
venues:  # slow venues: orders stay in flight for 0.3-0.4 s of wall time
  upbit: {{latency: 4s, account: {{path: accounts.db}}}}
  binance: {{latency: 3s, account: {{path: accounts.db}}}}
state: [{{type: sqlite, path: state.db}}]
snapshots: {{every: 5s}}
strategy: {{max_hold: 10s}}
"""
RESUME_IGNORING_ORDERS = """\
import sys
from arbframe import snapshot
from arbframe.execution import ExecutionEngine

restore_kernel = snapshot.restore_kernel

def forgetful(run, kernel, external):  # a resume that drops the orders still open
    restore_kernel(run, kernel, external)
    flow = run.execution.flow
    for cid in [c for c, o in flow.orders.items() if not o.settled]:
        del flow.orders[cid]
    for job in run.execution.jobs.values():
        job.inflight.clear()
    heap = run.clock._heap
    heap[:] = [e for e in heap if not (e[3] and e[3][0] not in flow.orders and
                                      getattr(e[2], "__name__", "") == "_check")]

snapshot.restore_kernel = forgetful
ExecutionEngine.adopt = lambda self, records: None
ExecutionEngine.reconcile = lambda self, venues: None
from arbframe.cli import main
sys.exit(main(sys.argv[1:]))
"""


def arbframe(*args: str, cwd: Path, code: str | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", code, *args] if code else [
        sys.executable, "-m", "arbframe", *args
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def write_aheads(path: Path) -> list[dict[str, Any]]:
    """The write-ahead records the engine made so far (read-only, while it runs)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT manifest FROM snapshots WHERE reason = 'orders' ORDER BY seq"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:  # not created yet
        return []
    return [json.loads(row[0]) for row in rows]


def venue_view(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    try:
        return {
            "inbox": {cid for (cid,) in db.execute("SELECT client_id FROM inbox")},
            "orders": [cid for (cid,) in db.execute("SELECT client_id FROM orders")],
            "duplicates": db.execute("SELECT venue, client_id FROM duplicates").fetchall(),
            "balances": {
                (venue, asset): amount
                for venue, asset, amount in db.execute("SELECT venue, asset, amount FROM balances")
            },
        }
    finally:
        db.close()


def kill_after_write_ahead(tmp_path: Path, nth: int, delay: float = 0.05) -> dict[str, Any]:
    """Run, and SIGKILL the process ``delay`` s after its nth write-ahead record is durable
    (0.05: its orders have reached their venues, which take 0.3 s to execute them; 0: the
    kill may land before, between or after the orders leave)."""
    (tmp_path / "s.yaml").write_text(SCENARIO)
    proc = arbframe("run", "s.yaml", "--reset", cwd=tmp_path)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            records = write_aheads(tmp_path / "state.db")
            if len(records) >= nth:
                time.sleep(delay)
                os.kill(proc.pid, signal.SIGKILL)
                break
            if proc.poll() is not None:
                pytest.fail(f"the run ended before {nth} orders went out: {proc.stderr.read()}")
            time.sleep(0.003)
        else:
            pytest.fail("no write-ahead record in time")
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return records[nth - 1]


@pytest.mark.parametrize(("nth", "delay"), [(1, 0.05), (2, 0.05), (3, 0.0), (4, 0.05)])
def test_sigkill_with_orders_in_flight_then_resume(tmp_path: Path, nth: int, delay: float) -> None:
    sent = kill_after_write_ahead(tmp_path, nth, delay)
    ids = {order["client_id"] for order in sent["orders"]}
    venues = venue_view(tmp_path / "accounts.db")
    # When it died, those orders were waiting at their venues (received, not executed) or
    # not sent yet; none executed.
    assert not ids & set(venues["orders"])
    if delay:
        assert ids <= venues["inbox"]  # every leg on its way

    resumed = arbframe("run", "s.yaml", "--resume", "--json", "--out", "out", cwd=tmp_path)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    summary = json.loads(out)
    assert summary["state"]["resumed_from"] is not None
    assert summary["state"]["resume_queries"] >= len(ids & venues["inbox"])
    # The venues' own records, read from their account file
    after = venue_view(tmp_path / "accounts.db")
    assert after["duplicates"] == []  # no client id reached a venue twice
    assert len(after["orders"]) == len(set(after["orders"]))
    known = {json.loads(line)["client_id"] for line in (tmp_path / "out" / "orders.jsonl").open()}
    assert set(after["orders"]) <= known  # every order the venues hold, the engine knows
    integrity = summary["integrity"]
    assert integrity["position_loss"] == 0, integrity["unexplained"]
    assert integrity["ledger_mismatches"] == 0, integrity["mismatched"]
    assert integrity["state_integrity"] is True
    ledger = summary["reconciliation"]["balances"]["venues"]
    for (venue, asset), amount in after["balances"].items():  # to the last unit
        assert Decimal(ledger[venue][asset]["ledger"]) == Decimal(amount), (venue, asset)


def test_a_resume_that_ignores_orders_in_flight_is_caught(tmp_path: Path) -> None:
    kill_after_write_ahead(tmp_path, 1)
    resumed = arbframe("run", "s.yaml", "--resume", "--json", cwd=tmp_path,
                       code=RESUME_IGNORING_ORDERS)  # fmt: skip
    out, err = resumed.communicate(timeout=120)
    summary = json.loads(out)
    integrity = summary["integrity"]
    assert integrity["state_integrity"] is False
    assert integrity["duplicate_orders"] or integrity["position_loss"]
    assert venue_view(tmp_path / "accounts.db")["duplicates"] or integrity["position_loss"]
