"""Venue health: what the order flow sees of each venue, as the guards and routing read it.

Per venue, from the answers to the kernel's orders (the order flow tells the monitor):

* **errors**: a rejection that is the venue's fault, not the order's (``429`` rate limits,
  ``5xx`` server errors: see :func:`venue_error`), and an order with no answer at all by its
  timeout (``timeout``: the kernel then queries it; a lost order counts once);
* **latency**: scenario time from sending an order to its first answer (ack, fill or
  rejection);
* **error rate** and **latency p50/p99** over the orders of the last ``window``;
  ``degraded`` while the error rate (with at least ``min_orders`` answers in the window)
  reaches ``max_error_rate`` or the window's p99 latency passes ``max_latency``;
* **score** in [0, 1] for route scoring: ``(1 - min(1, error_rate / max_error_rate)) x
  min(1, max_latency / p99)``: 1 healthy, 0 at the error bound;
* an order **rate budget** (``rate_limits``): two token buckets in scenario time, ``soft``
  and ``hard`` orders per second (burst = the rate). Orders are never held back (an exit
  must leave); the `exchange` guard reads :meth:`VenueHealth.rate_level` and degrades or
  blocks new entries instead.

Configured by the scenario's top-level ``health:``; the summary's ``health.<venue>``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from arbframe.errors import ConfigError
from arbframe.ratelimit import TokenBucket
from arbframe.units import parse_duration

S = 1_000_000_000
MS = 1_000_000
DEFAULTS = {"window": "1m", "min_orders": 5, "max_error_rate": 0.2, "max_latency": "500ms"}
RECENT = 10_000  # latencies kept for the summary's percentiles (the latest answers)


def venue_error(reason: str) -> bool:
    """A rejection the venue caused: HTTP 429 or 5xx (``429 Too Many Requests``, ``503
    Service Unavailable``), or words that say so. Business refusals (balance, size) are
    answers, not errors."""
    head = reason[:3]
    if head == "429" or (head[:1] == "5" and head[1:3].isdigit()):
        return True
    low = reason.lower()
    return "rate limit" in low or "unavailable" in low or "timed out" in low


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile of non-empty ``values`` (sorted here)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


class _Venue:
    """One venue's record. ``recent``: (ts, error, latency ns or -1) within the window."""

    __slots__ = (
        "orders", "errors", "answers", "recent", "latencies", "window_errors", "window_timed",
        "window_slow", "degraded", "degraded_periods", "rate_limited", "soft", "hard", "score",
    )  # fmt: skip

    def __init__(self) -> None:
        self.orders = self.errors = self.answers = 0
        self.recent: deque[tuple[int, bool, int]] = deque()
        self.latencies: deque[int] = deque(maxlen=RECENT)
        self.window_errors = 0
        self.window_timed = 0  # answers with a latency in the window
        self.window_slow = 0  # ... of which slower than max_latency
        self.degraded = False
        self.degraded_periods = 0
        self.rate_limited = 0  # orders sent past the soft limit
        self.soft: TokenBucket | None = None
        self.hard: TokenBucket | None = None
        self.score: float | None = 1.0  # None: to compute again


