"""`dealer`: a simulated OTC dealer, an arbframe exchange plugin in a package of its own.

The dealer quotes every symbol the feeds publish for it: the feed's best bid and ask, each
moved ``markup_bps`` against the customer, firm for the size of that level until the next
book. A market order for no more than the quoted size fills in full, at once, at the
quoted price, and pays a flat ``fee`` in the quote currency; any other order is rejected,
with the reason. The dealer keeps its own balances, answers ``fetch_order`` about every
order it ever received, and refuses a client order id it has already seen. Nothing rests,
so a cancel is always refused.

The markup and the fee are published in each instrument's fee schedule: the kernel's
reconciliation recomputes every fill's price and fee from the books the feeds delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from arbframe.components import ExchangeContext, SimulatedExchange
from arbframe.hookspecs import Register, hookimpl
from arbframe.model import (
    BUY,
    MARKET,
    SELL,
    Accepted,
    Book,
    CancelRejected,
    Closed,
    FeeSchedule,
    FillReport,
    Instrument,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    money,
)
from arbframe.orders import OrderState
from arbframe.schema import NONNEGATIVE_DECIMAL, POSITIVE_DECIMAL

BPS = Decimal(10_000)
ZERO = Decimal(0)
DUPLICATE = "duplicate client order id"


@dataclass
class Level:
    """One side of the dealer's quote: its price, and the base amount still good at it."""

    price: Decimal
    size: Decimal


@dataclass
class DealerOrder:
    """The dealer's own record of an order: what ``fetch_order`` answers from."""

    request: OrderRequest
    exchange_id: str
    state: OrderState = OrderState.REJECTED
    reason: str = ""
    fills: list[FillReport] = field(default_factory=list)

    @property
    def filled(self) -> Decimal:
        return sum((fill.amount for fill in self.fills), ZERO)

    def closed(self, venue: str, now: int) -> Closed:
        """Its final report."""
        request, state, reason = self.request, self.state, self.reason
        return Closed(venue, request.client_id, state, self.filled, now, reason, self.exchange_id)

    def status(self, venue: str, now: int) -> OrderStatus:
        """The answer to a query about it: every fill included."""
        return OrderStatus(
            venue, self.request.client_id, self.exchange_id, self.state, self.filled,
            tuple(self.fills), now, self.reason,
        )  # fmt: skip


