"""The data a plugin touches: instruments, books, orders, venue reports, fills, trades, guard
decisions and alerts.

Units, everywhere: timestamps are integer nanoseconds since the epoch (scenario time in a
simulated run). Book prices and sizes are floats, in the instrument's quote currency and
base asset: that is the per-quote path. Everything that is booked (order amounts, fill
prices and amounts, fees, balances, PnL) is a ``Decimal``, exact. "Report currency" is the
scenario's ``report_currency``; a venue's quote currency converts to it through the FX table
(units of the currency per one unit of the report currency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from arbframe.orders import OrderState

# A book side: (price, size) pairs, best first.
Levels = tuple[tuple[float, float], ...] | list[tuple[float, float]]

BUY = "buy"
SELL = "sell"
MARKET = "market"
LIMIT = "limit"
ZERO = Decimal(0)


def money(value: Decimal) -> str:
    """An exact amount as plain decimal text: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


# ---- markets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeeSchedule:
    """What a venue charges on one instrument, as it publishes it."""

    taker_bps: Decimal
    """Fee of an order that takes liquidity, in basis points of the notional."""
    maker_bps: Decimal
    """Fee of a resting order that is filled (negative: a rebate), in basis points."""
    asset: str = "quote"
    """What the fee is paid in: ``quote``, ``base``, ``received`` (the asset the fill
    delivers: base on a buy, quote on a sell) or an asset code such as ``BNB``."""
    asset_price: Decimal | None = None
    """For a fee in a third asset: its price in the quote currency, which converts the fee."""
    quote_unit: Decimal = Decimal("1e-8")
    """Smallest unit of the quote currency: quote fees round half-even to it."""
    unit: Decimal = Decimal("1e-8")
    """Smallest unit of any other fee asset: such fees round half-even to it."""
    flat_fee: Decimal = Decimal(0)
    """A fixed charge per fill, in the fee asset, added to the bps fee before rounding (0 on an
    exchange; a dealer's ticket fee)."""
    markup_bps: Decimal = Decimal(0)
    """A dealer's markup, charged in the price: a taker fill is at a book level (rounded
    half-even to the tick) moved this many bps against the taker, then rounded to the tick
    against the taker, up for a buy, down for a sell. 0 on an exchange, whose fills are at the
    levels themselves."""

    def fee_asset(self, side: str, base: str, quote: str) -> str:
        """The asset a fill of ``side`` pays its fee in."""
        if self.asset == "quote":
            return quote
        if self.asset == "base":
            return base
        if self.asset == "received":
            return base if side == BUY else quote
        return self.asset


@dataclass(frozen=True)
class Instrument:
    """A venue's market: one base asset traded against one quote currency."""

    venue: str
    """The venue's name in the scenario."""
    symbol: str
    """The name feeds and strategies use for it, e.g. ``BTC`` (the base asset, quoted in
    the venue's quote currency) or ``ETH/BTC``."""
    base: str
    """The asset bought and sold, e.g. ``BTC``."""
    quote: str
    """The currency prices are in, e.g. ``KRW``."""
    price_tick: Decimal
    """Prices are multiples of it."""
    amount_step: Decimal
    """Order amounts (base) are multiples of it."""
    min_amount: Decimal
    """Smallest order amount (base)."""
    min_notional: Decimal
    """Smallest order value, price x amount (quote)."""
    fees: FeeSchedule
    """The fee schedule."""
    venue_symbol: str = ""
    """The venue's own name for it (e.g. ``KRW-BTC``), where it differs."""


class Book:
    """The latest L2 book of one instrument on one venue.

    The kernel keeps one ``Book`` object per instrument for the whole run; feeds (or a
    real venue's market-data task) replace its sides on every update, and a simulated
    venue removes what its own fills took until the next update replaces it. A venue that
    quotes its own prices (a dealer's marked-up quote) shows those: the book is what
    strategies can trade at.
    """

    __slots__ = ("bids", "asks", "ts")

    def __init__(self) -> None:
        self.bids: Levels = ()
        """Bids as (price, size) float pairs, best (highest) first."""
        self.asks: Levels = ()
        """Asks as (price, size) float pairs, best (lowest) first."""
        self.ts = 0
        """When the venue published this book (ns); 0 before the first update."""

    @property
    def ready(self) -> bool:
        """Both sides have at least one level."""
        return bool(self.bids) and bool(self.asks)


