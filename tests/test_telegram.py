"""Alert messages through the real python-telegram-bot client against a fake Bot API on
127.0.0.1 (tests/fakebotapi), and through a webhook to a local aiohttp endpoint: formats,
the rate limit under a storm, and a token that never shows."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from arbframe_plugins.alerts.telegram import TelegramAlerts
from fakebotapi import FakeBotAPI

from arbframe.alerting import Lane, Settings
from arbframe.model import Alert
from arbframe.secrets import Secret

REPO = Path(__file__).resolve().parents[1]
TOKEN = "7000001:AAF-secret-token-value-0123456789abcdef"
S = 1_000_000_000


def scenario(tmp_path: Path, channel: str) -> Path:
    """The latency drill (P2 detected and P1 latency within 2 s, P1 latency again, a repeat
    within the dedupe window; P3 recovered later) with a channel and a SQLite sink."""
    text = (REPO / "scenarios" / "drill_latency_spike.yaml").read_text()
    text = text.replace(
        "extends: _campaign_base.yaml", f"extends: {REPO}/scenarios/_campaign_base.yaml"
    )
    text = text.replace("alerts:\n", f"sinks: [{{type: sqlite, path: run.db}}]\nalerts:\n{channel}")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def arbframe(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arbframe", *args], cwd=tmp_path,
                          env={**os.environ, "ARBFRAME_STATE_DIR": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def telegram_block(api: FakeBotAPI, severity: str = "P3") -> str:
    return (f"  - type: telegram\n    token: ${{TG_TOKEN}}\n    chat_ids: ${{TG_CHATS}}\n"
            f"    min_severity: {severity}\n    base_url: '{api.base_url}'\n")  # fmt: skip


def test_messages_arrive_formatted_by_severity_and_the_token_never_shows(tmp_path: Path):
    with FakeBotAPI(TOKEN) as api:
        path = scenario(tmp_path, telegram_block(api))
        result = arbframe(tmp_path, "run", str(path), "--out", "out", "--json",
                          TG_TOKEN=TOKEN, TG_CHATS="42,43")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert api.calls[0] == "getMe" and api.refused == 0
    assert api.to(42) == api.to(43) and len(api.to(42)) == 2  # two messages, to each chat
    grouped, recovered = api.to(42)
    lines = grouped.splitlines()
    assert lines[0] == "🟠 [P1] HIGH: 2 alerts"  # the worst of the group heads it
    assert lines[1].startswith("Time: 2024-01-01 00:01:0") and lines[1].endswith(" UTC")
    assert lines[2] == "Session: drill_latency_spike"
    assert sorted(line[:8] for line in lines[3:]) == ["• 🟠 [P1]", "• 🟡 [P2]"]
    assert "upbit answers slowly (latency): order " in grouped
    assert recovered.splitlines()[0] == "🔵 [P3] LOW: fault slow (latency_spike) recovered"
    assert "Rule: fault_recovered" in recovered and "Detail: venue=upbit" in recovered
    summary = json.loads(result.stdout)
    channel = summary["alerting"]["channels"]["alerts[0]"]
    assert channel == {
        "sent": 2,
        "deduped": 1,
        "grouped": 1,
        "suppressed": 0,
        "summaries": 0,
        "failed": 0,
    }  # fmt: skip  (the second latency alert: a repeat)
    # the history: every fired alert in alerts.jsonl and in the sink's table, with its rule
    rows = [json.loads(x) for x in (tmp_path / "out" / "alerts.jsonl").read_text().splitlines()]
    db = sqlite3.connect(tmp_path / "run.db")
    stored = db.execute("SELECT rule, severity FROM alerts ORDER BY id").fetchall()
    assert [(r["rule"], r["severity"]) for r in rows] == stored
    assert sorted(stored) == [("fault_detected", "P2"), ("fault_recovered", "P3"),
                              ("latency", "P1"), ("latency", "P1")]  # fmt: skip
    # the token: nowhere in what the run printed or wrote
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    for blob in (result.stdout.encode(), result.stderr.encode(), *written):
        assert TOKEN.encode() not in blob and TOKEN.split(":")[1].encode() not in blob


def test_a_refused_token_stops_the_run_without_showing_it(tmp_path: Path):
    with FakeBotAPI("111:the-right-one") as api:
        path = scenario(tmp_path, telegram_block(api))
        result = arbframe(tmp_path, "run", str(path), TG_TOKEN=TOKEN, TG_CHATS="42")
    assert result.returncode == 2 and api.refused == 1 and api.messages == []
    assert "refused the token ${TG_TOKEN}" in result.stderr and "Traceback" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_a_token_written_in_the_file_is_refused(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"extends: {REPO}/scenarios/_campaign_base.yaml\nname: t\nalerts:\n"
        f"  - type: telegram\n    token: '{TOKEN}'\n    chat_ids: ${{TG_CHATS}}\n"
    )
    result = arbframe(tmp_path, "validate", str(path), TG_CHATS="42")
    assert result.returncode == 2 and "alerts[0].token" in result.stderr
    assert TOKEN not in result.stderr


def test_a_storm_reaches_telegram_as_ten_messages_and_one_summary():
    """100 alerts within a minute through the real client: at most 10 messages in that
    minute, then ONE saying how many were held back."""
    with FakeBotAPI(TOKEN) as api:
        config = {"token": Secret("${TG_TOKEN}", TOKEN), "chat_ids": Secret("${C}", "42"),
                  "base_url": api.base_url, "min_severity": "P3"}  # fmt: skip
        channel = TelegramAlerts(config, name="alerts[0]", ctx=None)
        lane = Lane(channel, Settings.from_config({"group": "0s", "dedupe": "5m"}), "storm")
        for i in range(100):
            lane.offer(Alert(i * S // 2, "P2", f"venue error {i}", "", "venue_errors"), f"k{i}")
        lane.tick(200 * S, final=True)
        channel.close()
    texts = api.to(42)
    assert len(texts) == 11 and channel.failed == 0
    assert all(t.startswith("🟡 [P2] MEDIUM: venue error ") for t in texts[:10])
    assert texts[10].startswith("⚠️ [P2] 90 alerts suppressed by the rate limit")
    assert "Held back: P2 x 90" in texts[10]


class Hook:
    """A local webhook endpoint (aiohttp) that keeps what it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def receive(request: web.Request) -> web.Response:
            self.bodies.append(await request.json())
            self.auth.append(request.headers.get("Authorization", ""))
            return web.json_response({"ok": True})

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/hook", receive)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"

        def serve() -> None:
            self.loop.run_until_complete(start())
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_a_webhook_receives_each_message_as_json(tmp_path: Path):
    hook = Hook()
    try:
        block = (
            "  - type: webhook\n    url: ${HOOK_URL}\n    token: ${HOOK_TOKEN}\n"
            "    min_severity: P2\n"
        )
        path = scenario(tmp_path, block)
        result = arbframe(tmp_path, "run", str(path), "--json", HOOK_URL=hook.url,
                          HOOK_TOKEN="hook-secret-42")  # fmt: skip
    finally:
        hook.stop()
    assert result.returncode == 0, result.stderr
    [body] = hook.bodies  # P2 and up: the group; the P3 recovery is below the channel's bar
    assert hook.auth == ["Bearer hook-secret-42"]
    assert body["kind"] == "group" and body["severity"] == "P1"
    assert body["session"] == "drill_latency_spike" and body["time"].endswith("UTC")
    assert sorted(a["rule"] for a in body["alerts"]) == ["fault_detected", "latency"]
    assert "hook-secret-42" not in result.stdout + result.stderr
