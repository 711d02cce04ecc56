"""The per-venue request budget (arbframe.ratelimit.TokenBucket)."""

from __future__ import annotations

import asyncio

import pytest

from arbframe.ratelimit import TokenBucket


def test_burst_then_refusal():
    bucket = TokenBucket(per_second=0.001, burst=3)  # refills once in 1000 s
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_refill_at_the_rate(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("arbframe.ratelimit.time.monotonic", lambda: now[0])
    bucket = TokenBucket(per_second=2, burst=2)
    assert bucket.try_acquire() and bucket.try_acquire() and not bucket.try_acquire()
    now[0] += 0.4  # 0.8 token: not yet
    assert not bucket.try_acquire()
    now[0] += 0.1  # 1.0 token
    assert bucket.try_acquire() and not bucket.try_acquire()
    now[0] += 60  # never more than the burst
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]


def test_acquire_waits_for_a_token():
    async def two() -> tuple[int, bool]:
        bucket = TokenBucket(per_second=20, burst=1)
        await bucket.acquire()
        await bucket.acquire()  # no token left: it sleeps until one has refilled
        return bucket.waited, bucket.try_acquire()

    waited, spare = asyncio.run(two())
    assert waited == 1 and not spare  # the token it waited for was taken


@pytest.mark.parametrize("rate,burst", [(0, 1), (-1, 1), (1, 0)])
def test_refuses_a_bucket_that_never_gives(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
