"""The wall-clock driver: the kernel in real time, on an asyncio loop.

It processes the same *instants* as the simulated driver (:mod:`arbframe.driver`), in the
same order: the calls due by an instant's time, its book and FX updates, each strategy's
``on_market`` once per changed symbol, then the event queue drained. What differs is when:

* a recorded feed (a synchronous iterator) is *paced*: scenario time maps to loop time
  through an anchor (the first event) and ``speed`` (10 = ten scenario seconds per real
  second), and each instant waits until its time comes;
* a pushed feed (an asynchronous iterator: real venues) is taken as it arrives; an instant
  is the event received, with any events already waiting that share its timestamp.

Scheduled calls (venue latency, timers, timeouts) fire by themselves when their time
comes, but never one later than the instant the driver holds: what runs before an
instant is exactly what the simulated driver runs, so a recorded scenario makes the same
trades at any speed. ``stop.request()`` (a signal, another thread) wakes the driver at
once; a bare ``stop.requested = True`` is noticed within ``POLL_S``.

:class:`LoopHealth` measures how late the loop runs, from quote to decision and from
decision to order, in fixed memory.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sized
from itertools import dropwhile
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from arbframe.clock import NEVER
from arbframe.driver import BookTarget, DriveStats, StopRequest

if TYPE_CHECKING:
    from arbframe.components import FeedEvent

POLL_S = 0.05  # the longest sleep: a stop set without request() is seen this soon
PROGRESS_NS = 250_000_000  # wall time between progress calls


# ---- the clock ------------------------------------------------------------------------------


class WallClock:
    """Scenario time (ns) on an asyncio loop: ``loop_time = anchor_loop + (ts - anchor_ts)
    / speed / 1e9``. A call runs when its time comes: ``now`` is set to its time, it runs,
    then ``after_call()`` (the driver drains the event queue there).

    The calls are kept in the clock's own heap, FIFO among equal times, with one loop
    handle armed for the earliest: the loop's timers are not FIFO among equal times, and
    the loop must not run a call past ``horizon`` (the instant the driver holds) before that
    instant. Before ``attach`` and after ``detach`` the calls only wait, for ``run_due`` or
    ``drain`` (the wind-down after the run, in scenario time, like ``SimClock``).
    """

    def __init__(self) -> None:
        self.now = 0
        self.start = 0
        self.next_due = NEVER
        """Time of the earliest scheduled call (NEVER when none)."""
        self.horizon = NEVER
        """Calls after this time wait for the driver (it sets it to the instant it holds)."""
        self.speed = 1.0
        self.after_call: Callable[[], None] | None = None
        self.health: LoopHealth | None = None
        self.failure: Exception | None = None
        """What a call fired by the loop raised; the driver raises it."""
        self._heap: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed = NEVER  # the time the handle is armed for
        self._running = False  # inside run_due: arm once, at its end
        self._on_failure: Callable[[], None] | None = None
        self._ts0, self._loop0, self._perf0 = 0, 0.0, 0

    @property
    def pending(self) -> int:
        """How many calls are scheduled."""
        return len(self._heap)

    def call_at(self, ts: int, fn: Callable[..., Any], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, fn, args))
        if ts < self.next_due:
            self.next_due = ts
            if self._loop is not None and not self._running:
                self._arm()

    def call_later(self, delay: int, fn: Callable[..., Any], *args: Any) -> None:
        self.call_at(self.now + delay, fn, *args)

    # ---- time mapping --------------------------------------------------------------------------

    def attach(
        self,
        loop: asyncio.AbstractEventLoop,
        ts: int,
        speed: float,
        after_call: Callable[[], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """Anchor scenario time ``ts`` at the loop's present and start firing calls."""
        self._loop, self.speed = loop, speed
        self.after_call, self._on_failure = after_call, on_failure
        self._ts0, self._loop0, self._perf0 = ts, loop.time(), perf_counter_ns()
        self._arm()

    def detach(self) -> None:
        """Stop firing (the armed handle is cancelled); scheduled calls stay for drain()."""
        if self._handle is not None:
            self._handle.cancel()
        self._loop = self._handle = None
        self._armed = NEVER
        self.after_call = self._on_failure = None
        self.health = None

    def loop_time(self, ts: int) -> float:
        """When scenario time ``ts`` comes, in loop time (s)."""
        return self._loop0 + (ts - self._ts0) / self.speed / 1e9

    def due_perf(self, ts: int) -> int:
        """When scenario time ``ts`` comes, in ``perf_counter_ns`` time (what lag uses)."""
        return self._perf0 + int((ts - self._ts0) / self.speed)

    def scenario_time(self) -> int:
        """The scenario time the loop's present maps to."""
        assert self._loop is not None
        return self._ts0 + int((self._loop.time() - self._loop0) * self.speed * 1e9)

    def present(self) -> int:
        """Scenario time now: the loop's present while attached, else ``now``."""
        return self.now if self._loop is None else max(self.now, self.scenario_time())

    def set_horizon(self, ts: int) -> None:
        self.horizon = ts
        if self._loop is not None:
            self._arm()

    # ---- running calls ---------------------------------------------------------------------

    def run_due(self, until: int) -> None:
        """Run every call due at or before ``until``, in time order (FIFO among equals)."""
        heap, health = self._heap, self.health
        self._running = True
        try:
            while heap and heap[0][0] <= until:
                ts, _, fn, args = heapq.heappop(heap)
                if ts > self.now:
                    self.now = ts
                if health is not None:
                    # Calls from before the first event are due when it came, not in 1970.
                    health.lag.add(perf_counter_ns() - self.due_perf(max(ts, self._ts0)))
                fn(*args)
        finally:
            self._running = False
            self.next_due = heap[0][0] if heap else NEVER
        if self._loop is not None:
            self._arm()

    def drain(self) -> None:
        """Run everything scheduled, including what the calls schedule, at once."""
        while self._heap:
            self.run_due(self._heap[0][0])

    def _arm(self) -> None:
        due = self.next_due if self.next_due <= self.horizon else NEVER
        if due == self._armed:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed = due
        loop = self._loop
        assert loop is not None
        self._handle = None if due == NEVER else loop.call_at(self.loop_time(due), self._fire)

    def _fire(self) -> None:
        self._handle, self._armed = None, NEVER
        try:
            # The head is due; so is whatever else the loop's present has reached.
            self.run_due(min(self.horizon, max(self.next_due, self.scenario_time())))
            if self.after_call is not None:
                self.after_call()
        except Exception as exc:  # the loop would only log it: the driver raises it instead
            self.failure = exc
            if self._on_failure is not None:
                self._on_failure()


