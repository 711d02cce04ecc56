"""A venue-neutral matching engine with accounts, for the fake Binance and Upbit servers.

Everything is ``Decimal`` and exact: a test can sum the fills, fees and balance changes of an
account and find that they agree to the last unit. The engine is not thread-safe: every call runs
on the fake server's event loop thread (``FakeVenues.call`` runs a function there). ``Faults``
setters are the exception: they may be called from any thread.

The book of a market is outside liquidity set by ``Venue.set_book`` (the ``SyntheticMarket`` or a
test). Orders of the accounts do not show in it and never match each other: a taker order walks
the book level by level and takes the depth away until the next ``set_book``; a resting limit order
fills at its own price (as maker) when a later book crosses it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Any

D = Decimal
ZERO = Decimal(0)
Level = tuple[Decimal, Decimal]


def dec(value: Any) -> Decimal:
    """A Decimal from an int, str, Decimal or float (floats through their shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def floor_to(value: Decimal, unit: Decimal) -> Decimal:
    return (value / unit).to_integral_value(ROUND_DOWN) * unit


def is_multiple(value: Decimal, unit: Decimal) -> bool:
    return unit == 0 or value % unit == 0


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    symbol: str  # unified, "BTC/USDT"
    venue_symbol: str  # "BTCUSDT", "KRW-BTC"
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    max_amount: Decimal = Decimal("9000")


@dataclass
class Trade:
    id: int
    order_id: int
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    ts_ms: int
    symbol: str = ""
    side: str = ""
    key: str = ""

    @property
    def cost(self) -> Decimal:
        return self.price * self.amount


@dataclass
class EngineOrder:
    id: int
    client_id: str
    key: str
    market: Market
    side: str  # 'buy' | 'sell'
    type: str  # 'market' | 'limit'
    tif: str  # 'gtc' | 'ioc'
    price: Decimal | None  # None for market orders
    amount: Decimal | None  # base; None for an order given by quote cost
    quote_amount: Decimal | None = None  # market order by quote cost (Upbit 'price' orders)
    filled: Decimal = ZERO
    cost: Decimal = ZERO  # quote, sum of price x amount of the fills
    fees: dict[str, Decimal] = field(default_factory=dict)
    state: str = "open"  # 'open' | 'filled' | 'canceled' | 'rejected' | 'expired'
    trades: list[Trade] = field(default_factory=list)
    created_ms: int = 0
    updated_ms: int = 0
    locked: Decimal = ZERO  # what this order holds locked in its account (quote for a buy)
    orphan: bool = False

    @property
    def symbol(self) -> str:
        return self.market.symbol

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def remaining(self) -> Decimal:
        """Base amount left (for an order given by quote cost: 0 once it is done)."""
        if self.amount is None:
            return ZERO
        return self.amount - self.filled

    @property
    def remaining_quote(self) -> Decimal:
        return (self.quote_amount or ZERO) - self.cost

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None

    def fee(self, asset: str) -> Decimal:
        return self.fees.get(asset, ZERO)


@dataclass
class BookDiff:
    first_id: int  # update id of the first change in this diff (previous last_id + 1)
    last_id: int
    bids: list[Level]  # changed levels; size 0 = level removed
    asks: list[Level]
    ts_ms: int


@dataclass
class Book:
    bids: list[Level] = field(default_factory=list)  # best first
    asks: list[Level] = field(default_factory=list)
    update_id: int = 1000
    ts_ms: int = 0
    diffs: deque[BookDiff] = field(default_factory=lambda: deque(maxlen=2000))

    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None

    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2


class Account:
    def __init__(self, key: str, secret: str, balances: dict[str, Any] | None = None) -> None:
        self.key = key
        self.secret = secret
        self.balances: dict[str, Decimal] = {a: dec(v) for a, v in (balances or {}).items()}
        self.locked: dict[str, Decimal] = {}
        self.client_ids: set[str] = set()

    def total(self, asset: str) -> Decimal:
        return self.balances.get(asset, ZERO)

    def free(self, asset: str) -> Decimal:
        return self.total(asset) - self.locked.get(asset, ZERO)

    def held(self, asset: str) -> Decimal:
        return self.locked.get(asset, ZERO)

    def assets(self) -> list[str]:
        return sorted(set(self.balances) | set(self.locked))

    def snapshot(self) -> dict[str, tuple[Decimal, Decimal]]:
        """asset -> (free, locked)."""
        return {a: (self.free(a), self.held(a)) for a in self.assets()}

    def _add(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.total(asset) + amount

    def _lock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.held(asset) + amount


class VenueError(Exception):
    """kind: insufficient_balance, invalid_amount, min_notional, unknown_symbol,
    duplicate_client_id, order_not_found, not_cancelable, invalid_price, invalid_order."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


# ---- faults ------------------------------------------------------------------------------------


class Faults:
    """Scriptable faults of one venue. The setters are thread-safe; ``counts`` says what each
    fault did (``fail_next``: requests answered with an error, ``lose_ack``: acks never sent,
    ``delay_ack``, ``cap_next_fill``, ``drop_streams``: sockets closed, ``mute_private``: events
    lost, ``orphan``, ``deposit``).

    ``orphan`` and ``deposit`` change the engine: they run on the loop thread (directly when
    called there, else they are sent there and waited for)."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._fail: list[list[Any]] = []  # [remaining, status, path or None]
        self._lose_ack = 0
        self._delays: list[list[Any]] = []  # [remaining, seconds]
        self._caps: list[tuple[Decimal | None, Decimal | None]] = []
        self._mute = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        # callbacks fn(kind, code) registered by the servers that hold live websockets
        self._droppers: list[Callable[[str, int], int]] = []

    # -- transport faults (consulted by the venue's server) --
    def fail_next(self, n: int = 1, status: int = 429, path: str | None = None) -> None:
        """Answer the next ``n`` REST requests (whose path contains ``path``, if given; or,
        as ``"POST /v1/orders"``, whose method is that and whose path ends so) with ``status``
        in the venue's error format."""
        with self._lock:
            self._fail.append([n, status, path])

    def take_failure(self, path: str, method: str = "") -> int | None:
        with self._lock:
            for rule in self._fail:
                if rule[0] > 0 and _matches(rule[2], method, path):
                    rule[0] -= 1
                    self.counts["fail_next"] += 1
                    self._fail = [r for r in self._fail if r[0] > 0]
                    return int(rule[1])
        return None

    def lose_ack(self, n: int = 1) -> None:
        """Execute the next ``n`` placed orders but never answer the request."""
        with self._lock:
            self._lose_ack += n

    def take_lose_ack(self) -> bool:
        with self._lock:
            if self._lose_ack > 0:
                self._lose_ack -= 1
                self.counts["lose_ack"] += 1
                return True
        return False

    def delay_ack(self, seconds: float, n: int = 1) -> None:
        """Answer the next ``n`` placed orders ``seconds`` late (the order executes at once)."""
        with self._lock:
            self._delays.append([n, seconds])

    def take_delay(self) -> float:
        with self._lock:
            for rule in self._delays:
                if rule[0] > 0:
                    rule[0] -= 1
                    self.counts["delay_ack"] += 1
                    self._delays = [r for r in self._delays if r[0] > 0]
                    return float(rule[1])
        return 0.0

    def cap_next_fill(self, amount: Any = None, fraction: Any = None) -> None:
        """The next placed order fills at most ``amount`` (base) or ``fraction`` of its amount
        as taker; the rest expires (market, IOC) or rests (GTC)."""
        if (amount is None) == (fraction is None):
            raise ValueError("give one of amount, fraction")
        with self._lock:
            self._caps.append(
                (
                    None if amount is None else dec(amount),
                    None if fraction is None else dec(fraction),
                )
            )

    def take_cap(self) -> tuple[Decimal | None, Decimal | None] | None:
        with self._lock:
            if self._caps:
                self.counts["cap_next_fill"] += 1
                return self._caps.pop(0)
        return None

    def mute_private(self, n: int = 1) -> None:
        """Lose the next ``n`` private-stream events (each event counts once, whatever the
        number of connections it was for)."""
        with self._lock:
            self._mute += n

    def take_mute(self) -> bool:
        with self._lock:
            if self._mute > 0:
                self._mute -= 1
                self.counts["mute_private"] += 1
                return True
        return False

    def drop_streams(self, kind: str = "all", code: int = 1006) -> None:
        """Close the live websockets of ``kind`` ('book', 'private' or 'all'); code 1006 aborts
        the connection without a close frame, another code sends it."""
        if kind not in ("book", "private", "all"):
            raise ValueError(kind)

        def run() -> None:
            for dropper in list(self._droppers):
                self.counts["drop_streams"] += dropper(kind, code)

        self._on_loop(run)

    def add_dropper(self, fn: Callable[[str, int], int]) -> None:
        self._droppers.append(fn)

    # -- engine faults --
    def orphan(self, key: str, symbol: str, side: str, amount: Any, price: Any, client_id: str):
        return self._on_loop(
            lambda: self._venue.orphan(key, symbol, side, amount, price, client_id)
        )

    def deposit(self, key: str, asset: str, amount: Any) -> None:
        return self._on_loop(lambda: self._venue.deposit(key, asset, amount))

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        return run_on_loop(self.loop, fn)


def _matches(rule: str | None, method: str, path: str) -> bool:
    if rule is None:
        return True
    want_method, _, suffix = rule.rpartition(" ")
    if want_method:
        return want_method == method and path.endswith(suffix)
    return rule in path


def run_on_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[[], Any]) -> Any:
    """``fn()`` on ``loop``'s thread: directly when already there (or without a loop), else
    sent there and waited for (10 s at most); its exception is raised here."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop is None or running is loop:
        return fn()

    async def run() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(run(), loop).result(10)


# ---- the venue ---------------------------------------------------------------------------------


class Venue:
    """Markets, accounts, books and orders of one exchange.

    fee_asset: 'received' (Binance: the asset bought is charged, base on a buy, quote on a sell)
    or 'quote' (Upbit: always the quote, on top of the cost of a buy)."""

    def __init__(
        self,
        name: str,
        markets: Iterable[Market],
        taker_bps: Any = 10,
        maker_bps: Any = 10,
        fee_asset: str = "received",
        fee_unit: Any = "1e-8",
        clock: Callable[[], int] = now_ms,
        first_order_id: int = 1_000_001,
    ) -> None:
        if fee_asset not in ("received", "quote"):
            raise ValueError(fee_asset)
        self.name = name
        self.markets: dict[str, Market] = {m.symbol: m for m in markets}
        self.by_venue_symbol: dict[str, Market] = {m.venue_symbol: m for m in self.markets.values()}
        self.taker_bps = dec(taker_bps)
        self.maker_bps = dec(maker_bps)
        self.fee_asset = fee_asset
        self.fee_unit = dec(fee_unit)
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        self.books: dict[str, Book] = {s: Book() for s in self.markets}
        self.orders: dict[int, EngineOrder] = {}
        self._trades: list[Trade] = []
        self._order_ids = itertools.count(first_order_id)
        self._trade_ids = itertools.count(first_order_id * 3)
        self._listeners: list[Callable[..., None]] = []
        self.faults = Faults(self)
        self.duplicates = 0  # orders refused for a client id already used
        # (method, path) of the requests the venue's server saw, the latest 100000
        self.requests: deque[tuple[str, str]] = deque(maxlen=100_000)
        self.rejections: Counter[str] = Counter()  # VenueError kinds raised by place()

    # -- setup --
    def add_account(self, key: str, secret: str, balances: dict[str, Any] | None = None) -> Account:
        account = Account(key, secret, balances)
        self.accounts[key] = account
        return account

    def account(self, key: str) -> Account:
        return self.accounts[key]

    def secret_of(self, key: str) -> str | None:
        account = self.accounts.get(key)
        return account.secret if account else None

    def market(self, symbol: str) -> Market:
        market = self.markets.get(symbol) or self.by_venue_symbol.get(symbol)
        if market is None:
            raise VenueError("unknown_symbol", f"unknown symbol {symbol}")
        return market

    def add_listener(self, fn: Callable[..., None]) -> None:
        """fn(event, **payload): 'book' (symbol, diff), 'order' (order, exec: NEW | TRADE |
        CANCELED | REJECTED | EXPIRED, trade), 'balance' (key, assets, delta: the deposit)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[..., None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _emit(self, event: str, **payload: Any) -> None:
        for fn in list(self._listeners):
            fn(event, **payload)

    # -- books --
    def book(self, symbol: str) -> Book:
        return self.books[self.market(symbol).symbol]

    def set_book(self, symbol: str, bids: Sequence[Sequence[Any]], asks: Sequence[Sequence[Any]]):
        """Replace the book (best first); resting orders that now cross fill at their price."""
        market = self.market(symbol)
        new_bids = [(dec(p), dec(q)) for p, q in bids if dec(q) > 0]
        new_asks = [(dec(p), dec(q)) for p, q in asks if dec(q) > 0]
        self._replace_book(market, new_bids, new_asks)
        self._match_resting(market)
        return self.books[market.symbol]

    def _replace_book(self, market: Market, bids: list[Level], asks: list[Level]) -> None:
        book = self.books[market.symbol]
        changed_bids = _level_changes(book.bids, bids)
        changed_asks = _level_changes(book.asks, asks)
        ts = self.clock()
        book.bids, book.asks, book.ts_ms = bids, asks, ts
        if not changed_bids and not changed_asks:
            return
        diff = BookDiff(book.update_id + 1, book.update_id + 1, changed_bids, changed_asks, ts)
        book.update_id = diff.last_id
        book.diffs.append(diff)
        self._emit("book", symbol=market.symbol, diff=diff)

    # -- orders --
    def place(
        self,
        key: str,
        symbol: str,
        side: str,
        type: str,
        amount: Any = None,
        price: Any = None,
        quote_amount: Any = None,
        client_id: str | None = None,
        tif: str = "gtc",
    ) -> EngineOrder:
        try:
            return self._place(key, symbol, side, type, amount, price, quote_amount, client_id, tif)
        except VenueError as err:
            self.rejections[err.kind] += 1
            raise

    def _place(self, key, symbol, side, type, amount, price, quote_amount, client_id, tif):
        account = self.accounts[key]
        market = self.market(symbol)
        if side not in ("buy", "sell") or type not in ("market", "limit"):
            raise VenueError("invalid_order", f"bad side/type {side}/{type}")
        if tif not in ("gtc", "ioc"):
            raise VenueError("invalid_order", f"bad time in force {tif}")
        amount = None if amount is None else dec(amount)
        price = None if price is None else dec(price)
        quote_amount = None if quote_amount is None else dec(quote_amount)
        if client_id is not None and client_id in account.client_ids:
            self.duplicates += 1
            raise VenueError("duplicate_client_id", f"client id {client_id} already used")
        book = self.books[market.symbol]
        if type == "limit":
            if price is None or price <= 0 or not is_multiple(price, market.tick):
                raise VenueError(
                    "invalid_price", f"price {price} is not a positive multiple of {market.tick}"
                )
            if amount is None:
                raise VenueError("invalid_amount", "a limit order needs an amount")
            quote_amount = None
        elif (amount is None) == (quote_amount is None):
            raise VenueError("invalid_amount", "a market order needs one of amount, quote_amount")
        if amount is not None:
            if amount <= 0 or not is_multiple(amount, market.step):
                raise VenueError(
                    "invalid_amount", f"amount {amount} is not a multiple of {market.step}"
                )
            if amount < market.min_amount or amount > market.max_amount:
                raise VenueError(
                    "invalid_amount",
                    f"amount {amount} outside [{market.min_amount}, {market.max_amount}]",
                )
        # notional: a limit at its price, a market order at the best opposite price
        ref = price if type == "limit" else (book.best_ask() if side == "buy" else book.best_bid())
        notional = quote_amount if quote_amount is not None else (amount * ref if ref else None)
        if notional is not None and notional < market.min_notional:
            raise VenueError("min_notional", f"notional {notional} below {market.min_notional}")
        self._check_funds(account, market, side, type, amount, price, quote_amount)
        if client_id is not None:
            account.client_ids.add(client_id)
        ts = self.clock()
        order = EngineOrder(
            id=next(self._order_ids),
            client_id=client_id or f"fake-{self.name}-{ts}-{len(self.orders) + 1}",
            key=key,
            market=market,
            side=side,
            type=type,
            tif="ioc" if type == "market" else tif,
            price=price,
            amount=amount,
            quote_amount=quote_amount,
            created_ms=ts,
            updated_ms=ts,
        )
        account.client_ids.add(order.client_id)
        self.orders[order.id] = order
        self._emit("order", order=order, exec="NEW", trade=None)
        cap = self.faults.take_cap()
        limit = None
        if cap is not None:
            cap_amount, fraction = cap
            if fraction is not None:
                if amount is not None:
                    limit = floor_to(amount * fraction, market.step)
                else:  # by quote: cap the cost, in base at the best price
                    best = book.best_ask() if side == "buy" else book.best_bid()
                    limit = floor_to(quote_amount * fraction / best, market.step) if best else ZERO
            else:
                limit = cap_amount
        self._take(order, limit)
        if order.state == "open":
            if order.type == "market" or order.tif == "ioc":
                self._finish(order, "expired", "EXPIRED")
            else:
                self._lock_rest(order)
        self._emit_balance(account, order.market)
        return order

    def _fee_rate(self, maker: bool) -> Decimal:
        return (self.maker_bps if maker else self.taker_bps) / 10000

    def _fee(self, value: Decimal, maker: bool) -> Decimal:
        return (value * self._fee_rate(maker)).quantize(self.fee_unit, ROUND_HALF_EVEN)

    def _check_funds(self, account, market, side, type, amount, price, quote_amount) -> None:
        book = self.books[market.symbol]
        quote_fee = self.fee_asset == "quote"
        rate = max(self.taker_bps, self.maker_bps) / 10000
        if side == "sell":
            if amount is not None:
                need = amount
            else:  # sell for a quote cost: the base it takes on the current book
                need = _base_for_cost(book.bids, quote_amount, market.step)
            asset = market.base
        else:
            asset = market.quote
            if type == "limit":
                need = price * amount
            elif quote_amount is not None:
                need = quote_amount
            else:
                need = _cost_for_base(book.asks, amount)
            if quote_fee:
                need += (need * rate).quantize(self.fee_unit, ROUND_UP)
        if account.free(asset) < need:
            raise VenueError(
                "insufficient_balance", f"{asset}: free {account.free(asset)} < needed {need}"
            )

    def _take(self, order: EngineOrder, limit: Decimal | None) -> None:
        """Walk the book as taker (up to ``limit`` base)."""
        market = order.market
        book = self.books[market.symbol]
        levels = list(book.asks if order.side == "buy" else book.bids)
        taken = ZERO
        out: list[Level] = []
        for i, (lp, lq) in enumerate(levels):
            beyond = order.type == "limit" and (
                lp > order.price if order.side == "buy" else lp < order.price
            )
            if not order.is_open or beyond:
                out.extend(levels[i:])
                break
            if order.amount is not None:
                want = order.remaining
            else:
                want = floor_to(order.remaining_quote / lp, market.step)
            if limit is not None:
                want = min(want, limit - taken)
            qty = min(want, lq)
            if qty <= 0:
                out.extend(levels[i:])
                break
            self._fill(order, lp, qty, maker=False)
            taken += qty
            if lq - qty > 0:
                out.append((lp, lq - qty))
        if taken:
            if order.side == "buy":
                self._replace_book(market, list(book.bids), out)
            else:
                self._replace_book(market, out, list(book.asks))

    def _fill(self, order: EngineOrder, price: Decimal, qty: Decimal, maker: bool) -> Trade:
        market = order.market
        account = self.accounts[order.key]
        cost = price * qty
        if self.fee_asset == "quote":
            fee_asset = market.quote
            fee = self._fee(cost, maker)
        elif order.side == "buy":
            fee_asset = market.base
            fee = self._fee(qty, maker)
        else:
            fee_asset = market.quote
            fee = self._fee(cost, maker)
        if order.side == "buy":
            account._add(market.quote, -cost)
            account._add(market.base, qty)
            release = cost + (fee if fee_asset == market.quote else ZERO)
        else:
            account._add(market.base, -qty)
            account._add(market.quote, cost)
            release = qty
        account._add(fee_asset, -fee)
        if order.locked > 0:  # a resting order gives back what it held for this fill
            release = min(release, order.locked)
            order.locked -= release
            account._lock(market.quote if order.side == "buy" else market.base, -release)
        ts = self.clock()
        trade = Trade(
            id=next(self._trade_ids),
            order_id=order.id,
            price=price,
            amount=qty,
            fee=fee,
            fee_asset=fee_asset,
            maker=maker,
            ts_ms=ts,
            symbol=market.symbol,
            side=order.side,
            key=order.key,
        )
        order.filled += qty
        order.cost += cost
        order.fees[fee_asset] = order.fees.get(fee_asset, ZERO) + fee
        order.trades.append(trade)
        order.updated_ms = ts
        self._trades.append(trade)
        if order.amount is not None:
            done = order.remaining <= 0
        else:  # by quote cost: done when what is left cannot take one more step at this price
            done = order.remaining_quote < market.step * price
        if done:
            order.state = "filled"
            self._unlock(order)
        self._emit("order", order=order, exec="TRADE", trade=trade)
        return trade

    def _lock_rest(self, order: EngineOrder) -> None:
        account = self.accounts[order.key]
        market = order.market
        if order.side == "buy":
            need = order.price * order.remaining
            if self.fee_asset == "quote":
                need += (need * self._fee_rate(True)).quantize(self.fee_unit, ROUND_UP)
            asset = market.quote
        else:
            need = order.remaining
            asset = market.base
        need = min(need, max(account.free(asset), ZERO))
        order.locked = need
        account._lock(asset, need)

    def _unlock(self, order: EngineOrder) -> None:
        if order.locked:
            asset = order.market.quote if order.side == "buy" else order.market.base
            self.accounts[order.key]._lock(asset, -order.locked)
            order.locked = ZERO

    def _finish(self, order: EngineOrder, state: str, exec_type: str | None) -> None:
        order.state = state
        order.updated_ms = self.clock()
        self._unlock(order)
        if exec_type:
            self._emit("order", order=order, exec=exec_type, trade=None)

    def _match_resting(self, market: Market) -> None:
        book = self.books[market.symbol]
        resting = [o for o in self.orders.values() if o.is_open and o.market is market]
        if not resting:
            return
        touched: set[str] = set()
        buys = sorted((o for o in resting if o.side == "buy"), key=lambda o: (-o.price, o.id))
        sells = sorted((o for o in resting if o.side == "sell"), key=lambda o: (o.price, o.id))
        for orders, side in ((buys, "asks"), (sells, "bids")):
            levels = list(getattr(book, side))
            changed = False
            for order in orders:
                new_levels: list[Level] = []
                for lp, lq in levels:
                    crosses = lp <= order.price if order.side == "buy" else lp >= order.price
                    qty = min(order.remaining, lq) if crosses and order.is_open else ZERO
                    if qty > 0:
                        self._fill(order, order.price, qty, maker=True)
                        touched.add(order.key)
                        changed = True
                    if lq - qty > 0:
                        new_levels.append((lp, lq - qty))
                levels = new_levels
            if changed:
                bids = levels if side == "bids" else list(book.bids)
                asks = levels if side == "asks" else list(book.asks)
                self._replace_book(market, bids, asks)
        for key in sorted(touched):
            self._emit_balance(self.accounts[key], market)

    def _emit_balance(self, account: Account, market: Market, delta: dict | None = None) -> None:
        self._emit("balance", key=account.key, assets=[market.base, market.quote], delta=delta)

    def cancel(self, key: str, order_id: Any = None, client_id: str | None = None) -> EngineOrder:
        order = self.get(key, order_id, client_id)
        if not order.is_open:
            raise VenueError("not_cancelable", f"order {order.id} is {order.state}")
        self._finish(order, "canceled", "CANCELED")
        self._emit_balance(self.accounts[key], order.market)
        return order

    def get(self, key: str, order_id: Any = None, client_id: str | None = None) -> EngineOrder:
        if order_id is not None:
            try:
                order = self.orders.get(int(order_id))
            except (TypeError, ValueError):
                order = None
            if (
                order is not None
                and order.key == key
                and (client_id is None or order.client_id == client_id)
            ):
                return order
        elif client_id is not None:
            for order in reversed(self.orders.values()):
                if order.key == key and order.client_id == client_id:
                    return order
        raise VenueError("order_not_found", f"no order {order_id or client_id}")

    def open_orders(self, key: str, symbol: str | None = None) -> list[EngineOrder]:
        market = self.market(symbol) if symbol else None
        return [
            o
            for o in self.orders.values()
            if o.key == key and o.is_open and (market is None or o.market is market)
        ]

    def all_orders(self, key: str, symbol: str | None = None) -> list[EngineOrder]:
        market = self.market(symbol) if symbol else None
        return [
            o
            for o in self.orders.values()
            if o.key == key and (market is None or o.market is market)
        ]

    def trades(
        self, key: str, symbol: str | None = None, since_ms: int | None = None
    ) -> list[Trade]:
        market = self.market(symbol) if symbol else None
        return [
            t
            for t in self._trades
            if t.key == key
            and (market is None or t.symbol == market.symbol)
            and (since_ms is None or t.ts_ms >= since_ms)
        ]

    # -- engine faults (see Faults for thread-safe wrappers) --
    def orphan(self, key, symbol, side, amount, price, client_id) -> EngineOrder:
        """An open limit order that the client never placed (a previous process did): it rests
        with its funds locked; no event is sent for it."""
        account = self.accounts[key]
        market = self.market(symbol)
        ts = self.clock()
        order = EngineOrder(
            id=next(self._order_ids),
            client_id=client_id,
            key=key,
            market=market,
            side=side,
            type="limit",
            tif="gtc",
            price=dec(price),
            amount=dec(amount),
            created_ms=ts,
            updated_ms=ts,
            orphan=True,
        )
        account.client_ids.add(client_id)
        self.orders[order.id] = order
        self._lock_rest(order)
        self.faults.counts["orphan"] += 1
        return order

    def deposit(self, key: str, asset: str, amount: Any) -> None:
        """A balance change without a trade (negative: a withdrawal)."""
        account = self.accounts[key]
        account._add(asset, dec(amount))
        self.faults.counts["deposit"] += 1
        self._emit("balance", key=key, assets=[asset], delta={asset: dec(amount)})


def _level_changes(old: list[Level], new: list[Level]) -> list[Level]:
    before = dict(old)
    after = dict(new)
    out = [(p, q) for p, q in new if before.get(p) != q]
    out.extend((p, ZERO) for p in before if p not in after)
    return out


def _cost_for_base(levels: list[Level], amount: Decimal) -> Decimal:
    """Quote cost of taking ``amount`` from the book (what is not there is priced at the last
    level: the order will expire for it, but the funds check stays conservative)."""
    cost, left, last = ZERO, amount, ZERO
    for price, size in levels:
        qty = min(left, size)
        cost += qty * price
        left -= qty
        last = price
        if left <= 0:
            break
    return cost + left * last


def _base_for_cost(levels: list[Level], quote: Decimal, step: Decimal) -> Decimal:
    base, left = ZERO, quote
    for price, size in levels:
        qty = min(size, floor_to(left / price, step))
        base += qty
        left -= qty * price
        if qty < size:
            break
    return base


# ---- the default venues ------------------------------------------------------------------------

BINANCE_MARKETS = (
    Market("BTC/USDT", "BTCUSDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5")),
    Market("ETH/USDT", "ETHUSDT", "ETH", "USDT", D("0.01"), D("0.0001"), D("0.0001"), D("5")),
)
S8 = D("0.00000001")
UPBIT_MARKETS = (
    Market("BTC/KRW", "KRW-BTC", "BTC", "KRW", D("1000"), S8, S8, D("5000"), D("1000000")),
    Market("USDT/KRW", "KRW-USDT", "USDT", "KRW", D("1"), S8, S8, D("5000"), D("1000000000")),
)


def binance_venue(**kw: Any) -> Venue:
    """Binance spot: 10 bp taker and maker, fees in the asset received, to 1e-8."""
    args: dict[str, Any] = {"taker_bps": 10, "maker_bps": 10, "fee_asset": "received"}
    args.update(kw)
    return Venue("binance", args.pop("markets", BINANCE_MARKETS), **args)


def upbit_venue(**kw: Any) -> Venue:
    """Upbit KRW: 5 bp taker and maker, fees in KRW (to 1e-8 KRW)."""
    args: dict[str, Any] = {"taker_bps": 5, "maker_bps": 5, "fee_asset": "quote"}
    args.update({"first_order_id": 5_000_001, **kw})
    return Venue("upbit", args.pop("markets", UPBIT_MARKETS), **args)
