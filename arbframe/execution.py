"""The execution layer: strategies decide, the kernel executes.

A strategy expresses intents through its :class:`StrategyPort`: enter a route with a size,
resize an open trade, exit it with a reason of its own. The :class:`ExecutionEngine` owns
everything that follows: the guards' verdict, sizing to the venues' steps and balances,
client order ids, legs driven to a target position, retries, the unwind to the hedged
amount when an entry fails, a halt with a P0 alert when even that fails, and a timeout on
every order that gets no final answer (query the venue, then escalate).

Venues answer only through reports (arbframe.model: Accepted, FillReport, Closed, ...),
which may arrive late, out of order or twice; :meth:`ExecutionEngine.on_report` applies
each exactly once through the order state machine (arbframe.orders). Every state change of
an order or a trade is published on the event bus: the one path that sinks, the journal
and snapshots read.

Book age policy (``max_book_age``), by decision: an entry, a resize and a non-urgent exit
(the strategy's reversion or take-profit) are refused while a book they use is older than
the limit; an urgent exit (a stop-loss, a time exit, the end of the run) and the kernel's
own unwinds and retries act anyway, and the trade records the age of the oldest book used.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from arbframe.ledger import Ledger, trade_pnl
from arbframe.model import (
    BUY,
    SELL,
    ZERO,
    Accepted,
    Action,
    Alert,
    BalanceChange,
    CancelRejected,
    Closed,
    Fill,
    FillReport,
    Intent,
    Leg,
    Order,
    OrderNotFound,
    OrderStatus,
    OrderUpdate,
    Report,
    Route,
    RouteLeg,
    Trade,
    TradeState,
    money,
)
from arbframe.orders import OrderEvent, OrderState, transition
from arbframe.risk import GuardChain

if TYPE_CHECKING:
    from arbframe.bus import EventBus
    from arbframe.clock import Clock
    from arbframe.components import Exchange
    from arbframe.market import MarketView

S = 1_000_000_000
HEADROOM = Decimal("1.01")  # a buy leg needs its cost plus room for slippage and fees


@dataclass(frozen=True)
class ExecutionSettings:
    """The scenario's ``execution:`` block (a strategy block may override it)."""

    max_book_age: int | None = None
    order_timeout: int = 10 * S
    max_queries: int = 3
    policy: str = "unwind"  # after a failed entry: "unwind" at once, or "rebalance" first
    max_retries: int = 2
    close_at_end: bool = True

    @classmethod
    def from_config(cls, config: dict[str, Any], base: ExecutionSettings | None = None):
        from arbframe.units import parse_duration

        base = base or cls()
        leg = config.get("leg_risk", {})
        age = config.get("max_book_age")
        return cls(
            max_book_age=base.max_book_age if age is None else parse_duration(age),
            order_timeout=parse_duration(config.get("order_timeout", base.order_timeout / S)),
            max_queries=config.get("max_queries", base.max_queries),
            policy=leg.get("policy", base.policy),
            max_retries=leg.get("max_retries", base.max_retries),
            close_at_end=config.get("close_at_end", base.close_at_end),
        )


@dataclass
class _Job:
    """The kernel's working state for one trade."""

    trade: Trade
    port: StrategyPort
    inflight: set[str] = field(default_factory=set)
    retries: int = 0
    exit_reason: str = ""
    legs: dict[tuple[str, str], Leg] = field(default_factory=dict)


class StrategyPort:
    """One strategy's ``ctx.execution`` (the contract: arbframe.components.Execution)."""

    def __init__(
        self,
        engine: ExecutionEngine,
        name: str,
        settings: ExecutionSettings,
        on_trade: Callable[[Trade], None],
    ) -> None:
        self._engine = engine
        self.name = name
        """The strategy's name: its trades' ``strategy``."""
        self.settings = settings
        """The execution settings in force for the strategy: the scenario's ``execution:`` block,
        overridden by the strategy's own (book age limit, order timeout and queries, leg-risk policy
        and retries, ``close_at_end``)."""
        self.on_trade = on_trade
        """The kernel's way to ``Strategy.on_trade``; not for the strategy to call."""
        self.cooldowns = engine.guards.cooldowns
        """Symbol -> when entries may resume after a guard's cooldown (ns)."""

    def enter(
        self,
        route: Route,
        *,
        quote: Decimal | None = None,
        base: Decimal | None = None,
        risk_bps: float = 100.0,
    ) -> Trade | None:
        return self._engine.enter(self, route, quote, base, risk_bps)

    def resize(self, trade: Trade, size: Decimal) -> bool:
        return self._engine.resize(self, trade, size)

    def exit(self, trade: Trade, reason: str, *, urgent: bool = False) -> bool:
        return self._engine.exit(self, trade, reason, urgent)

    def trades(self) -> list[Trade]:
        return [j.trade for j in self._engine.jobs.values() if j.port is self]


