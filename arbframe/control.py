"""Operator control of a running wall-clock session: status, pause and resume a symbol, stop.

The session serves a small HTTP endpoint on 127.0.0.1 (aiohttp, on the engine's own loop:
a command runs between two instants, never in the middle of one). Every request carries
``Authorization: Bearer <token>``; the token is random per process and written, with the
endpoint's address, to ``<session>.control`` (mode 0600) beside the session's run file
(:mod:`arbframe.runfiles`), where ``arbframe status|pause|resume|stop`` read it. A request
without the right token is refused (401) and logged, without what it presented. Telegram
commands (``plugins/alerts/telegram.py``) go through the same :meth:`Operator.handle`.

A paused symbol's entries are refused by the kernel from the next quote on
(``ExecutionEngine.paused``); exits, unwinds and open trades carry on. ``stop`` ends the
session as SIGTERM does (a final snapshot, outputs written, exit 130), keeping open trades
(``control.on_stop: keep``) or closing them first (``close``). Redis is not a transport
here: the endpoint is local only.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from arbframe import runfiles
from arbframe.errors import ArbframeError
from arbframe.model import money

# The run it serves (arbframe.runner.Run), not imported: the runner wires this module, and
# only the entry points import the runner (tests/test_layers.py).
Run = Any

COMMANDS = ("status", "pnl", "positions", "pause", "resume", "stop", "help")


def control_path(session: str) -> Path:
    return runfiles.runs_dir() / f"{quote(session, safe='')}.control"


def _iso(ts: int) -> str | None:
    return datetime.fromtimestamp(ts / 1e9, UTC).isoformat(timespec="milliseconds") if ts else None


class Operator:
    """What an operator may do to the session; every method runs on the engine's loop."""

    def __init__(self, run: Run, config: dict[str, Any]) -> None:
        self.run = run
        self.on_stop = config.get("on_stop", "keep")
        from arbframe.units import parse_duration

        self.close_within = parse_duration(config.get("close_within", "30s")) / 1e9
        self.paused: set[str] = set()
        self.log: list[dict[str, Any]] = []
        """Every command applied: what, when (scenario ns), the instants run by then."""
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.bind()

    def bind(self) -> None:
        self.run.execution.paused = self.paused  # a revived engine keeps the pauses

    # ---- commands ----------------------------------------------------------------------------

    def handle(self, command: str, args: list[str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, reply) for one command."""
        command = command.lower().lstrip("/")
        if command not in COMMANDS:
            return 404, {"error": f"unknown command {command!r}", "commands": list(COMMANDS)}
        if command in ("pause", "resume"):
            if len(args) != 1:
                return 400, {"error": f"{command} takes one symbol, e.g. {command} BTC"}
            return self._toggle(command, args[0])
        if command == "stop":
            return 200, self._stop()
        if command == "help":
            return 200, {"commands": list(COMMANDS)}
        status = self.status()
        keys = {"pnl": ("session", "pnl", "trades"), "positions": ("session", "positions")}
        return 200, {k: status[k] for k in keys.get(command, status)}

    def _toggle(self, command: str, symbol: str) -> tuple[int, dict[str, Any]]:
        symbols = self.run.market.symbols()
        if symbol not in symbols:
            return 404, {"error": f"unknown symbol {symbol!r} (symbols: {', '.join(symbols)})"}
        if command == "pause":
            self.paused.add(symbol)
        else:
            self.paused.discard(symbol)
        applied = {
            "command": command,
            "symbol": symbol,
            "applied_ns": self.run.clock.now,
            "instants": self.run.stats.instants,
            "after_trade_seq": self.run.execution._trade_seq,
        }
        self.log.append(applied)
        return 200, {**applied, "paused": sorted(self.paused)}

    def _stop(self) -> dict[str, Any]:
        open_trades = len(self.run.execution.jobs)
        if not self.stopping:
            self.stopping = True
            if self.on_stop == "close" and open_trades:
                self.run._wind_down()  # no new entries; open trades exit now
                asyncio.get_running_loop().create_task(self._stop_when_flat())
            else:
                self.run.stop.request()
        return {"stopping": True, "on_stop": self.on_stop, "open_trades": open_trades}

    async def _stop_when_flat(self) -> None:
        deadline = time.monotonic() + self.close_within
        while self.run.execution.jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.run.stop.request()

    def status(self) -> dict[str, Any]:
        run, ex = self.run, self.run.execution
        closed = [t for t in ex.closed if t.fills]
        net = sum((t.net_pnl for t in closed), Decimal(0))
        return {
            "session": run.info.session,
            "scenario": run.info.name,
            "mode": run.info.mode,
            "pid": os.getpid(),
            "now": _iso(run.clock.now),
            "quotes": run.stats.quotes,
            "stopping": self.stopping,
            "symbols": run.market.symbols(),
            "paused": sorted(self.paused),
            "positions": [
                {
                    "trade_id": t.trade_id,
                    "symbol": t.symbol,
                    "route": t.route,
                    "state": t.state.value,
                    "opened_at": _iso(t.opened_at),
                    "size": money(t.size),
                    "legs": [
                        {
                            "venue": leg.venue,
                            "symbol": leg.symbol,
                            "position": money(leg.position),
                            "target": money(leg.target),
                        }
                        for leg in t.legs
                    ],  # fmt: skip
                }
                for t in (job.trade for job in ex.jobs.values())
            ],
            "trades": {"open": len(ex.jobs), "closed": len(closed)},
            "pnl": {"net": money(net), "currency": run.info.report_currency},
            "refused_paused": ex.refusals["paused"],
        }

    # ---- from another thread (Telegram's poller) ------------------------------------------------

    def submit(self, command: str, args: list[str]) -> Future[tuple[int, dict[str, Any]]]:
        """``handle`` on the engine's loop, from any thread."""
        assert self.loop is not None

        async def apply() -> tuple[int, dict[str, Any]]:
            return self.handle(command, args)

        return asyncio.run_coroutine_threadsafe(apply(), self.loop)


def wire(run: Run) -> Operator | None:
    """The session's operator (the same again for a revived engine); None unless wall-clock."""
    existing: Operator | None = getattr(run, "operator", None)
    if existing is not None:
        existing.bind()
        return existing
    config = run.scenario.get("control", {})
    if run.info.clock != "wall" or not config.get("enabled", True):
        return None
    return Operator(run, config)


# ---- the endpoint ---------------------------------------------------------------------------


@asynccontextmanager
async def serving(run: Run) -> AsyncIterator[None]:
    """While a wall-clock run drives: the endpoint and its control file, Telegram commands,
    and alerting's ticks."""
    from arbframe.alerting import ticker

    stop_ticks = ticker(run.alerting)
    operator = run.operator
    server = None
    try:
        if operator is not None:
            operator.loop = asyncio.get_running_loop()
            server = await _Server.start(operator)
            for channel in run.listeners:
                if hasattr(channel, "serve_commands"):
                    channel.serve_commands(operator)
        yield
    finally:
        stop_ticks()
        if server is not None:
            for channel in run.listeners:
                if hasattr(channel, "serve_commands"):
                    channel.stop_commands()
            await server.close()


class _Server:
    def __init__(self, operator: Operator) -> None:
        self.operator = operator
        self.token = secrets.token_urlsafe(32)
        self.path = control_path(operator.run.info.session)
        self.runner: Any = None

    @classmethod
    async def start(cls, operator: Operator) -> _Server:
        from aiohttp import web

        server = cls(operator)

        @web.middleware
        async def auth(request: Any, handler: Callable[[Any], Any]) -> Any:
            return await server._auth(request, handler)

        app = web.Application(middlewares=[auth])
        app.router.add_get("/status", server._command)
        app.router.add_post("/{command}", server._command)
        server.runner = web.AppRunner(app, access_log=None)
        await server.runner.setup()
        site = web.TCPSite(server.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        server._write(f"http://127.0.0.1:{port}")
        return server

    def _write(self, url: str) -> None:
        """The control file, readable by its owner only, replaced whole."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"pid": os.getpid(), "url": url, "token": self.token}, out)
        partial.replace(self.path)

    async def close(self) -> None:
        with suppress(OSError, ValueError):
            if json.loads(self.path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                self.path.unlink()
        await self.runner.cleanup()

    async def _auth(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        from aiohttp import web

        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            peer = request.remote or "?"
            print(
                f"control: refused {request.method} {request.path} from {peer}: "
                f"{'wrong' if given else 'no'} token",
                file=sys.stderr,
            )
            return web.json_response({"error": "unauthorized"}, status=401)
        return await handler(request)

    async def _command(self, request: Any) -> Any:
        from aiohttp import web

        command = request.match_info.get("command", "status")
        args: list[str] = []
        if request.can_read_body:
            with suppress(ValueError):
                body = await request.json()
                symbol = body.get("symbol") if isinstance(body, dict) else None
                args = [symbol] if isinstance(symbol, str) else []
        status, reply = self.operator.handle(command, args)
        if command in ("pause", "resume", "stop") and status == 200:
            print(f"control: {command} {' '.join(args)} applied".rstrip(), file=sys.stderr)
        return web.json_response(reply, status=status)


# ---- the client (the CLI) -------------------------------------------------------------------


def request(session: str | None, command: str, args: list[str] | None = None,
            timeout: float = 10.0) -> tuple[runfiles.RunFile, int, dict[str, Any]]:  # fmt: skip
    """Send ``command`` to a running session's endpoint: (its run file, HTTP status, reply).
    ArbframeError (exit 2) when no such session runs or it serves no endpoint."""
    target = find_session(session, command)
    endpoint = read_control(target)
    if endpoint is None:
        raise ArbframeError(
            f"arbframe {command}: session {target.session} serves no control endpoint (a "
            "simulated run, control.enabled: false, or it is still starting)"
        )
    method = "GET" if command == "status" else "POST"
    body = None if not args else json.dumps({"symbol": args[0]}).encode()
    req = urllib.request.Request(
        f"{endpoint['url']}/{command}",
        data=body if method == "POST" else None,
        method=method,
        headers={"Authorization": f"Bearer {endpoint['token']}",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:  # noqa: S310 (local)
            return target, answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        return target, err.code, json.loads(err.read() or b"{}")


def find_session(session: str | None, command: str) -> runfiles.RunFile:
    running = runfiles.running()
    listing = ", ".join(f"{r.session} (pid {r.pid}, {r.scenario})" for r in running) or "none"
    if session is not None:
        target = next((r for r in running if r.session == session), None)
        if target is None:
            raise ArbframeError(
                f"arbframe {command}: session {session} is not running (running: {listing})"
            )
        return target
    if len(running) == 1:
        return running[0]
    many = "no session is running" if not running else "several sessions are running"
    raise ArbframeError(f"arbframe {command}: {many}; name one (running: {listing})")


def read_control(target: runfiles.RunFile) -> dict[str, Any] | None:
    """The endpoint of a running session, if it serves one (its own, not a stale file's)."""
    try:
        data = json.loads(control_path(target.session).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("pid") != target.pid:
        return None
    return data
