"""`ccxt`: a real exchange through the ccxt client library (REST, and ccxt.pro websockets).

The venue loads the exchange's markets once, at start-up (precision, minimum amount and
cost; the fee schedule from its preset or config), and streams its order books to the
`venue_books` feed: ``watch_order_book`` over a websocket, a REST snapshot whenever the
websocket is down, reconnection with exponential backoff and jitter.

How it trades depends on the scenario's mode:

* ``shadow``: real books, paper fills. Orders go to a built-in ``paper`` venue that fills
  them against the books the exchange publishes, with the exchange's precision, minimums
  and fees, from the scenario's ``capital``. Nothing is sent to the exchange; no key needed.
* ``live``: real orders (the command line must say ``--live`` too), their life at the
  exchange in ccxt_orders.py. Balances: ``balances()`` asks the exchange when no session
  loop runs (at start-up, for the final reconciliation) and otherwise answers from the last
  read plus this process's fills. Requests pass a per-venue token bucket on top of ccxt's
  own limiter. Amounts, prices, fees and balances are read as the exchange's strings
  (ccxt's ``number = str``): none passes through a float.

API keys come only from environment variables (``api_key: ${BINANCE_API_KEY}``) and read
as their ``${NAME}`` everywhere but in the client itself: logs, errors, summaries and
snapshots never hold them.

Both modes need ``clock: wall``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro

from arbframe.components import SimulatedExchange
from arbframe.errors import ConfigError
from arbframe.faults import backoff
from arbframe.hookspecs import hookimpl
from arbframe.model import (
    BUY,
    Balances,
    Book,
    FeeSchedule,
    FillReport,
    Instrument,
    OrderRequest,
    OrderStatus,
    Report,
)
from arbframe.ratelimit import TokenBucket
from arbframe.realtime import Histogram
from arbframe.schema import DURATION, SECRET
from arbframe.secrets import reveal
from arbframe.units import parse_duration

from .ccxt_orders import LiveOrders, dec
from .ccxt_presets import PRESETS, Preset
from .paper import PaperExchange

log = logging.getLogger("arbframe.ccxt")

ZERO = Decimal(0)
BPS = Decimal(10_000)
S = 1_000_000_000
Levels = tuple[tuple[float, float], ...]


def _levels(side: Any, depth: int) -> Levels:
    return tuple((float(level[0]), float(level[1])) for level in side[:depth])


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
                    "asset_price": {
                        "type": "string",
                        "pattern": "^\\d*\\.?\\d+$",
                        "description": "For fees in a third asset (BNB): its price in the "
                        "quote currency.",
                    },
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
        taker = dec(fees.get("taker_bps", preset.taker_bps if preset else 0))
        self.schedule = FeeSchedule(
            taker_bps=taker,
            maker_bps=dec(fees.get("maker_bps", preset.maker_bps if preset else taker)),
            asset=self.fee_asset,
            asset_price=dec(fees["asset_price"]) if "asset_price" in fees else None,
            quote_unit=dec(preset.quote_unit if preset else "1e-8"),
        )
        self.url = (config.get("url") or "").rstrip("/") or None
        if self.url and (preset is None or preset.local_urls is None):
            raise ConfigError(f"url: {self.exchange_id} has no preset for a local server", ("url",))
        self.api_key, self.secret = reveal(config.get("api_key")), reveal(config.get("secret"))
        if self.mode == "live" and not (self.api_key and self.secret):
            raise ConfigError(
                f"mode live needs api_key and secret: {config.get('api_key')} and "
                f"{config.get('secret')} are empty or unset",
                ("api_key",),
            )
        self.depth = config.get("depth", 10)
        self.market_orders = config.get(
            "market_orders", preset.market_orders if preset else "native"
        )
        self.ioc_slippage = dec(config.get("ioc_slippage_bps", 50)) / BPS
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
        self.traded: dict[str, Instrument] = {}
        """Kernel symbol -> instrument, of the markets this session trades."""
        self.books: dict[str, Book] = {}
        self._totals: dict[str, Decimal] = {}
        self._free: dict[str, Decimal] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._mirrored: set[str] = set()  # fill ids already in _totals/_free
        self._rest_client: Any = None
        self._trading: Any = None
        self._streams: Any = None
        self._rng = random.Random(f"{ctx.info.seed}/{name}")
        self.paper: PaperExchange | None = None
        self.orders = LiveOrders(self) if self.mode == "live" else None
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

    def _client(self, module: Any, exact: bool) -> Any:
        options = {**(self.preset.options if self.preset else {}), **self.config.get("options", {})}
        settings: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": self.timeout_ms,
            "options": options,
        }
        if self.api_key:
            settings["apiKey"], settings["secret"] = self.api_key, self.secret
        client = getattr(module, self.exchange_id)(settings)
        if exact:  # amounts, prices, fees and balances as the exchange's strings, not floats
            client.number = str
        if self.url:
            client.urls["api"] = self.preset.local_urls(self.url)  # type: ignore[union-attr]
        if self.markets:
            client.set_markets_from_exchange(self._rest())
        return client

    def _rest(self) -> Any:
        """The blocking client: start-up, and the final balances."""
        if self._rest_client is None:
            self._rest_client = self._client(ccxt, exact=True)
        return self._rest_client

    def trading(self) -> Any:
        """The asyncio REST client (orders, balances), made in the session's loop."""
        if self._trading is None:
            self._trading = self._client(ccxt_async, exact=True)
        return self._trading

    def streams(self) -> Any:
        """The websocket client (books, the order stream), made in the session's loop. Its
        numbers are floats: books are floats on the per-quote path anyway."""
        if self._streams is None:
            self._streams = self._client(ccxt.pro, exact=False)
        return self._streams

    def scrub(self, text: str) -> str:
        """``text`` without the keys (ccxt's messages may quote a request)."""
        for secret, name in ((self.api_key, "api_key"), (self.secret, "secret")):
            if secret:
                text = text.replace(secret, f"<{name}>")
        return text

    def why(self, err: BaseException) -> str:
        return self.scrub(f"{type(err).__name__}: {err}")[:300]

    # ---- start-up --------------------------------------------------------------------------

    def _connect(self) -> None:
        """Markets (and, live, balances) before anything else: a venue that cannot be
        reached, refuses the keys or lacks a market stops the run before it starts."""
        where = ("url",) if self.url else ("exchange",)
        try:
            self.markets = self._rest().load_markets()
        except ccxt.BaseError as err:
            why = f"cannot load {self.exchange_id}'s markets: {self.why(err)}"
            raise self._refuse(where, why) from None
        if self.mode == "live":
            try:
                self._read_balances()
            except ccxt.AuthenticationError as err:
                why = f"the exchange refused the key: {self.why(err)}"
                raise self._refuse(("api_key",), why) from None
            except ccxt.BaseError as err:
                raise self._refuse(where, f"cannot read balances: {self.why(err)}") from None

    def _refuse(self, key: tuple[str, ...], message: str) -> Exception:
        return self.ctx.error((*self.scenario_path, *key), message)

    def _read_balances(self) -> dict[str, Decimal]:
        raw = self._rest().fetch_balance()
        self.counts["balance_reads"] += 1
        self._totals = {a: dec(v) for a, v in raw.get("total", {}).items() if v is not None}
        self._free = {a: dec(v) for a, v in raw.get("free", {}).items() if v is not None}
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
        # Normalised: the kernel rounds by a step's exponent (0.00001000 would round to 1e-8).
        tick = (self._tick(market) or dec(precision["price"])).normalize()
        step = dec(precision["amount"]).normalize()
        min_amount = dec((limits.get("amount") or {}).get("min") or step).normalize()
        min_cost = dec((limits.get("cost") or {}).get("min") or 0).normalize()
        if self.preset is not None and market["quote"] == self.preset.quote:
            min_cost = max(min_cost, dec(self.preset.min_notional))
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
        self.traded[symbol] = instrument
        return instrument

    def _tick(self, market: dict[str, Any]) -> Decimal | None:
        """The tick from the preset's ladder at the market's present price, if it has one."""
        ladder = self.preset.tick_ladder if self.preset is not None else ()
        if not ladder or market["quote"] != self.preset.quote:  # type: ignore[union-attr]
            return None
        try:
            book = self._rest().fetch_order_book(market["symbol"], 1)
        except ccxt.BaseError as err:
            why = f"cannot read {market['symbol']}: {self.why(err)}"
            raise self._refuse(("exchange",), why) from None
        if not (book["bids"] and book["asks"]):
            raise self._refuse(("exchange",), f"{market['symbol']} has an empty book")
        mid = (dec(book["bids"][0][0]) + dec(book["asks"][0][0])) / 2
        return next(dec(tick) for floor, tick in ladder if mid >= floor)

    def market_symbol(self, symbol: str) -> str:
        """The ccxt symbol of a kernel symbol (``BTC`` -> ``BTC/KRW``)."""
        return self._market_of.get(symbol) or (
            symbol if "/" in symbol else f"{symbol}/{self.quote}"
        )

    def describe(self) -> list[str]:
        """What the start-up check found: markets, and (live) balances."""
        lines = []
        for symbol, instrument in self.traded.items():
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
        return dict(self.traded)

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
        return self.orders.submit(order)  # type: ignore[union-attr]

    def cancel(self, order: OrderRequest) -> None:
        if self.paper is not None:
            return self.paper.cancel(order)
        return self.orders.cancel(order)  # type: ignore[union-attr]

    def fetch_order(self, order: OrderRequest) -> None:
        if self.paper is not None:
            return self.paper.fetch_order(order)
        return self.orders.query(order)  # type: ignore[union-attr]

    def fetch_open_orders(self) -> None:
        if self.paper is not None:
            return self.paper.fetch_open_orders()
        return self.orders.open_orders()  # type: ignore[union-attr]

    def fetch_balances(self) -> None:
        if self.paper is not None:
            return self.paper.fetch_balances()
        self.spawn(self._balances())
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
            self.orders.watch()  # type: ignore[union-attr]

    def on_resume(self) -> None:
        if self.paper is None:
            self.orders.watch()  # type: ignore[union-attr]

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
        client = self.streams()
        delays = self.delays()
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
                                self.why(err))  # fmt: skip
                await self._rest_book(client, market_symbol, emit)
                await asyncio.sleep(next(delays) / S)
                self.counts["ws_reconnects"] += 1
                continue
            if down:
                down = False
                delays = self.delays()
                log.info("%s: %s book stream back", self.name, market_symbol)
            self.counts["ws_books"] += 1
            emit(_levels(book["bids"], self.depth), _levels(book["asks"], self.depth))

    def delays(self) -> backoff:
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
            log.debug("%s: REST book failed: %s", self.name, self.why(err))
            return
        self.counts["rest_books"] += 1
        emit(_levels(book["bids"], self.depth), _levels(book["asks"], self.depth))

    # ---- live orders: the session loop's tasks ---------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> bool:
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
            log.error("%s: %s", self.name, self.why(err))  # type: ignore[arg-type]

    def emit(self, report: Report) -> None:
        """Deliver a report on the kernel's clock, in the order emitted."""
        fills = (report,) if isinstance(report, FillReport) else ()
        if isinstance(report, OrderStatus):
            fills = report.fills
        for fill in fills:
            if fill.fill_id not in self._mirrored:
                self._mirrored.add(fill.fill_id)
                self._mirror(fill)
        clock = self.ctx.clock
        clock.call_at(clock.present(), self.ctx.report, report)  # it arrived now, not before

    def _mirror(self, fill: FillReport) -> None:
        """This process's fills move its idea of the balances until the next read."""
        instrument = self.traded[fill.symbol]
        sign = 1 if fill.side == BUY else -1
        moves = {
            instrument.base: sign * fill.amount,
            instrument.quote: -sign * fill.price * fill.amount,
        }
        moves[fill.fee_asset] = moves.get(fill.fee_asset, ZERO) - fill.fee
        for asset, delta in moves.items():
            self._totals[asset] = self._totals.get(asset, ZERO) + delta
            self._free[asset] = self._free.get(asset, ZERO) + delta

    async def _balances(self) -> None:
        """The account's totals as the exchange has them; they also replace this process's
        running idea of the balances (``available``)."""
        try:
            await self.budget.acquire()
            raw = await self.trading().fetch_balance()
        except ccxt.BaseError as err:
            self.counts["balance_errors"] += 1
            log.warning("%s: cannot read balances: %s", self.name, self.why(err))
            return
        self.counts["balance_reads"] += 1
        self._totals = {a: dec(v) for a, v in raw.get("total", {}).items() if v is not None}
        self._free = {a: dec(v) for a, v in raw.get("free", {}).items() if v is not None}
        self.emit(Balances(self.name, self.ctx.clock.present(), dict(self._totals)))

    # ---- the end of a session ---------------------------------------------------------------

    def busy(self) -> bool:
        """Orders sent by this process whose outcome is not known yet."""
        return self.orders is not None and self.orders.busy()

    async def aclose(self) -> None:
        """Stop the streams and the followers, close the connections."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in (self._trading, self._streams):
            if client is not None:
                await client.close()
        self._trading = self._streams = None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@hookimpl
def arbframe_register_exchanges(register: Any) -> None:
    register(CcxtExchange)