class ExecutionEngine:
    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        market: MarketView,
        venues: dict[str, Exchange],
        ledger: Ledger,
        guards: GuardChain,
        session: str,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.market = market
        self.venues = venues
        self.ledger = ledger
        self.guards = guards
        self.report_currency = market.report_currency
        self.orders: dict[str, Order] = {}
        self.jobs: dict[str, _Job] = {}  # trade_id -> work, for trades not closed
        self.trades: dict[str, Trade] = {}  # every trade, in opening order
        self.closed: list[Trade] = []  # in closing order
        self.order_counts: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.alert_counts: Counter[str] = Counter()
        self.halts: list[dict[str, Any]] = []
        self.closing = False
        self._prefix = "af" + hashlib.sha1(session.encode()).hexdigest()[:8] + "-"
        self._client_seq = 0
        self._trade_seq = 0
        self._fill_ids: set[tuple[str, str]] = set()
        self._reports: set[Report] = set()  # every non-fill report applied
        self._ports: dict[str, StrategyPort] = {}

    # ---- identity ---------------------------------------------------------------------------

    def next_client_id(self) -> str:
        """Unique per session; the counter is part of the snapshot, so a resumed session
        continues it and never reuses an id."""
        self._client_seq += 1
        return f"{self._prefix}{self._client_seq}"

    def snapshot(self) -> dict[str, Any]:
        return {"client_seq": self._client_seq, "trade_seq": self._trade_seq}

    def restore(self, state: dict[str, Any]) -> None:
        self._client_seq = max(self._client_seq, state["client_seq"])
        self._trade_seq = max(self._trade_seq, state["trade_seq"])

    # ---- events -----------------------------------------------------------------------------

    def alert(self, severity: str, title: str, detail: str = "") -> None:
        self.alert_counts[severity] += 1
        self.bus.publish("alert", alert=Alert(self.clock.now, severity, title, detail))

    def port(
        self, name: str, settings: ExecutionSettings, on_trade: Callable[[Trade], None]
    ) -> StrategyPort:
        port = self._ports[name] = StrategyPort(self, name, settings, on_trade)
        return port

    # ---- intents ----------------------------------------------------------------------------

    def enter(
        self,
        port: StrategyPort,
        route: Route,
        quote: Decimal | None,
        base: Decimal | None,
        risk_bps: float,
    ) -> Trade | None:
        now = self.clock.now
        if self.closing:
            return None
        until = self.guards.cooldowns.get(route.label)
        if until is not None and now < until:  # the cheapest refusal first: it repeats
            self.refusals["cooldown"] += 1
            return None
        if port.settings.max_book_age is not None and not self._fresh(
            route.legs, port.settings, now
        ):  # (without a limit, a book never published has no price: refused below)
            self.refusals["stale_book"] += 1
            return None
        # Guards refuse far more often than anything trades (all day once a loss limit is
        # hit): ask them before pricing anything a refusal would not need.
        price = None if quote is not None else self._price(route.legs[0])
        if quote is not None:
            notional = quote if type(quote) is Decimal else Decimal(str(quote))
        elif price is None:
            self.refusals["no_book"] += 1
            return None
        else:
            notional = (base if type(base) is Decimal else Decimal(str(base))) * price
        decision = self.guards.check(Intent(now, port.name, route.label, route, notional))
        if decision is not None:
            if decision.action is not Action.DEGRADE:
                self.refusals["guard"] += 1
                return None
            notional *= Decimal(repr(decision.scale))
        if price is None:
            price = self._price(route.legs[0])
            if price is None:
                self.refusals["no_book"] += 1
                return None
        instruments = [self.market.instrument(leg.venue, leg.symbol) for leg in route.legs]
        step = max(i.amount_step for i in instruments)
        size = (notional / price).quantize(step, ROUND_DOWN)
        if size < max(i.min_amount for i in instruments):
            self.refusals["size"] += 1
            return None
        refusal = self._refusal(route, size)
        if refusal:
            self.refusals[refusal] += 1
            return None
        return self._open(port, route, size, risk_bps, now)

    def _open(
        self, port: StrategyPort, route: Route, size: Decimal, risk_bps: float, now: int
    ) -> Trade:
        self._trade_seq += 1
        legs = [
            Leg(leg.venue, leg.symbol, self.market.instrument(leg.venue, leg.symbol).base,
                leg.ratio, target=leg.ratio * size)
            for leg in route.legs
        ]  # fmt: skip
        trade = Trade(
            trade_id=f"{route.label}-{self._trade_seq}",
            strategy=port.name,
            symbol=route.label,
            route=route.name,
            legs=legs,
            opened_at=now,
            risk_bps=risk_bps,
            size=size,
            entry_spread_bps=self._spread(legs, entry=True),
        )
        job = _Job(trade, port, legs={(leg.venue, leg.symbol): leg for leg in legs})
        self.trades[trade.trade_id] = trade
        self.jobs[trade.trade_id] = job
        self.guards.trade_opened(trade)
        self.bus.publish("trade_opened", trade=trade)
        self._drive(job)
        return trade

    def resize(self, port: StrategyPort, trade: Trade, size: Decimal) -> bool:
        job = self.jobs.get(trade.trade_id)
        if job is None or job.port is not port or trade.state is not TradeState.OPEN:
            return False
        if size >= trade.size:  # growing would bypass the guards and balances: enter again
            return False
        if not self._fresh(trade.legs, port.settings, self.clock.now):
            self.refusals["stale_book"] += 1
            return False
        size = size.quantize(self._step(trade.legs), ROUND_DOWN)
        if size <= 0:
            return False
        self._set_state(job, TradeState.RESIZING, size)
        self._drive(job)
        return True

    def exit(self, port: StrategyPort, trade: Trade, reason: str, urgent: bool) -> bool:
        job = self.jobs.get(trade.trade_id)
        if job is None or job.port is not port or trade.state is not TradeState.OPEN:
            return False
        now = self.clock.now
        if not urgent and not self._fresh(trade.legs, port.settings, now):
            self.refusals["stale_book_exit"] += 1
            return False
        self._exit(job, reason, now)
        return True

    def _exit(self, job: _Job, reason: str, now: int) -> None:
        trade = job.trade
        trade.exit_spread_bps = self._spread(trade.legs, entry=False)
        trade.exit_book_age_ns = max(self.market.age(g.venue, g.symbol, now) for g in trade.legs)
        job.exit_reason = reason
        self._set_state(job, TradeState.EXITING, ZERO)
        self._drive(job)

    def wind_down(self) -> None:
        """The run is ending: no new entries; open trades close if ``close_at_end``."""
        self.closing = True
        for job in list(self.jobs.values()):
            if job.trade.state is TradeState.OPEN and job.port.settings.close_at_end:
                self._exit(job, "end_of_run", self.clock.now)

    # ---- checks -----------------------------------------------------------------------------

    def _price(self, leg: RouteLeg) -> Decimal | None:
        """The best price ``leg`` would trade at (ask to buy, bid to sell), report ccy."""
        top = self.market.top(leg.venue, leg.symbol)
        if top is None:
            return None
        return Decimal(repr(top[1] if leg.ratio > 0 else top[0]))

    def _fresh(self, legs: Any, settings: ExecutionSettings, now: int) -> bool:
        limit = settings.max_book_age
        market = self.market
        for leg in legs:
            ts = market.book(leg.venue, leg.symbol).ts
            if not ts or (limit is not None and now - ts > limit):
                return False
        return True

    def _refusal(self, route: Route, size: Decimal) -> str:
        """Why a leg of ``size`` cannot be sent ("" when every leg can): below the venue's
        minimum notional, or more than its free balance covers."""
        for leg in route.legs:
            instrument = self.market.instrument(leg.venue, leg.symbol)
            book = self.market.book(leg.venue, leg.symbol)
            levels = book.asks if leg.ratio > 0 else book.bids
            if not levels:
                return "no_book"
            amount = abs(leg.ratio) * size
            notional = amount * Decimal(repr(levels[0][0]))  # quote currency
            if notional < instrument.min_notional:
                return "size"
            if leg.ratio > 0:
                need, asset = notional * HEADROOM, instrument.quote
            else:
                need, asset = amount, instrument.base
            if self.market.available(leg.venue, asset) < need:
                return "balance"
        return ""

    def _spread(self, legs: list[Leg], entry: bool) -> float | None:
        """Two-leg routes: the entry spread, or what closing costs (bps, report currency)."""
        if len(legs) != 2 or not legs[0].ratio > 0 > legs[1].ratio:
            return None
        a = self.market.top(legs[0].venue, legs[0].symbol)
        b = self.market.top(legs[1].venue, legs[1].symbol)
        if a is None or b is None:
            return None
        if entry:
            return (b[0] - a[1]) / a[1] * 1e4
        return (b[1] - a[0]) / a[0] * 1e4

    def _step(self, legs: list[Leg]) -> Decimal:
        return max(self.market.instrument(g.venue, g.symbol).amount_step for g in legs)

    # ---- driving legs -----------------------------------------------------------------------

    def _set_state(self, job: _Job, state: TradeState, size: Decimal) -> None:
        trade = job.trade
        trade.state, trade.size, job.retries = state, size, 0
        for leg in trade.legs:
            leg.target = leg.ratio * size

    def _missing(self, leg: Leg) -> Decimal:
        """Signed base amount to trade to reach the target; 0 below what the venue trades."""
        instrument = self.market.instrument(leg.venue, leg.symbol)
        diff = leg.target - leg.position
        amount = abs(diff).quantize(instrument.amount_step, ROUND_DOWN)
        if amount < instrument.min_amount:
            return ZERO
        return amount if diff > 0 else -amount

    def _drive(self, job: _Job) -> None:
        """Send, on every leg, the order that moves its position to its target. Every order
        is in flight before the first is sent: a venue may answer from inside ``submit``."""
        trade = job.trade
        orders = []
        for leg in trade.legs:
            diff = self._missing(leg)
            if not diff:
                continue
            side = BUY if diff > 0 else SELL
            book = self.market.book(leg.venue, leg.symbol)
            levels = book.asks if side == BUY else book.bids
            order = Order(
                client_id=self.next_client_id(),
                venue=leg.venue,
                symbol=leg.symbol,
                side=side,
                amount=abs(diff),
                trade_id=trade.trade_id,
                role=trade.state.value,
                reference_price=levels[0][0] if levels else 0.0,
            )
            job.inflight.add(order.client_id)
            orders.append(order)
        for order in orders:
            self._submit(order)
        if not orders:
            self._settled(job)

    def _submit(self, order: Order) -> None:
        order.created_at = self.clock.now
        self.orders[order.client_id] = order
        self.order_counts["submitted"] += 1
        self._apply(order, OrderEvent.SUBMIT)
        self.venues[order.venue].submit(order.request())
        self.clock.call_later(self._settings(order).order_timeout, self._check, order.client_id)

    def _settled(self, job: _Job) -> None:
        """Nothing of the trade is working: move on, retry, unwind or escalate."""
        trade = job.trade
        if not any(self._missing(leg) for leg in trade.legs):
            return self._phase_done(job)
        job.retries += 1
        settings = job.port.settings
        if trade.state is TradeState.ENTERING and (
            settings.policy == "unwind" or job.retries > settings.max_retries
        ):
            hedged = max(ZERO, min(leg.position / leg.ratio for leg in trade.legs))
            hedged = hedged.quantize(self._step(trade.legs), ROUND_DOWN)
            self._set_state(job, TradeState.UNWINDING, hedged)
            self.alert(
                "P2",
                f"leg mismatch on {trade.trade_id}",
                f"positions {_positions(trade)}; unwinding to {money(hedged)}",
            )
        elif job.retries > settings.max_retries:
            trade.state = TradeState.HALTED
            detail = f"positions {_positions(trade)}, targets {_targets(trade)}"
            self.halts.append({"ts": self.clock.now, "trade_id": trade.trade_id, "why": detail})
            self.alert("P0", f"naked leg on {trade.trade_id}", f"{detail}; trade halted")
            job.port.on_trade(trade)
            return
        self._drive(job)

    def _phase_done(self, job: _Job) -> None:
        trade = job.trade
        if trade.size == 0:
            if trade.state is TradeState.EXITING:
                return self._close(job, job.exit_reason, exited=True)
            failure = "leg_failure" if trade.fills else "entry_failed"
            return self._close(job, job.exit_reason or failure)
        trade.state = TradeState.OPEN
        if self.closing and job.port.settings.close_at_end:
            return self._exit(job, "end_of_run", self.clock.now)
        job.port.on_trade(trade)

    def _close(self, job: _Job, reason: str, exited: bool = False) -> None:
        trade = job.trade
        trade.state, trade.closed_at = TradeState.CLOSED, self.clock.now
        trade.exit_reason, trade.exited = reason, exited
        trade_pnl(trade, self.report_currency)
        del self.jobs[trade.trade_id]
        self.closed.append(trade)
        self.guards.trade_closed(trade)
        self.bus.publish("trade_closed", trade=trade)
        job.port.on_trade(trade)

    # ---- reports from venues ------------------------------------------------------------------

    def on_report(self, report: Report) -> None:
        """Apply one venue report (late, reordered and repeated ones included)."""
        if isinstance(report, FillReport):
            return self._on_fill(report)
        if report in self._reports:  # the same message again: it was applied once
            self.order_counts["duplicate_reports"] += 1
            return None
        self._reports.add(report)
        if isinstance(report, BalanceChange):
            self.ledger.book_entry(report)
            self.order_counts["balance_changes"] += 1
            self.bus.publish("balance_change", entry=report)
            return None
        order = self.orders.get(report.client_id)
        if order is None:
            self.order_counts["unknown_order_reports"] += 1
            self.alert("P1", f"report for unknown order {report.client_id}", repr(report))
            return None
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
        elif isinstance(report, OrderNotFound):
            self._on_not_found(order)
        self._after(order)
        return None

    def _on_closed(self, order: Order, state: OrderState, filled: Decimal, reason: str) -> None:
        order.venue_filled = filled
        if state is not OrderState.FILLED:  # FILLED comes with the last fill itself
            event = {
                OrderState.CANCELED: OrderEvent.CANCELED,
                OrderState.REJECTED: OrderEvent.REJECTED,
                OrderState.EXPIRED: OrderEvent.EXPIRED,
            }[state]
            self._apply(order, event, reason)

    def _on_not_found(self, order: Order) -> None:
        if order.state.final:
            return
        if order.queries >= self._settings(order).max_queries:
            # Asked repeatedly and never known there: it did not arrive. Nothing filled.
            order.venue_filled = ZERO
            self._apply(order, OrderEvent.REJECTED, "lost: the venue does not know it")

    def _on_fill(self, report: FillReport) -> None:
        key = (report.venue, report.fill_id)
        if key in self._fill_ids:
            self.order_counts["duplicate_fills"] += 1
            return
        self._fill_ids.add(key)
        order = self.orders.get(report.client_id)
        instrument = self.market.instrument(report.venue, report.symbol)
        fill = self._book(report, order, instrument.base, instrument.quote)
        if order is None:
            self.order_counts["unknown_order_fills"] += 1
            self.alert("P1", f"fill for unknown order {report.client_id}", repr(report))
            return
        if order.state.final:
            self.order_counts["late_fills"] += 1
        order.filled += report.amount
        order.cost += report.price * report.amount
        order.fees[report.fee_asset] = order.fees.get(report.fee_asset, ZERO) + report.fee
        complete = order.filled >= order.amount
        self._apply(order, OrderEvent.FILL_COMPLETE if complete else OrderEvent.FILL)
        job = self.jobs.get(order.trade_id or "")
        if job is not None:
            self._position(job.legs[(fill.venue, fill.symbol)], fill)
            job.trade.fills.append(fill)
            if order.client_id not in job.inflight and not job.trade.state.busy:
                self._unexpected_fill(job, fill)
        elif order.trade_id is not None:
            self._late_fill(order.trade_id, fill)
        self._after(order)

    def _unexpected_fill(self, job: _Job, fill: Fill) -> None:
        """A fill for an order already settled (the venue said it filled less): the trade
        is off target while nothing works on it, so drive it back."""
        trade = job.trade
        self.alert("P1", f"unexpected fill on {trade.trade_id}", f"{fill.fill_id}: rebalancing")
        if trade.state is TradeState.OPEN and not job.inflight:
            self._set_state(job, TradeState.RESIZING, trade.size)
            self._drive(job)

    def _book(self, r: FillReport, order: Order | None, base: str, quote: str) -> Fill:
        slip = ZERO
        if order is not None and order.reference_price:
            tick = self.market.instrument(r.venue, r.symbol).price_tick
            ref = Decimal(repr(order.reference_price)).quantize(tick)
            slip = (r.price - ref if r.side == BUY else ref - r.price) * r.amount
        fill = Fill(
            ts=r.ts, venue=r.venue, symbol=r.symbol, base=base, quote=quote, side=r.side,
            price=r.price, amount=r.amount, fee=r.fee, fee_asset=r.fee_asset,
            fee_price=r.fee_price, client_id=r.client_id, exchange_id=r.exchange_id,
            fill_id=r.fill_id, trade_id=None if order is None else order.trade_id,
            role="" if order is None else order.role, liquidity=r.liquidity, slippage=slip,
            fx=self.market.fx_exact[quote],
        )  # fmt: skip
        self.ledger.book_fill(fill)
        self.bus.publish("fill", fill=fill)
        return fill

    @staticmethod
    def _position(leg: Leg, fill: Fill) -> None:
        leg.position += fill.amount if fill.side == BUY else -fill.amount
        if fill.fee_asset == fill.base:
            leg.position -= fill.fee
        leg.last_price = fill.price

    def _late_fill(self, trade_id: str, fill: Fill) -> None:
        """A fill for a trade already closed: a new trade takes the position and unwinds it."""
        trade = self.trades[trade_id]
        self.alert("P1", f"late fill on closed trade {trade_id}", f"{fill.fill_id}: unwinding")
        owner = self._ports[trade.strategy]
        sign = Decimal(1) if fill.side == BUY else Decimal(-1)
        route = Route(trade.symbol, (RouteLeg(fill.venue, fill.symbol, sign),))
        self._trade_seq += 1
        leg = Leg(fill.venue, fill.symbol, fill.base, sign)
        recovery = Trade(
            f"{trade_id}-late{self._trade_seq}", trade.strategy, trade.symbol, route.name,
            [leg], self.clock.now, trade.risk_bps, state=TradeState.UNWINDING,
        )  # fmt: skip
        self._position(leg, fill)
        recovery.fills.append(fill)
        job = _Job(recovery, owner, exit_reason="late_fill", legs={(leg.venue, leg.symbol): leg})
        self.trades[recovery.trade_id] = recovery
        self.jobs[recovery.trade_id] = job
        self.guards.trade_opened(recovery)
        self.bus.publish("trade_opened", trade=recovery)
        self._drive(job)

    def _after(self, order: Order) -> None:
        """Once an order is settled, its trade may move on."""
        if not order.settled or order.trade_id is None:
            return
        job = self.jobs.get(order.trade_id)
        if job is None or order.client_id not in job.inflight:
            return
        job.inflight.discard(order.client_id)
        if not job.inflight:
            self._settled(job)

    def _apply(self, order: Order, event: OrderEvent, reason: str = "") -> None:
        previous = order.state
        state = transition(previous, event)
        if state is None:
            self.order_counts["illegal_transitions"] += 1
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
            self.order_counts[state.value] += 1
        if "order_update" in self.bus.silent:
            return
        update = OrderUpdate(
            self.clock.now, order.client_id, order.exchange_id, order.venue, order.symbol,
            order.side, event.value, previous, state, order.filled, order.trade_id, order.role,
            order.reason,
        )  # fmt: skip
        self.bus.publish("order_update", update=update)

    # ---- timeouts ---------------------------------------------------------------------------

    def _settings(self, order: Order) -> ExecutionSettings:
        trade = self.trades.get(order.trade_id or "")
        port = self._ports.get(trade.strategy) if trade is not None else None
        return port.settings if port is not None else ExecutionSettings()

    def _check(self, client_id: str) -> None:
        """An order's timeout: ask the venue; after ``max_queries`` silent tries, escalate."""
        order = self.orders[client_id]
        if order.settled:
            return
        settings = self._settings(order)
        if order.queries >= settings.max_queries:
            order.reason = f"no final answer after {order.queries} queries"
            self.order_counts["unresolved"] += 1
            self.alert("P0", f"order {client_id} unresolved", order.reason)
            job = self.jobs.get(order.trade_id or "")
            if job is not None and job.trade.state is not TradeState.HALTED:
                job.trade.state = TradeState.HALTED
                self.halts.append(
                    {"ts": self.clock.now, "trade_id": job.trade.trade_id, "why": order.reason}
                )
                job.port.on_trade(job.trade)
            return
        order.queries += 1
        self.order_counts["queries"] += 1
        self.venues[order.venue].fetch_order(order.request())
        self.clock.call_later(settings.order_timeout, self._check, client_id)


def _positions(trade: Trade) -> str:
    return ", ".join(f"{leg.venue} {money(leg.position)}" for leg in trade.legs)


def _targets(trade: Trade) -> str:
    return ", ".join(f"{leg.venue} {money(leg.target)}" for leg in trade.legs)
