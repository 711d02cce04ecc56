"""Continuous reconciliation with the venues: what the kernel believes, checked against what
each venue says while the run goes on, not only at its end.

The model is Nautilus Trader's in-flight order check and start-up reconciliation; the failure
it exists to prevent is Hummingbot's orphan order (an order left open at a venue that no
process tracks any more, filling at any time).

* **In flight** (:mod:`arbframe.orderflow`): an order sent and not answered, or a cancel
  asked and not confirmed, is queried after ``execution.order_timeout`` and escalated (P0)
  after ``max_queries`` silent tries.
* **Open orders** (``Exchange.fetch_open_orders``) at start-up and every
  ``open_orders_every``: an open order the kernel does not know is an *orphan* (placed by a
  process that died, or by hand): counted, alerted (P1), then canceled, adopted (tracked as
  the kernel's own, its fills booked and explained) or only alerted (``orphans``). An order the
  kernel believes open that the venue no longer lists, or one the venue filled further than
  the kernel heard, is queried.
* **Balances** (``Exchange.fetch_balances``) at start-up and every ``balances_every``:
  compared with the ledger, asset by asset, exactly. A difference is a P1 alert and a ledger
  entry of kind ``reconciliation`` (published like any balance change), never a silent
  correction.
* **Start-up**: for a venue that outlives the process, open orders and balances are asked
  before the first new order, on a fresh start as on a resume (entries, resizes and exits
  wait, as they wait for the answers about the orders a resumed session knows).

Which venues: all of them when the scenario has ``reconcile:``, else those that outlive the
process; a run with neither schedules nothing. A venue that does not implement
``fetch_open_orders`` or ``fetch_balances`` is not reconciled that way, and the summary says
so (``reconciliation.checks.<venue>.not_supported``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from arbframe.components import Exchange
from arbframe.model import BalanceChange, Balances, OpenOrders, Order, VenueOrder, money
from arbframe.orders import OrderState
from arbframe.units import parse_duration

if TYPE_CHECKING:
    from arbframe.execution import ExecutionEngine, ExecutionSettings

S = 1_000_000_000
BUSY_RETRY = S  # a balance read that could not be compared is asked again this much later
CHECKS = {"open_orders": "fetch_open_orders", "balances": "fetch_balances"}
BELIEVED_OPEN = (OrderState.OPEN, OrderState.PARTIALLY_FILLED)


def supports(venue: Exchange, method: str) -> bool:
    """Whether ``venue`` implements an optional method of the contract (overrides it)."""
    return getattr(type(venue), method) is not getattr(Exchange, method)


@dataclass(frozen=True)
class ReconcileSettings:
    """The scenario's ``reconcile:`` block (top level only: strategies cannot override it)."""

    configured: bool = False  # the block is there: every venue is reconciled
    orphans: str | None = None  # None: this session's cancel, others' only alerted
    open_orders_every: int | None = 30 * S  # None: no periodic check
    balances_every: int | None = 30 * S

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> ReconcileSettings:
        if config is None:
            return cls()

        def every(key: str) -> int | None:
            value = config.get(key, "30s")
            return None if value is False else parse_duration(value)

        return cls(
            True,
            config.get("orphans"),
            every("open_orders_every"),
            every("balances_every"),
        )


@dataclass
class _Watch:
    """What the reconciler keeps per venue."""

    open_asked: int | None = None  # when open orders were asked and not answered yet
    balances_asked: int | None = None
    booked_at_ask: int = 0  # the ledger's bookings on the venue when balances were asked
    retried: bool = False  # a busy balance read was asked again this period
    foreign: set[str] = field(default_factory=set)  # open there, unknown here (alert policy)
    counts: Counter[str] = field(default_factory=Counter)


