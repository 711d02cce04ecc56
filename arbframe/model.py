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
    venue removes what its own fills took until the next update replaces it.
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
    symbol: str
    side: str
    amount: Decimal
    """Base amount ordered."""
    type: str = MARKET
    price: Decimal | None = None
    """Limit price, or None."""
    trade_id: str | None = None
    """The trade it works for."""
    role: str = ""
    """Why the kernel sent it: ``entering``, ``resizing``, ``exiting`` or ``unwinding``."""
    reference_price: float = 0.0
    """Best opposite book price when decided (quote); fills' slippage is measured from it."""
    state: OrderState = OrderState.NEW
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
    updated_at: int = 0
    queries: int = 0
    """How many times the kernel asked the venue about it (after a timeout)."""

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def settled(self) -> bool:
        """Final, and every fill the venue reported in its final answer has arrived."""
        return self.state.final and (self.venue_filled is None or self.filled >= self.venue_filled)

    def request(self) -> OrderRequest:
        return OrderRequest(
            self.client_id, self.venue, self.symbol, self.side, self.amount, self.type, self.price
        )

    def as_dict(self) -> dict[str, Any]:
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
    client_id: str
    exchange_id: str | None
    venue: str
    symbol: str
    side: str
    event: str
    """The :class:`~arbframe.orders.OrderEvent` value that caused it."""
    previous: OrderState
    state: OrderState
    filled: Decimal
    """Base amount filled so far."""
    trade_id: str | None
    role: str
    reason: str = ""


# ---- what venues report --------------------------------------------------------------------
# A venue answers only through these, delivered to the callable it received as
# ``ctx.report`` (see arbframe.components.Exchange). Any of them may arrive late, out of
# order or twice; the execution layer applies each exactly once.


@dataclass(frozen=True, slots=True)
class Accepted:
    """The venue acknowledged an order."""

    venue: str
    client_id: str
    exchange_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class FillReport:
    """A fill as the venue reports it."""

    venue: str
    client_id: str
    exchange_id: str
    fill_id: str
    """The venue's id of this fill (unique per venue): what makes a repeat recognisable."""
    ts: int
    """When it was executed at the venue."""
    symbol: str
    side: str
    price: Decimal
    """Quote per base."""
    amount: Decimal
    """Base."""
    fee: Decimal
    fee_asset: str
    fee_price: Decimal
    """Quote units per unit of ``fee_asset`` (1 for a quote fee, the fill price for a base
    fee): the fee's value is ``fee * fee_price`` in the quote currency."""
    liquidity: str
    """``taker`` or ``maker``."""


@dataclass(frozen=True, slots=True)
class Closed:
    """An order reached a final state at the venue."""

    venue: str
    client_id: str
    state: OrderState
    """``filled``, ``canceled``, ``rejected`` or ``expired``."""
    filled: Decimal
    """Base amount the venue filled in total (fill reports may still be on their way)."""
    ts: int
    reason: str = ""
    exchange_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRejected:
    """The venue refused a cancel (typically: the order had already filled)."""

    venue: str
    client_id: str
    ts: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """The answer to a query (``Exchange.fetch_order``): the whole truth about one order."""

    venue: str
    client_id: str
    exchange_id: str
    state: OrderState
    filled: Decimal
    fills: tuple[FillReport, ...]
    """Every fill of the order so far."""
    ts: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderNotFound:
    """The answer to a query about an order the venue does not know."""

    venue: str
    client_id: str
    ts: int


@dataclass(slots=True)
class BalanceChange:
    """Money that moved without a fill: a deposit, withdrawal, transfer or fee rebate."""

    venue: str
    asset: str
    amount: Decimal
    """Signed: > 0 arrives, < 0 leaves."""
    kind: str
    """``deposit``, ``withdrawal``, ``transfer_in``, ``transfer_out``, ``rebate``, ..."""
    ts: int
    ref: str = ""
    """The venue's id of the movement."""


VenueReport = Accepted | FillReport | Closed | CancelRejected | OrderStatus | OrderNotFound
Report = VenueReport | BalanceChange


# ---- the ledger's records --------------------------------------------------------------------


@dataclass(slots=True)
class Fill:
    """A booked fill: the venue's report plus what the kernel knows about it."""

    ts: int
    """When it was executed at the venue."""
    venue: str
    symbol: str
    base: str
    quote: str
    side: str
    price: Decimal
    """Quote per base."""
    amount: Decimal
    """Base."""
    fee: Decimal
    fee_asset: str
    fee_price: Decimal
    """Quote units per unit of the fee asset."""
    client_id: str
    exchange_id: str
    fill_id: str
    trade_id: str | None
    role: str
    """The order's role (``entering``, ``exiting``, ...)."""
    liquidity: str
    slippage: Decimal
    """Cost versus the decision's reference price, in the quote currency (> 0 is worse)."""
    fx: Decimal
    """Quote units per report-currency unit when it was booked."""

    @property
    def notional(self) -> Decimal:
        return self.price * self.amount

    @property
    def fee_value(self) -> Decimal:
        """The fee's value in the quote currency."""
        return self.fee * self.fee_price

    def as_dict(self) -> dict[str, Any]:
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
    symbol: str
    ratio: Decimal
    """Base amount per unit of trade size, signed: +1 bought at entry, -1 sold."""


