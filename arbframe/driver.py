"""The simulated driver: feeds scenario time to the engine as fast as the CPU allows.

Feed events arrive in time order from a stream; the engine's heap holds everything the
run schedules itself (venue latency, timers). Before each feed event, every scheduled
callback due by then runs, so the order of events depends only on the scenario and seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from arbframe.components import FeedEvent
from arbframe.engine import Engine

PROGRESS_EVERY = 1 << 14  # feed events between progress callbacks


@dataclass
class DriveStats:
    start: int = 0
    end: int = 0
    quotes: int = 0
    fx_updates: int = 0


def run_simulated(
    engine: Engine,
    events: Iterator[FeedEvent],
    duration_ns: int,
    progress: Callable[[int, int], None] | None = None,
) -> DriveStats:
    """Run until the feed is exhausted or `duration_ns` of scenario time has passed."""
    assert engine.strategy is not None
    stats = DriveStats()
    on_quote = engine.strategy.on_quote
    on_book = {name: venue.on_book for name, venue in engine.venues.items()}
    heap = engine._heap
    end = None
    quotes = 0
    ts = 0
    for ts, venue, symbol, bids, asks in events:
        if end is None:
            stats.start = engine.start = ts
            end = ts + duration_ns
        if ts > end:
            ts = end
            break
        if heap and heap[0][0] <= ts:
            engine.run_due(ts)
        engine.now = ts
        if venue is None:
            engine.set_fx(symbol, bids)
            stats.fx_updates += 1
            continue
        on_book[venue](ts, symbol, bids, asks)
        on_quote(ts, venue, symbol)
        quotes += 1
        if progress is not None and not quotes % PROGRESS_EVERY:
            progress(ts - stats.start, quotes)
    stats.end, stats.quotes = ts, quotes
    engine.run_due(ts)
    engine.now = max(engine.now, ts)
    # Wind down: no new timers; the strategy closes what it holds; in-flight orders settle.
    engine.closing = True
    engine.strategy.on_end()
    engine.drain()
    return stats