# ---- orders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRequest:
    """What a venue receives: the kernel's order, without the kernel's bookkeeping."""

    client_id: str
    """Unique per session, across restarts; the venue echoes it in every report."""
    venue: str
    """The venue's name in the scenario."""
    symbol: str
    """The instrument's symbol (see :class:`Instrument`)."""
    side: str
    """``buy`` or ``sell``."""
    amount: Decimal
    """Base amount."""
    type: str = MARKET
    """``market`` (fills what the book offers now, the rest is canceled) or ``limit``."""
    price: Decimal | None = None
    """Limit price (quote); None for a market order."""


@dataclass
class Order:
    """An order as the kernel tracks it. Only the execution layer changes it."""

    client_id: str
    """Unique per session, across restarts."""
    venue: str
    """The venue's name in the scenario."""
    symbol: str
    """The instrument's symbol on that venue."""
    side: str
    """``buy`` or ``sell``."""
    amount: Decimal
    """Base amount ordered."""
    type: str = MARKET
    """``market`` or ``limit`` (the execution layer sends market orders)."""
    price: Decimal | None = None
    """Limit price, or None."""
    trade_id: str | None = None
    """The trade it works for."""
    role: str = ""
    """Why the kernel sent it: ``entering``, ``resizing``, ``exiting`` or ``unwinding``; for an
    order the kernel found open at a venue without having sent it (an orphan), ``orphan`` (taken
    over to be canceled) or ``adopted`` (tracked, its fills booked)."""
    reference_price: float = 0.0
    """Best opposite book price when decided (quote); fills' slippage is measured from it."""
    state: OrderState = OrderState.NEW
    """Where it is in its life; it moves only through the order state machine
    (``arbframe.orders.TRANSITIONS``)."""
    exchange_id: str | None = None
    """The venue's id, once it acknowledged the order."""
    filled: Decimal = ZERO
    """Base amount filled, from the fills received."""
    venue_filled: Decimal | None = None
    """Base amount the venue says it filled in its final report (None before it)."""
    cost: Decimal = ZERO
    """Sum of price x amount over the fills (quote)."""
    fees: dict[str, Decimal] = field(default_factory=dict)
    """Fees paid, per asset."""
    reason: str = ""
    """Why it was rejected, canceled or left unresolved."""
    created_at: int = 0
    """When the kernel submitted it (ns)."""
    updated_at: int = 0
    """When its state last changed (ns)."""
    queries: int = 0
    """How many times the kernel asked the venue about it (after a timeout)."""
    adopted_at: int | None = None
    """For an orphan the kernel took over: the venue's time of the open-orders answer that
    listed it (ns). Fills the venue made up to then are already in the balances (or were
    booked as fills of an unknown order): a query's answer does not book them again."""

    @property
    def remaining(self) -> Decimal:
        """Base amount not filled: ``amount - filled``."""
        return self.amount - self.filled

    @property
    def settled(self) -> bool:
        """Final, and every fill the venue reported in its final answer has arrived."""
        return self.state.final and (self.venue_filled is None or self.filled >= self.venue_filled)

    def request(self) -> OrderRequest:
        """What the venue receives for it."""
        return OrderRequest(
            self.client_id, self.venue, self.symbol, self.side, self.amount, self.type, self.price
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record, amounts as exact decimal text (a line of ``orders.jsonl`` with
        ``--out``)."""
        return {
            "client_id": self.client_id,
            "exchange_id": self.exchange_id,
            "venue": self.venue,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "amount": money(self.amount),
            "price": None if self.price is None else money(self.price),
            "state": self.state.value,
            "filled": money(self.filled),
            "cost": money(self.cost),
            "fees": {asset: money(fee) for asset, fee in self.fees.items()},
            "trade_id": self.trade_id,
            "role": self.role,
            "reason": self.reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class OrderUpdate:
    """An order's state change, as sinks receive it (a snapshot: it never changes)."""

    ts: int
    """When the state changed (ns)."""
    client_id: str
    """The order's client id."""
    exchange_id: str | None
    """The venue's id of the order; None until the venue acknowledged it."""
    venue: str
    """The venue's name in the scenario."""
    symbol: str
    """The instrument's symbol on that venue."""
    side: str
    """``buy`` or ``sell``."""
    event: str
    """The :class:`~arbframe.orders.OrderEvent` value that caused it."""
    previous: OrderState
    """The state before the change."""
    state: OrderState
    """The state after it."""
    filled: Decimal
    """Base amount filled so far."""
    trade_id: str | None
    """The trade the order works for, or None."""
    role: str
    """Why the kernel sent the order: ``entering``, ``resizing``, ``exiting`` or ``unwinding``."""
    reason: str = ""
    """The order's latest reason: why it was rejected, canceled or left unresolved (empty if
    none)."""


# ---- what venues report --------------------------------------------------------------------
# A venue answers only through these, delivered to the callable it received as
# ``ctx.report`` (see arbframe.components.Exchange). Any of them may arrive late, out of
# order or twice; the execution layer applies each exactly once.


@dataclass(frozen=True, slots=True)
class Accepted:
    """The venue acknowledged an order."""

    venue: str
    """The venue's name in the scenario."""
    client_id: str
    """The order's client id, echoed from the :class:`OrderRequest`."""
    exchange_id: str
    """The venue's own id for the order."""
    ts: int
    """When the venue acknowledged it (ns)."""


@dataclass(frozen=True, slots=True)
class FillReport:
    """A fill as the venue reports it."""

    venue: str
    """The venue's name in the scenario."""
    client_id: str
    """The order's client id, echoed from the :class:`OrderRequest`."""
    exchange_id: str
    """The venue's own id for the order."""
    fill_id: str
    """The venue's id of this fill (unique per venue): what makes a repeat recognisable."""
    ts: int
    """When it was executed at the venue (ns)."""
    symbol: str
    """The instrument's symbol, as in the request."""
    side: str
    """``buy`` or ``sell``."""
    price: Decimal
    """Quote per base."""
    amount: Decimal
    """Base."""
    fee: Decimal
    """Fee charged for this fill, in ``fee_asset``, rounded to that asset's unit (negative: a
    rebate)."""
    fee_asset: str
    """The asset code the fee is paid in (e.g. ``USDT``, ``BTC``, ``BNB``): never the schedule's
    ``quote`` / ``base`` / ``received`` keyword."""
    fee_price: Decimal
    """Quote units per unit of ``fee_asset`` (1 for a quote fee, the fill price for a base
    fee): the fee's value is ``fee * fee_price`` in the quote currency."""
    liquidity: str
    """``taker`` or ``maker``."""


@dataclass(frozen=True, slots=True)
class Closed:
    """An order reached a final state at the venue."""

    venue: str
    """The venue's name in the scenario."""
    client_id: str
    """The order's client id, echoed from the :class:`OrderRequest`."""
    state: OrderState
    """``filled``, ``canceled``, ``rejected`` or ``expired``."""
    filled: Decimal
    """Base amount the venue filled in total (fill reports may still be on their way)."""
    ts: int
    """When the order ended at the venue (ns)."""
    reason: str = ""
    """Why it was canceled, rejected or expired, in the venue's words (empty when filled)."""
    exchange_id: str | None = None
    """The venue's id of the order, if it assigned one."""


@dataclass(frozen=True, slots=True)
class CancelRejected:
    """The venue refused a cancel (typically: the order had already filled)."""

    venue: str
    """The venue's name in the scenario."""
    client_id: str
    """The order's client id, echoed from the :class:`OrderRequest`."""
    ts: int
    """When the venue refused the cancel (ns)."""
    reason: str = ""
    """Why, in the venue's words (e.g. the order is no longer open, or unknown)."""


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """The answer to a query (``Exchange.fetch_order``): the whole truth about one order."""

    venue: str
    """The venue's name in the scenario."""
    client_id: str
    """The order's client id, echoed from the :class:`OrderRequest`."""
    exchange_id: str
    """The venue's own id for the order."""
    state: OrderState
    """The order's state at the venue: a final one, or ``open`` / ``partially_filled`` while it is
    live."""
    filled: Decimal
    """Base amount filled so far, in total."""
    fills: tuple[FillReport, ...]
    """Every fill of the order so far."""
    ts: int
    """When the venue answered (ns)."""
    reason: str = ""
    """Why it was canceled, rejected or expired (empty otherwise)."""


@dataclass(frozen=True, slots=True)
class OrderNotFound:
    """The answer to a query about an order the venue does not know."""

    venue: str
    """The venue's name in the scenario."""
    client_id: str
    """The client id asked about."""
    ts: int
    """When the venue answered (ns). After ``max_queries`` such answers the kernel takes the order
    as lost: rejected, nothing filled."""


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """Money that moved without a fill: a deposit, withdrawal, transfer or fee rebate."""

    venue: str
    """The venue's name in the scenario."""
    asset: str
    """The asset code that moved, e.g. ``USDT``."""
    amount: Decimal
    """Signed: > 0 arrives, < 0 leaves."""
    kind: str
    """``deposit``, ``withdrawal``, ``transfer_in``, ``transfer_out``, ``rebate``, ..."""
    ts: int
    """When it moved at the venue (ns)."""
    ref: str = ""
    """The venue's id of the movement."""


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One open order as a venue knows it: an entry of :class:`OpenOrders`."""

    client_id: str
    """The client id it was placed with (by this session, another process or by hand)."""
    exchange_id: str
    """The venue's own id for the order."""
    symbol: str
    """The instrument's symbol, as the kernel names it."""
    side: str
    """``buy`` or ``sell``."""
    type: str
    """``market`` or ``limit``."""
    amount: Decimal
    """Base amount ordered."""
    price: Decimal | None
    """Limit price (quote); None for a market order."""
    filled: Decimal
    """Base amount filled so far."""
    state: OrderState
    """``open`` or ``partially_filled`` (``pending_cancel`` while a cancel is under way)."""


@dataclass(frozen=True, slots=True)
class OpenOrders:
    """The answer to ``Exchange.fetch_open_orders``: every order open at the venue, whoever
    placed it. An order the kernel does not know is an orphan."""

    venue: str
    """The venue's name in the scenario."""
    ts: int
    """When the venue answered (ns): the list is the truth as of then."""
    orders: tuple[VenueOrder, ...]
    """The open orders, in any order."""


@dataclass(frozen=True)
class Balances:
    """The answer to ``Exchange.fetch_balances``: the venue's own account, total per asset
    (locked amounts included), as of ``ts``."""

    venue: str
    """The venue's name in the scenario."""
    ts: int
    """When the venue answered (ns)."""
    totals: dict[str, Decimal]
    """Asset code -> total balance (an asset not listed holds 0)."""


# What a venue answers about an order.
VenueReport = Accepted | FillReport | Closed | CancelRejected | OrderStatus | OrderNotFound
# Anything a venue sends to ``ctx.report``.
Report = VenueReport | BalanceChange | OpenOrders | Balances


# ---- the ledger's records --------------------------------------------------------------------


@dataclass(slots=True)
class Fill:
    """A booked fill: the venue's report plus what the kernel knows about it."""

    ts: int
    """When it was executed at the venue (ns)."""
    venue: str
    """The venue's name in the scenario."""
    symbol: str
    """The instrument's symbol on that venue."""
    base: str
    """The instrument's base asset."""
    quote: str
    """The instrument's quote currency: ``price``, ``slippage`` and ``fee_price`` are in it."""
    side: str
    """``buy`` or ``sell``."""
    price: Decimal
    """Quote per base."""
    amount: Decimal
    """Base."""
    fee: Decimal
    """Fee charged for this fill, in ``fee_asset`` (negative: a rebate)."""
    fee_asset: str
    """The asset code the fee is paid in."""
    fee_price: Decimal
    """Quote units per unit of the fee asset."""
    client_id: str
    """The client id of the order that filled."""
    exchange_id: str
    """The venue's id of that order."""
    fill_id: str
    """The venue's id of this fill (unique per venue)."""
    trade_id: str | None
    """The trade the order worked for; None for an order the kernel does not know."""
    role: str
    """The order's role (``entering``, ``exiting``, ...)."""
    liquidity: str
    """``taker`` or ``maker``."""
    slippage: Decimal
    """Cost versus the decision's reference price, in the quote currency (> 0 is worse)."""
    fx: Decimal
    """Quote units per report-currency unit when it was booked."""

    @property
    def notional(self) -> Decimal:
        """``price * amount``, in the quote currency."""
        return self.price * self.amount

    @property
    def fee_value(self) -> Decimal:
        """The fee's value in the quote currency."""
        return self.fee * self.fee_price

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record, amounts as exact decimal text (a line of ``fills.jsonl`` with
        ``--out``)."""
        return {
            "ts": self.ts,
            "venue": self.venue,
            "symbol": self.symbol,
            "base": self.base,
            "quote": self.quote,
            "side": self.side,
            "price": money(self.price),
            "amount": money(self.amount),
            "fee": money(self.fee),
            "fee_asset": self.fee_asset,
            "fee_price": money(self.fee_price),
            "client_id": self.client_id,
            "exchange_id": self.exchange_id,
            "fill_id": self.fill_id,
            "trade_id": self.trade_id,
            "role": self.role,
            "liquidity": self.liquidity,
            "slippage": money(self.slippage),
            "fx": money(self.fx),
        }


# ---- trades --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteLeg:
    """One instrument of a route and which way the trade takes it at entry."""

    venue: str
    """The venue's name in the scenario."""
    symbol: str
    """The instrument's symbol on that venue."""
    ratio: Decimal
    """Base amount per unit of trade size, signed: +1 bought at entry, -1 sold."""


@dataclass(frozen=True)
class Route:
    """What a trade holds: any number of legs (two venues, three venues, a triangle)."""

    label: str
    """What the trade is reported under (``summary.symbols.<label>``), e.g. ``BTC``."""
    legs: tuple[RouteLeg, ...]
    """The legs, in order: the first one converts a ``quote``-sized entry into a size; a two-venue
    spread lists the buy leg, then the sell leg."""

    @classmethod
    def spread(cls, symbol: str, buy: str, sell: str) -> Route:
        """Buy ``symbol`` on venue ``buy``, sell it on venue ``sell``."""
        one = Decimal(1)
        return cls(symbol, (RouteLeg(buy, symbol, one), RouteLeg(sell, symbol, -one)))

    @property
    def name(self) -> str:
        """``<buy>_to_<sell>`` for a two-venue spread, else the signed venue list."""
        if len(self.legs) == 2 and self.legs[0].ratio > 0 > self.legs[1].ratio:
            return f"{self.legs[0].venue}_to_{self.legs[1].venue}"
        return "_".join(("+" if leg.ratio > 0 else "-") + leg.venue for leg in self.legs)


class TradeState(str, Enum):
    """A trade's phase. The kernel moves it; a strategy may act only on an OPEN trade."""

    ENTERING = "entering"  #: entry orders working
    OPEN = "open"  #: every leg at its target, nothing working
    RESIZING = "resizing"  #: moving to a new size (partial close)
    EXITING = "exiting"  #: moving every leg to zero
    UNWINDING = "unwinding"  #: an entry failed: back to the hedged amount
    HALTED = "halted"  #: even unwinding failed: left to an operator (P0 alert raised)
    CLOSED = "closed"  #: flat on every leg; PnL final

    @property
    def busy(self) -> bool:
        """Orders are working on it (entering, resizing, exiting or unwinding): it cannot be resized
        or exited now."""
        return self in (
            TradeState.ENTERING,
            TradeState.RESIZING,
            TradeState.EXITING,
            TradeState.UNWINDING,
        )


@dataclass
class Leg:
    """One leg of a trade: where the kernel drives it, and where it is."""

    venue: str
    """The venue's name in the scenario."""
    symbol: str
    """The instrument's symbol on that venue."""
    base: str
    """The instrument's base asset (a fee paid in it reduces ``position``)."""
    ratio: Decimal
    """Base amount per unit of trade size, signed (+1 bought at entry, -1 sold)."""
    target: Decimal = ZERO
    """Signed base amount the leg should hold now."""
    position: Decimal = ZERO
    """Signed base amount the leg holds: fills, net of fees paid in the base asset."""
    last_price: Decimal = ZERO
    """Price of its latest fill (quote per base): what values a residue (``Trade.residue``)."""


@dataclass
class Trade:
    """One position across venues, from its entry decision until flat on every leg."""

    trade_id: str
    """``<label>-<n>``, n counting the session's trades; the trade the kernel opens to unwind a fill
    that arrived after its trade closed is ``<trade_id>-late<n>``."""
    strategy: str
    """Name of the strategy that opened it."""
    symbol: str
    """The route's label (see :class:`Route`)."""
    route: str
    """The route's name, e.g. ``binance_to_upbit``."""
    legs: list[Leg]
    """Its legs, in the route's order."""
    opened_at: int
    """When the entry was decided (ns)."""
    risk_bps: float
    """The strategy's stop distance: risk = notional x risk_bps / 1e4 (R divides by it)."""
    size: Decimal = ZERO
    """Current target size: each leg's target is its ratio times this (base units)."""
    entry_spread_bps: float | None = None
    """Two-leg routes: (best bid of the sell venue - best ask of the buy venue) / that ask,
    in bps of report-currency prices, when the entry was decided; None for other routes."""
    state: TradeState = TradeState.ENTERING
    """Its phase (see :class:`TradeState`); only the kernel moves it."""
    fills: list[Fill] = field(default_factory=list)
    """Every fill booked for it, in arrival order, whatever the order's role."""
    closed_at: int | None = None
    """When it closed (ns); None until then."""
    exit_reason: str = ""
    """Why it closed: the strategy's exit reason, ``end_of_run``, or the kernel's
    ``leg_failure`` (entry incomplete, unwound) / ``entry_failed`` (no fill at all)."""
    exited: bool = False
    """Closed by an exit decision (a strategy's, or ``end_of_run``), not by a failure."""
    exit_spread_bps: float | None = None
    """Two-leg routes: what closing would cost when the exit was decided,
    (best ask of the sell venue - best bid of the buy venue) / that bid, in bps of
    report-currency prices."""
    exit_book_age_ns: int | None = None
    """Age of the oldest book the exit decision used, in ns (an urgent exit may act on stale
    books)."""
    notional: Decimal = ZERO
    """Report-currency value of the largest leg filled while entering (what was filled,
    not what was intended); set when it closes, like every amount below."""
    risk: Decimal = ZERO
    """Report currency: one R, ``notional * risk_bps / 1e4`` (rounded to 1e-8); set when it
    closes."""
    gross_pnl: Decimal = ZERO
    """Report currency, before fees: net_pnl + fees (set when it closes)."""
    fees: Decimal = ZERO
    """Report currency: every fee, valued at its fill's fee price."""
    slippage: Decimal = ZERO
    """Report currency: fills versus the reference prices of their decisions."""
    net_pnl: Decimal = ZERO
    """Report currency: the quote flows of every fill, less fees paid in anything but the
    traded asset, plus any residue smaller than the venue trades valued at its last fill."""
    residue: dict[str, Decimal] = field(default_factory=dict)
    """``<venue>:<symbol>`` -> signed base amount a leg held when the trade closed (less
    than the venue's minimum order), valued in ``net_pnl`` at that leg's last fill price."""
    expected_slippage_bps: float | None = None
    """What the strategy expected the entry to cost in slippage, in bps (``enter``'s
    ``expected_slippage_bps``, e.g. from the route's depth walk); None when it said nothing."""

    @property
    def slippage_bps(self) -> float | None:
        """Realised slippage, ``slippage / notional * 1e4`` (entry and exit fills, so it
        includes what the exit cost); None until the trade has closed with a notional."""
        return float(self.slippage / self.notional * 10_000) if self.notional else None

    @property
    def r_multiple(self) -> Decimal:
        """The outcome in R: ``net_pnl / risk`` (0 without risk)."""
        return self.net_pnl / self.risk if self.risk else ZERO

    @property
    def won(self) -> bool:
        """``net_pnl > 0``."""
        return self.net_pnl > 0

    @property
    def buy_venue(self) -> str | None:
        """Venue of the first leg bought at entry (ratio > 0), or None when no leg is."""
        return next((leg.venue for leg in self.legs if leg.ratio > 0), None)

    @property
    def sell_venue(self) -> str | None:
        """Venue of the first leg sold at entry (ratio < 0), or None when no leg is."""
        return next((leg.venue for leg in self.legs if leg.ratio < 0), None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record, amounts as exact decimal text and fills by id (a line of
        ``trades.jsonl`` with ``--out``)."""

        def bps(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "trade_id": self.trade_id,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "route": self.route,
            "legs": [
                {"venue": leg.venue, "symbol": leg.symbol, "ratio": money(leg.ratio)}
                for leg in self.legs
            ],
            "state": self.state.value,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "hold_ns": None if self.closed_at is None else self.closed_at - self.opened_at,
            "entry_spread_bps": bps(self.entry_spread_bps),
            "exit_spread_bps": bps(self.exit_spread_bps),
            "exit_reason": self.exit_reason,
            "exit_book_age_ns": self.exit_book_age_ns,
            "notional": money(self.notional),
            "gross_pnl": money(self.gross_pnl),
            "fees": money(self.fees),
            "slippage": money(self.slippage),
            "expected_slippage_bps": bps(self.expected_slippage_bps),
            "slippage_bps": bps(self.slippage_bps),
            "net_pnl": money(self.net_pnl),
            "r": money(self.r_multiple.quantize(Decimal("0.0001"))),
            "residue": {venue: money(amount) for venue, amount in self.residue.items()},
            "fills": [f.fill_id for f in self.fills],
        }


# ---- risk and alerts -------------------------------------------------------------------------


class Action(str, Enum):
    """Guard verdicts, from least to most restrictive."""

    ALLOW = "allow"  #: enter as asked (the same as returning None)
    DEGRADE = "degrade"  #: enter smaller: ``scale`` x the intended notional
    COOLDOWN = "cooldown"  #: refuse, and refuse entries in the decision's ``scope`` until ``until``
    BLOCK = "block"  #: refuse this entry


ACTION_RANK = {Action.ALLOW: 0, Action.DEGRADE: 1, Action.COOLDOWN: 2, Action.BLOCK: 3}
ACTIONS = (Action.ALLOW, Action.DEGRADE, Action.COOLDOWN, Action.BLOCK)
"""The verdicts by rank: ``ACTIONS[ACTION_RANK[a]] is a``."""


@dataclass(slots=True)
class Intent:
    """A strategy's wish to open a trade, as the guards see it before any order exists."""

    ts: int
    """When the strategy asked (ns)."""
    strategy: str
    """Name of the strategy asking."""
    symbol: str
    """The route's label."""
    route: Route
    """The route it wants to enter."""
    notional: Decimal
    """Intended size in the report currency."""

    @property
    def venues(self) -> tuple[str, ...]:
        """The route's venues, in leg order."""
        return tuple(leg.venue for leg in self.route.legs)


@dataclass(slots=True)
class GuardDecision:
    """A guard's verdict on an intent."""

    ts: int
    """When it was decided: the intent's ``ts`` (ns)."""
    guard: str
    """The guard's name."""
    action: Action
    """The verdict."""
    reason: str = ""
    """Why, in words (the summary keeps each guard's first reason per action; the hook hears a
    decision again when its reason changes)."""
    scale: float = 1.0
    """For DEGRADE: the fraction of the intended size allowed."""
    until: int | None = None
    """For COOLDOWN: when entries may resume (ns)."""
    symbol: str = ""
    """The symbol it is about: the intent's ``symbol`` (a guard should copy it)."""
    rule: str = ""
    """The guard's rule that fired, e.g. ``max_exposure`` or ``circuit_breaker``: counted in
    ``summary.guards.triggers.<rule>``."""
    scope: str = ""
    """For COOLDOWN: what cools down. ``""`` or ``symbol``: the intent's symbol (readable in
    ``ctx.execution.cooldowns`` by symbol); ``route``: the intent's route on that symbol;
    ``venue:<name>``: every route through that venue; ``global``: every entry."""


@dataclass(frozen=True)
class Finding:
    """What the kernel's reconciliation with a venue noticed (``arbframe.reconcile``), as fault
    injectors watching it (``FaultContext.watch_reconciliation``) receive it."""

    ts: int
    """When the kernel noticed (ns)."""
    venue: str
    """The venue's name in the scenario."""
    kind: str
    """``orphan`` (an open order the kernel did not know), ``orphan_canceled`` (its cancel
    confirmed), ``orphan_adopted`` (tracked as the kernel's), ``balance_mismatch`` (booked as a
    ``reconciliation`` ledger entry), ``balances_match`` (a comparison found no difference),
    ``inflight_query`` (an order or a cancel silent past ``order_timeout`` was queried)."""
    client_id: str = ""
    """The order it is about, if any."""
    asset: str = ""
    """The asset of a balance finding."""
    amount: Decimal | None = None
    """A balance mismatch: venue minus ledger, booked as the adjustment."""


@dataclass(frozen=True)
class Alert:
    """Something an operator should know, by urgency."""

    ts: int
    """When it was raised (ns)."""
    severity: str
    """``P0`` (act now) .. ``P3`` (informational)."""
    title: str
    """What happened, in one line."""
    detail: str = ""
    """The particulars (positions, ids, ...); may be empty."""
    rule: str = ""
    """The alerting rule it fired under (``arbframe.alerting``), when alerting is on."""