@dataclass(frozen=True)
class Route:
    """What a trade holds: any number of legs (two venues, three venues, a triangle)."""

    label: str
    """What the trade is reported under (``summary.symbols.<label>``), e.g. ``BTC``."""
    legs: tuple[RouteLeg, ...]

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
    symbol: str
    base: str
    ratio: Decimal
    """Base amount per unit of trade size, signed (+1 bought at entry, -1 sold)."""
    target: Decimal = ZERO
    """Signed base amount the leg should hold now."""
    position: Decimal = ZERO
    """Signed base amount the leg holds: fills, net of fees paid in the base asset."""
    last_price: Decimal = ZERO
    """Price of its latest fill (values a residue smaller than the venue can trade)."""


@dataclass
class Trade:
    """One position across venues, from its entry decision until flat on every leg."""

    trade_id: str
    strategy: str
    """Name of the strategy that opened it."""
    symbol: str
    """The route's label (see :class:`Route`)."""
    route: str
    """The route's name, e.g. ``binance_to_upbit``."""
    legs: list[Leg]
    opened_at: int
    """When the entry was decided."""
    risk_bps: float
    """The strategy's stop distance: risk = notional x risk_bps / 1e4 (R divides by it)."""
    size: Decimal = ZERO
    """Current target size: each leg's target is its ratio times this (base units)."""
    entry_spread_bps: float | None = None
    """Two-leg routes: (best bid of the sell venue - best ask of the buy venue) / that ask,
    in the report currency, when the entry was decided."""
    state: TradeState = TradeState.ENTERING
    fills: list[Fill] = field(default_factory=list)
    closed_at: int | None = None
    exit_reason: str = ""
    """Why it closed: the strategy's exit reason, ``end_of_run``, or the kernel's
    ``leg_failure`` (entry incomplete, unwound) / ``entry_failed`` (no fill at all)."""
    exited: bool = False
    """Closed by an exit decision (a strategy's, or ``end_of_run``), not by a failure."""
    exit_spread_bps: float | None = None
    """Two-leg routes: what closing would cost when the exit was decided,
    (best ask of the sell venue - best bid of the buy venue) / that bid, in bps."""
    exit_book_age_ns: int | None = None
    """Age of the oldest book the exit decision used (an urgent exit may act on stale books)."""
    notional: Decimal = ZERO
    """Report-currency value of the largest leg filled while entering (what was filled,
    not what was intended)."""
    risk: Decimal = ZERO
    gross_pnl: Decimal = ZERO
    """Report currency, before fees: net_pnl + fees."""
    fees: Decimal = ZERO
    """Report currency: every fee, valued at its fill's fee price."""
    slippage: Decimal = ZERO
    """Report currency: fills versus the reference prices of their decisions."""
    net_pnl: Decimal = ZERO
    """Report currency: the quote flows of every fill, less fees paid in anything but the
    traded asset, plus any residue smaller than the venue trades valued at its last fill."""
    residue: dict[str, Decimal] = field(default_factory=dict)
    """Venue -> base amount left when it closed (below the venue's minimum order)."""

    @property
    def r_multiple(self) -> Decimal:
        return self.net_pnl / self.risk if self.risk else ZERO

    @property
    def won(self) -> bool:
        return self.net_pnl > 0

    @property
    def buy_venue(self) -> str:
        return next(leg.venue for leg in self.legs if leg.ratio > 0)

    @property
    def sell_venue(self) -> str:
        return next(leg.venue for leg in self.legs if leg.ratio < 0)

    def as_dict(self) -> dict[str, Any]:
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
            "net_pnl": money(self.net_pnl),
            "r": money(self.r_multiple.quantize(Decimal("0.0001"))),
            "residue": {venue: money(amount) for venue, amount in self.residue.items()},
            "fills": [f.fill_id for f in self.fills],
        }


# ---- risk and alerts -------------------------------------------------------------------------


class Action(str, Enum):
    """Guard verdicts, from least to most restrictive."""

    ALLOW = "allow"
    DEGRADE = "degrade"
    COOLDOWN = "cooldown"
    BLOCK = "block"


ACTION_RANK = {Action.ALLOW: 0, Action.DEGRADE: 1, Action.COOLDOWN: 2, Action.BLOCK: 3}


@dataclass(slots=True)
class Intent:
    """A strategy's wish to open a trade, as the guards see it before any order exists."""

    ts: int
    strategy: str
    symbol: str
    """The route's label."""
    route: Route
    notional: Decimal
    """Intended size in the report currency."""

    @property
    def venues(self) -> tuple[str, ...]:
        return tuple(leg.venue for leg in self.route.legs)


@dataclass(slots=True)
class GuardDecision:
    """A guard's verdict on an intent."""

    ts: int
    guard: str
    """The guard's name."""
    action: Action
    reason: str = ""
    scale: float = 1.0
    """For DEGRADE: the fraction of the intended size allowed."""
    until: int | None = None
    """For COOLDOWN: when entries may resume (ns)."""
    symbol: str = ""


@dataclass(frozen=True)
class Alert:
    """Something an operator should know, by urgency."""

    ts: int
    severity: str
    """``P0`` (act now) .. ``P3`` (informational)."""
    title: str
    detail: str = ""
