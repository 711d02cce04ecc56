"""``FakeVenues``: the fake Binance and Upbit on one aiohttp server on 127.0.0.1, in a thread of
its own with its own event loop, with funded accounts and a ``SyntheticMarket`` moving the books.

    with FakeVenues() as fv:
        exchange = ccxt.binance({"apiKey": fv.binance_key, "secret": fv.binance_secret})
        exchange.urls["api"] = binance_ccxt_urls(fv.binance_url)
        fv.call(fv.binance.set_book, "BTC/USDT", bids, asks)   # engine calls run on the loop
        fv.binance.faults.fail_next(1, 503)                    # fault setters: any thread
"""

from __future__ import annotations

import asyncio
import secrets
import string
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .binance import BinanceServer, add_binance_routes
from .binance import ccxt_urls as binance_ccxt_urls
from .engine import Venue, binance_venue, run_on_loop, upbit_venue
from .market import SyntheticMarket

try:  # the Upbit half lives in upbit.py: add_upbit_routes(app, venue, prefix) -> server
    from .upbit import add_upbit_routes
    from .upbit import ccxt_urls as upbit_ccxt_urls
except ImportError:  # pragma: no cover - only while upbit.py is not there
    add_upbit_routes = None
    upbit_ccxt_urls = None

__all__ = ["FakeVenues", "binance_ccxt_urls", "upbit_ccxt_urls"]

BINANCE_BALANCES = {"USDT": "100000", "BTC": "1"}
UPBIT_BALANCES = {"KRW": "150000000", "BTC": "1", "USDT": "10000"}


def _token(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


class FakeVenues:
    """Binance under ``/binance`` and Upbit under ``/upbit`` of ``url``.

    Attributes: ``url``, ``binance_url``, ``upbit_url``; ``binance`` and ``upbit`` (``Venue``),
    ``binance_server`` and ``upbit_server``; ``market`` (``SyntheticMarket``, None with
    ``market=False``); ``binance_key``/``binance_secret``, ``upbit_key``/``upbit_secret`` (random
    per instance); ``loop``. ``env()`` gives the variables a process needs to trade on them."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        binance_balances: dict[str, Any] | None = None,
        upbit_balances: dict[str, Any] | None = None,
        market: bool = True,
        seed: int = 1,
        interval: float = 0.1,
        market_options: dict[str, Any] | None = None,
        binance: Venue | None = None,
        upbit: Venue | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.binance = binance or binance_venue()
        self.upbit = upbit or upbit_venue()
        self.binance_key, self.binance_secret = _token(64), _token(64)
        self.upbit_key, self.upbit_secret = _token(40), _token(40)
        self.binance.add_account(
            self.binance_key,
            self.binance_secret,
            BINANCE_BALANCES if binance_balances is None else binance_balances,
        )
        self.upbit.add_account(
            self.upbit_key,
            self.upbit_secret,
            UPBIT_BALANCES if upbit_balances is None else upbit_balances,
        )
        self.market: SyntheticMarket | None = None
        if market:
            self.market = SyntheticMarket(
                self.binance, self.upbit, seed=seed, interval=interval, **(market_options or {})
            )
        self.binance_server: BinanceServer | None = None
        self.upbit_server: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ---- lifecycle ----
    def start(self) -> FakeVenues:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._main, name="fakevenues", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("fake venues did not start in 15 s")
        if self._error is not None:
            raise RuntimeError(f"fake venues failed to start: {self._error!r}") from self._error
        return self

    def stop(self) -> None:
        if self._thread is None or self.loop is None:
            return
        if self._stopped is not None:
            self.loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> FakeVenues:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as err:  # noqa: BLE001 - reported to start()
            self._error = err
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        for venue in (self.binance, self.upbit):
            venue.faults.loop = loop
        app = web.Application()
        self.binance_server = add_binance_routes(app, self.binance, "/binance")
        if add_upbit_routes is not None:
            self.upbit_server = add_upbit_routes(app, self.upbit, "/upbit")
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        if self.market is not None:
            self.market.start(loop)
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            if self.market is not None:
                await self.market.stop()
            await runner.cleanup()

    # ---- use ----
    @property
    def binance_url(self) -> str:
        return self.url + "/binance"

    @property
    def upbit_url(self) -> str:
        return self.url + "/upbit"

    def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """``fn(*args, **kw)`` on the server's loop thread (where engine calls must run)."""
        return run_on_loop(self.loop, lambda: fn(*args, **kw))

    def env(self) -> dict[str, str]:
        return {
            "ARBFRAME_BINANCE_URL": self.binance_url,
            "ARBFRAME_UPBIT_URL": self.upbit_url,
            "BINANCE_API_KEY": self.binance_key,
            "BINANCE_SECRET": self.binance_secret,
            "UPBIT_ACCESS_KEY": self.upbit_key,
            "UPBIT_SECRET_KEY": self.upbit_secret,
        }

    def binance_ccxt_urls(self) -> dict[str, Any]:
        return binance_ccxt_urls(self.binance_url)

    def upbit_ccxt_urls(self) -> dict[str, Any]:
        if upbit_ccxt_urls is None:
            raise RuntimeError("upbit.py is not there")
        return upbit_ccxt_urls(self.upbit_url)
