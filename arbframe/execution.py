"""The execution layer: strategies decide, the kernel executes.

A strategy expresses intents through its :class:`StrategyPort`: enter a route with a size,
resize an open trade, exit it with a reason of its own. The :class:`ExecutionEngine` owns
everything that follows: the guards' verdict, sizing to the venues' steps and balances,
client order ids, legs driven to a target position, retries, the unwind to the hedged
amount when an entry fails, a halt with a P0 alert when even that fails, and a timeout on
every order that gets no final answer (query the venue, then escalate).

The orders under a trade are the order flow's (arbframe.orderflow): venues answer only
through reports, which may arrive late, out of order or twice, and each is applied exactly
once through the order state machine (arbframe.orders); the flow tells this engine of
fills, settled orders and orders lost for good. Every state change of an order or a trade
is published on the event bus: the one path that sinks, the journal and snapshots read.

Book age policy (``max_book_age``), by decision: an entry, a resize and a non-urgent exit
(the strategy's reversion or take-profit) are refused while a book they use is older than
the limit; an urgent exit (a stop-loss, a time exit, the end of the run) and the kernel's
own unwinds and retries act anyway, and the trade records the age of the oldest book used.
"""

from __future__ import annotations

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
    Action,
    Alert,
    Fill,
    Intent,
    Leg,
    Order,
    Route,
    RouteLeg,
    Trade,
    TradeState,
    money,
)
from arbframe.orderflow import OrderFlow
from arbframe.risk import GuardChain
from arbframe.routing import Router
from arbframe.units import parse_duration

if TYPE_CHECKING:
    from arbframe.bus import EventBus
    from arbframe.clock import Clock
    from arbframe.components import Exchange
    from arbframe.market import MarketView

