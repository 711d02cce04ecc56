"""`ccxt`: a real exchange through the ccxt client library (REST, and ccxt.pro websockets).

The venue loads the exchange's markets once, at start-up (precision, minimum amount and
cost; the fee schedule from its preset or config), and streams its order books to the
`venue_books` feed: ``watch_order_book`` over a websocket, a REST snapshot whenever the
websocket is down, reconnection with exponential backoff and jitter.

How it trades depends on the scenario's mode:

* ``shadow``: real books, paper fills. Orders go to a built-in ``paper`` venue that fills
  them against the books the exchange publishes, with the exchange's precision, minimums
  and fees, from the scenario's ``capital``. Nothing is sent to the exchange; no key needed.
* ``live``: real orders (the command line must say ``--live`` too). Each order is sent with
  the kernel's client order id; market orders are native or, where the exchange takes a
  market buy by cost (Upbit), a limit order at the best price plus ``ioc_slippage_bps``,
  immediate-or-cancel. What became of it is followed until final: through the exchange's
  order stream (ccxt.pro ``watch_orders``) where it has one, REST polling otherwise, each
  fill with the fee the exchange charged, in whatever asset. An order whose
  acknowledgement is lost (a timeout, a 5xx) is never sent again: it is looked up by client
  id. A 429 refuses the order before the exchange acts on it: reported rejected.
  Balances: ``balances()`` asks the exchange when no session loop runs (at start-up, for
  the final reconciliation) and otherwise answers from the last read plus this process's
  fills. Requests pass a per-venue token bucket on top of ccxt's own limiter.

API keys come only from environment variables (``api_key: ${BINANCE_API_KEY}``) and read
as their ``${NAME}`` everywhere but in the client itself: logs, errors, summaries and
snapshots never hold them.

Both modes need ``clock: wall``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Any

import ccxt
import ccxt.pro

from arbframe.components import SimulatedExchange
from arbframe.errors import ConfigError
from arbframe.faults import backoff
from arbframe.hookspecs import hookimpl
from arbframe.model import (
    BUY,
    LIMIT,
    Accepted,
    Balances,
    Book,
    CancelRejected,
    Closed,
    FeeSchedule,
    FillReport,
    Instrument,
    OpenOrders,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    Report,
    VenueOrder,
)
from arbframe.orders import OrderState
from arbframe.ratelimit import TokenBucket
from arbframe.realtime import Histogram
from arbframe.schema import DURATION, SECRET
from arbframe.secrets import reveal
from arbframe.units import parse_duration

from .ccxt_presets import PRESETS, Preset
from .paper import PaperExchange

log = logging.getLogger("arbframe.ccxt")

ZERO = Decimal(0)
BPS = Decimal(10_000)
S = 1_000_000_000
STATES = {
    "closed": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}
Levels = tuple[tuple[float, float], ...]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _levels(side: Any, depth: int) -> Levels:
    return tuple((float(level[0]), float(level[1])) for level in side[:depth])


@dataclass
class _Live:
    """What this process knows of one order it sent."""

    request: OrderRequest
    exchange_id: str | None = None
    acked: bool = False
    final: bool = False
    fills: set[str] = field(default_factory=set)  # trade ids reported
    wake: asyncio.Event | None = None
    following: bool = False


class CcxtExchange(SimulatedExchange):
    type_name = "ccxt"
    interface_version = 2
    description = "A real exchange through ccxt: live books; paper fills (shadow) or real orders."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["exchange"],
        "properties": {
            "exchange": {
                "type": "string",
                "description": "A ccxt exchange id; binance and upbit have presets.",
            },
            "url": {
                "type": "string",
                "description": "Base URL of a server speaking the exchange's API (a local "
                "test server; presets only). Empty: the exchange's own.",
            },
            "api_key": SECRET,
            "secret": SECRET,
            "quote": {"type": "string", "description": "Quote currency (default: preset's)."},
            "fees": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "taker_bps": {"type": "number", "minimum": 0, "maximum": 1000},
                    "maker_bps": {"type": "number", "minimum": -100, "maximum": 1000},
                    "asset": {"type": "string"},
                },
            },
            "depth": {"type": "integer", "minimum": 1, "maximum": 100},
            "market_orders": {"enum": ["native", "ioc_limit"]},
            "ioc_slippage_bps": {"type": "number", "minimum": 0, "maximum": 1000},
            "order_updates": {"enum": ["auto", "watch", "poll"]},
            "poll_interval": DURATION,
            "timeout": DURATION,
            "rate_limit": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "per_second": {"type": "number", "exclusiveMinimum": 0},
                    "burst": {"type": "integer", "minimum": 1},
                },
            },
            "reconnect": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"initial": DURATION, "max": DURATION},
            },
            "paper_latency": DURATION,
            "options": {"type": "object", "description": "Extra ccxt options."},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.mode = ctx.info.mode
        if self.mode not in ("shadow", "live"):
            raise ConfigError(
                f"a ccxt venue trades in mode shadow (real books, paper fills) or live, not "
                f"{self.mode}; for a backtest use a paper venue and a recorded feed",
                ("type",),
            )
        self.exchange_id = config["exchange"]
        if self.exchange_id not in ccxt.exchanges:
            raise ConfigError(f"ccxt has no exchange {self.exchange_id!r}", ("exchange",))
        preset = PRESETS.get(self.exchange_id)
        for key in ("quote", "fees"):
            if preset is None and key not in config:
                raise ConfigError(f"{self.exchange_id} has no preset: set {key}", (key,))
        self.preset: Preset | None = preset
        self.quote = config.get("quote") or preset.quote  # type: ignore[union-attr]
        fees = config.get("fees", {})
        self.fee_asset = fees.get("asset", preset.fee_asset if preset else "quote")
        taker = _dec(fees.get("taker_bps", preset.taker_bps if preset else 0))
        self.schedule = FeeSchedule(
            taker_bps=taker,
            maker_bps=_dec(fees.get("maker_bps", preset.maker_bps if preset else taker)),
            asset=self.fee_asset,
            quote_unit=_dec(preset.quote_unit if preset else "1e-8"),
        )
        self.url = (config.get("url") or "").rstrip("/") or None
        if self.url and (preset is None or preset.local_urls is None):
            raise ConfigError(f"url: {self.exchange_id} has no preset for a local server", ("url",))
        self.api_key, self.secret = reveal(config.get("api_key")), reveal(config.get("secret"))
        if self.mode == "live" and not (self.api_key and self.secret):
            raise ConfigError(
                "mode live needs api_key and secret (from environment variables); "
                "the variables are empty",
                ("api_key",),
            )
        self.depth = config.get("depth", 10)
        self.market_orders = config.get(
            "market_orders", preset.market_orders if preset else "native"
        )
        self.ioc_slippage = _dec(config.get("ioc_slippage_bps", 50)) / BPS
        self.order_updates = config.get("order_updates", "auto")
        self.poll_s = parse_duration(config.get("poll_interval", "500ms")) / S
        self.timeout_ms = parse_duration(config.get("timeout", "10s")) // 1_000_000
        budget = config.get("rate_limit", {})
        self.budget = TokenBucket(budget.get("per_second", 10.0), budget.get("burst", 20))
        reconnect = config.get("reconnect", {})
        self.reconnect = (
            parse_duration(reconnect.get("initial", "200ms")),
            parse_duration(reconnect.get("max", "30s")),
        )
        self.outlives_process = self.mode == "live"  # shadow: the paper venue is in-process
        self.fills_priceable = self.mode == "shadow"  # live fills meet the exchange's own book
        self.counts: Counter[str] = Counter()
        self.latency = {"quote_to_send": Histogram(), "quote_to_ack": Histogram()}
        """From the arrival of the book an order was decided on to the request leaving,
        and to the exchange's answer (ns; live orders only)."""
        self.markets: dict[str, Any] = {}
        self._market_of: dict[str, str] = {}  # kernel symbol -> ccxt symbol
        self._instruments: dict[str, Instrument] = {}
        self.books: dict[str, Book] = {}
        self._totals: dict[str, Decimal] = {}
        self._free: dict[str, Decimal] = {}
        self._orders: dict[str, _Live] = {}
        self._exchange_ids: dict[str, str] = {}  # client id -> exchange id, of listed orders
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sync: Any = None
        self._async: Any = None
        self._watcher: asyncio.Task[Any] | None = None
        self._rng = random.Random(f"{ctx.info.seed}/{name}")
        self.paper: PaperExchange | None = None
        if self.mode == "shadow":
            paper_config = {
                "quote": self.quote,
                "fees": {
                    "taker_bps": float(self.schedule.taker_bps),
                    "maker_bps": float(self.schedule.maker_bps),
                    "asset": self.fee_asset,
                },
                "latency": config.get("paper_latency", "0ms"),
                "quote_unit": str(self.schedule.quote_unit),
                "markets": {},
            }
            self.paper = PaperExchange(paper_config, name=name, ctx=ctx)

    # ---- clients ---------------------------------------------------------------------------------

    def _client(self, module: Any) -> Any:
        options = {**(self.preset.options if self.preset else {}), **self.config.get("options", {})}
        settings: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": self.timeout_ms,
            "options": options,
        }
        if self.api_key:
            settings["apiKey"], settings["secret"] = self.api_key, self.secret
        client = getattr(module, self.exchange_id)(settings)
        if self.url:
            client.urls["api"] = self.preset.local_urls(self.url)  # type: ignore[union-attr]
        return client

    def _rest(self) -> Any:
        if self._sync is None:
            self._sync = self._client(ccxt)
        return self._sync

    def _live_client(self) -> Any:
        """The asyncio client (REST and websockets), made in the session's loop."""
        if self._async is None:
            client = self._async = self._client(ccxt.pro)
            client.set_markets_from_exchange(self._rest())
        return self._async

    def scrub(self, text: str) -> str:
        """``text`` without the keys (ccxt's messages may quote a request)."""
        for secret, name in ((self.api_key, "api_key"), (self.secret, "secret")):
            if secret:
                text = text.replace(secret, f"<{name}>")
        return text

    def _why(self, err: BaseException) -> str:
        return self.scrub(f"{type(err).__name__}: {err}")[:300]

    # ---- start-up --------------------------------------------------------------------------

    def _connect(self) -> None:
        """Markets (and, live, balances) before anything else: a venue that cannot be
        reached, refuses the keys or lacks a market stops the run before it starts."""
        where = ("url",) if self.url else ("exchange",)
        try:
            self.markets = self._rest().load_markets()
        except ccxt.BaseError as err:
            why = f"cannot load {self.exchange_id}'s markets: {self._why(err)}"
            raise self._refuse(where, why) from None
        if self.mode == "live":
            try:
                self._read_balances()
            except ccxt.AuthenticationError as err:
                why = f"the exchange refused the key: {self._why(err)}"
                raise self._refuse(("api_key",), why) from None
            except ccxt.BaseError as err:
                raise self._refuse(where, f"cannot read balances: {self._why(err)}") from None

    def _refuse(self, key: tuple[str, ...], message: str) -> Exception:
        return self.ctx.error((*self.scenario_path, *key), message)

    def _read_balances(self) -> dict[str, Decimal]:
        raw = self._rest().fetch_balance()
        self.counts["balance_reads"] += 1
        self._totals = {a: _dec(v) for a, v in raw.get("total", {}).items() if v is not None}
        self._free = {a: _dec(v) for a, v in raw.get("free", {}).items() if v is not None}
        return dict(self._totals)

    def fund(self, balances: dict[str, Decimal]) -> None:
        self._connect()
        if self.paper is not None:
            return self.paper.fund(balances)
        for asset, need in balances.items():  # live: the capital must be there
            have = self._free.get(asset, ZERO)
            if have < need:
                raise self.ctx.error(
                    ("capital", self.name, asset),
                    f"{self.name} holds {have} {asset} free, the scenario's capital needs {need}",
                )
        return None

    def add_instrument(self, symbol: str, book: Book) -> Instrument:
        market_symbol = symbol if "/" in symbol else f"{symbol}/{self.quote}"
        market = self.markets.get(market_symbol)
        if market is None:
            raise self._refuse(
                ("exchange",),
                f"{self.exchange_id} has no market {market_symbol} (asked for {symbol})",
            )
        self._market_of[symbol] = market_symbol
        self.books[symbol] = book
        limits, precision = market.get("limits", {}), market.get("precision", {})
        tick, step = self._tick(market) or _dec(precision["price"]), _dec(precision["amount"])
        min_amount = _dec((limits.get("amount") or {}).get("min") or step)
        min_cost = _dec((limits.get("cost") or {}).get("min") or 0)
        if self.preset is not None and market["quote"] == self.preset.quote:
            min_cost = max(min_cost, _dec(self.preset.min_notional))
        if self.paper is not None:
            self.paper.config["markets"][symbol] = {
                "price_tick": str(tick),
                "amount_step": str(step),
                "min_amount": str(min_amount),
                "min_notional": str(min_cost),
            }
            instrument = self.paper.add_instrument(symbol, book)
        else:
            instrument = Instrument(
                venue=self.name,
                symbol=symbol,
                base=market["base"],
                quote=market["quote"],
                price_tick=tick,
                amount_step=step,
                min_amount=min_amount,
                min_notional=min_cost,
                fees=self.schedule,
                venue_symbol=market["id"],
            )
        self._instruments[symbol] = instrument
        return instrument

    def _tick(self, market: dict[str, Any]) -> Decimal | None:
        """The tick from the preset's ladder at the market's present price, if it has one."""
        ladder = self.preset.tick_ladder if self.preset is not None else ()
        if not ladder or market["quote"] != self.preset.quote:  # type: ignore[union-attr]
            return None
        try:
            book = self._rest().fetch_order_book(market["symbol"], 1)
        except ccxt.BaseError as err:
            why = f"cannot read {market['symbol']}: {self._why(err)}"
            raise self._refuse(("exchange",), why) from None
        if not (book["bids"] and book["asks"]):
            raise self._refuse(("exchange",), f"{market['symbol']} has an empty book")
        mid = (_dec(book["bids"][0][0]) + _dec(book["asks"][0][0])) / 2
        return next(_dec(tick) for floor, tick in ladder if mid >= floor)

    def market_symbol(self, symbol: str) -> str:
        """The ccxt symbol of a kernel symbol (``BTC`` -> ``BTC/KRW``)."""
        return self._market_of.get(symbol) or (
            symbol if "/" in symbol else f"{symbol}/{self.quote}"
        )

    def describe(self) -> list[str]:
        """What the start-up check found: markets, and (live) balances."""
        lines = []
        for symbol, instrument in self._instruments.items():
            lines.append(
                f"{self.name}: {self.market_symbol(symbol)} tick {instrument.price_tick} step "
                f"{instrument.amount_step} min {instrument.min_amount} / {instrument.min_notional} "
                f"{instrument.quote}, fees {instrument.fees.taker_bps} bp in {self.fee_asset}"
            )
        if self.paper is not None:
            held = ", ".join(f"{v} {a}" for a, v in sorted(self.paper.balances().items()))
            lines.append(f"{self.name}: shadow mode, paper balances {held}")
        else:
            held = ", ".join(f"{v} {a}" for a, v in sorted(self._totals.items()) if v)
            lines.append(f"{self.name}: live, balances {held or 'none'}")
        return lines

    # ---- the trading interface -----------------------------------------------------------------

    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    def balances(self) -> dict[str, Decimal]:
        if self.paper is not None:
            return self.paper.balances()
        if _loop_running():  # a strategy asking mid-session: no blocking request
            return dict(self._totals)
        return self._read_balances()  # start-up and the final reconciliation: the venue's word

    def available(self, asset: str) -> Decimal:
        if self.paper is not None:
            return self.paper.available(asset)
        return self._free.get(asset, ZERO)

    def submit(self, order: OrderRequest) -> None:
        if self.paper is not None:
            return self.paper.submit(order)
        live = self._orders[order.client_id] = _Live(order)
        if not self._spawn(self._place(live)):
            self._emit(Closed(self.name, order.client_id, OrderState.REJECTED, ZERO,
                              self.ctx.clock.now, "not sent: the session has ended"))  # fmt: skip
        return None

    def cancel(self, order: OrderRequest) -> None:
        if self.paper is not None:
            return self.paper.cancel(order)
        self._spawn(self._cancel(self._known(order)))
        return None

    def fetch_order(self, order: OrderRequest) -> None:
        if self.paper is not None:
            return self.paper.fetch_order(order)
        self._spawn(self._answer(self._known(order)))
        return None

    def fetch_open_orders(self) -> None:
        if self.paper is not None:
            return self.paper.fetch_open_orders()
        self._spawn(self._open_orders())
        return None

    def fetch_balances(self) -> None:
        if self.paper is not None:
            return self.paper.fetch_balances()
        self._spawn(self._balances())
        return None

    def stats(self) -> dict[str, Any]:
        out = dict(self.paper.stats()) if self.paper is not None else {}
        out.update({"exchange": self.exchange_id, "mode": self.mode, **self.counts})
        out["rate_limit_waits"] = self.budget.waited
        for name, histogram in self.latency.items():
            if histogram.count:
                out[f"{name}_ms_p50"] = round(histogram.quantile(0.5) / 1e6, 3)  # type: ignore[operator]
                out[f"{name}_ms_p99"] = round(histogram.quantile(0.99) / 1e6, 3)  # type: ignore[operator]
        return out

    # ---- the simulation interface (books; shadow fills) ---------------------------------------

    def on_start(self, ts: int) -> None:
        if self.paper is not None:
            self.paper.on_start(ts)
        else:
            self._watch_orders()

    def on_resume(self) -> None:
        if self.paper is None:
            self._watch_orders()

    def on_book(self, ts: int, symbol: str, bids: Any, asks: Any) -> None:
        if self.paper is not None:
            return self.paper.on_book(ts, symbol, bids, asks)
        book = self.books[symbol]
        book.bids, book.asks, book.ts = bids, asks, ts
        return None

    def snapshot_state(self) -> dict[str, Any]:
        # The exchange keeps the orders; the kernel's snapshot keeps what it sent. Clients,
        # tasks and keys are this process's.
        paper = self.paper.snapshot_state() if self.paper is not None else None
        return {"paper": paper, "counts": Counter(self.counts), "latency": self.latency}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.counts, self.latency = state["counts"], state["latency"]
        if self.paper is not None and state["paper"] is not None:
            self.paper.restore_state(state["paper"])

    # ---- market data ---------------------------------------------------------------------------

    async def stream_book(self, market_symbol: str, emit: Callable[[Levels, Levels], None]) -> None:
        """Deliver every book of ``market_symbol`` (a ccxt symbol) to ``emit(bids, asks)``
        until cancelled: websocket first; while it is down, a REST snapshot between
        reconnection attempts, spaced by exponential backoff with jitter."""
        client = self._live_client()
        delays = self._backoff()
        down = False
        while True:
            try:
                book = await client.watch_order_book(market_symbol)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 (any failure: the same recovery)
                if not down:
                    down = True
                    self.counts["ws_disconnects"] += 1
                    log.warning("%s: %s book stream down: %s", self.name, market_symbol,
                                self._why(err))  # fmt: skip
                await self._rest_book(client, market_symbol, emit)
                await asyncio.sleep(next(delays) / S)
                self.counts["ws_reconnects"] += 1
                continue
            if down:
                down = False
                delays = self._backoff()
                log.info("%s: %s book stream back", self.name, market_symbol)
            self.counts["ws_books"] += 1
            emit(_levels(book["bids"], self.depth), _levels(book["asks"], self.depth))

    def _backoff(self) -> backoff:
        initial, maximum = self.reconnect
        return backoff(initial, maximum, 2.0, 0.25, self._rng)

    async def _rest_book(self, client: Any, market_symbol: str, emit: Callable[..., None]) -> None:
        if not self.budget.try_acquire():  # the budget is for orders first
            return
        try:
            book = await client.fetch_order_book(market_symbol, self.depth)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001
            self.counts["rest_book_errors"] += 1
            log.debug("%s: REST book failed: %s", self.name, self._why(err))
            return
        self.counts["rest_books"] += 1
        emit(_levels(book["bids"], self.depth), _levels(book["asks"], self.depth))

    # ---- live orders: the session loop's tasks ---------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # after the session: nothing can be sent or asked any more
            work.close()
            self.counts["not_sent_after_session"] += 1
            return False
        task = loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return True

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.counts["task_errors"] += 1
            err = task.exception()
            log.error("%s: %s", self.name, self._why(err))  # type: ignore[arg-type]

    def _emit(self, report: Report) -> None:
        """Deliver a report on the kernel's clock, in the order emitted."""
        if isinstance(report, FillReport):
            self._mirror(report)
        clock = self.ctx.clock
        clock.call_at(clock.present(), self.ctx.report, report)  # it arrived now, not before

    def _known(self, request: OrderRequest) -> _Live:
        live = self._orders.get(request.client_id)
        if live is None:  # sent by a process before this one (resume), or an orphan
            exchange_id = self._exchange_ids.get(request.client_id)
            live = self._orders[request.client_id] = _Live(request, exchange_id, bool(exchange_id))
        return live

    async def _place(self, live: _Live) -> None:
        request = live.request
        instrument = self._instruments[request.symbol]
        kind, price, params = self._shape(request, instrument)
        client = self._live_client()
        quoted = self.books[request.symbol].ts  # when the book behind the decision arrived
        try:
            await self.budget.acquire()
            self.counts["orders_sent"] += 1
            self.latency["quote_to_send"].add(time.time_ns() - quoted)
            raw = await client.create_order(
                self.market_symbol(request.symbol), kind, request.side, float(request.amount),
                price, params,
            )  # fmt: skip
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as err:
            # Refused before it was acted on: nothing was placed.
            self.counts["rate_limited"] += 1
            return self._reject(live, f"rate limited: {self._why(err)}")
        except (ccxt.NetworkError, ccxt.DuplicateOrderId) as err:
            # The order may or may not be there: never send it again, look it up.
            self.counts["unknown_outcome"] += 1
            log.warning("%s: order %s: no answer (%s); looking it up", self.name,
                        request.client_id, self._why(err))  # fmt: skip
            return await self._follow(live)
        except ccxt.BaseError as err:
            self.counts["rejected"] += 1
            return self._reject(live, self._why(err))
        self.latency["quote_to_ack"].add(time.time_ns() - quoted)
        await self._absorb(live, raw)
        if not live.final:
            await self._follow(live)
        return None

    def _shape(
        self, request: OrderRequest, instrument: Instrument
    ) -> tuple[str, float | None, dict[str, Any]]:
        """ccxt's (type, price, params) for a kernel order."""
        params: dict[str, Any] = {"clientOrderId": request.client_id}
        if request.type == LIMIT:
            return "limit", float(request.price), params  # type: ignore[arg-type]
        if self.market_orders == "native":
            return "market", None, params
        book = self.books[request.symbol]
        best = book.asks[0][0] if request.side == BUY else book.bids[0][0]
        factor = 1 + self.ioc_slippage if request.side == BUY else 1 - self.ioc_slippage
        rounding = ROUND_UP if request.side == BUY else ROUND_DOWN
        tick = instrument.price_tick
        price = (_dec(best) * factor / tick).to_integral_value(rounding) * tick
        params["timeInForce"] = "IOC"
        return "limit", float(price), params

    def _reject(self, live: _Live, reason: str) -> None:
        live.final = True
        self._emit(Closed(self.name, live.request.client_id, OrderState.REJECTED, ZERO,
                          self.ctx.clock.now, reason))  # fmt: skip

    async def _follow(self, live: _Live) -> None:
        """Ask about the order until it is final: woken by the order stream, or every
        ``poll_interval``; a lookup that fails is tried again at the next turn."""
        if live.following:
            return
        live.following = True
        live.wake = live.wake or asyncio.Event()
        unknown = 0
        try:
            while not live.final:
                try:
                    raw = await self._lookup(live)
                except ccxt.OrderNotFound:
                    # Not there (yet). After a few tries the kernel's own queries decide
                    # when it is lost.
                    unknown += 1
                    if unknown >= 3:
                        return
                    raw = None
                except ccxt.BaseError as err:
                    self.counts["lookup_errors"] += 1
                    log.debug("%s: lookup failed: %s", self.name, self._why(err))
                    raw = None
                if raw is not None:
                    await self._absorb(live, raw)
                if live.final:
                    return
                with suppress(TimeoutError):
                    await asyncio.wait_for(live.wake.wait(), self.poll_s)
                live.wake.clear()
        finally:
            live.following = False

    async def _lookup(self, live: _Live) -> dict[str, Any]:
        """The order as the exchange has it, by its id, or by our client id."""
        client, symbol = self._live_client(), self.market_symbol(live.request.symbol)
        await self.budget.acquire()
        self.counts["lookups"] += 1
        if live.exchange_id:
            return await client.fetch_order(live.exchange_id, symbol)
        cid = live.request.client_id
        if self.exchange_id == "upbit":  # ccxt's fetch_order takes only the uuid there
            raw = await client.privateGetOrder({"identifier": cid})
            return client.parse_order(raw, client.market(symbol))
        key = "origClientOrderId" if self.exchange_id == "binance" else "clientOrderId"
        return await client.fetch_order(None, symbol, {key: cid})

    async def _absorb(self, live: _Live, raw: dict[str, Any]) -> None:
        """Report what ``raw`` (a ccxt order) tells that was not reported yet."""
        request, now = live.request, self.ctx.clock.now
        if raw.get("id") and not live.acked:
            live.exchange_id, live.acked = str(raw["id"]), True
            self._emit(Accepted(self.name, request.client_id, live.exchange_id, now))
        state = STATES.get(raw.get("status") or "")
        filled = _dec(raw.get("filled") or 0)
        fills = await self._fills(live, raw, filled, final=state is not None)
        if fills is None:
            return  # fills not all known yet: the next lookup completes them
        for fill in fills:
            live.fills.add(fill.fill_id)
            self._emit(fill)
        if state is not None:
            live.final = True
            if live.wake is not None:
                live.wake.set()
            reason = "" if state is OrderState.FILLED else f"{raw.get('status')} by the exchange"
            self._emit(Closed(self.name, request.client_id, state, filled, now, reason,
                              live.exchange_id))  # fmt: skip

    async def _fills(
        self, live: _Live, raw: dict[str, Any], filled: Decimal, final: bool
    ) -> list[FillReport] | None:
        """The order's fills not reported yet, each with its fee; None while the exchange
        has not told all of them (the fills must add up to ``filled``)."""
        if filled == 0:
            return []
        trades = raw.get("trades") or []
        if _total(trades) < filled:  # e.g. Binance's order lookup carries no fills
            trades = await self._trades_of(live)
        if _total(trades) != filled:
            return None
        priced = [t for t in trades if t.get("fee") and t["fee"].get("cost") is not None]
        if len(priced) < len(trades):
            order_fee = raw.get("fee") or {}
            if not final or order_fee.get("cost") is None:
                return None  # a fee given per order (Upbit) is final with the order
            return self._split_fee(live, trades, _dec(order_fee["cost"]), order_fee["currency"])
        return [self._fill(live, t, _dec(t["fee"]["cost"]), t["fee"]["currency"])
                for t in trades if str(t["id"]) not in live.fills]  # fmt: skip

    async def _trades_of(self, live: _Live) -> list[dict[str, Any]]:
        client, symbol = self._live_client(), self.market_symbol(live.request.symbol)
        await self.budget.acquire()
        self.counts["trade_lookups"] += 1
        params = {"orderId": live.exchange_id} if self.exchange_id == "binance" else {}
        trades = await client.fetch_my_trades(symbol, None, None, params)
        return [t for t in trades if str(t.get("order")) == live.exchange_id]

    def _split_fee(
        self, live: _Live, trades: list[dict[str, Any]], total: Decimal, asset: str
    ) -> list[FillReport]:
        """An order-level fee over its fills: each fill's share by the schedule, the last
        one the rest, so the fills' fees add up to what the exchange charged."""
        instrument = self._instruments[live.request.symbol]
        unit = self.schedule.quote_unit if asset == instrument.quote else self.schedule.unit
        rate = self.schedule.taker_bps / BPS
        fees, spent = [], ZERO
        for trade in trades[:-1]:
            fee = (_dec(trade["price"]) * _dec(trade["amount"]) * rate).quantize(
                unit, ROUND_HALF_EVEN
            )
            fees.append(fee)
            spent += fee
        fees.append(total - spent)
        pairs = zip(trades, fees, strict=True)
        return [
            self._fill(live, t, fee, asset) for t, fee in pairs if str(t["id"]) not in live.fills
        ]

    def _fill(self, live: _Live, trade: dict[str, Any], fee: Decimal, asset: str) -> FillReport:
        request = live.request
        instrument = self._instruments[request.symbol]
        price = _dec(trade["price"]).quantize(instrument.price_tick)
        if asset == instrument.quote:
            fee_price = Decimal(1)
        elif asset == instrument.base:
            fee_price = price
        else:  # a third asset (e.g. BNB): valued at the schedule's price, if it has one
            fee_price = self.schedule.asset_price or ZERO
            self.counts["fees_in_other_assets"] += 1
        return FillReport(
            venue=self.name,
            client_id=request.client_id,
            exchange_id=live.exchange_id,
            fill_id=str(trade["id"]),
            ts=self.ctx.clock.now,  # when it reached us: the kernel's time, not the venue's
            symbol=request.symbol,
            side=request.side,
            price=price,
            amount=_dec(trade["amount"]).quantize(instrument.amount_step),
            fee=fee,
            fee_asset=asset,
            fee_price=fee_price,
            liquidity="maker" if trade.get("takerOrMaker") == "maker" else "taker",
        )

    def _mirror(self, fill: FillReport) -> None:
        """This process's fills move its idea of the balances until the next read."""
        instrument = self._instruments[fill.symbol]
        sign = 1 if fill.side == BUY else -1
        moves = {
            instrument.base: sign * fill.amount,
            instrument.quote: -sign * fill.price * fill.amount,
        }
        moves[fill.fee_asset] = moves.get(fill.fee_asset, ZERO) - fill.fee
        for asset, delta in moves.items():
            self._totals[asset] = self._totals.get(asset, ZERO) + delta
            self._free[asset] = self._free.get(asset, ZERO) + delta

    async def _answer(self, live: _Live) -> None:
        """The kernel asks (a timeout, or a resume): everything the exchange says of it."""
        request, now = live.request, self.ctx.clock.now
        try:
            raw = await self._lookup(live)
        except ccxt.OrderNotFound:
            return self._emit(OrderNotFound(self.name, request.client_id, now))
        except ccxt.BaseError as err:  # no answer: the kernel asks again at its next timeout
            self.counts["lookup_errors"] += 1
            log.warning("%s: cannot look up %s: %s", self.name, request.client_id,
                        self._why(err))  # fmt: skip
            return None
        live.exchange_id = live.exchange_id or str(raw["id"])
        state = STATES.get(raw.get("status") or "") or (
            OrderState.PARTIALLY_FILLED if raw.get("filled") else OrderState.OPEN
        )
        filled = _dec(raw.get("filled") or 0)
        fills = await self._fills(live, raw, filled, final=state.final)
        if fills is None:  # not all told yet: answer when they are
            return await self._follow(live)
        known = tuple(fills)
        for fill in known:
            live.fills.add(fill.fill_id)
        live.acked = True
        live.final = live.final or state.final
        self._emit(OrderStatus(self.name, request.client_id, live.exchange_id, state, filled,
                               known, now, "" if state.final else "open"))  # fmt: skip
        if not state.final:
            self._spawn(self._follow(live))
        return None

    async def _open_orders(self) -> None:
        """Every order open on the markets this session trades, whoever placed it. No
        answer when a request fails: the kernel asks again."""
        client, listed = self._live_client(), []
        try:
            for symbol in self._instruments:
                await self.budget.acquire()
                self.counts["open_order_reads"] += 1
                for raw in await client.fetch_open_orders(self.market_symbol(symbol)):
                    listed.append(self._venue_order(symbol, raw))
        except ccxt.BaseError as err:
            self.counts["open_order_errors"] += 1
            log.warning("%s: cannot list open orders: %s", self.name, self._why(err))
            return
        self._emit(OpenOrders(self.name, self.ctx.clock.present(), tuple(listed)))

    def _venue_order(self, symbol: str, raw: dict[str, Any]) -> VenueOrder:
        exchange_id = str(raw["id"])
        client_id = raw.get("clientOrderId") or f"{self.name}:{exchange_id}"
        self._exchange_ids[client_id] = exchange_id  # a cancel of it finds it by this id
        filled = _dec(raw.get("filled") or 0)
        price = raw.get("price")
        return VenueOrder(
            client_id=client_id,
            exchange_id=exchange_id,
            symbol=symbol,
            side=raw["side"],
            type=raw.get("type") or LIMIT,
            amount=_dec(raw["amount"]),
            price=None if price is None else _dec(price),
            filled=filled,
            state=OrderState.PARTIALLY_FILLED if filled else OrderState.OPEN,
        )

    async def _balances(self) -> None:
        """The account's totals as the exchange has them; they also replace this process's
        running idea of the balances (``available``)."""
        client = self._live_client()
        try:
            await self.budget.acquire()
            raw = await client.fetch_balance()
        except ccxt.BaseError as err:
            self.counts["balance_errors"] += 1
            log.warning("%s: cannot read balances: %s", self.name, self._why(err))
            return
        self.counts["balance_reads"] += 1
        self._totals = {a: _dec(v) for a, v in raw.get("total", {}).items() if v is not None}
        self._free = {a: _dec(v) for a, v in raw.get("free", {}).items() if v is not None}
        self._emit(Balances(self.name, self.ctx.clock.present(), dict(self._totals)))

    async def _cancel(self, live: _Live) -> None:
        request = live.request
        client = self._live_client()
        try:
            await self.budget.acquire()
            if not live.exchange_id:
                live.exchange_id = str((await self._lookup(live))["id"])
            await client.cancel_order(live.exchange_id, self.market_symbol(request.symbol))
        except ccxt.OrderNotFound as err:
            self._emit(CancelRejected(self.name, request.client_id, self.ctx.clock.now,
                                      self._why(err)))  # fmt: skip
        except ccxt.BaseError as err:
            self.counts["cancel_errors"] += 1
            log.warning("%s: cancel %s: %s", self.name, request.client_id, self._why(err))
        await self._follow(live)

    def _watch_orders(self) -> None:
        """The order stream, where the exchange has one: a change wakes the order's
        follower at once instead of at its next poll."""
        if self.order_updates == "poll" or self._watcher is not None:
            return
        client = self._live_client()
        if not client.has.get("watchOrders"):
            if self.order_updates == "watch":
                log.warning("%s: %s has no order stream; polling", self.name, self.exchange_id)
            return
        self._spawn(self._order_stream(client))

    async def _order_stream(self, client: Any) -> None:
        delays = self._backoff()
        while True:
            try:
                orders = await client.watch_orders()
            except asyncio.CancelledError:
                raise
            except ccxt.NotSupported:
                return
            except Exception as err:  # noqa: BLE001
                self.counts["order_stream_errors"] += 1
                log.debug("%s: order stream: %s", self.name, self._why(err))
                await asyncio.sleep(next(delays) / S)
                continue
            delays = self._backoff()
            for order in orders:
                live = self._orders.get(order.get("clientOrderId") or "")
                if live is not None and live.wake is not None:
                    self.counts["order_events"] += 1
                    live.wake.set()

    # ---- the end of a session ---------------------------------------------------------------

    def busy(self) -> bool:
        """Orders sent by this process whose outcome is not known yet."""
        return any(not live.final for live in self._orders.values())

    async def aclose(self) -> None:
        """Stop the streams and the followers, close the connections."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._async is not None:
            await self._async.close()
            self._async = None


def _total(trades: list[dict[str, Any]]) -> Decimal:
    return sum((_dec(t.get("amount") or 0) for t in trades), ZERO)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@hookimpl
def arbframe_register_exchanges(register: Any) -> None:
    register(CcxtExchange)
