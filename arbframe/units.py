"""Durations (``250ms``, ``30s``, ``2m``, ``1h30m`` or seconds) and ISO times, in nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*(ns|us|ms|s|m|h|d)\s*)+$"
_SECONDS = re.compile(r"^\s*\d+(\.\d+)?\s*$")  # "600" (e.g. from ${VAR}): seconds
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)")


def parse_duration(value: str | int | float) -> int:
    """Return nanoseconds. Numbers, and strings of a number alone, are seconds."""
    if isinstance(value, (int, float)):
        return int(round(value * 1_000_000_000))
    if _SECONDS.match(value):
        return int(round(float(value) * 1_000_000_000))
    if not re.match(DURATION_PATTERN, value):
        raise ValueError(f"not a duration: {value!r} (expected e.g. 250ms, 30s, 2m, 1h)")
    return int(round(sum(float(n) * NS[unit] for n, unit in _PART.findall(value))))


def format_duration(ns: int) -> str:
    for unit in ("h", "m", "s", "ms", "us"):
        if ns >= NS[unit] and ns % NS[unit] == 0:
            return f"{ns // NS[unit]}{unit}"
    return f"{ns}ns"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # naive times are UTC
_MICROSECOND = timedelta(microseconds=1)


def iso_to_ns(text: str) -> int:
    """ISO 8601 time to epoch nanoseconds; naive times are UTC. Exact integer arithmetic."""
    moment = datetime.fromisoformat(text)
    # Subtracting datetimes is exact (microseconds), unlike .timestamp()'s float, and
    # matching the epoch's awareness is cheaper than .replace(tzinfo=UTC) on every row.
    delta = moment - (_NAIVE_EPOCH if moment.tzinfo is None else _EPOCH)
    return delta // _MICROSECOND * 1_000
