"""A pytest plugin for scenario tests (registered through the `pytest11` entry point).

The `run_scenario` fixture writes a scenario (YAML text or a dict) to `tmp_path`, runs it
in-process with every installed plugin, and returns the summary and the run, so plugin
authors test their components the way arbframe tests its own::

    def test_my_feed(run_scenario):
        result = run_scenario({"name": "t", "duration": "1m", ...})
        assert result.summary["portfolio"]["entries"] > 0

`TcpProxy` sits between a client and a real server (PostgreSQL, Redis, a venue) so a test
or drill can cut the connection for real and restore it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arbframe.components import FeedContext, RunInfo
from arbframe.model import Fill, Trade
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario


@dataclass
class ScenarioResult:
    summary: dict[str, Any]
    run: Run

    @property
    def fills(self) -> list[Fill]:
        """Every fill booked, in booking order."""
        return self.run.ledger.fills

    @property
    def trades(self) -> list[Trade]:
        """Closed trades, in closing order."""
        return self.run.execution.closed


def run_scenario_file(
    path: Path, seed: int | None = None, plugins: tuple[Any, ...] = (), **options: Any
) -> ScenarioResult:
    """Load and run a scenario file with every installed plugin, and ``plugins`` (modules or
    objects with hook implementations: a plugin under test, not installed). ``options`` go
    to the run: ``resume=True``, ``reset=True``, ``session="..."``."""
    pm = get_plugin_manager(extra_plugins=plugins)
    registry = build_registry(pm)
    run = Run(load_scenario(path, registry), registry, pm, seed=seed, **options)
    return ScenarioResult(run.execute(), run)


@pytest.fixture
def run_scenario(tmp_path: Path) -> Callable[..., ScenarioResult]:
    """Write `scenario` (YAML text or dict) to tmp_path and run it; extra files beside it;
    `plugins`: plugins to add for this run (e.g. the module under test, not installed)."""

    def run(
        scenario: str | dict[str, Any],
        seed: int | None = None,
        files: dict[str, str] | None = None,
        plugins: tuple[Any, ...] = (),
        **options: Any,
    ) -> ScenarioResult:
        for name, text in (files or {}).items():
            (tmp_path / name).write_text(text)
        path = tmp_path / "scenario.yaml"
        text = scenario if isinstance(scenario, str) else json.dumps(scenario, indent=1)
        path.write_text(text)
        return run_scenario_file(path, seed, plugins, **options)

    return run


def feed_context(
    base: Path,
    seed: int = 0,
    fx: dict[str, float] | None = None,
    quotes: dict[str, str] | None = None,
) -> FeedContext:
    """A context for building a feed outside a run (paths relative to ``base``; venues
    quoted in USDT unless ``quotes`` says otherwise; FX rates from ``fx``, USDT = 1)."""
    rates = {"USDT": 1.0, **(fx or {})}

    def error(path: tuple[str | int, ...], message: str) -> Any:
        from arbframe.errors import ScenarioError

        return ScenarioError(str(base), None, None, ".".join(map(str, path)), message)

    return FeedContext(
        info=RunInfo("test", seed, "backtest", "simulated", "USDT", "test"),
        resolve_path=lambda path: base / path,
        error=error,
        fx_rate=rates.__getitem__,
        venue_quote=lambda venue: (quotes or {}).get(venue, "USDT"),
    )


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of a server, to cut the connection for real.

    Clients connect to ``proxy.port``; ``cut()`` closes every proxied connection (both ends
    see it closed) and stops listening, so new connections are refused as if the server were
    down; ``restore()`` listens again on the same port. Threads, no asyncio: usable from any
    test or drill::

        with TcpProxy("127.0.0.1", 5432) as proxy:
            url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
            ...
            proxy.cut()      # the next query fails
            proxy.restore()  # and the one after works again
    """

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        """The port clients connect to (fixed for the proxy's life)."""
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: cut() or close()
                return
            try:
                server = socket.create_connection(self.target, timeout=2)
                server.settimeout(None)
            except OSError:
                client.close()  # the server itself is down: so is the proxy
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._sockets.discard(sock)
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump blocked in recv()
            sock.close()

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def cut(self) -> None:
        """Close every connection and refuse new ones until ``restore()``."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            listener.close()
        self._drop(*sockets)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
