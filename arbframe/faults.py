"""Faults as the kernel records them: a timeline per fault, and the market-data links a
feed fault can cut.

Each fault of a scenario has a name (its ``name:``, else ``faults[i]``) and a record with
three moments, in scenario time: *injected* (its first firing), *detected* (the kernel or a
venue noticed the effect) and *recovered* (the effect is gone, as the kernel sees it). A
fault reports them through its context (``fired``, ``detected``, ``recovered``); each
moment is published once on the event bus as a ``fault`` event, firings each time, as
before. Detection and recovery are meant to be noticed, not declared: the built-in faults
call them from what the kernel receives (a rejected order, a slow acknowledgement, a
link's first book after it reconnects), never from their own schedule.

A :class:`Link` stands for a venue's market-data connection in a simulated run: books
reach the kernel (and the simulated venue, which shares the kernel's books) only while it
is up. The runner gates a venue's books through its link only when a fault asked for it,
so a run without feed faults pays nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arbframe.bus import EventBus
    from arbframe.clock import Clock

S = 1_000_000_000


@dataclass
class FaultRecord:
    """One fault's timeline (times in ns, None until they happen)."""

    name: str
    type: str
    target: str | None
    injected_at: int | None = None
    detected_at: int | None = None
    recovered_at: int | None = None
    firings: int = 0
    stats: Callable[[], dict[str, Any]] = field(default=dict)


class FaultLog:
    """Every fault's record, the firing counts by name, and the bus events of each."""

    def __init__(self, clock: Clock, bus: EventBus) -> None:
        self.clock = clock
        self.bus = bus
        self.records: dict[str, FaultRecord] = {}
        self.counts: Counter[str] = Counter()

    def add(self, name: str, type_name: str, target: str | None) -> FaultRecord:
        record = self.records[name] = FaultRecord(name, type_name, target)
        return record

    # ---- what a fault's context calls (bound to its record) ------------------------------------

    def fired(self, record: FaultRecord, name: str, /, **detail: Any) -> None:
        self.counts[name] += 1
        record.firings += 1
        if record.injected_at is None:
            record.injected_at = self.clock.now
        self.bus.publish(
            "fault", name=name, fault=record.name, phase="injected", detail=detail,
            ts=self.clock.now,
        )  # fmt: skip

    def detected(self, record: FaultRecord, /, **detail: Any) -> None:
        if record.detected_at is None:  # the first notice counts; the rest is the same fault
            record.detected_at = self.clock.now
            self._publish(record, "detected", detail)

    def recovered(self, record: FaultRecord, /, **detail: Any) -> None:
        # A recovery is from something noticed: before a detection there is nothing to
        # recover from (and no time to repair to measure).
        if record.detected_at is not None and record.recovered_at is None:
            record.recovered_at = self.clock.now
            self._publish(record, "recovered", detail)

    def _publish(self, record: FaultRecord, phase: str, detail: dict[str, Any]) -> None:
        self.bus.publish(
            "fault", name=record.type, fault=record.name, phase=phase, detail=detail,
            ts=self.clock.now,
        )  # fmt: skip

    # ---- the summary ---------------------------------------------------------------------------

    def summary(self, start: int) -> dict[str, Any]:
        """``summary.faults``: firing counts by name, ``timeline`` and ``unrecovered``."""

        def seconds(ts: int | None) -> float | None:
            return None if ts is None else round((ts - start) / S, 3)

        timeline = {}
        for r in self.records.values():
            mttr = None
            if r.detected_at is not None and r.recovered_at is not None:
                mttr = round((r.recovered_at - r.detected_at) / S, 3)
            timeline[r.name] = {
                "type": r.type,
                "target": r.target,
                "firings": r.firings,
                "injected_at_s": seconds(r.injected_at),
                "detected_at_s": seconds(r.detected_at),
                "recovered_at_s": seconds(r.recovered_at),
                "mttr_s": mttr,
                "stats": r.stats(),  # the fault's own counters
            }
        unrecovered = sum(
            1 for r in self.records.values() if r.detected_at is not None and r.recovered_at is None
        )
        return {
            **dict(sorted(self.counts.items())),
            "timeline": timeline,
            "unrecovered": unrecovered,
        }


# ---- market-data links -------------------------------------------------------------------------


class backoff:  # noqa: N801 (used like the generator it replaces)
    """Reconnection delays (ns): ``min(initial * factor**k, maximum)``, each scaled by a
    uniform draw in ``[1 - jitter, 1 + jitter]`` (so a delay may exceed ``maximum`` by the
    jitter: the cap bounds the schedule, the jitter spreads clients apart). An iterator
    with plain state, so a link cut when a snapshot is taken resumes its schedule."""

    def __init__(
        self, initial: int, maximum: int, factor: float, jitter: float, rng: random.Random
    ) -> None:
        self.base, self.maximum, self.factor, self.jitter = float(initial), maximum, factor, jitter
        self.rng = rng

    def __iter__(self) -> backoff:
        return self

    def __next__(self) -> int:
        delay = max(
            1, round(min(self.base, self.maximum) * (1 + self.jitter * self.rng.uniform(-1, 1)))
        )
        self.base = min(self.base * self.factor, self.maximum)
        return delay


