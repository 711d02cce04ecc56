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

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from arbframe.clock import SimClock
from arbframe.components import FeedEvent

PROGRESS_EVERY = 1024  # events between progress calls (the callback decides by wall time)

BookTarget = tuple[Callable[[tuple[int, Any, Any]], None], Callable[..., None]]


@dataclass
class DriveStats:
    start: int = 0
    end: int = 0
    quotes: int = 0
    fx_updates: int = 0
    instants: int = 0


def run_simulated(
    clock: SimClock,
    events: Iterator[FeedEvent],
    duration_ns: int,
    targets: dict[tuple[str, str], BookTarget],
    set_fx: Callable[[str, float], None],
    on_market: list[Callable[[int, str], None]],
    after_instant: Callable[[], None],
    on_first: Callable[[int], None],
    progress: Callable[[int, int], None] | None = None,
    stats: DriveStats | None = None,
) -> DriveStats:
    """Run until the feed is exhausted or ``duration_ns`` of scenario time has passed.

    ``targets[(venue, symbol)]`` is (record the published book, the venue's on_book).
    ``stats`` is filled as the run goes, so an interrupted run still has its counts.
    """
    stats = stats or DriveStats()
    touched: list[str] = []
    now = end = -1
    quotes = 0

    def close_instant() -> None:
        for symbol in touched:
            for callback in on_market:
                callback(now, symbol)
        touched.clear()
        clock.run_due(now)
        after_instant()

    try:
        for ts, venue, symbol, bids, asks in events:
            if ts != now:
                if now < 0:
                    stats.start = clock.start = ts
                    end = ts + duration_ns
                    on_first(ts)
                else:
                    close_instant()
                    stats.instants += 1
                if ts > end:
                    stats.end = end
                    break
                due = clock.next_due()
                if due is not None and due <= ts:
                    clock.run_due(ts)
                clock.now = now = stats.end = ts
            if venue is None:
                set_fx(symbol, bids)
                stats.fx_updates += 1
                continue
            record, on_book = targets[(venue, symbol)]
            record((ts, bids, asks))
            on_book(ts, symbol, bids, asks)
            if symbol not in touched:
                touched.append(symbol)
            quotes += 1
            if progress is not None and not quotes % PROGRESS_EVERY:
                progress(ts - stats.start, quotes)
        else:
            if now >= 0:
                close_instant()
                stats.instants += 1
    finally:
        stats.quotes = quotes  # an interrupted run keeps its count too
    return stats