S = 1_000_000_000
HEADROOM = Decimal("1.01")  # a buy leg needs its cost plus room for slippage and fees
REFUSED = object()  # a verdict: entry refused (and counted)


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
    def from_config(
        cls, config: dict[str, Any], base: ExecutionSettings | None = None
    ) -> ExecutionSettings:
        base = base or cls()
        leg = config.get("leg_risk", {})
        age, timeout = config.get("max_book_age"), config.get("order_timeout")
        return cls(
            max_book_age=base.max_book_age if age is None else parse_duration(age),
            order_timeout=base.order_timeout if timeout is None else parse_duration(timeout),
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
        """Scope -> when entries may resume after a guard's cooldown (ns); a symbol's key is
        the symbol (``arbframe.risk`` names the route, venue and global scopes)."""

    @property
    def routes(self) -> Router:
        """The run's routing service (arbframe.routing)."""
        return self._engine.routes

    def enter(
        self,
        route: Route,
        *,
        quote: Decimal | None = None,
        base: Decimal | None = None,
        risk_bps: float = 100.0,
        expected_slippage_bps: float | None = None,
    ) -> Trade | None:
        if (quote is None) == (base is None):
            raise TypeError("enter() takes a size: exactly one of quote= or base=")
        return self._engine.enter(
            self, route, quote, base, risk_bps, expected_slippage_bps=expected_slippage_bps
        )

    def vet(
        self, route: Route, *, quote: Decimal | None = None, base: Decimal | None = None
    ) -> bool:
        """Whether ``enter(route, ...)`` with this size would pass the cooldowns, pauses,
        book age and the guards now: a strategy asks before costly pricing; ``enter`` at the
        same instant reuses the answer (the guards decide once)."""
        return self._engine.vet(self, route, quote, base)

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
        nonce: str = "",
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.market = market
        self.venues = venues
        self.ledger = ledger
        self.guards = guards
        self.report_currency = market.report_currency
        self.flow = OrderFlow(clock, bus, market, venues, ledger, self.alert, session, nonce)
        self.flow.owner = self
        self.orders = self.flow.orders  # client id -> order, every order sent
        self.order_counts = self.flow.counts
        self.jobs: dict[str, _Job] = {}  # trade_id -> work, for trades not closed
        self.trades: dict[str, Trade] = {}  # every trade, in opening order
        self.closed: list[Trade] = []  # in closing order
        self.refusals: Counter[str] = Counter()
        self.alert_counts: Counter[str] = Counter()
        self.halts: list[dict[str, Any]] = []
        self.closing = False
        self.paused: set[str] = set()
        """Symbols an operator paused (``arbframe pause``): their entries are refused."""
        self.classify: Callable[[Alert], Alert | None] | None = None
        """The alert engine's rules (``arbframe.alerting``): an alert's rule and severity, or
        None to drop it; unset without alerting."""
        self.routes = Router(market, headroom=HEADROOM, refused=self._route_refused)
        """Routing for every strategy (``ctx.routes``); wire a venue health monitor into
        ``routes.health``."""
        self._vetted: dict[int, tuple[Route, Any]] = {}  # vet's answers at _vetted_at
        self._vetted_at = -1
        self._trade_seq = 0
        self._ports: dict[str, StrategyPort] = {}
        self.defaults = ExecutionSettings()
        """The scenario's ``execution:`` settings: those of orders working for no trade."""
        self.before_send: Callable[[Trade, list[Order]], None] | None = None
        """Called with a trade and the orders about to leave for it, before the first is
        sent (the write-ahead record of a session that keeps state)."""

    # ---- identity ---------------------------------------------------------------------------

    def adopt(self, records: list[dict[str, Any]]) -> None:
        """Resume: orders written ahead after the snapshot was taken (they may have left
        before the crash). Their trades take them back; what they did, the venues say."""
        for record in records:
            self.flow.client_seq = max(self.flow.client_seq, record["client_seq"])
            self._trade_seq = max(self._trade_seq, record["trade_seq"])
            written: _Job = record["job"]
            trade_id = written.trade.trade_id
            job = self.jobs.get(trade_id)
            if job is None and trade_id in self.trades:
                continue  # closed in the snapshot: nothing could have been sent for it
            if job is None:  # opened after the snapshot: its fills come back from the venues
                job, trade = written, written.trade
                for leg in trade.legs:
                    leg.position = ZERO
                trade.fills.clear()
                job.inflight.clear()
                self.trades[trade_id] = trade
                self.jobs[trade_id] = job
                self.guards.trade_opened(trade)
            else:  # a later phase of a trade the snapshot knows: its intent, not its fills
                trade, source = job.trade, written.trade
                trade.state, trade.size = source.state, source.size
                for leg, was in zip(trade.legs, source.legs, strict=True):
                    leg.target = was.target
                job.retries, job.exit_reason = written.retries, written.exit_reason
                trade.exit_spread_bps = source.exit_spread_bps
                trade.exit_book_age_ns = source.exit_book_age_ns
            for order in record["orders"]:
                if order.client_id not in self.flow.orders:
                    self.flow.adopt(order)
                    job.inflight.add(order.client_id)

    def reconcile(self, venues: set[str]) -> None:
        """Resume: ask ``venues`` about every order not settled there; entries, resizes and
        exits wait for the answers (the kernel's own retries and unwinds do not)."""
        for order in self.flow.orders.values():
            if not order.settled and order.venue in venues:
                self.flow.query_on_resume(order)

    # ---- events -----------------------------------------------------------------------------

    def alert(self, severity: str, title: str, detail: str = "", rule: str = "") -> None:
        alert: Alert | None = Alert(self.clock.now, severity, title, detail, rule)
        if self.classify is not None:
            alert = self.classify(alert)  # type: ignore[arg-type]
            if alert is None:
                return
        self.alert_counts[alert.severity] += 1
        self.bus.publish("alert", alert=alert)

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
        *,
        expected_slippage_bps: float | None = None,
    ) -> Trade | None:
        now = self.clock.now
        vetted = self._vetted.pop(id(route), None) if self._vetted_at == now else None
        if vetted is not None and vetted[0] is route:
            cap = vetted[1]  # the guards' answer to ``vet`` at this instant
        else:
            cap = self._verdict(port, route, quote, base, now)
            if cap is REFUSED:
                return None
        price = None if quote is not None else self._price(route.legs[0])
        if quote is not None:
            notional = quote if type(quote) is Decimal else Decimal(str(quote))
        elif price is None:
            self.refusals["no_book"] += 1
            return None
        else:
            notional = (base if type(base) is Decimal else Decimal(str(base))) * price
        if cap is not None:  # a DEGRADE: at most what the guards allowed
            notional = min(notional, cap)
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
        return self._open(port, route, size, risk_bps, now, expected_slippage_bps)

    def vet(
        self, port: StrategyPort, route: Route, quote: Decimal | None, base: Decimal | None
    ) -> bool:
        """Whether ``enter`` would get past its cheap checks and the guards for ``route`` now.
        A strategy asks before pricing a route in depth (arbframe.routing), so that a run the
        guards block all day does not walk books for nothing; the guards are asked once:
        ``enter`` at the same instant on the same route takes this answer."""
        now = self.clock.now
        cap = self._verdict(port, route, quote, base, now)
        if cap is REFUSED:
            return False
        if self._vetted_at != now:
            self._vetted_at, self._vetted = now, {}
        self._vetted[id(route)] = (route, cap)  # the route is held: its id is not reused
        return True

    def _verdict(
        self,
        port: StrategyPort,
        route: Route,
        quote: Decimal | float | None,
        base: Decimal | float | None,
        now: int,
    ) -> Any:
        """REFUSED (counted in ``refusals``), None to enter as asked, or the notional a
        DEGRADE allows (report currency): a cap, so an entry smaller than what the guards
        were asked about is not reduced again."""
        if self.closing:
            return REFUSED
        if self.paused and route.label in self.paused:  # an operator's pause, from the next quote
            self.refusals["paused"] += 1
            return REFUSED
        if self.flow.awaiting:
            self.refusals["reconciling"] += 1
            return REFUSED
        # The cheapest refusal first: it repeats. A few dict lookups (symbol, route, venues,
        # global), none while nothing cools down.
        if self.guards.cooldowns and self.guards.cooling(route, now) is not None:
            self.refusals["cooldown"] += 1
            return REFUSED
        if port.settings.max_book_age is not None and not self._fresh(
            route.legs, port.settings, now
        ):  # (without a limit, a book never published has no price: refused below)
            self.refusals["stale_book"] += 1
            return REFUSED
        # Guards refuse far more often than anything trades (all day once a loss limit is
        # hit): ask them before pricing anything a refusal would not need.
        if quote is not None:
            notional = quote if type(quote) is Decimal else Decimal(str(quote))
        else:
            price = self._price(route.legs[0])
            if price is None:
                self.refusals["no_book"] += 1
                return REFUSED
            notional = (base if type(base) is Decimal else Decimal(str(base))) * price
        decision = self.guards.check(Intent(now, port.name, route.label, route, notional))
        if decision is None:
            return None
        if decision.action is not Action.DEGRADE:
            self.refusals["guard"] += 1
            return REFUSED
        return notional * Decimal(repr(decision.scale))

    def _open(
        self,
        port: StrategyPort,
        route: Route,
        size: Decimal,
        risk_bps: float,
        now: int,
        expected_slippage_bps: float | None = None,
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
            expected_slippage_bps=expected_slippage_bps,
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
        if (
            self.flow.awaiting or size >= trade.size
        ):  # growing would bypass the guards and balances: enter again
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
        if self.flow.awaiting:
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

    def _route_refused(self, reason: str) -> None:
        """The router left out a route that cleared: counted like a refused entry (by
        attribute: a resume replaces the counter)."""
        self.refusals[reason] += 1

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
                client_id=self.flow.next_client_id(),
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
        if orders and self.before_send is not None:
            self.before_send(trade, orders)
        for order in orders:
            self.flow.submit(order)
        if not orders:
            self._settled(job)

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

    # ---- what the order flow tells ------------------------------------------------------------

    def order_filled(self, order: Order, fill: Fill) -> None:
        """A fill of one of the kernel's orders was booked: move its trade's leg."""
        job = self.jobs.get(order.trade_id or "")
        if job is not None:
            _position(job.legs[(fill.venue, fill.symbol)], fill)
            job.trade.fills.append(fill)
            if order.client_id not in job.inflight and not job.trade.state.busy:
                self._unexpected_fill(job, fill)
        elif order.trade_id is not None:
            self._late_fill(order.trade_id, fill)

    def order_settled(self, order: Order) -> None:
        """An order is final with every fill in: its trade may move on (unless halted: a
        halted trade is left to an operator, whatever answers arrive later)."""
        job = self.jobs.get(order.trade_id or "")
        if job is None or order.client_id not in job.inflight:
            return
        job.inflight.discard(order.client_id)
        if not job.inflight and job.trade.state is not TradeState.HALTED:
            self._settled(job)

    def order_unresolved(self, order: Order) -> None:
        """The venue never answered about an order: its trade is halted for an operator."""
        job = self.jobs.get(order.trade_id or "")
        if job is None or job.trade.state is TradeState.HALTED:
            return
        job.trade.state = TradeState.HALTED
        halt = {"ts": self.clock.now, "trade_id": job.trade.trade_id, "why": order.reason}
        self.halts.append(halt)
        job.port.on_trade(job.trade)

    def settings_of(self, order: Order) -> ExecutionSettings:  # the OrderFlow's Owner
        """The execution settings of the strategy an order works for (the scenario's for an
        order working for no trade)."""
        trade = self.trades.get(order.trade_id or "")
        port = self._ports.get(trade.strategy) if trade is not None else None
        return port.settings if port is not None else self.defaults

    def _unexpected_fill(self, job: _Job, fill: Fill) -> None:
        """A fill for an order already settled (the venue said it filled less): the trade
        is off target while nothing works on it, so drive it back."""
        trade = job.trade
        self.alert("P1", f"unexpected fill on {trade.trade_id}", f"{fill.fill_id}: rebalancing")
        if trade.state is TradeState.OPEN and not job.inflight:
            self._set_state(job, TradeState.RESIZING, trade.size)
            self._drive(job)

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
        _position(leg, fill)
        recovery.fills.append(fill)
        job = _Job(recovery, owner, exit_reason="late_fill", legs={(leg.venue, leg.symbol): leg})
        self.trades[recovery.trade_id] = recovery
        self.jobs[recovery.trade_id] = job
        self.guards.trade_opened(recovery)
        self.bus.publish("trade_opened", trade=recovery)
        self._drive(job)


def _position(leg: Leg, fill: Fill) -> None:
    """A fill moves its leg: the base amount, less a fee paid in the base asset."""
    leg.position += fill.amount if fill.side == BUY else -fill.amount
    if fill.fee_asset == fill.base:
        leg.position -= fill.fee
    leg.last_price = fill.price


def _positions(trade: Trade) -> str:
    return ", ".join(f"{leg.venue} {money(leg.position)}" for leg in trade.legs)


def _targets(trade: Trade) -> str:
    return ", ".join(f"{leg.venue} {money(leg.target)}" for leg in trade.legs)
