"""Plain data carried between the engine, venues, strategies and sinks.

Prices and sizes in books are floats (the hot path). Everything that is money, i.e.
order amounts, fill prices and amounts, fees, balances and PnL, is ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

# A book side: (price, size) pairs, best first.
Levels = tuple[tuple[float, float], ...] | list[tuple[float, float]]


def money(value: Decimal) -> str:
    """An exact amount as plain decimal text: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


BUY = "buy"
SELL = "sell"
MARKET = "market"
LIMIT = "limit"


class OrderStatus(str, Enum):
    NEW = "new"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED}


class Book:
    """The latest L2 book of one symbol on one venue; replaced wholesale on every update."""

    __slots__ = ("bids", "asks", "ts")

    def __init__(self) -> None:
        self.bids: Levels = ()
        self.asks: Levels = ()
        self.ts = 0

    @property
    def ready(self) -> bool:
        return bool(self.bids) and bool(self.asks)


@dataclass(frozen=True)
class Market:
    """What a venue trades for one symbol: precision, minimums and fees."""

    symbol: str  # the base asset, e.g. "BTC"
    quote: str  # the venue's quote currency, e.g. "KRW"
    price_tick: Decimal
    amount_step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    taker_bps: Decimal
    maker_bps: Decimal
    quote_unit: Decimal  # smallest unit of the quote currency; fees round to it


@dataclass
class Order:
    client_id: str
    venue: str
    symbol: str
    side: str
    amount: Decimal
    type: str = MARKET
    price: Decimal | None = None  # limit price
    trade_id: str | None = None
    role: str = ""  # what the strategy meant it for: "entry", "exit", "unwind", ...
    created_at: int = 0
    reference_price: float = 0.0  # best opposite price when decided; slippage is measured from it
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # sum of price * amount over fills, in the quote currency
    fee: Decimal = Decimal(0)
    reason: str = ""  # why it was rejected or canceled
    updated_at: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def average_price(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "venue": self.venue,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "amount": money(self.amount),
            "price": None if self.price is None else money(self.price),
            "status": self.status.value,
            "filled": money(self.filled),
            "cost": money(self.cost),
            "fee": money(self.fee),
            "trade_id": self.trade_id,
            "role": self.role,
            "reason": self.reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Fill:
    ts: int
    venue: str
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    quote: str  # quote currency of `price`
    fee: Decimal
    fee_asset: str
    client_id: str
    trade_id: str | None
    role: str
    liquidity: str  # "taker" or "maker"
    slippage: Decimal  # cost versus the decision price, in the quote currency (> 0 is worse)
    fx: Decimal = Decimal(1)  # quote units per report-currency unit when booked (set by the engine)

    @property
    def notional(self) -> Decimal:
        return self.price * self.amount

    def as_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "venue": self.venue,
            "symbol": self.symbol,
            "side": self.side,
            "price": money(self.price),
            "amount": money(self.amount),
            "quote": self.quote,
            "fee": money(self.fee),
            "fee_asset": self.fee_asset,
            "client_id": self.client_id,
            "trade_id": self.trade_id,
            "role": self.role,
            "liquidity": self.liquidity,
            "slippage": money(self.slippage),
            "fx": money(self.fx),
        }


@dataclass
class Trade:
    """One arbitrage position: legs on two venues, from entry until flat on both."""

    trade_id: str
    symbol: str
    buy_venue: str  # the venue bought at entry (the cheap one)
    sell_venue: str  # the venue sold at entry (the rich one)
    opened_at: int
    entry_spread_bps: float
    notional: Decimal  # intended entry notional in the report currency
    risk: Decimal  # report-currency loss at the stop: R = net PnL / risk
    fills: list[Fill] = field(default_factory=list)
    closed_at: int | None = None
    exit_spread_bps: float | None = None
    exit_reason: str = ""
    gross_pnl: Decimal = Decimal(0)  # report currency, before fees
    fees: Decimal = Decimal(0)  # report currency
    slippage: Decimal = Decimal(0)  # report currency
    net_pnl: Decimal = Decimal(0)  # gross - fees

    @property
    def r_multiple(self) -> Decimal:
        return self.net_pnl / self.risk if self.risk else Decimal(0)

    @property
    def won(self) -> bool:
        return self.net_pnl > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "trade_id": self.trade_id,
            "symbol": self.symbol,
            "buy_venue": self.buy_venue,
            "sell_venue": self.sell_venue,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "hold_ns": None if self.closed_at is None else self.closed_at - self.opened_at,
            "entry_spread_bps": round(self.entry_spread_bps, 4),
            "exit_spread_bps": None
            if self.exit_spread_bps is None
            else round(self.exit_spread_bps, 4),
            "exit_reason": self.exit_reason,
            "notional": money(self.notional),
            "gross_pnl": money(self.gross_pnl),
            "fees": money(self.fees),
            "slippage": money(self.slippage),
            "net_pnl": money(self.net_pnl),
            "r": money(self.r_multiple.quantize(Decimal("0.0001"))),
            "fills": [f.client_id for f in self.fills],
        }


class Action(str, Enum):
    """Guard verdicts, from least to most restrictive."""

    ALLOW = "allow"
    DEGRADE = "degrade"
    COOLDOWN = "cooldown"
    BLOCK = "block"


ACTION_RANK = {Action.ALLOW: 0, Action.DEGRADE: 1, Action.COOLDOWN: 2, Action.BLOCK: 3}


@dataclass(frozen=True)
class Intent:
    """A strategy's wish to open a position, before the guards have seen it."""

    ts: int
    symbol: str
    buy_venue: str
    sell_venue: str
    notional: Decimal  # report currency


@dataclass(frozen=True)
class GuardDecision:
    ts: int
    guard: str
    action: Action
    reason: str = ""
    scale: float = 1.0  # for DEGRADE: the fraction of the size allowed
    until: int | None = None  # for COOLDOWN: when entries may resume
    symbol: str = ""


@dataclass(frozen=True)
class Alert:
    ts: int
    severity: str  # P0 (page now) .. P3 (informational)
    title: str
    detail: str = ""
