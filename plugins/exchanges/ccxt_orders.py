"""The life of a live order at a real exchange, for the `ccxt` venue (ccxt_venue.py).

Each order is sent once, with the kernel's client id, and followed until final: woken by the
exchange's order stream (ccxt.pro ``watch_orders``) where it has one, asked every
``poll_interval`` otherwise. Every fill is reported with the fee the exchange charged, in
whatever asset, as the exchange's own numbers (ccxt's string values: nothing passes through
a float). An order whose answer did not come (a timeout, a 5xx, an unparsable reply, an
"execution status unknown") is looked up by its client id, never sent again; an order the
exchange refused outright (invalid, funds short, a 429) is reported rejected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import TYPE_CHECKING, Any

import ccxt

from arbframe.model import (
    BUY,
    LIMIT,
    Accepted,
    CancelRejected,
    Closed,
    FillReport,
    Instrument,
    OpenOrders,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    VenueOrder,
)
from arbframe.orders import OrderState

if TYPE_CHECKING:
    from .ccxt_venue import CcxtExchange

log = logging.getLogger("arbframe.ccxt")

ZERO = Decimal(0)
S = 1_000_000_000
STATES = {
    "closed": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}
# The exchange answered and said no: nothing was placed. (A 429 is refused before it is
# acted on.) Any other error may hide an order that exists: it is looked up.
REFUSED = (
    ccxt.InvalidOrder,
    ccxt.InsufficientFunds,
    ccxt.BadRequest,
    ccxt.AuthenticationError,
    ccxt.RateLimitExceeded,
    ccxt.DDoSProtection,
)
UNKNOWN_LOOKUPS = 3  # "not found" answers before the follower leaves it to the kernel


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass
class _Live:
    """What this process knows of one order."""

    request: OrderRequest
    exchange_id: str | None = None
    acked: bool = False
    final: bool = False
    fills: set[str] = field(default_factory=set)  # trade ids reported
    wake: asyncio.Event | None = None
    following: bool = False


class LiveOrders:
    """The venue's orders at the exchange (live mode)."""

    def __init__(self, venue: CcxtExchange) -> None:
        self.venue = venue
        self.orders: dict[str, _Live] = {}
        self.exchange_ids: dict[str, str] = {}  # client id -> exchange id, of listed orders
        self.watching = False

    # ---- what the venue's trading interface asks ---------------------------------------------

    def submit(self, request: OrderRequest) -> None:
        live = self.orders[request.client_id] = _Live(request)
        if not self.venue.spawn(self._place(live)):
            self._reject(live, "not sent: the session has ended")

    def cancel(self, request: OrderRequest) -> None:
        self.venue.spawn(self._cancel(self._known(request)))

    def query(self, request: OrderRequest) -> None:
        self.venue.spawn(self._answer(self._known(request)))

    def open_orders(self) -> None:
        self.venue.spawn(self._open_orders())

    def busy(self) -> bool:
        """Orders whose outcome is not known yet."""
        return any(not live.final for live in self.orders.values())

    def _known(self, request: OrderRequest) -> _Live:
        live = self.orders.get(request.client_id)
        if live is None:  # sent by a process before this one (resume), or an orphan
            exchange_id = self.exchange_ids.get(request.client_id)
            live = self.orders[request.client_id] = _Live(request, exchange_id, bool(exchange_id))
        return live

    # ---- placing ---------------------------------------------------------------------------

    async def _place(self, live: _Live) -> None:
        venue, request = self.venue, live.request
        kind, price, params = self._shape(request, venue.traded[request.symbol])
        quoted = venue.books[request.symbol].ts  # when the book behind the decision arrived
        try:
            await venue.budget.acquire()
            venue.counts["orders_sent"] += 1
            venue.latency["quote_to_send"].add(time.time_ns() - quoted)
            raw = await venue.trading().create_order(
                venue.market_symbol(request.symbol), kind, request.side, str(request.amount),
                price, params,
            )  # fmt: skip
        except ccxt.DuplicateOrderId:  # the exchange has this client id already: look
            venue.counts["unknown_outcome"] += 1
            return await self._follow(live)
        except REFUSED as err:
            kind = "rate_limited" if isinstance(err, ccxt.NetworkError) else "rejected"
            venue.counts[kind] += 1
            prefix = "rate limited: " if kind == "rate_limited" else ""
            return self._reject(live, prefix + venue.why(err))
        except ccxt.BaseError as err:
            # No answer, or one that does not say: the order may be there. Look it up.
            venue.counts["unknown_outcome"] += 1
            log.warning("%s: order %s: %s; looking it up", venue.name, request.client_id,
                        venue.why(err))  # fmt: skip
            answered = not isinstance(err, ccxt.NetworkError)
            return await self._follow(live, refused=venue.why(err) if answered else "")
        venue.latency["quote_to_ack"].add(time.time_ns() - quoted)
        await self._absorb(live, raw)
        if not live.final:
            await self._follow(live)
        return None

    def _shape(
        self, request: OrderRequest, instrument: Instrument
    ) -> tuple[str, str | None, dict[str, Any]]:
        """ccxt's (type, price, params) for a kernel order."""
        venue = self.venue
        params: dict[str, Any] = {"clientOrderId": request.client_id}
        if request.type == LIMIT:
            return "limit", str(request.price), params
        if venue.market_orders == "native":
            return "market", None, params
        book = venue.books[request.symbol]
        best = book.asks[0][0] if request.side == BUY else book.bids[0][0]
        slip = venue.ioc_slippage
        factor = 1 + slip if request.side == BUY else 1 - slip
        rounding = ROUND_UP if request.side == BUY else ROUND_DOWN
        tick = instrument.price_tick
        price = (dec(best) * factor / tick).to_integral_value(rounding) * tick
        params["timeInForce"] = "IOC"
        return "limit", str(price), params

    def _reject(self, live: _Live, reason: str) -> None:
        live.final = True
        venue = self.venue
        venue.emit(Closed(venue.name, live.request.client_id, OrderState.REJECTED, ZERO,
                          venue.ctx.clock.now, reason))  # fmt: skip

    # ---- following ---------------------------------------------------------------------------

    async def _follow(self, live: _Live, refused: str = "") -> None:
        """Ask about the order until it is final: woken by the order stream, or every
        ``poll_interval``. ``refused``: the exchange answered the placement with an error
        that does not say whether it placed it; if it then does not know the order, the
        order is rejected with that error."""
        if live.following:
            return
        venue = self.venue
        live.following = True
        live.wake = live.wake or asyncio.Event()
        unknown = 0
        try:
            while not live.final:
                raw = None
                try:
                    raw = await self._lookup(live)
                except ccxt.OrderNotFound:
                    if refused:
                        return self._reject(live, refused)
                    unknown += 1  # not there (yet); then the kernel's own queries decide
                    if unknown >= UNKNOWN_LOOKUPS:
                        return
                except ccxt.BaseError as err:
                    venue.counts["lookup_errors"] += 1
                    log.debug("%s: lookup failed: %s", venue.name, venue.why(err))
                if raw is not None:
                    await self._absorb(live, raw)
                if live.final:
                    return
                with suppress(TimeoutError):
                    await asyncio.wait_for(live.wake.wait(), venue.poll_s)
                live.wake.clear()
        finally:
            live.following = False

    async def _lookup(self, live: _Live) -> dict[str, Any]:
        """The order as the exchange has it, by its id, or by our client id."""
        venue = self.venue
        client, symbol = venue.trading(), venue.market_symbol(live.request.symbol)
        await venue.budget.acquire()
        venue.counts["lookups"] += 1
        if live.exchange_id:
            return await client.fetch_order(live.exchange_id, symbol)
        cid = live.request.client_id
        if venue.exchange_id == "upbit":  # ccxt's fetch_order takes only the uuid there
            raw = await client.privateGetOrder({"identifier": cid})
            return client.parse_order(raw, client.market(symbol))
        key = "origClientOrderId" if venue.exchange_id == "binance" else "clientOrderId"
        return await client.fetch_order(None, symbol, {key: cid})

    async def _absorb(self, live: _Live, raw: dict[str, Any]) -> None:
        """Report what ``raw`` (a ccxt order) tells that was not reported yet."""
        venue, request, now = self.venue, live.request, self.venue.ctx.clock.now
        if raw.get("id") and not live.acked:
            live.exchange_id, live.acked = str(raw["id"]), True
            venue.emit(Accepted(venue.name, request.client_id, live.exchange_id, now))
        state = STATES.get(raw.get("status") or "")
        filled = dec(raw.get("filled") or 0)
        fills = await self._fills(live, raw, filled, final=state is not None)
        if fills is None:
            return  # fills not all known yet: the next lookup completes them
        for fill in fills:
            live.fills.add(fill.fill_id)
            venue.emit(fill)
        if state is not None:
            live.final = True
            if live.wake is not None:
                live.wake.set()
            reason = "" if state is OrderState.FILLED else f"{raw.get('status')} by the exchange"
            venue.emit(Closed(venue.name, request.client_id, state, filled, now, reason,
                              live.exchange_id))  # fmt: skip

    async def _answer(self, live: _Live) -> None:
        """The kernel asks (a timeout, or a resume): everything the exchange says of it."""
        venue, request, now = self.venue, live.request, self.venue.ctx.clock.now
        try:
            raw = await self._lookup(live)
        except ccxt.OrderNotFound:
            return venue.emit(OrderNotFound(venue.name, request.client_id, now))
        except ccxt.BaseError as err:  # no answer: the kernel asks again at its next timeout
            venue.counts["lookup_errors"] += 1
            log.warning("%s: cannot look up %s: %s", venue.name, request.client_id,
                        venue.why(err))  # fmt: skip
            return None
        live.exchange_id = live.exchange_id or str(raw["id"])
        state = STATES.get(raw.get("status") or "") or (
            OrderState.PARTIALLY_FILLED if dec(raw.get("filled") or 0) else OrderState.OPEN
        )
        filled = dec(raw.get("filled") or 0)
        fills = await self._fills(live, raw, filled, final=state.final)
        if fills is None:  # not all told yet: answer when they are
            return await self._follow(live)
        for fill in fills:
            live.fills.add(fill.fill_id)
        live.acked = True
        live.final = live.final or state.final
        venue.emit(OrderStatus(venue.name, request.client_id, live.exchange_id, state, filled,
                               tuple(fills), now, "" if state.final else "open"))  # fmt: skip
        if not state.final:
            venue.spawn(self._follow(live))
        return None

    # ---- fills and fees ------------------------------------------------------------------------

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
            fees = self._split_fee(live, trades, dec(order_fee["cost"]), order_fee["currency"])
            pairs = [(t, fee, order_fee["currency"]) for t, fee in zip(trades, fees, strict=True)]
        else:
            pairs = [(t, dec(t["fee"]["cost"]), t["fee"]["currency"]) for t in trades]
        return [self._fill(live, t, fee, asset) for t, fee, asset in pairs
                if str(t["id"]) not in live.fills]  # fmt: skip

    async def _trades_of(self, live: _Live) -> list[dict[str, Any]]:
        venue = self.venue
        client, symbol = venue.trading(), venue.market_symbol(live.request.symbol)
        await venue.budget.acquire()
        venue.counts["trade_lookups"] += 1
        params = {"orderId": live.exchange_id} if venue.exchange_id == "binance" else {}
        trades = await client.fetch_my_trades(symbol, None, None, params)
        return [t for t in trades if str(t.get("order")) == live.exchange_id]

    def _split_fee(
        self, live: _Live, trades: list[dict[str, Any]], total: Decimal, asset: str
    ) -> list[Decimal]:
        """An order-level fee (Upbit's ``paid_fee``) over its fills, so that they add up to
        what the exchange charged. Where the total is what the schedule gives fill by fill
        (in the fee's asset), each fill takes its schedule fee; otherwise (a discount, a
        different rounding) the total is shared by notional, the last fill taking the
        rounding's rest."""
        venue = self.venue
        instrument = venue.traded[live.request.symbol]
        schedule = venue.schedule
        unit = schedule.quote_unit if asset == instrument.quote else schedule.unit
        rate = schedule.taker_bps / 10_000
        notionals = [dec(t["price"]) * dec(t["amount"]) for t in trades]
        if asset == instrument.quote:
            by_schedule = [(n * rate).quantize(unit, ROUND_HALF_EVEN) for n in notionals]
        elif asset == instrument.base:
            by_schedule = [(dec(t["amount"]) * rate).quantize(unit, ROUND_HALF_EVEN)
                           for t in trades]  # fmt: skip
        else:
            by_schedule = []
        if by_schedule and sum(by_schedule, ZERO) == total:
            return by_schedule
        whole = sum(notionals, ZERO)
        shares = [(total * n / whole).quantize(unit, ROUND_DOWN) for n in notionals[:-1]]
        return [*shares, total - sum(shares, ZERO)]

    def _fill(self, live: _Live, trade: dict[str, Any], fee: Decimal, asset: str) -> FillReport:
        venue, request = self.venue, live.request
        instrument = venue.traded[request.symbol]
        price, amount = dec(trade["price"]), dec(trade["amount"])  # as the exchange says
        if price % instrument.price_tick or amount % instrument.amount_step:
            venue.counts["fills_off_grid"] += 1  # booked as charged; the audit will see it
        if asset == instrument.quote:
            fee_price = Decimal(1)
        elif asset == instrument.base:
            fee_price = price
        else:  # a third asset (BNB): at the configured price; without one it is counted
            fee_price = venue.schedule.asset_price or ZERO
            venue.counts["fees_in_other_assets"] += 1
            if not fee_price:
                venue.counts["fees_unpriced"] += 1
                log.error("%s: a fee of %s %s has no price (set fees.asset_price)",
                          venue.name, fee, asset)  # fmt: skip
        return FillReport(
            venue=venue.name,
            client_id=request.client_id,
            exchange_id=live.exchange_id,
            fill_id=str(trade["id"]),
            ts=venue.ctx.clock.now,  # when it reached us: the kernel's time, not the venue's
            symbol=request.symbol,
            side=request.side,
            price=price,
            amount=amount,
            fee=fee,
            fee_asset=asset,
            fee_price=fee_price,
            liquidity="maker" if trade.get("takerOrMaker") == "maker" else "taker",
        )

    # ---- canceling, open orders, the order stream -------------------------------------------

    async def _cancel(self, live: _Live) -> None:
        venue, request = self.venue, live.request
        try:
            if not live.exchange_id:
                live.exchange_id = str((await self._lookup(live))["id"])
            await venue.budget.acquire()
            await venue.trading().cancel_order(
                live.exchange_id, venue.market_symbol(request.symbol)
            )
        except ccxt.OrderNotFound as err:
            venue.emit(CancelRejected(venue.name, request.client_id, venue.ctx.clock.now,
                                      venue.why(err)))  # fmt: skip
        except ccxt.BaseError as err:  # the kernel's cancel timeout asks and tries again
            venue.counts["cancel_errors"] += 1
            log.warning("%s: cancel %s: %s", venue.name, request.client_id, venue.why(err))
        await self._follow(live)

    async def _open_orders(self) -> None:
        """Every order open on the markets this session trades, whoever placed it. No
        answer when a request fails: the kernel asks again."""
        venue, listed = self.venue, []
        try:
            for symbol in venue.traded:
                await venue.budget.acquire()
                venue.counts["open_order_reads"] += 1
                for raw in await venue.trading().fetch_open_orders(venue.market_symbol(symbol)):
                    listed.append(self._venue_order(symbol, raw))
        except ccxt.BaseError as err:
            venue.counts["open_order_errors"] += 1
            log.warning("%s: cannot list open orders: %s", venue.name, venue.why(err))
            return
        venue.emit(OpenOrders(venue.name, venue.ctx.clock.present(), tuple(listed)))

    def _venue_order(self, symbol: str, raw: dict[str, Any]) -> VenueOrder:
        exchange_id = str(raw["id"])
        client_id = raw.get("clientOrderId") or f"{self.venue.name}:{exchange_id}"
        self.exchange_ids[client_id] = exchange_id  # a cancel of it finds it by this id
        filled = dec(raw.get("filled") or 0)
        price = raw.get("price")
        return VenueOrder(
            client_id=client_id,
            exchange_id=exchange_id,
            symbol=symbol,
            side=raw["side"],
            type=raw.get("type") or LIMIT,
            amount=dec(raw["amount"]),
            price=None if price is None else dec(price),
            filled=filled,
            state=OrderState.PARTIALLY_FILLED if filled else OrderState.OPEN,
        )

    def watch(self) -> None:
        """The order stream, where the exchange has one: a change wakes the order's
        follower at once instead of at its next poll."""
        venue = self.venue
        if venue.order_updates == "poll" or self.watching:
            return
        client = venue.streams()
        if not client.has.get("watchOrders"):
            if venue.order_updates == "watch":
                log.warning("%s: %s has no order stream; polling", venue.name, venue.exchange_id)
            return
        self.watching = venue.spawn(self._order_stream(client))

    async def _order_stream(self, client: Any) -> None:
        venue = self.venue
        delays = venue.delays()
        while True:
            try:
                orders = await client.watch_orders()
            except asyncio.CancelledError:
                raise
            except ccxt.NotSupported:
                return
            except Exception as err:  # noqa: BLE001 (any failure: back off, watch again)
                venue.counts["order_stream_errors"] += 1
                log.debug("%s: order stream: %s", venue.name, venue.why(err))
                await asyncio.sleep(next(delays) / S)
                continue
            delays = venue.delays()
            for order in orders:
                live = self.orders.get(order.get("clientOrderId") or "")
                if live is not None and live.wake is not None:
                    venue.counts["order_events"] += 1
                    live.wake.set()


def _total(trades: list[dict[str, Any]]) -> Decimal:
    return sum((dec(t.get("amount") or 0) for t in trades), ZERO)
