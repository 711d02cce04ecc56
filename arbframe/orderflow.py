"""The order flow: orders out to the venues, reports back, each applied exactly once.

:class:`OrderFlow` owns every order the kernel sent: its client id (unique per session;
the counter is part of the snapshot, so a resumed session never reuses one), its state
through the table in :mod:`arbframe.orders`, the fills booked to the ledger, and a timeout
on each: an order without a final answer (or missing fills the venue said it made) is
queried, and after ``max_queries`` silent tries escalated with a P0. A cancel is watched
the same way: one not confirmed within ``order_timeout`` is queried (and sent again if the
venue says the order is still open), then escalated.

Venues answer only through reports, which may arrive late, out of order or twice: a
repeated report is recognised (fills by their venue fill id, other reports by value) and
counted; an event the state machine does not allow is counted and alerted (P1), never a
crash; a fill is booked whatever the order's state, because the venue says money moved.
What the trades make of it is the :class:`Owner`'s business (the execution engine).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from arbframe.health import venue_error
from arbframe.ledger import Ledger
from arbframe.model import (
    BUY,
    ZERO,
    Accepted,
    BalanceChange,
    Balances,
    CancelRejected,
    Closed,
    Fill,
    FillReport,
    Finding,
    OpenOrders,
    Order,
    OrderNotFound,
    OrderStatus,
    OrderUpdate,
    Report,
)
from arbframe.orders import OrderEvent, OrderState, transition

if TYPE_CHECKING:
    from arbframe.bus import EventBus
    from arbframe.clock import Clock
    from arbframe.components import Exchange
    from arbframe.health import VenueHealth
    from arbframe.market import MarketView
    from arbframe.realtime import LoopHealth

FINAL_EVENT = {
    OrderState.CANCELED: OrderEvent.CANCELED,
    OrderState.REJECTED: OrderEvent.REJECTED,
    OrderState.EXPIRED: OrderEvent.EXPIRED,
}


class Timeouts(Protocol):
    order_timeout: int  # ns before an unanswered order is queried
    max_queries: int  # unanswered queries before it is escalated


class Owner(Protocol):
    """Who the orders work for: told of fills, settled orders and lost ones."""

    def order_filled(self, order: Order, fill: Fill) -> None: ...

    def order_settled(self, order: Order) -> None: ...

    def order_unresolved(self, order: Order) -> None: ...

    def settings_of(self, order: Order) -> Timeouts: ...


def session_mark(session: str) -> str:
    """The start of every client id a session sends (``af`` and 8 hex digits)."""
    return "af" + hashlib.sha1(session.encode()).hexdigest()[:8]


class OrderFlow:
    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        market: MarketView,
        venues: dict[str, Exchange],
        ledger: Ledger,
        alert: Callable[..., None],
        session: str,
        nonce: str = "",
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.market = market
        self.venues = venues
        self.ledger = ledger
        self.alert = alert
        self.owner: Owner | None = None
        self.orders: dict[str, Order] = {}
        self.counts: Counter[str] = Counter()
        self.mark = session_mark(session)
        """What every client id of this session starts with: an open order that carries it
        and that the kernel does not know was left by an earlier process of the session."""
        # A process that talks to venues which outlive it also stamps its start (``nonce``):
        # a session started again (--reset, or a fresh run) never reuses an id such a venue
        # has seen, which it would refuse (Upbit) or mistake for the old order (Binance).
        self._prefix = f"{self.mark}{nonce}-"
        self.client_seq = 0  # the last client id's number: part of the execution snapshot
        self._fill_ids: set[tuple[str, str]] = set()
        self._reports: set[Report] = set()  # every non-fill report applied
        self.awaiting: set[str] = set()
        """Client ids asked about on resume and not answered yet: new intents wait."""
        self.reconciled: Callable[[], None] | None = None
        """Called once when the last of ``awaiting`` is answered."""
        self.health: LoopHealth | None = None  # the wall-clock driver's, told of each order
        self.venue_health: VenueHealth | None = None
        """Told of each order sent, its first answer and its timeout (arbframe.health)."""
        self.reconciler: Callable[[OpenOrders | Balances], None] | None = None
        """Where OpenOrders and Balances answers go (arbframe.reconcile); None: dropped."""
        self.untracked_settled: Callable[[Order], None] | None = None
        """Told when an order working for no trade (an orphan taken over) is settled."""
        self.watchers: list[Callable[[Finding], None]] = []
        """Faults watching what reconciliation notices (``FaultContext.watch_reconciliation``)."""

    # ---- identity ---------------------------------------------------------------------------

    def next_client_id(self) -> str:
        self.client_seq += 1
        return f"{self._prefix}{self.client_seq}"

    # ---- sending ------------------------------------------------------------------------------

    def submit(self, order: Order) -> None:
        order.created_at = self.clock.now
        self.orders[order.client_id] = order
        self.counts["submitted"] += 1
        self._apply(order, OrderEvent.SUBMIT)
        if self.health is not None:
            self.health.order_sent()
        if self.venue_health is not None:
            self.venue_health.sent(order.venue)
        self.venues[order.venue].submit(order.request())
        timeout = self.owner.settings_of(order).order_timeout  # type: ignore[union-attr]
        self.clock.call_later(timeout, self._check, order.client_id)

    def adopt(self, order: Order) -> None:
        """Resume: an order written ahead and perhaps sent before the crash."""
        order.state, order.created_at = OrderState.SUBMITTED, self.clock.now
        self.orders[order.client_id] = order
        self.counts["submitted"] += 1

    def query_on_resume(self, order: Order) -> None:
        """Resume: ask the venue what became of ``order``; its timeout runs again."""
        self.awaiting.add(order.client_id)
        self.counts["resume_queries"] += 1
        self.venues[order.venue].fetch_order(order.request())
        timeout = self.owner.settings_of(order).order_timeout  # type: ignore[union-attr]
        self.clock.call_later(timeout, self._check, order.client_id)

    def track(self, order: Order) -> None:
        """Take over an order the kernel did not send (an orphan found open at its venue)."""
        order.created_at = order.updated_at = self.clock.now
        self.orders[order.client_id] = order
        self.counts["taken_over"] += 1

    def cancel(self, order: Order) -> None:
        """Ask the venue to cancel ``order``; a confirmation that does not come within
        ``order_timeout`` is queried (``_check_cancel``)."""
        self._apply(order, OrderEvent.CANCEL_REQUEST)
        self.counts["cancels"] += 1
        self.venues[order.venue].cancel(order.request())
        timeout = self.owner.settings_of(order).order_timeout  # type: ignore[union-attr]
        self.clock.call_later(timeout, self._check_cancel, order.client_id)

    def notice(self, venue: str, kind: str, **detail: object) -> None:
        """Tell the faults watching reconciliation what the kernel noticed."""
        if self.watchers:
            finding = Finding(self.clock.now, venue, kind, **detail)  # type: ignore[arg-type]
            for watch in self.watchers:
                watch(finding)

    def _answered(self, client_id: str) -> None:
        self.awaiting.discard(client_id)
        if not self.awaiting and self.reconciled is not None:
            reconciled, self.reconciled = self.reconciled, None
            reconciled()

    # ---- reports --------------------------------------------------------------------------------

    def on_report(self, report: Report) -> None:
        """Apply one venue report (late, reordered and repeated ones included)."""
        if self.awaiting and isinstance(report, (OrderStatus, OrderNotFound)):
            self._answered(report.client_id)
        if isinstance(report, FillReport):
            return self._on_fill(report)
        if isinstance(report, (OpenOrders, Balances)):  # answers to the reconciliation's asks
            if self.reconciler is not None:
                self.reconciler(report)
            return None
        if report in self._reports:  # the same message again: it was applied once
            self.counts["duplicate_reports"] += 1
            return None
        self._reports.add(report)
        if isinstance(report, BalanceChange):
            self.ledger.book_entry(report)
            self.counts["balance_changes"] += 1
            self.bus.publish("balance_change", entry=report)
            return None
        order = self.orders.get(report.client_id)
        if order is None:
            self.counts["unknown_order_reports"] += 1
            self.alert("P1", f"report for unknown order {report.client_id}", repr(report))
            return None
        if self.venue_health is not None and order.state is OrderState.SUBMITTED:
            self._first_answer(order, report)
        if isinstance(report, Accepted):
            order.exchange_id = order.exchange_id or report.exchange_id
            self._apply(order, OrderEvent.ACCEPT)
        elif isinstance(report, Closed):
            self._on_closed(order, report.state, report.filled, report.reason)
        elif isinstance(report, CancelRejected):
            partial = order.filled > 0
            event = OrderEvent.CANCEL_REJECT_PARTIAL if partial else OrderEvent.CANCEL_REJECT
            self._apply(order, event, report.reason)
        elif isinstance(report, OrderStatus):
            order.exchange_id = order.exchange_id or report.exchange_id
            for fill in report.fills:
                self._on_fill(fill)
            if report.state.final:
                self._on_closed(order, report.state, report.filled, report.reason)
            elif order.state is OrderState.SUBMITTED:
                self._apply(order, OrderEvent.ACCEPT)
            elif order.state is OrderState.PENDING_CANCEL:
                self._cancel_lost(order)
        elif isinstance(report, OrderNotFound):
            self._on_not_found(order)
        self._after(order)
        return None

    def _first_answer(self, order: Order, report: Report) -> None:
        """The venue health monitor hears an order's first answer (not a query's)."""
        if order.queries or isinstance(report, (CancelRejected, OrderNotFound)):
            return
        error = isinstance(report, Closed) and venue_error(report.reason)
        self.venue_health.answered(order.venue, self.clock.now - order.created_at, error)  # type: ignore[union-attr]

    def _on_closed(self, order: Order, state: OrderState, filled: Decimal, reason: str) -> None:
        order.venue_filled = filled
        if state is not OrderState.FILLED:  # FILLED comes with the last fill itself
            self._apply(order, FINAL_EVENT[state], reason)

    def _on_not_found(self, order: Order) -> None:
        if order.state.final:
            return
        if order.queries >= self.owner.settings_of(order).max_queries:  # type: ignore[union-attr]
            # Asked repeatedly and never known there: it did not arrive. Nothing filled.
            order.venue_filled = ZERO
            self._apply(order, OrderEvent.REJECTED, "lost: the venue does not know it")

    def _cancel_lost(self, order: Order) -> None:
        """The venue says an order is still open although its cancel was asked at least
        ``order_timeout`` ago: the request was lost on its way. Send it again."""
        timeout = self.owner.settings_of(order).order_timeout  # type: ignore[union-attr]
        if self.clock.now - order.updated_at >= timeout:
            self.counts["cancels_resent"] += 1
            self.venues[order.venue].cancel(order.request())

    def _on_fill(self, report: FillReport) -> None:
        key = (report.venue, report.fill_id)
        order = self.orders.get(report.client_id)
        if order is not None and order.adopted_at is not None and report.ts <= order.adopted_at:
            self._fill_ids.add(key)  # made before the take-over: in the balances already
            return
        if key in self._fill_ids:
            self.counts["duplicate_fills"] += 1
            return
        self._fill_ids.add(key)
        if self.venue_health and order is not None and order.state is OrderState.SUBMITTED:
            self._first_answer(order, report)
        fill = self._book(report, order)
        if order is None:
            self.counts["unknown_order_fills"] += 1
            self.alert("P1", f"fill for unknown order {report.client_id}", repr(report))
            return
        if order.state.final:
            self.counts["late_fills"] += 1
        order.filled += report.amount
        order.cost += report.price * report.amount
        order.fees[report.fee_asset] = order.fees.get(report.fee_asset, ZERO) + report.fee
        complete = order.filled >= order.amount
        self._apply(order, OrderEvent.FILL_COMPLETE if complete else OrderEvent.FILL)
        self.owner.order_filled(order, fill)  # type: ignore[union-attr]
        self._after(order)

    def _book(self, r: FillReport, order: Order | None) -> Fill:
        """The report as a ledger fill: booked, then published (the audit checks it)."""
        instrument = self.market.instrument(r.venue, r.symbol)
        slip = ZERO
        if order is not None and order.reference_price:
            ref = Decimal(repr(order.reference_price)).quantize(instrument.price_tick)
            slip = (r.price - ref if r.side == BUY else ref - r.price) * r.amount
        fill = Fill(
            ts=r.ts, venue=r.venue, symbol=r.symbol, base=instrument.base,
            quote=instrument.quote, side=r.side, price=r.price, amount=r.amount, fee=r.fee,
            fee_asset=r.fee_asset, fee_price=r.fee_price, client_id=r.client_id,
            exchange_id=r.exchange_id, fill_id=r.fill_id,
            trade_id=None if order is None else order.trade_id,
            role="" if order is None else order.role, liquidity=r.liquidity, slippage=slip,
            fx=self.market.fx_exact[instrument.quote],
        )  # fmt: skip
        self.ledger.book_fill(fill)
        self.bus.publish("fill", fill=fill)
        return fill

    def _after(self, order: Order) -> None:
        if order.settled and order.trade_id is not None:
            self.owner.order_settled(order)  # type: ignore[union-attr]
        elif order.settled and self.untracked_settled is not None:
            self.untracked_settled(order)

    def _apply(self, order: Order, event: OrderEvent, reason: str = "") -> None:
        previous = order.state
        state = transition(previous, event)
        if state is None:
            self.counts["illegal_transitions"] += 1
            self.alert(
                "P1",
                f"illegal order transition on {order.client_id}",
                f"{event.value} in state {previous.value}",
            )
            return
        if state is previous and event is not OrderEvent.FILL:
            return  # a late ack, or a cancel confirmed twice: nothing changes
        order.state, order.updated_at = state, self.clock.now
        if reason:
            order.reason = reason
        if state.final and not previous.final:
            self.counts[state.value] += 1
        if "order_update" in self.bus.silent:
            return
        update = OrderUpdate(
            self.clock.now, order.client_id, order.exchange_id, order.venue, order.symbol,
            order.side, event.value, previous, state, order.filled, order.trade_id, order.role,
            order.reason,
        )  # fmt: skip
        self.bus.publish("order_update", update=update)

    # ---- timeouts -----------------------------------------------------------------------------

    def _check(self, client_id: str) -> None:
        """An order's timeout: no final answer yet, ask the venue."""
        order = self.orders[client_id]
        if not order.settled:
            # No answer at all: the venue's error (counted once, not on later queries).
            if self.venue_health and order.state is OrderState.SUBMITTED and not order.queries:
                self.venue_health.timed_out(order.venue)
            self._ask(order, "no final answer", self._check)

    def _check_cancel(self, client_id: str) -> None:
        """A cancel's timeout: still unconfirmed, ask the venue what became of the order (its
        answer confirms the cancel, or says the order is still open: the cancel is sent
        again)."""
        order = self.orders[client_id]
        if order.state is not OrderState.PENDING_CANCEL:
            return  # confirmed (canceled, or filled first) or refused
        self.counts["cancel_timeouts"] += 1
        self._ask(order, "cancel not confirmed", self._check_cancel)

    def _ask(self, order: Order, silent: str, again: Callable[[str], None]) -> None:
        """Query the venue about ``order`` and look ``again`` after its timeout; after
        ``max_queries`` silent tries, escalate (P0)."""
        client_id = order.client_id
        settings = self.owner.settings_of(order)  # type: ignore[union-attr]
        if order.queries >= settings.max_queries:
            order.reason = f"{silent} after {order.queries} queries"
            self.counts["unresolved"] += 1
            self.alert("P0", f"order {client_id} unresolved", order.reason)
            self._answered(client_id)
            self.owner.order_unresolved(order)  # type: ignore[union-attr]
            return
        order.queries += 1
        self.counts["queries"] += 1
        self.notice(order.venue, "inflight_query", client_id=client_id)
        self.venues[order.venue].fetch_order(order.request())
        self.clock.call_later(settings.order_timeout, again, client_id)
