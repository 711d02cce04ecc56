"""Time, as the kernel and components see it: ``now`` and callbacks at a later time.

:class:`SimClock` is the simulated clock: an event heap that the simulated driver advances
as fast as the CPU allows, identically for the same scenario and seed. A wall-clock driver
provides the same two calls on real time; components never know which one they have.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    """What components use: the time, and calls scheduled for later."""

    now: int
    """Current time (ns)."""
    start: int
    """When the run's first feed event happened (ns); 0 before it."""

    def call_at(self, ts: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at ``ts`` (ns), after everything already due then."""

    def call_later(self, delay: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` ``delay`` ns from now."""


NEVER = 1 << 63


class SimClock:
    """Simulated time: an event heap, FIFO among equal times."""

    def __init__(self) -> None:
        self.now = 0
        self.start = 0
        self.next_due = NEVER
        """Time of the earliest scheduled call (NEVER when none): what the driver checks."""
        self._heap: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0

    def call_at(self, ts: int, fn: Callable[..., Any], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, fn, args))
        if ts < self.next_due:
            self.next_due = ts

    def call_later(self, delay: int, fn: Callable[..., Any], *args: Any) -> None:
        self.call_at(self.now + delay, fn, *args)

    def run_due(self, until: int) -> None:
        """Run every call due at or before ``until``, in time order."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            ts, _, fn, args = heapq.heappop(heap)
            if ts > self.now:
                self.now = ts
            fn(*args)
        self.next_due = heap[0][0] if heap else NEVER

    def drain(self) -> None:
        """Run everything scheduled, including what the calls schedule."""
        while self._heap:
            self.run_due(self._heap[0][0])
