"""`paper`: a simulated venue that fills orders against the latest published book.

What it models: taker fills that walk the book level by level (slippage), partial fills
when depth is short (a market order's unfilled rest is canceled, IOC-style), limit orders
that take what crosses on arrival and rest for the remainder (filled as maker when a later
book crosses their price), one-way latency between a decision and its execution, taker and
maker fees charged in the quote currency and rounded half-even to the quote unit, balance
locks for resting orders, and rejects for insufficient balance, amounts below the minimum
or off the amount step, and notionals below the minimum.

What it does not model: our own orders depleting the book (every order sees the book as
last published), queue position of resting orders, rate limits, and self-trade rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from arbframe.components import Exchange
from arbframe.hookspecs import hookimpl
from arbframe.model import BUY, LIMIT, MARKET, Book, Fill, Market, Order, OrderStatus
from arbframe.schema import DURATION, NONNEGATIVE_DECIMAL, POSITIVE_DECIMAL
from arbframe.units import parse_duration

BPS = Decimal(10_000)
ZERO = Decimal(0)

# An order filter (installed by fault injectors) sees each order on arrival and may return
# ("reject", reason) or ("cap", max_amount) to limit what can fill.
OrderFilter = Callable[[Order, int], tuple[str, Any] | None]

MARKET_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "price_tick": POSITIVE_DECIMAL,
        "amount_step": POSITIVE_DECIMAL,
        "min_amount": NONNEGATIVE_DECIMAL,
        "min_notional": NONNEGATIVE_DECIMAL,
    },
}


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


class PaperExchange(Exchange):
    type_name = "paper"
    description = "Simulated venue filling against the feed's L2 book, with fees and latency."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["quote"],
        "properties": {
            "quote": {"type": "string", "description": "Quote currency of every market here."},
            "fees": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "taker_bps": {"type": "number", "minimum": 0, "maximum": 1000},
                    "maker_bps": {"type": "number", "minimum": -100, "maximum": 1000},
                },
            },
            "latency": DURATION,
            "quote_unit": POSITIVE_DECIMAL,
            "markets": {
                "type": "object",
                "description": "Per-symbol precision and minimums; `default` applies to all.",
                "additionalProperties": MARKET_SCHEMA,
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, run: Any) -> None:
        super().__init__(config, name=name, run=run)
        self.quote = config["quote"]
        fees = config.get("fees", {})
        self.taker_bps = _dec(fees.get("taker_bps", 0))
        self.maker_bps = _dec(fees.get("maker_bps", fees.get("taker_bps", 0)))
        self.latency = parse_duration(config.get("latency", 0))
        self.quote_unit = _dec(config.get("quote_unit", "1e-8"))
        self.markets: dict[str, Market] = {}
        self.books: dict[str, Book] = {}
        self.first_mid: dict[str, float] = {}
        self.balances: dict[str, Decimal] = defaultdict(Decimal)
        self.locked: dict[str, Decimal] = defaultdict(Decimal)
        self.resting: dict[str, list[Order]] = defaultdict(list)
        self.order_filters: list[OrderFilter] = []

    # ---- set-up -------------------------------------------------------------------------

    def add_market(self, symbol: str) -> None:
        specs = self.config.get("markets", {})
        spec = {**specs.get("default", {}), **specs.get(symbol, {})}
        step = _dec(spec.get("amount_step", "1e-8"))
        self.markets[symbol] = Market(
            symbol=symbol,
            quote=self.quote,
            price_tick=_dec(spec.get("price_tick", "1e-8")),
            amount_step=step,
            min_amount=_dec(spec.get("min_amount", step)),
            min_notional=_dec(spec.get("min_notional", 0)),
            taker_bps=self.taker_bps,
            maker_bps=self.maker_bps,
            quote_unit=self.quote_unit,
        )
        self.books[symbol] = Book()

    def available(self, asset: str) -> Decimal:
        return self.balances[asset] - self.locked[asset]

    # ---- market data (hot path) ---------------------------------------------------------

    def on_book(self, ts: int, symbol: str, bids: Any, asks: Any) -> None:
        book = self.books[symbol]
        if symbol not in self.first_mid and bids and asks:  # only until the first full book
            self.first_mid[symbol] = (bids[0][0] + asks[0][0]) / 2
        book.bids = bids
        book.asks = asks
        book.ts = ts
        if self.resting[symbol]:
            self._match_resting(symbol)

    # ---- orders -------------------------------------------------------------------------

    def submit(self, order: Order) -> None:
        self.run.engine.schedule(self.run.engine.now + self.latency, self._arrive, order)

    def cancel(self, client_id: str) -> None:
        self.run.engine.schedule(self.run.engine.now + self.latency, self._cancel, client_id)

    def _arrive(self, order: Order) -> None:
        market = self.markets.get(order.symbol)
        book = self.books.get(order.symbol)
        cap = order.amount
        for order_filter in self.order_filters:
            verdict = order_filter(order, self.run.engine.now)
            if verdict and verdict[0] == "reject":
                return self._reject(order, verdict[1])
            if verdict and verdict[0] == "cap":
                cap = min(cap, verdict[1])
        if market is None:
            return self._reject(order, f"unknown symbol {order.symbol}")
        if book is None or not book.ready:
            return self._reject(order, "no book")
        if order.amount < market.min_amount or order.amount % market.amount_step:
            return self._reject(order, f"amount {order.amount} below minimum or off step")
        levels = self._takeable(order, book)
        plan = self._walk(levels, min(cap, order.amount), market)
        if order.type == MARKET and not plan:
            return self._reject(order, "no liquidity")
        ref_price = order.price if order.type == LIMIT else plan[0][0]
        if ref_price * order.amount < market.min_notional:
            return self._reject(order, f"notional below minimum {market.min_notional}")
        shortfall = self._shortfall(order, plan, market)
        if shortfall:
            return self._reject(order, shortfall)
        order.status = OrderStatus.OPEN
        for price, amount in plan:
            self._fill(order, price, amount, market, maker=False)
        if order.type == LIMIT and order.remaining > 0:
            if order.filled:
                order.status = OrderStatus.PARTIALLY_FILLED
            self._lock(order, market)
            self.resting[order.symbol].append(order)
        elif order.remaining > 0:
            order.status = OrderStatus.CANCELED
            order.reason = "insufficient depth" if cap == order.amount else "capped by fault"
        else:
            order.status = OrderStatus.FILLED
        self.run.engine.on_order_update(order)

    def _takeable(self, order: Order, book: Book) -> Any:
        levels = book.asks if order.side == BUY else book.bids
        if order.type == MARKET:
            return levels
        limit = float(order.price)  # type: ignore[arg-type]
        if order.side == BUY:
            return [lv for lv in levels if lv[0] <= limit]
        return [lv for lv in levels if lv[0] >= limit]

    def _walk(self, levels: Any, amount: Decimal, market: Market) -> list[tuple[Decimal, Decimal]]:
        """Split `amount` over the levels, best first: [(price, amount)], exact."""
        plan = []
        left = amount
        for price, size in levels:
            if left <= 0:
                break
            take = min(left, _dec(size).quantize(market.amount_step, ROUND_DOWN))
            if take > 0:
                plan.append((_dec(price).quantize(market.price_tick, ROUND_HALF_EVEN), take))
                left -= take
        return plan

    def _fee(self, notional: Decimal, bps: Decimal) -> Decimal:
        return (notional * bps / BPS).quantize(self.quote_unit, ROUND_HALF_EVEN)

    def _shortfall(self, order: Order, plan: list[tuple[Decimal, Decimal]], market: Market) -> str:
        """Why the balance cannot cover the order (what fills now plus what would rest)."""
        if order.side == BUY:
            cost = sum((p * a for p, a in plan), ZERO)
            cost += self._fee(cost, market.taker_bps)
            if order.type == LIMIT:
                rest = order.amount - sum((a for _, a in plan), ZERO)
                notional = rest * order.price  # type: ignore[operator]
                cost += notional + self._fee(notional, max(market.maker_bps, ZERO))
            if cost > self.available(self.quote):
                return f"insufficient {self.quote}: need {cost}, have {self.available(self.quote)}"
        else:
            need = order.amount if order.type == LIMIT else sum((a for _, a in plan), ZERO)
            if need > self.available(order.symbol):
                have = self.available(order.symbol)
                return f"insufficient {order.symbol}: need {need}, have {have}"
        return ""

    def _fill(
        self, order: Order, price: Decimal, amount: Decimal, market: Market, maker: bool
    ) -> None:
        notional = price * amount
        fee = self._fee(notional, market.maker_bps if maker else market.taker_bps)
        ref = _dec(order.reference_price).quantize(market.price_tick, ROUND_HALF_EVEN)
        if order.side == BUY:
            self.balances[order.symbol] += amount
            self.balances[self.quote] -= notional
            slip = (price - ref) * amount if order.reference_price else ZERO
        else:
            self.balances[order.symbol] -= amount
            self.balances[self.quote] += notional
            slip = (ref - price) * amount if order.reference_price else ZERO
        self.balances[self.quote] -= fee
        order.filled += amount
        order.cost += notional
        order.fee += fee
        self.run.engine.on_fill(
            Fill(
                ts=self.run.engine.now,
                venue=self.name,
                symbol=order.symbol,
                side=order.side,
                price=price,
                amount=amount,
                quote=self.quote,
                fee=fee,
                fee_asset=self.quote,
                client_id=order.client_id,
                trade_id=order.trade_id,
                role=order.role,
                liquidity="maker" if maker else "taker",
                slippage=slip,
            )
        )

    def _reject(self, order: Order, reason: str) -> None:
        order.status = OrderStatus.REJECTED
        order.reason = reason
        self.run.engine.on_order_update(order)

    # ---- resting limit orders -----------------------------------------------------------

    def _lock(self, order: Order, market: Market) -> None:
        if order.side == BUY:
            notional = order.remaining * order.price  # type: ignore[operator]
            self.locked[self.quote] += notional + self._fee(notional, max(market.maker_bps, ZERO))
        else:
            self.locked[order.symbol] += order.remaining

    def _unlock(self, order: Order, market: Market) -> None:
        if order.side == BUY:
            notional = order.remaining * order.price  # type: ignore[operator]
            self.locked[self.quote] -= notional + self._fee(notional, max(market.maker_bps, ZERO))
        else:
            self.locked[order.symbol] -= order.remaining

    def _match_resting(self, symbol: str) -> None:
        book, market = self.books[symbol], self.markets[symbol]
        for order in list(self.resting[symbol]):
            plan = self._walk(self._takeable(order, book), order.remaining, market)
            if not plan:
                continue
            self._unlock(order, market)
            for _, amount in plan:  # a resting order fills at its own price, as maker
                self._fill(order, order.price, amount, market, maker=True)  # type: ignore[arg-type]
            if order.remaining > 0:
                self._lock(order, market)
                order.status = OrderStatus.PARTIALLY_FILLED
            else:
                order.status = OrderStatus.FILLED
                self.resting[symbol].remove(order)
            self.run.engine.on_order_update(order)

    def _cancel(self, client_id: str) -> None:
        for symbol, orders in self.resting.items():
            for order in orders:
                if order.client_id == client_id:
                    self._unlock(order, self.markets[symbol])
                    orders.remove(order)
                    order.status = OrderStatus.CANCELED
                    order.reason = "canceled by request"
                    self.run.engine.on_order_update(order)
                    return


@hookimpl
def arbframe_register_exchanges(register: Any) -> None:
    register(PaperExchange)