class VenueHealth:
    """Every venue's health (see the module docstring)."""

    def __init__(
        self, venues: list[str], config: dict[str, Any] | None, now: Callable[[], int]
    ) -> None:
        spec = {**DEFAULTS, **(config or {})}
        self.now = now
        self.window = parse_duration(spec["window"])
        if self.window <= 0:
            raise ConfigError("must be longer than 0", ("window",))
        self.min_orders = int(spec["min_orders"])
        self.max_error_rate = float(spec["max_error_rate"])
        self.max_latency = parse_duration(spec["max_latency"])
        self.venues: dict[str, _Venue] = {name: _Venue() for name in venues}
        for name, limits in (spec.get("rate_limits") or {}).items():
            record = self.venues.get(name)
            if record is None:
                known = ", ".join(venues)
                raise ConfigError(
                    f"unknown venue {name!r} (venues: {known})", ("rate_limits", name)
                )
            soft, hard = float(limits["soft"]), float(limits["hard"])
            if hard < soft:
                raise ConfigError("must not be below soft", ("rate_limits", name, "hard"))
            record.soft = TokenBucket(soft, max(1, int(soft)), self._seconds)
            record.hard = TokenBucket(hard, max(1, int(hard)), self._seconds)

    def _seconds(self) -> float:
        return max(self.now(), 0) / S

    # ---- what the order flow tells ------------------------------------------------------------

    def sent(self, venue: str) -> None:
        """An order left for ``venue``: it spends the rate budget."""
        record = self.venues.get(venue)
        if record is None:
            return
        record.orders += 1
        if record.soft is not None and record.hard is not None:
            hard_ok = record.hard.take()
            if not record.soft.take() or not hard_ok:
                record.rate_limited += 1

    def answered(self, venue: str, latency: int, error: bool) -> None:
        """The first answer to an order: after ``latency`` ns, a venue error or not."""
        record = self.venues.get(venue)
        if record is not None:
            record.latencies.append(latency)
            self._add(record, error, latency)

    def timed_out(self, venue: str) -> None:
        """An order had no answer at all by its timeout."""
        record = self.venues.get(venue)
        if record is not None:
            self._add(record, True, -1)

    def _add(self, record: _Venue, error: bool, latency: int) -> None:
        now = self.now()
        record.answers += 1
        record.errors += error
        record.window_errors += error
        if latency >= 0:
            record.window_timed += 1
            record.window_slow += latency > self.max_latency
        record.recent.append((now, error, latency))
        self._refresh(record, now)

    def _refresh(self, record: _Venue, now: int) -> None:
        # O(1) a answer (orders are on the hot path too): counts kept as answers come and
        # go; the p99 itself is only sorted out when the score is read.
        recent, horizon = record.recent, now - self.window
        while recent and recent[0][0] <= horizon:
            _, error, latency = recent.popleft()
            record.window_errors -= error
            if latency >= 0:
                record.window_timed -= 1
                record.window_slow -= latency > self.max_latency
        n, timed = len(recent), record.window_timed
        rate = record.window_errors / n if n else 0.0
        # Nearest-rank p99 passes the bound when more answers than the top 1 % are slower.
        slow = timed and record.window_slow > timed - math.ceil(0.99 * timed)
        bad = (n >= self.min_orders and rate >= self.max_error_rate) or bool(slow)
        if bad and not record.degraded:
            record.degraded_periods += 1
        record.degraded = bad
        record.score = None

    def _score(self, record: _Venue) -> float:
        recent = record.recent
        n = len(recent)
        # Below the minimum sample one unlucky answer says nothing: as for ``degraded``.
        rate = record.window_errors / n if n >= self.min_orders else 0.0
        err_part = 1.0 - min(1.0, rate / self.max_error_rate)
        lat = [latency for _, _, latency in recent if latency >= 0]
        p99 = percentile(lat, 0.99) if lat else 0
        lat_part = 1.0 if p99 <= self.max_latency else self.max_latency / p99
        record.score = max(0.0, err_part) * lat_part
        return record.score

    def _current(self, venue: str) -> _Venue | None:
        record = self.venues.get(venue)
        if record is not None and record.recent and record.recent[0][0] <= self.now() - self.window:
            self._refresh(record, self.now())  # answers aged out since the last one
        return record

    # ---- what guards and routing read ----------------------------------------------------------

    def error_rate(self, venue: str) -> tuple[float, int]:
        """(error rate, answers) over the last ``window``."""
        record = self._current(venue)
        if record is None or not record.recent:
            return 0.0, 0
        return record.window_errors / len(record.recent), len(record.recent)

    def degraded(self, venue: str) -> bool:
        record = self._current(venue)
        return record is not None and record.degraded

    def score(self, venue: str) -> float:
        """1 healthy .. 0 (the error rate at its bound, over at least ``min_orders`` answers);
        a venue never answered scores 1."""
        record = self._current(venue)
        if record is None:
            return 1.0
        return self._score(record) if record.score is None else record.score

    def rate_level(self, venue: str) -> int:
        """0 within the budget, 1 past the soft limit, 2 past the hard limit (no token
        left in that bucket now)."""
        record = self.venues.get(venue)
        if record is None or record.soft is None or record.hard is None:
            return 0
        if record.hard.available() < 1:
            return 2
        return 1 if record.soft.available() < 1 else 0

    # ---- summary and snapshots -----------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        out = {}
        for name, r in self.venues.items():
            lat = list(r.latencies)
            out[name] = {
                "orders": r.orders,
                "answers": r.answers,
                "errors": r.errors,
                "error_rate": round(r.errors / r.answers, 6) if r.answers else 0.0,
                "latency_ms_p50": percentile(lat, 0.5) / MS if lat else None,
                "latency_ms_p99": percentile(lat, 0.99) / MS if lat else None,
                "degraded_periods": r.degraded_periods,
                "rate_limited": r.rate_limited,
            }
        return out

    def snapshot_state(self) -> dict[str, Any]:
        state = {}
        for name, r in self.venues.items():
            fields = {k: getattr(r, k) for k in _Venue.__slots__ if k not in ("soft", "hard")}
            fields["recent"], fields["latencies"] = list(r.recent), list(r.latencies)
            fields["buckets"] = [
                None if b is None else (b.tokens, b.stamp) for b in (r.soft, r.hard)
            ]
            state[name] = fields
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        for name, fields in state.items():
            r = self.venues.get(name)
            if r is None:
                continue
            fields = dict(fields)
            buckets = fields.pop("buckets")
            r.recent = deque(fields.pop("recent"))
            r.latencies = deque(fields.pop("latencies"), maxlen=RECENT)
            for key, value in fields.items():
                setattr(r, key, value)
            for bucket, saved in zip((r.soft, r.hard), buckets, strict=True):
                if bucket is not None and saved is not None:
                    bucket.tokens, bucket.stamp = saved
