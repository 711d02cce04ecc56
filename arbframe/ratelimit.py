"""A token bucket: the per-venue request budget, on top of the client library's own limiter.

``acquire()`` waits until a token is there; ``try_acquire()`` never waits (a caller that
would rather skip a request, e.g. a periodic poll, than queue it). ``clock`` (seconds) is
the monotonic wall clock by default; the venue health monitor passes scenario time, so a
simulated run's budget is reproducible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] | None = None
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a bucket needs per_second > 0 and burst >= 1")
        self.rate, self.burst = per_second, burst
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = self._now()
        self.waited = 0
        """Requests that had to wait for a token."""

    def _now(self) -> float:
        return time.monotonic() if self.clock is None else self.clock()

    def _refill(self) -> None:
        now = self._now()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def try_acquire(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def available(self) -> float:
        """Tokens there now (refilled, none taken): below 1, a request would have to wait."""
        self._refill()
        return self.tokens

    def take(self) -> bool:
        """Spend a token for a request that goes anyway (it is not ours to hold back): False
        when there was none, and the bucket stays at 0."""
        if self.try_acquire():
            return True
        self.tokens = 0.0
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        self.waited += 1
        while not self.try_acquire():
            await asyncio.sleep((1 - self.tokens) / self.rate)