class Dealer(SimulatedExchange):
    """Fills market orders in full at the feed's best price plus a markup, for a flat fee."""

    type_name = "dealer"
    interface_version = 2
    description = "OTC dealer: fills in full at the feed's best price plus a markup, flat fee."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["quote", "markup_bps"],
        "properties": {
            "quote": {"type": "string", "minLength": 1, "description": "Quote currency."},
            "markup_bps": {"type": "number", "minimum": 0, "maximum": 1000},
            "fee": {**NONNEGATIVE_DECIMAL, "description": "Flat fee per order, in quote."},
            "price_tick": {**POSITIVE_DECIMAL, "default": "0.01"},
            "amount_step": {**POSITIVE_DECIMAL, "default": "0.00000001"},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: ExchangeContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.quote = config["quote"]
        self.tick = Decimal(str(config.get("price_tick", "0.01")))
        self.step = Decimal(str(config.get("amount_step", "0.00000001")))
        fee = Decimal(str(config.get("fee", 0)))
        self.fees = FeeSchedule(
            taker_bps=ZERO,
            maker_bps=ZERO,
            flat_fee=fee.quantize(FeeSchedule.quote_unit, ROUND_HALF_EVEN),
            markup_bps=Decimal(str(config["markup_bps"])),
        )
        self.account: dict[str, Decimal] = {}
        self.books: dict[str, Book] = {}
        self.levels: dict[tuple[str, str], Level] = {}  # (symbol, the customer's side)
        self.orders: dict[str, DealerOrder] = {}  # by client id, every order ever received
        self.duplicates = 0
        self._instruments: dict[str, Instrument] = {}

    # ---- the trading interface: every answer goes through ctx.report ------------------------

    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    def balances(self) -> dict[str, Decimal]:
        return dict(self.account)

    def available(self, asset: str) -> Decimal:
        return self.account.get(asset, ZERO)  # nothing rests, so nothing is locked

    def submit(self, order: OrderRequest) -> None:
        """Answer at once: Accepted, one FillReport and Closed(filled); or Closed(rejected)."""
        now, client_id = self.ctx.clock.now, order.client_id
        if client_id in self.orders:  # as exchanges do: a client id is used once, ever
            self.duplicates += 1
            self.ctx.report(Closed(self.name, client_id, OrderState.REJECTED, ZERO, now, DUPLICATE))
            return
        record = self.orders[client_id] = DealerOrder(order, f"{self.name}-{len(self.orders) + 1}")
        record.reason = self._refusal(order)
        if not record.reason:
            self.ctx.report(Accepted(self.name, client_id, record.exchange_id, now))
            self._fill(record)
            record.state = OrderState.FILLED
        self.ctx.report(record.closed(self.name, now))

    def cancel(self, order: OrderRequest) -> None:
        record = self.orders.get(order.client_id)
        why = "unknown order" if record is None else f"order is {record.state.value}"
        self.ctx.report(CancelRejected(self.name, order.client_id, self.ctx.clock.now, why))

    def fetch_order(self, order: OrderRequest) -> None:
        now, record = self.ctx.clock.now, self.orders.get(order.client_id)
        if record is None:
            self.ctx.report(OrderNotFound(self.name, order.client_id, now))
        else:
            self.ctx.report(record.status(self.name, now))

    def stats(self) -> dict[str, Any]:
        received = len(self.orders) + self.duplicates
        return {"orders_received": received, "duplicate_orders": self.duplicates}

    # ---- the simulation interface: driven by the feeds ------------------------------------------

    def fund(self, balances: dict[str, Decimal]) -> None:
        self.account.update(balances)

    def add_instrument(self, symbol: str, book: Book) -> Instrument:
        base, _, quote = symbol.partition("/")
        instrument = Instrument(
            venue=self.name,
            symbol=symbol,
            base=base,
            quote=quote or self.quote,
            price_tick=self.tick,
            amount_step=self.step,
            min_amount=self.step,
            min_notional=ZERO,
            fees=self.fees,  # publishes the markup and the flat fee
        )
        self._instruments[symbol] = instrument
        self.books[symbol] = book
        return instrument

    def on_book(self, ts: int, symbol: str, bids: Any, asks: Any) -> None:
        """Quote the feed's best levels, marked up. The kernel's book shows the dealer's
        quote, so what strategies see is what fills."""
        for side, levels in ((SELL, bids), (BUY, asks)):
            if levels:
                price, size = levels[0]
                amount = Decimal(repr(size)).quantize(self.step, ROUND_DOWN)
                self.levels[symbol, side] = Level(self._marked_up(side, price), amount)
            else:
                self.levels.pop((symbol, side), None)
        self._show(symbol)
        self.books[symbol].ts = ts

    # ---- pricing and filling ------------------------------------------------------------------

    def _marked_up(self, side: str, level: float) -> Decimal:
        """The level on the tick, moved markup_bps against the customer and rounded against
        the customer: up for a buy, down for a sell."""
        price = Decimal(repr(level)).quantize(self.tick, ROUND_HALF_EVEN)
        if side == BUY:
            return (price * (BPS + self.fees.markup_bps) / BPS).quantize(self.tick, ROUND_CEILING)
        return (price * (BPS - self.fees.markup_bps) / BPS).quantize(self.tick, ROUND_FLOOR)

    def _show(self, symbol: str) -> None:
        book = self.books[symbol]
        book.bids, book.asks = (self._side(symbol, side) for side in (SELL, BUY))

    def _side(self, symbol: str, side: str) -> tuple[tuple[float, float], ...]:
        level = self.levels.get((symbol, side))
        return ((float(level.price), float(level.size)),) if level and level.size else ()

    def _moves(self, order: OrderRequest, price: Decimal) -> dict[str, Decimal]:
        """What filling the whole order does to each balance, the fee included."""
        instrument = self._instruments[order.symbol]
        sign = 1 if order.side == BUY else -1
        cost = price * order.amount
        return {
            instrument.base: sign * order.amount,
            instrument.quote: -sign * cost - self.fees.flat_fee,
        }

    def _refusal(self, order: OrderRequest) -> str:
        """Why the order cannot fill in full now, or "" when it can."""
        level = self.levels.get((order.symbol, order.side))
        if order.type != MARKET:
            return "market orders only"
        if level is None or not level.size:
            return f"no quote for {order.side} {order.symbol}"
        if order.amount > level.size:
            return f"amount {money(order.amount)} above the quoted size {money(level.size)}"
        if order.amount % self.step:
            return f"amount {money(order.amount)} off the step {money(self.step)}"
        for asset, change in self._moves(order, level.price).items():
            if self.available(asset) + change < 0:
                have = self.available(asset)
                return f"insufficient {asset}: need {money(-change)}, have {money(have)}"
        return ""

    def _fill(self, record: DealerOrder) -> None:
        order, now = record.request, self.ctx.clock.now
        level = self.levels[order.symbol, order.side]
        for asset, change in self._moves(order, level.price).items():
            self.account[asset] = self.account.get(asset, ZERO) + change
        level.size -= order.amount  # taken until the next book
        self._show(order.symbol)
        fill = FillReport(
            venue=self.name,
            client_id=order.client_id,
            exchange_id=record.exchange_id,
            fill_id=f"{record.exchange_id}-1",
            ts=now,
            symbol=order.symbol,
            side=order.side,
            price=level.price,
            amount=order.amount,
            fee=self.fees.flat_fee,
            fee_asset=self._instruments[order.symbol].quote,
            fee_price=Decimal(1),
            liquidity="taker",
        )
        record.fills.append(fill)
        self.ctx.report(fill)


@hookimpl
def arbframe_register_exchanges(register: Register) -> None:
    register(Dealer)