class LinkListener:
    """What a link tells the fault that cut it (all optional)."""

    def link_down(self, link: Link) -> None: ...
    def link_attempt(self, link: Link, ok: bool) -> None: ...
    def link_recovered(self, link: Link) -> None: ...


class Link:
    """A venue's market-data connection in a simulated run.

    ``cut`` makes the network fail: the connection drops and the link notices at once (a
    closed socket is noticed at once), then tries to reconnect after each delay of its
    backoff; an attempt succeeds when the network is back (``heal``). Books are dropped
    from the drop until the reconnection, and the first book after it is the recovery.
    """

    def __init__(self, venue: str, clock: Clock) -> None:
        self.venue = venue
        self.clock = clock
        self.up = True
        """Connected: the venue's books reach the kernel."""
        self.outages = 0  # network failures in force (overlapping faults each count)
        self.awaiting_book = False  # reconnected; the next book is the recovery
        self.attempts: list[int] = []
        """When each reconnection attempt happened (ns)."""
        self.dropped = 0
        """Books dropped while the link was down."""
        self._delays: Iterator[int] = iter(())
        self._listeners: list[LinkListener] = []
        self.rewrites: list[Callable[[int, str, Any, Any], tuple[Any, Any]]] = []
        """``fn(ts, symbol, bids, asks) -> (bids, asks)``: what a market fault makes of each
        book before anyone (the audit's record, the venue, the kernel) sees it."""
        self._stopped = False

    def cut(self, delays: Iterator[int], listener: LinkListener) -> None:
        """The network fails now; ``delays`` are the waits before each reconnection attempt."""
        self.outages += 1
        self._listeners.append(listener)
        if not self.up:  # already down: the attempts under way continue
            return
        self.up = self.awaiting_book = False
        self._delays = delays
        for each in list(self._listeners):
            each.link_down(self)
        self.clock.call_later(next(self._delays), self._attempt)

    def heal(self) -> None:
        """One network failure is over: the next attempt may succeed."""
        self.outages -= 1

    def stop(self) -> None:
        """The run is over: no more attempts (the clock runs what is left when it winds down)."""
        self._stopped = True

    def _attempt(self) -> None:
        if self._stopped:
            return
        self.attempts.append(self.clock.now)
        ok = self.outages == 0
        for each in list(self._listeners):
            each.link_attempt(self, ok)
        if ok:
            self.up = self.awaiting_book = True
        else:
            self.clock.call_later(next(self._delays), self._attempt)

    def _first_book(self) -> None:
        self.awaiting_book = False
        listeners, self._listeners = self._listeners, []
        for each in listeners:
            each.link_recovered(self)

    def targets(self) -> GatedTargets:
        """The venue's book targets for the driver, behind this link."""
        return GatedTargets(self)


def _ignore(*args: Any) -> None:
    pass


_DROPPED = (_ignore, _ignore)


class GatedTargets(dict):  # type: ignore[type-arg]
    """``targets[venue]`` of the simulated driver for a venue behind a :class:`Link`: while
    the link is down a book goes nowhere (neither the audit's record nor the venue).

    The driver still counts the dropped book as a quote and still offers its instant to the
    strategies (``on_market``), with the books unchanged."""

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link

    def __getitem__(self, symbol: str) -> Any:
        link = self.link
        if not link.up:
            link.dropped += 1
            return _DROPPED
        if link.awaiting_book:
            link._first_book()
        if link.rewrites:
            return _rewritten(dict.__getitem__(self, symbol), symbol, link.rewrites)
        return dict.__getitem__(self, symbol)


def _rewritten(entry: Any, symbol: str, rewrites: list[Any]) -> tuple[Any, Any]:
    """The (record, on_book) pair of one book, both given the rewritten book."""
    record, on_book = entry
    seen: list[tuple[Any, Any]] = []

    def rewrite_record(item: tuple[int, Any, Any]) -> None:
        ts, bids, asks = item
        for rewrite in rewrites:
            bids, asks = rewrite(ts, symbol, bids, asks)
        seen.append((bids, asks))
        record((ts, bids, asks))

    def rewrite_book(ts: int, sym: str, bids: Any, asks: Any) -> None:
        on_book(ts, sym, *(seen[-1] if seen else (bids, asks)))

    return rewrite_record, rewrite_book