# ---- loop health ----------------------------------------------------------------------------


class Histogram:
    """Counts of durations (ns) in log buckets, 16 per power of two (a quantile is within
    about 3 % of the truth), plus the exact maximum: fixed memory, however long the run."""

    def __init__(self) -> None:
        self.counts = [0] * 1024  # 16 * 58 + 32 buckets hold any value below 2**63
        self.count = 0
        self.max = 0

    def add(self, ns: int) -> None:
        if ns < 32:
            ns = max(ns, 0)  # a timer a hair early counts as on time
            index = ns
        else:  # the top 5 bits: 16 sub-buckets per power of two
            shift = ns.bit_length() - 5
            index = (shift << 4) + (ns >> shift)
        self.counts[index] += 1
        self.count += 1
        if ns > self.max:
            self.max = ns

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank >= self.count:
            return float(self.max)
        seen = index = 0
        while seen < rank:
            seen += self.counts[index]
            index += 1
        index -= 1  # the bucket holding the rank-th value
        if index < 32:
            return float(index)
        shift = (index >> 4) - 1
        low = (index - (shift << 4)) << shift
        return min((low + low + (1 << shift)) / 2, float(self.max))  # the bucket's middle


class LoopHealth:
    """How the loop keeps up (times from ``perf_counter_ns``):

    * ``lag``: how late each instant and each scheduled call ran after its due wall time
      (instants of a pushed feed have no due time: their calls are measured);
    * ``quote_to_decision``: from an instant's events being taken to the end of its
      strategies' ``on_market`` calls;
    * ``decision_to_order``: from the start of those calls to each order they sent
      (``OrderFlow.submit`` calls ``order_sent()``; orders sent by timers are not counted).
    """

    def __init__(self) -> None:
        self.lag = Histogram()
        self.quote_to_decision = Histogram()
        self.decision_to_order = Histogram()
        self.deciding_since = 0
        """When the current instant's decisions started; 0 outside them."""

    def order_sent(self) -> None:
        since = self.deciding_since
        if since:
            self.decision_to_order.add(perf_counter_ns() - since)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Quantiles and maxima: lag in ms (3 decimals), the others in µs (1 decimal)."""
        return {
            "lag_ms": _figures(self.lag, 1e6, 3),
            "quote_to_decision_us": _figures(self.quote_to_decision, 1e3, 1),
            "decision_to_order_us": _figures(self.decision_to_order, 1e3, 1),
        }


def _figures(h: Histogram, unit: float, digits: int) -> dict[str, Any]:
    def value(ns: float | None) -> float | None:
        return None if ns is None else round(ns / unit, digits)

    return {
        "p50": value(h.quantile(0.5)),
        "p99": value(h.quantile(0.99)),
        "max": value(h.max if h.count else None),
        "count": h.count,
    }


# ---- the driver -----------------------------------------------------------------------------


async def run_wall(
    clock: WallClock,
    events: Iterable[FeedEvent] | AsyncIterator[FeedEvent],
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
    speed: float = 1.0,
    health: LoopHealth | None = None,
    between: Callable[[int, int], None] | None = None,
    resume: tuple[int, int] | None = None,
) -> DriveStats:
    """Run in real time until the feed is exhausted, ``duration_ns`` of scenario time has
    passed or a stop is requested; the parameters are those of ``run_simulated``
    (``resume`` continues a recorded feed from a snapshot's position).

    ``events`` with ``__aiter__`` is a pushed feed, taken as it comes; anything else is a
    recorded one, paced at ``speed``. ``stats`` is kept current as the run goes.
    """
    if not speed > 0:
        raise ValueError(f"speed must be > 0, not {speed!r}")
    if resume is not None and resume[1] == NEVER:  # a finished run's snapshot
        return stats or DriveStats()
    drive = _Drive(
        clock, targets, set_fx, on_market, events_out, on_first, progress,
        stats or DriveStats(), stop or StopRequest(), speed, health or LoopHealth(), between,
    )  # fmt: skip
    drive.stop.attach(drive.loop, drive.wake)
    try:
        if hasattr(events, "__aiter__"):
            await drive.pushed(events, duration_ns, resume)  # type: ignore[arg-type]
        else:
            await drive.paced(iter(events), duration_ns, resume)  # type: ignore[arg-type]
    finally:
        drive.stop.attach(None, None)
        clock.detach()
        drive.stats.end = max(drive.now, drive.stats.start)
    return drive.stats


async def _next(source: AsyncIterator[FeedEvent]) -> FeedEvent | None:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return None


class _Drive:
    """One wall-clock run: the state both kinds of feed share."""

    def __init__(
        self,
        clock: WallClock,
        targets: dict[str, dict[str, BookTarget]],
        set_fx: Callable[[str, float], None],
        on_market: list[Callable[[int, str], None]],
        events_out: tuple[Sized, Callable[[], None]],
        on_first: Callable[[int], None],
        progress: Callable[[int, int], None] | None,
        stats: DriveStats,
        stop: StopRequest,
        speed: float,
        health: LoopHealth,
        between: Callable[[int, int], None] | None,
    ) -> None:
        self.clock, self.targets, self.set_fx, self.on_market = clock, targets, set_fx, on_market
        self.queue, self.drain = events_out
        self.on_first, self.progress, self.stats, self.stop = on_first, progress, stats, stop
        self.speed, self.health, self.between = speed, health, between
        self.loop = asyncio.get_running_loop()
        self.now = -1  # the last instant's time (the end, when cut by the duration)
        self.end = NEVER
        self.first: str | None = None  # the instant's first symbol, and any others it touched
        self.others: list[str] = []
        self.waiting: asyncio.Future[None] | None = None
        self.shown = 0  # when progress was last called

    # ---- waiting --------------------------------------------------------------------------------

    def wake(self) -> None:
        waiting = self.waiting
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def wait(self, when: float, ready: asyncio.Future[Any] | None = None) -> bool:
        """Sleep until loop time ``when``, or until ``ready`` is done; False when the run
        must stop. Yields to the loop at least once (due calls and other tasks run)."""
        loop, stop, clock = self.loop, self.stop, self.clock
        if ready is not None:
            ready.add_done_callback(lambda _: self.wake())
        while True:
            now = loop.time()
            if now >= when or (ready is not None and ready.done()):
                await asyncio.sleep(0)
            else:
                self.waiting = waiting = loop.create_future()
                handle = loop.call_at(min(when, now + POLL_S), self.wake)
                try:
                    await waiting
                finally:
                    handle.cancel()
                    self.waiting = None
            if clock.failure is not None:
                raise clock.failure
            if stop.requested:
                self.stats.stopped = True
                return False
            if loop.time() >= when or (ready is not None and ready.done()):
                return True

    # ---- instants ---------------------------------------------------------------------------

    def begin(self, ts: int, resumed: bool = False) -> None:
        """The first event: scenario time starts here (or, resumed, goes on from here),
        anchored at the loop's present."""
        clock, queue, drain = self.clock, self.queue, self.drain
        if not resumed:
            self.stats.start = clock.start = ts
        clock.health = self.health
        clock.attach(self.loop, ts, self.speed, lambda: drain() if queue else None, self.wake)
        if not resumed:
            self.on_first(ts)
        self.shown = perf_counter_ns()

    def open(self, ts: int, taken: int | None = None) -> bool:
        """Before an instant, as in run_simulated: what is due by then, the queued events,
        ``between``, the stop. False: stop before it."""
        clock = self.clock
        if taken is not None:
            self.health.lag.add(taken - clock.due_perf(ts))
        if clock.failure is not None:
            raise clock.failure
        if clock.next_due <= ts:
            clock.run_due(ts)
        if self.queue:
            self.drain()
        if self.between is not None and self.now >= 0:
            self.between(self.now, ts)
        if self.stop.requested:
            self.stats.stopped = True
            return False
        clock.now = self.now = ts
        return True

    def apply(self, ts: int, venue: str | None, symbol: str, bids: Any, asks: Any) -> None:
        """One update of the instant at ``ts``."""
        stats = self.stats
        if venue is None:
            self.set_fx(symbol, bids)
            stats.fx_updates += 1
            return
        record, on_book = self.targets[venue][symbol]
        record((ts, bids, asks))
        on_book(ts, symbol, bids, asks)
        first = self.first
        if first is None:
            self.first = symbol
        elif symbol != first and symbol not in self.others:
            self.others.append(symbol)
        stats.quotes += 1

    def close(self, ts: int, taken: int) -> None:
        """The instant's updates are applied: decide, then deliver the queued events."""
        health, stats = self.health, self.stats
        first = self.first
        if first is not None:
            health.deciding_since = perf_counter_ns()
            for symbol in (first, *self.others) if self.others else (first,):
                for decide in self.on_market:  # per symbol, strategies in scenario order
                    decide(ts, symbol)
            self.first = None
            self.others.clear()
            health.deciding_since = 0
        done = perf_counter_ns()
        health.quote_to_decision.add(done - taken)
        stats.instants += 1
        if self.queue:
            self.drain()
        if self.progress is not None and done - self.shown >= PROGRESS_NS:
            self.shown = done
            self.progress(ts - stats.start, stats.quotes)

    def finish(self, until: int) -> None:
        """The last calls: those due by ``until`` (the end, or the last instant)."""
        if self.clock.next_due <= until:
            self.clock.run_due(until)

    # ---- the two kinds of feed ----------------------------------------------------------------

    async def paced(
        self,
        events: Iterator[FeedEvent],
        duration_ns: int,
        resume: tuple[int, int] | None = None,
    ) -> None:
        """A recorded feed: each instant when its time comes on the wall."""
        clock = self.clock
        if resume is not None:  # skip what the snapshot had applied; time goes on
            events = dropwhile(lambda e: e[0] < resume[1], events)
        event = next(events, None)
        if event is None:
            return
        if resume is not None:
            self.now = resume[0]
            self.begin(event[0], resumed=True)
            end = self.end = self.stats.start + duration_ns
        else:
            self.begin(event[0])
            end = self.end = event[0] + duration_ns
        while event is not None:
            ts = event[0]
            if ts > end:  # cut: scenario time still runs to the end, calls included
                clock.set_horizon(end)
                if await self.wait(clock.loop_time(end)):
                    self.now = end
                    self.finish(end)
                return
            clock.set_horizon(ts)
            taken = 0
            if await self.wait(clock.loop_time(ts)):
                taken = perf_counter_ns()
            if not taken or not self.open(ts, taken):
                self.stats.next_ts = ts  # stopped: a resumed run picks up here
                return
            while True:  # the instant: every event sharing its time, read ahead
                self.apply(*event)
                event = next(events, None)
                if event is None or event[0] != ts:
                    break
            self.close(ts, taken)
        self.finish(self.now)  # the feed is exhausted

    async def pushed(
        self,
        source: AsyncIterator[FeedEvent],
        duration_ns: int,
        resume: tuple[int, int] | None = None,
    ) -> None:
        """A pushed feed: each event as it arrives (calls fire freely meanwhile). Resumed,
        the session goes on from its snapshot's time: the duration still counts from the
        session's start."""
        clock, loop = self.clock, self.loop
        source = aiter(source)
        coming: asyncio.Task[FeedEvent | None] | None = None  # the next event, being taken
        event: FeedEvent | None = None  # the next instant's first event, once taken
        batch: list[FeedEvent] = []
        exhausted = False
        taken = next_taken = 0
        try:
            while True:
                if event is None:  # wait for the next event, or for the end
                    if exhausted:
                        break
                    if coming is None:
                        coming = loop.create_task(_next(source))
                    deadline = math.inf if self.now < 0 else clock.loop_time(self.end)
                    if not await self.wait(deadline, coming):
                        return
                    if not coming.done():
                        self.now = self.end  # the end came first
                        break
                    event, coming = coming.result(), None
                    taken = perf_counter_ns()
                    if event is None:
                        break
                if self.now < 0 and resume is not None:
                    self.now = resume[0]
                    self.begin(max(event[0], resume[0]), resumed=True)
                    self.end = self.stats.start + duration_ns
                elif self.now < 0:
                    self.begin(event[0])
                    self.end = event[0] + duration_ns
                ts = event[0]
                if ts > self.end:
                    self.now = self.end
                    break
                # Events already waiting with the same time join the instant: one turn of
                # the loop lets the source hand over what it holds. (Calls may run during
                # it: the instant is not open yet.)
                batch.append(event)
                event = None
                while True:
                    coming = loop.create_task(_next(source))
                    await asyncio.sleep(0)
                    if not coming.done():
                        break
                    following, coming = coming.result(), None
                    if following is None or following[0] != ts:
                        event, exhausted = following, following is None
                        next_taken = perf_counter_ns()
                        break
                    batch.append(following)
                # A late stamp must not move time back behind calls already run.
                at = max(ts, clock.now)
                if not self.open(at):
                    return
                for _, venue, symbol, bids, asks in batch:
                    self.apply(at, venue, symbol, bids, asks)
                batch.clear()
                self.close(at, taken)
                taken = next_taken
            if self.now >= 0:
                self.finish(self.now)
        finally:
            if coming is not None and not coming.done():
                coming.cancel()
                await asyncio.wait([coming])
