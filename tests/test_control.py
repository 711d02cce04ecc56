"""Operator control of a running wall-clock paper session, end to end: `arbframe pause`,
`resume`, `status`, `stop` from another process through the session's local endpoint, a
bad token refused, and the same commands from Telegram (the real client, a fake Bot API)."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fakebotapi import FakeBotAPI

REPO = Path(__file__).resolve().parents[1]
TOKEN = "7000001:AAF-control-token-abcdef0123456789"
# Two symbols, a dislocation about every second: both trade within seconds of wall time.
SCENARIO = f"""\
extends: {REPO}/scenarios/_campaign_base.yaml
name: ctl
duration: 10m
clock: wall
speed: 4
state: [{{type: sqlite, path: state.db}}]
venues:
  upbit: {{latency: 100ms}}
  binance: {{latency: 50ms}}
capital:
  upbit: {{KRW: 135000000, BTC: 1, ETH: 20}}
  binance: {{USDT: 100000, BTC: 1, ETH: 20}}
feeds:
  - type: synthetic
    symbols: {{BTC: 60000, ETH: 3000}}
    venues: [upbit, binance]
    pattern: mixed
    tick: {{upbit: 1000, binance: 0.01}}
    episode_every: 1s
    persist_for: 3s
strategy: {{max_hold: 2s}}
guards: null
"""


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARBFRAME_")}
    return {**base, "ARBFRAME_STATE_DIR": str(tmp_path / "state"), **extra}


def arbframe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbframe", *args],
        cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def start(tmp_path: Path, text: str, **extra: str) -> subprocess.Popen[str]:
    (tmp_path / "s.yaml").write_text(text)
    return subprocess.Popen(
        [sys.executable, "-m", "arbframe", "run", "s.yaml", "--out", "out", "--reset"],
        cwd=tmp_path, env=env(tmp_path, **extra), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_until(ready: Callable[[], Any], proc: subprocess.Popen[str], what: str) -> Any:
    deadline = time.monotonic() + 60
    while not (found := ready()):
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"{what}: not within 60 s"
        time.sleep(0.1)
    return found


def control_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sessions" / "ctl.control"


def trades(tmp_path: Path) -> dict[str, int | None]:
    """Every trade the run has sent orders for or closed: id -> opened_at (None if unknown)."""
    seen: dict[str, int | None] = {}
    for name in ("orders.jsonl", "trades.jsonl"):
        path = tmp_path / "out" / name
        for line in path.read_text().splitlines() if path.exists() else ():
            if not line.endswith("}"):
                continue  # being written
            row = json.loads(line)
            if row.get("trade_id"):
                seen.setdefault(row["trade_id"], None)
                if "opened_at" in row:
                    seen[row["trade_id"]] = row["opened_at"]
    return seen


def seq(trade_id: str) -> int:
    return int(trade_id.rsplit("-", 1)[1])


def later(tmp_path: Path, symbol: str, after: int) -> Callable[[], list[str]]:
    return lambda: [t for t in trades(tmp_path) if t.startswith(f"{symbol}-") and seq(t) > after]


def command(tmp_path: Path, *args: str) -> dict[str, Any]:
    result = arbframe(tmp_path, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_pause_resume_status_and_stop_from_another_process(tmp_path: Path) -> None:
    proc = start(tmp_path, SCENARIO)
    try:
        wait_until(lambda: control_file(tmp_path).exists(), proc, "control endpoint")
        wait_until(later(tmp_path, "BTC", 0), proc, "a first BTC trade")
        endpoint = json.loads(control_file(tmp_path).read_text())
        assert stat.S_IMODE(control_file(tmp_path).stat().st_mode) == 0o600
        wrong = {"Authorization": "Bearer not-the-token"}
        request = urllib.request.Request(f"{endpoint['url']}/status", headers=wrong)
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("a wrong token was accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 401

        paused = command(tmp_path, "pause", "BTC")
        assert paused["paused"] == ["BTC"]
        # Other symbols still trade: an ETH trade opened after the pause.
        wait_until(later(tmp_path, "ETH", paused["after_trade_seq"]), proc, "ETH after pause")
        status = command(tmp_path, "status")
        assert status["paused"] == ["BTC"] and status["session"] == "ctl"
        assert status["refused_paused"] > 0  # the strategy kept asking; the kernel refused
        assert isinstance(status["positions"], list) and status["trades"]["closed"] >= 1
        assert all(set(p) >= {"trade_id", "symbol", "legs"} for p in status["positions"])

        resumed = command(tmp_path, "resume", "BTC")
        assert resumed["paused"] == []
        wait_until(later(tmp_path, "BTC", resumed["after_trade_seq"]), proc, "BTC after resume")

        stopped = arbframe(tmp_path, "stop")
        assert stopped.returncode == 0, stopped.stderr
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130  # as SIGTERM: stopped between instants, record kept
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
    # Within one quote: no BTC trade opened after the pause was applied until the resume, by
    # the kernel's own trade sequence and by scenario time.
    found = trades(tmp_path)
    between = [t for t in found if t.startswith("BTC-")
               and paused["after_trade_seq"] < seq(t) <= resumed["after_trade_seq"]]  # fmt: skip
    assert between == []
    assert not [t for t, opened in found.items() if t.startswith("BTC-") and opened is not None
                and paused["applied_ns"] < opened < resumed["applied_ns"]]  # fmt: skip
    assert [t for t in found if t.startswith("ETH-")
            and paused["after_trade_seq"] < seq(t) <= resumed["after_trade_seq"]]  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["complete"] is False and summary["execution"]["refused"]["paused"] > 0
    listing = json.loads(arbframe(tmp_path, "sessions", "s.yaml", "--json").stdout)
    [held] = listing["stores"][0]["sessions"]
    assert held["valid_reason"] == "shutdown"  # the final snapshot, as SIGTERM takes it
    assert re.search(r"control: refused GET /status from 127\.0\.0\.1: wrong token", stderr)
    assert endpoint["token"] not in stderr
    assert not control_file(tmp_path).exists()  # removed when the session ended


def test_commands_need_a_running_session_with_an_endpoint(tmp_path: Path) -> None:
    result = arbframe(tmp_path, "pause", "BTC")
    assert result.returncode == 2 and "no session is running" in result.stderr
    assert "Traceback" not in result.stderr


def test_telegram_commands_from_allowed_chats_only(tmp_path: Path) -> None:
    with FakeBotAPI(TOKEN) as api:
        text = SCENARIO + (
            "alerts:\n  - type: telegram\n    token: ${TG_TOKEN}\n    chat_ids: ${TG_CHATS}\n"
            f"    base_url: '{api.base_url}'\n    commands: true\n    poll: 1s\n"
        )
        proc = start(tmp_path, text, TG_TOKEN=TOKEN, TG_CHATS="42")
        try:
            wait_until(lambda: "getUpdates" in api.calls, proc, "the bot polling")
            api.command(42, "/pause BTC")
            reply = wait_until(lambda: api.to(42), proc, "a reply to /pause")
            assert reply == ["✅ paused BTC (paused: BTC)"]
            api.command(99, "/pause ETH")
            [refusal] = wait_until(lambda: api.to(99), proc, "a reply to chat 99")
            assert refusal.startswith("⛔ /pause refused")
            api.command(42, "/frobnicate")
            wait_until(lambda: len(api.to(42)) == 2, proc, "a reply to /frobnicate")
            assert api.to(42)[1].startswith("❌ /frobnicate: unknown command")
            api.command(42, "/status")
            wait_until(lambda: len(api.to(42)) == 3, proc, "a reply to /status")
            assert "Paused: BTC" in api.to(42)[2] and "Session ctl" in api.to(42)[2]
            assert command(tmp_path, "status")["paused"] == ["BTC"]  # ETH was not paused
            api.command(42, "/stop")
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
    assert proc.returncode == 130
    assert "telegram: refused /pause from chat 99: not an allowed chat" in stderr
    assert "telegram: /frobnicate from chat 42 refused" in stderr
    assert TOKEN not in stderr and api.refused == 0
