"""The engine core: synchronous, deterministic, no I/O, no sleeping.

It owns the event heap (timers and venue latency), the ledger, the guard chain and the
strategy, and routes book updates, order updates and fills between them. Drivers feed it:
:func:`arbframe.driver.run_simulated` pops events in scenario time.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from arbframe.ledger import Ledger
from arbframe.model import ACTION_RANK, Action, Alert, Fill, GuardDecision, Intent, Order

if TYPE_CHECKING:
    from arbframe.components import Exchange, Guard, Strategy
    from arbframe.runner import Run


class Engine:
    def __init__(self, run: Run, venues: dict[str, Exchange], fx: dict[str, Decimal]) -> None:
        self.run = run
        self.hook = run.hook
        self.now = 0
        self.start = 0  # scenario time of the first feed event (set by the driver)
        self.venues = venues
        self.fx = dict(fx)  # units of currency per report currency, exact
        self.fx_float = {cur: float(rate) for cur, rate in fx.items()}
        self.ledger = Ledger(run.report_currency, venues)
        self.strategy: Strategy | None = None
        self.guards: list[Guard] = []
        self.orders: dict[str, Order] = {}
        self.order_counts: Counter[str] = Counter()
        self.guard_counts: dict[str, Counter[str]] = {}
        self.alert_counts: Counter[str] = Counter()
        self.cooldowns: dict[str, int] = {}  # symbol -> ts until which entries are refused
        self._last_refusal: dict[tuple[str, str], tuple[Action, str]] = {}
        self.start_fx = dict(fx)  # the rates equity_start is valued at
        self.closing = False  # set once the run is winding down: timers stop firing
        self._heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0

    # ---- time ---------------------------------------------------------------------------

    def schedule(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` at scenario time ``ts`` (FIFO among equal times)."""
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, fn, args))

    def set_timer(self, delay_ns: int, payload: Any) -> None:
        self.schedule(self.now + delay_ns, self._fire_timer, payload)

    def _fire_timer(self, payload: Any) -> None:
        if not self.closing and self.strategy is not None:
            self.strategy.on_timer(self.now, payload)

    def run_due(self, until: int) -> None:
        """Run every scheduled callback due at or before ``until``, in time order."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            ts, _, fn, args = heapq.heappop(heap)
            self.now = ts
            fn(*args)

    def drain(self) -> None:
        while self._heap:
            self.run_due(self._heap[0][0])

    # ---- market data --------------------------------------------------------------------

    def set_fx(self, currency: str, rate: float) -> None:
        self.fx[currency] = Decimal(repr(rate))
        self.fx_float[currency] = rate

    # ---- orders -------------------------------------------------------------------------

    def submit(self, order: Order) -> Order:
        order.created_at = order.updated_at = self.now
        if order.client_id in self.orders:
            raise RuntimeError(f"client order id {order.client_id} used twice")
        self.orders[order.client_id] = order
        self.order_counts["submitted"] += 1
        self.venues[order.venue].submit(order)
        return order

    def on_order_update(self, order: Order) -> None:
        """Venues call this when an order changes state."""
        order.updated_at = self.now
        if order.status.final:
            self.order_counts[order.status.value] += 1
        self.hook.arbframe_on_order_update(run=self.run, order=order)
        if self.strategy is not None:
            self.strategy.on_order_update(order)

    def on_fill(self, fill: Fill) -> None:
        """Venues call this for every fill, before the order's status update."""
        fill.fx = self.fx[fill.quote]
        self.ledger.book_fill(fill)
        self.hook.arbframe_on_fill(run=self.run, fill=fill)

    # ---- risk ---------------------------------------------------------------------------

    def check_entry(self, intent: Intent) -> GuardDecision:
        """Ask every guard tier; the most restrictive verdict wins (exits are never asked)."""
        until = self.cooldowns.get(intent.symbol)
        if until is not None and intent.ts < until:
            return GuardDecision(
                intent.ts, "cooldown", Action.COOLDOWN, "cooling down", until=until
            )
        # This runs on every quote that shows an edge, blocked or not (e.g. all day once the
        # daily loss limit is hit), so no objects are built that the answer does not need.
        verdict: GuardDecision | None = None  # None: every guard allowed so far
        for guard in self.guards:
            decision = guard.check(intent)
            if decision is None or decision.action is Action.ALLOW:
                continue
            counts = self.guard_counts.get(guard.name)
            if counts is None:
                counts = self.guard_counts[guard.name] = Counter()
            counts[decision.action.value] += 1
            # Refusals repeat on every quote that shows an edge: tell plugins of changes only.
            key = (guard.name, intent.symbol)
            if self._last_refusal.get(key) != (decision.action, decision.reason):
                self._last_refusal[key] = (decision.action, decision.reason)
                self.hook.arbframe_on_guard_decision(run=self.run, decision=decision)
            if (
                verdict is None
                or ACTION_RANK[decision.action] > ACTION_RANK[verdict.action]
                or (
                    decision.action is verdict.action is Action.DEGRADE
                    and decision.scale < verdict.scale
                )
            ):
                verdict = decision
        if verdict is None:
            if self._last_refusal:
                self._last_refusal = {
                    k: v for k, v in self._last_refusal.items() if k[1] != intent.symbol
                }
            return GuardDecision(intent.ts, "", Action.ALLOW)
        if verdict.action is Action.COOLDOWN and verdict.until is not None:
            self.cooldowns[intent.symbol] = verdict.until
        return verdict

    # ---- events -------------------------------------------------------------------------

    def alert(self, severity: str, title: str, detail: str = "") -> None:
        self.alert_counts[severity] += 1
        self.hook.arbframe_on_alert(run=self.run, alert=Alert(self.now, severity, title, detail))

    def trade_closed(self, trade_id: str, reason: str, exit_spread_bps: float | None) -> None:
        trade = self.ledger.close_trade(trade_id, self.now, reason, exit_spread_bps)
        for guard in self.guards:
            guard.on_trade_closed(trade)
        self.hook.arbframe_on_trade_closed(run=self.run, trade=trade)