class Reconciler:
    def __init__(
        self, execution: ExecutionEngine, settings: ReconcileSettings, timeouts: ExecutionSettings
    ) -> None:
        self.execution = execution
        self.clock, self.bus, self.flow = execution.clock, execution.bus, execution.flow
        self.ledger, self.venues = execution.ledger, execution.venues
        self.settings = settings
        self.timeouts = timeouts  # the scenario's execution settings: start-up ask timeouts
        self.watch = {
            name: _Watch()
            for name, venue in self.venues.items()
            if settings.configured or venue.outlives_process
        }
        self.orphans: Counter[str] = Counter()
        self.adjustments: list[BalanceChange] = []
        self.status_queries = 0
        self._seen: set[tuple[str, str]] = set()  # orphans found (venue, client id)
        self._settled: set[str] = set()  # orphans taken over and settled
        if self.watch:
            self.flow.reconciler = self.on_report
            self.flow.untracked_settled = self._orphan_settled

    WIRED = frozenset(
        {"execution", "clock", "bus", "flow", "ledger", "venues", "settings", "timeouts"}
    )

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps: the counts, the orphans found, what is being asked."""
        return {k: v for k, v in vars(self).items() if k not in self.WIRED}

    def restore(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.watch.update(state.pop("watch"))  # (a venue watched only now keeps its own)
        vars(self).update(state)

    # ---- scheduling ---------------------------------------------------------------------------

    def start(self, ts: int) -> None:
        """The run's first event (a fresh start): venues that outlive the process are asked
        at once, before any entry; the periodic checks begin."""
        outliving = {n for n, v in self.venues.items() if n in self.watch and v.outlives_process}
        if outliving:  # at ts itself: before the first instant's books and decisions
            self.clock.call_at(ts, self.startup, outliving)
        for name in self.watch:
            for check in CHECKS:
                every = self._every(check)
                if every is not None and self._can(name, check):
                    self.clock.call_at(ts + every, self._tick, name, check)

    def startup(self, names: set[str]) -> None:
        """Open orders and balances of ``names`` asked now; entries wait for the answers."""
        for name in sorted(names & set(self.watch)):
            for check in CHECKS:
                if self._can(name, check):
                    self.flow.awaiting.add(_token(name, check))
                    self._ask(name, check)
                    self.clock.call_later(
                        self.timeouts.order_timeout, self._startup_timeout, name, check, 1
                    )

    def _every(self, check: str) -> int | None:
        s = self.settings
        return s.open_orders_every if check == "open_orders" else s.balances_every

    def _can(self, name: str, check: str) -> bool:
        return supports(self.venues[name], CHECKS[check])

    def _tick(self, name: str, check: str) -> None:
        if self.execution.closing:
            return  # the run winds down: no more checks
        watch = self.watch[name]
        if check == "balances":
            watch.retried = False
        if (watch.open_asked if check == "open_orders" else watch.balances_asked) is not None:
            watch.counts[f"{check}_unanswered"] += 1  # a whole period without an answer
        self._ask(name, check)
        self.clock.call_later(self._every(check), self._tick, name, check)  # type: ignore[arg-type]

    def _ask(self, name: str, check: str) -> None:
        watch, venue = self.watch[name], self.venues[name]
        if check == "open_orders":
            watch.open_asked = self.clock.now
            venue.fetch_open_orders()
        else:
            watch.balances_asked = self.clock.now
            watch.booked_at_ask = self.ledger.booked[name]
            venue.fetch_balances()

    def _startup_timeout(self, name: str, check: str, tries: int) -> None:
        token = _token(name, check)
        if token not in self.flow.awaiting:
            return
        if tries > self.timeouts.max_queries:  # as with an order: an operator must look
            title = f"{name} did not answer {check} at start-up"
            self.execution.alert("P0", title, f"asked {tries} times; trading goes on without it")
            self.flow._answered(token)
            return
        self._ask(name, check)
        self.clock.call_later(
            self.timeouts.order_timeout, self._startup_timeout, name, check, tries + 1
        )

    # ---- answers -------------------------------------------------------------------------------

    def on_report(self, report: OpenOrders | Balances) -> None:
        watch = self.watch.get(report.venue)
        if watch is None:
            return
        if isinstance(report, OpenOrders):
            asked, watch.open_asked = watch.open_asked, None
        else:
            asked, watch.balances_asked = watch.balances_asked, None
        if asked is None or report.ts < asked:  # a repeat, or the answer to an older ask
            if isinstance(report, OpenOrders):
                watch.open_asked = asked
            else:
                watch.balances_asked = asked
            watch.counts["stale_answers"] += 1
            return
        if isinstance(report, OpenOrders):
            self._open_orders(report, asked)
            check = "open_orders"
        else:
            self._balances(report, watch)
            check = "balances"
        if self.flow.awaiting and _token(report.venue, check) in self.flow.awaiting:
            self.flow._answered(_token(report.venue, check))

    def _open_orders(self, report: OpenOrders, asked: int) -> None:
        name, flow = report.venue, self.flow
        watch = self.watch[name]
        watch.counts["open_orders"] += 1
        listed = set()
        for entry in report.orders:
            listed.add(entry.client_id)
            order = flow.orders.get(entry.client_id)
            if order is None:
                self._orphan(name, entry, report.ts)
            elif order.state.final or entry.filled > order.filled:
                self._query(order)  # final here, open there; or fills we never heard of
        watch.foreign = {cid for cid in listed if cid not in flow.orders}
        for order in flow.orders.values():  # believed open here, no longer open there
            if (
                order.venue == name
                and order.state in BELIEVED_OPEN
                and order.venue_filled is None  # (not closed there: fills on their way)
                and order.created_at < asked
                and order.client_id not in listed
            ):
                self._query(order)

    def _query(self, order: Order) -> None:
        self.status_queries += 1
        self.venues[order.venue].fetch_order(order.request())

    # ---- orphans -------------------------------------------------------------------------------

    def _orphan(self, name: str, entry: VenueOrder, ts: int) -> None:
        if (name, entry.client_id) in self._seen:
            return  # already found (the alert policy leaves it open)
        self._seen.add((name, entry.client_id))
        policy = self.settings.orphans
        if policy is None:  # cancel what an earlier process of this session left; a stranger's
            # order (placed by hand, another program) is not ours to cancel: alert only
            policy = "cancel" if entry.client_id.startswith(self.flow.mark) else "alert"
        self.orphans["found"] += 1
        price = "market" if entry.price is None else money(entry.price)
        self.execution.alert(
            "P1",
            f"orphan order {entry.client_id} on {name}",
            f"{entry.side} {money(entry.amount)} {entry.symbol} at {price}, "
            f"{money(entry.filled)} filled, placed outside this session: {policy}",
        )
        self.flow.notice(name, "orphan", client_id=entry.client_id)
        if policy == "alert":
            self.orphans["alerted"] += 1
            return
        order = Order(
            client_id=entry.client_id, venue=name, symbol=entry.symbol, side=entry.side,
            amount=entry.amount, type=entry.type, price=entry.price,
            role="orphan" if policy == "cancel" else "adopted",
            state=OrderState.PARTIALLY_FILLED if entry.filled else OrderState.OPEN,
            exchange_id=entry.exchange_id, filled=entry.filled, adopted_at=ts,
        )  # fmt: skip
        self.flow.track(order)
        if policy == "cancel":
            if _token(name, "open_orders") in self.flow.awaiting:
                # Found by the start-up check: no new order until it is gone (or its cancel
                # has had all its time and tries: then the P0 of its timeout says it).
                self.flow.awaiting.add(entry.client_id)
                wait = self.timeouts.order_timeout * (self.timeouts.max_queries + 2)
                self.clock.call_later(wait, self._release, entry.client_id)
            self.flow.cancel(order)
        else:
            self.orphans["adopted"] += 1
            self.flow.notice(name, "orphan_adopted", client_id=entry.client_id)

    def _release(self, client_id: str) -> None:
        if client_id in self.flow.awaiting:
            self.flow._answered(client_id)

    def _orphan_settled(self, order: Order) -> None:
        if order.role != "orphan" or order.client_id in self._settled:
            return
        self._settled.add(order.client_id)
        self._release(order.client_id)
        if order.state is OrderState.CANCELED:
            self.orphans["canceled"] += 1
            self.flow.notice(order.venue, "orphan_canceled", client_id=order.client_id)
        else:  # it filled (or the venue ended it) before the cancel landed
            self.orphans[f"ended_{order.state.value}"] += 1

    # ---- balances ------------------------------------------------------------------------------

    def _balances(self, report: Balances, watch: _Watch) -> None:
        """Compare the venue's balances with the ledger, only when the comparison is sure.

        The choice (of the two usual ones): compare only when nothing could be on its way.
        That is, when the answer arrives, no order of the kernel at that venue is in flight
        (sent and not settled: a fill the venue made may not have reached us yet), the venue
        has no open order the kernel does not track, and the ledger booked nothing for the
        venue between the ask and the answer (which would mean the venue's totals and the
        ledger are of different moments). Then a difference is real at once: detected within
        one period, no need to wait for a second read. Reads that are not sure are skipped
        (counted) and asked again once a second later. The alternative, a difference that
        persists across two reads with nothing booked between, was not taken: a fill
        report held up longer than the two reads (late reports are a drill of the paper
        venue) would pass it. The price: a venue with orders permanently in flight (an
        adopted order resting there) is not compared until they settle.
        """
        name = report.venue
        if self._busy(name) or self.ledger.booked[name] != watch.booked_at_ask:
            watch.counts["balances_skipped"] += 1
            if not watch.retried and not self.execution.closing:
                watch.retried = True
                self.clock.call_later(BUSY_RETRY, self._retry, name)
            return
        watch.counts["balances"] += 1
        mine = self.ledger.balances[name]
        differences = {
            asset: report.totals.get(asset, Decimal(0)) - mine.get(asset, Decimal(0))
            for asset in sorted({*report.totals, *mine})
        }
        found = False
        for asset, difference in differences.items():
            if difference:
                found = True
                self._adjust(name, asset, difference, report.totals.get(asset, Decimal(0)))
        if not found:
            self.flow.notice(name, "balances_match")

    def _retry(self, name: str) -> None:
        if self.watch[name].balances_asked is None:
            self._ask(name, "balances")

    def _busy(self, name: str) -> bool:
        if self.watch[name].foreign:
            return True
        return any(o.venue == name and not o.settled for o in self.flow.orders.values())

    def _adjust(self, name: str, asset: str, difference: Decimal, theirs: Decimal) -> None:
        ours = theirs - difference
        entry = BalanceChange(
            name, asset, difference, "reconciliation", self.clock.now,
            f"reconcile-{len(self.adjustments) + 1}",
        )  # fmt: skip
        self.ledger.book_entry(entry)
        self.adjustments.append(entry)
        self.bus.publish("balance_change", entry=entry)
        self.execution.alert(
            "P1",
            f"balance mismatch on {name}: {asset}",
            f"venue {money(theirs)}, ledger {money(ours)}: {money(difference)} booked as a "
            "reconciliation entry",
        )
        self.flow.notice(name, "balance_mismatch", asset=asset, amount=difference)

    # ---- the summary ---------------------------------------------------------------------------

    def summary(self, start: int) -> dict[str, Any]:
        """The live part of ``summary.reconciliation``."""
        checks = {}
        for name, watch in self.watch.items():
            c = watch.counts
            checks[name] = {
                "open_orders": c["open_orders"],
                "balances": c["balances"],
                "balances_skipped": c["balances_skipped"],
                "unanswered": c["open_orders_unanswered"] + c["balances_unanswered"],
                "not_supported": [m for m in CHECKS.values() if not supports(self.venues[name], m)],
            }
        counts = self.flow.counts
        return {
            "checks": checks,
            "orphans": {k: self.orphans[k] for k in ("found", "canceled", "adopted", "alerted")},
            "balance_mismatches": len(self.adjustments),
            "adjustments": [
                {
                    "venue": e.venue,
                    "asset": e.asset,
                    "amount": money(e.amount),
                    "at_s": round((e.ts - start) / S, 3),
                }
                for e in self.adjustments
            ],
            "inflight_queries": counts["queries"],
            "cancel_timeouts": counts["cancel_timeouts"],
            "status_queries": self.status_queries,
        }


def _token(name: str, check: str) -> str:
    """What a start-up ask puts in the order flow's ``awaiting`` set."""
    return f"{check}@{name}"


def settings_problem(settings: ReconcileSettings) -> tuple[str, str] | None:
    """(key, message) when a period is not longer than 0."""
    for key in ("open_orders_every", "balances_every"):
        value = getattr(settings, key)
        if value is not None and value <= 0:
            return key, "must be longer than 0 (false turns the check off)"
    return None
