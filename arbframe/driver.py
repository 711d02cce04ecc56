"""The simulated driver: feeds scenario time to the kernel as fast as the CPU allows.

Feed events arrive in time order; the clock's heap holds what the run schedules itself
(venue latency, report delays, timers, order timeouts). Events are processed an *instant*
at a time: every book and FX update sharing a timestamp is applied before any strategy
sees one, so a decision never compares venue A at t with venue B a moment earlier. Per
instant:

1. every scheduled call due by then runs (orders arriving now meet the books published
   before this instant);
2. the instant's updates are applied: FX rates, and each book recorded as published then
   handed to its venue;
3. each strategy's ``on_market(ts, symbol)`` runs once per symbol that changed;
4. calls scheduled for this very instant run (zero-latency orders meet the new books),
   and the queued events are delivered to the plugins' hooks.

The order of everything depends only on the scenario and the seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from contextlib import suppress
from dataclasses import dataclass
from itertools import chain, dropwhile
from typing import Any

from arbframe.clock import NEVER, SimClock
from arbframe.components import FeedEvent

PROGRESS_EVERY = 1024  # events between progress calls (the callback decides by wall time)

BookTarget = tuple[Callable[[tuple[int, Any, Any]], None], Callable[..., None]]
_SENTINEL: FeedEvent = (NEVER, None, "", None, None)


@dataclass
class DriveStats:
    start: int = 0
    end: int = 0
    quotes: int = 0
    fx_updates: int = 0
    instants: int = 0
    stopped: bool = False  # ended early on request, between two instants
    next_ts: int = NEVER  # the first feed time not applied (where a resumed run picks up)


class StopRequest:
    """Set ``requested`` (from a signal handler, another thread) to end the run at the next
    instant: never inside one, so no fill is half-booked. ``request()`` also wakes a
    wall-clock driver that is sleeping until its next instant."""

    requested = False
    _waker: tuple[Any, Callable[[], None]] | None = None  # (asyncio loop, wake) while one runs

    def request(self) -> None:
        """Ask the run to stop; safe from signal handlers and other threads."""
        self.requested = True
        waker = self._waker  # one read: the driver may detach meanwhile
        if waker is not None:
            with suppress(RuntimeError):  # the loop closed meanwhile: the flag is enough
                waker[0].call_soon_threadsafe(waker[1])

    def attach(self, loop: Any, wake: Callable[[], None] | None) -> None:
        """The wall-clock driver's loop and wake-up while it runs (None, None after)."""
        self._waker = None if wake is None else (loop, wake)


def run_simulated(
    clock: SimClock,
    events: Iterator[FeedEvent],
    duration_ns: int,
    targets: dict[str, dict[str, BookTarget]],
    set_fx: Callable[[str, float], None],
    on_market: list[Callable[[int, str], None]],
    events_out: tuple[Sized, Callable[[], None]],
    on_first: Callable[[int], None],
    progress: Callable[[int, int], None] | None = None,
    stats: DriveStats | None = None,
    stop: StopRequest | None = None,
    *,
    between: Callable[[int, int], None] | None = None,
    resume: tuple[int, int] | None = None,
) -> DriveStats:
    """Run until the feed is exhausted or ``duration_ns`` of scenario time has passed.

    ``targets[venue][symbol]`` is (record the published book, the venue's on_book);
    ``events_out`` is (the event queue, what drains it). ``stats`` is kept current, so an
    interrupted run still has its counts. ``between(now, next_ts)`` runs between two
    instants, once ``now`` is complete and before ``next_ts`` is applied (snapshots are
    taken there). ``resume=(now, next_ts)`` continues a run restored from such a snapshot:
    the feed is skipped up to ``next_ts`` and ``stats`` carries the counts so far.
    """
    stats = stats or DriveStats()
    stop = stop or StopRequest()
    queue, drain = events_out
    decide = on_market[0] if len(on_market) == 1 else _fan_out(on_market)
    first: str | None = None  # the instant's first symbol, and any others it touched
    others: list[str] = []
    now = end = -1
    quotes = instants = fx_updates = 0
    if resume is not None:  # pick up right after `between` was called
        now, next_ts = resume
        if next_ts == NEVER:  # the snapshot of a finished run: nothing is left to drive
            return stats
        end = stats.start + duration_ns
        quotes, instants, fx_updates = stats.quotes, stats.instants, stats.fx_updates
        events = dropwhile(lambda event: event[0] < next_ts, events)
        clock.now = now = next_ts
    try:
        # The sentinel closes the last instant like any other.
        for ts, venue, symbol, bids, asks in chain(events, (_SENTINEL,)):
            if ts != now:
                if first is not None:  # the instant `now` is complete: decide
                    decide(now, first)
                    first = None
                    if others:
                        for other in others:
                            decide(now, other)
                        others.clear()
                if now < 0:
                    if ts == NEVER:  # no feed has a book in range: nothing to drive
                        break
                    stats.start = clock.start = ts
                    end = ts + duration_ns
                    on_first(ts)
                else:
                    instants += 1
                if ts > end:  # cut by the duration, or the feeds are exhausted
                    if ts != NEVER:
                        now = end
                    if clock.next_due <= now:
                        clock.run_due(now)
                    break
                # What this instant's decisions scheduled for now, then what falls due
                # before the next instant's books (in time order, one heap).
                if clock.next_due <= ts:
                    clock.run_due(ts)
                if queue:
                    drain()
                if between is not None and now >= 0:
                    stats.quotes, stats.instants, stats.fx_updates = quotes, instants, fx_updates
                    between(now, ts)
                    if queue:
                        drain()
                if stop.requested:
                    stats.stopped, stats.next_ts = True, ts
                    break
                clock.now = now = ts
            if venue is None:
                set_fx(symbol, bids)
                fx_updates += 1
                continue
            record, on_book = targets[venue][symbol]
            record((ts, bids, asks))
            on_book(ts, symbol, bids, asks)
            if first is None:
                first = symbol
            elif symbol != first and symbol not in others:
                others.append(symbol)
            quotes += 1
            if progress is not None and not quotes % PROGRESS_EVERY:
                progress(ts - stats.start, quotes)
    finally:  # an interrupted run keeps its counts too
        stats.quotes, stats.instants, stats.fx_updates = quotes, instants, fx_updates
        stats.end = max(now, stats.start)
    return stats


def _fan_out(callbacks: list[Callable[[int, str], None]]) -> Callable[[int, str], None]:
    def decide(ts: int, symbol: str) -> None:
        for callback in callbacks:
            callback(ts, symbol)

    return decide
