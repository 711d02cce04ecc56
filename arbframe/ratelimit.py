"""A token bucket: the per-venue request budget, on top of the client library's own limiter.

``acquire()`` waits until a token is there; ``try_acquire()`` never waits (a caller that
would rather skip a request, e.g. a periodic poll, than queue it).
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, per_second: float, burst: int) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a bucket needs per_second > 0 and burst >= 1")
        self.rate, self.burst = per_second, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.waited = 0
        """Requests that had to wait for a token."""

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def try_acquire(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        self.waited += 1
        while not self.try_acquire():
            await asyncio.sleep((1 - self.tokens) / self.rate)
