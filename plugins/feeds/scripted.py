"""The ``scripted`` feed: an explicit list of timed books, for exact, hand-checkable tests.

Events come inline from the scenario or from a small CSV file. Either way they are read
and checked once at construction (scripts are short, and a bad script should fail before
the run starts, naming the offending event), then replayed as ready-made tuples.

Inline scripts may also set an instrument's 24h volume (``{at, venue, symbol, volume}``, in
the instrument's quote currency): reported through ``ctx.report_volume`` when the feed
reaches ``at``, that is just before its first book or FX event at ``at`` or later.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from arbframe.components import Feed, FeedEvent
from arbframe.errors import ArbframeError, ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.schema import DURATION, POSITIVE_DECIMAL
from arbframe.units import iso_to_ns, parse_duration

if TYPE_CHECKING:
    from arbframe.components import FeedContext

DEFAULT_START = "2024-01-01T00:00:00Z"
DEFAULT_SIZE = 1e9  # effectively unlimited depth, so top-of-book tests never run dry

Side = tuple[tuple[float, float], ...]

_LEVELS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "array",
        "prefixItems": [POSITIVE_DECIMAL, POSITIVE_DECIMAL],
        "minItems": 2,
        "maxItems": 2,
    },
}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1}
_TOP_EVENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "venue", "symbol", "bid", "ask"],
    "properties": {
        "at": DURATION,
        "venue": _NAME,
        "symbol": _NAME,
        "bid": POSITIVE_DECIMAL,
        "ask": POSITIVE_DECIMAL,
        "bid_size": POSITIVE_DECIMAL,
        "ask_size": POSITIVE_DECIMAL,
    },
}
_LEVELS_EVENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "venue", "symbol", "bids", "asks"],
    "properties": {
        "at": DURATION,
        "venue": _NAME,
        "symbol": _NAME,
        "bids": _LEVELS,
        "asks": _LEVELS,
    },
}
_FX_EVENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "fx"],
    "properties": {
        "at": DURATION,
        "fx": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "patternProperties": {"^[A-Z][A-Z0-9]*$": POSITIVE_DECIMAL},
        },
    },
}

_VOLUME_EVENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["at", "venue", "symbol", "volume"],
    "properties": {
        "at": DURATION,
        "venue": _NAME,
        "symbol": _NAME,
        "volume": {"type": "number", "minimum": 0, "description": "24h volume, quote currency."},
    },
}

# CSV columns: the first five are required, the sizes may be absent or left empty.
_CSV_REQUIRED = ("at", "venue", "symbol", "bid", "ask")
_CSV_COLUMNS = _CSV_REQUIRED + ("bid_size", "ask_size")


def _duration_ns(value: str | int | float) -> int:
    """Offset from `start` in ns; a bare number means seconds (CSV cells are strings)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return parse_duration(value)  # "250ms", "1h30m"...; raises on anything else
    if not 0.0 <= value < float("inf"):  # also rejects NaN, which parse_duration cannot
        raise ValueError(f"not a duration: {value!r} (expected e.g. 250ms, 30s, 2m, 1h)")
    return parse_duration(value)


def _positive(value: Any, what: str) -> float:
    number = float(value)
    if not number > 0.0 or number == float("inf"):  # also rejects NaN
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return number


def _side(levels: Sequence[Sequence[Any]], what: str, descending: bool) -> Side:
    """Validated (price, size) pairs, which must already be best first."""
    side = tuple((_positive(p, f"{what} price"), _positive(s, f"{what} size")) for p, s in levels)
    for (better, _), (worse, _) in zip(side, side[1:], strict=False):
        if (better <= worse) if descending else (better >= worse):
            raise ValueError(f"{what} are not best first ({better} then {worse})")
    return side


def _book(at: int, venue: str, symbol: str, bids: Side, asks: Side) -> FeedEvent:
    if bids and asks and bids[0][0] >= asks[0][0]:
        raise ValueError(f"crossed book: best bid {bids[0][0]} >= best ask {asks[0][0]}")
    return (at, venue, symbol, bids, asks)


class ScriptedFeed(Feed):
    type_name = "scripted"
    interface_version = 2
    description = "An explicit list of timed books and FX rates, inline or from a CSV file."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "start": {"type": "string", "minLength": 1, "default": DEFAULT_START},
            "events": {
                "type": "array",
                "items": {"oneOf": [_TOP_EVENT, _LEVELS_EVENT, _FX_EVENT, _VOLUME_EVENT]},
            },
            "csv": {"type": "string", "minLength": 1, "format": "path"},
            "size": {**POSITIVE_DECIMAL, "default": DEFAULT_SIZE},
        },
        # Exactly one source: `oneOf` fails both when neither and when both are given.
        "oneOf": [{"required": ["events"]}, {"required": ["csv"]}],
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: FeedContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        start = config.get("start", DEFAULT_START)
        try:
            self._start = iso_to_ns(start)
        except ValueError:
            raise ConfigError(f"not an ISO 8601 time: {start!r}", ("start",)) from None
        self._size = float(config.get("size", DEFAULT_SIZE))
        self._volumes: list[tuple[int, str, str, float]] = []  # (ts, venue, symbol, value)
        if "csv" in config:
            self._events = self._load_csv(config["csv"])
        else:
            self._events = self._load_inline(config["events"])
        # First-seen order, so the lists read like the script.
        self._venues = list(dict.fromkeys(e[1] for e in self._events if e[1] is not None))
        self._symbols = list(dict.fromkeys(e[2] for e in self._events if e[1] is not None))
        for index, (_, venue, symbol, _) in zip(self._volume_index, self._volumes, strict=True):
            if venue not in self._venues or symbol not in self._symbols:
                raise ConfigError(
                    f"a volume for {symbol} on {venue!r}, which this feed quotes no book of",
                    ("events", index),
                )

    def _load_inline(self, events: list[dict[str, Any]]) -> list[FeedEvent]:
        out: list[FeedEvent] = []
        self._volume_index: list[int] = []
        last = 0
        for index, event in enumerate(events):
            try:
                at = _duration_ns(event["at"])
                if at < last:
                    raise ValueError(
                        f"at {event['at']!r} is earlier than the previous event "
                        "(events must be in non-decreasing time order)"
                    )
                last = at
                if "volume" in event:
                    value = float(event["volume"])
                    self._volumes.append((self._start + at, event["venue"], event["symbol"], value))
                    self._volume_index.append(index)
                    continue
                out.extend(self._parse_inline(self._start + at, event))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(_reason(exc), ("events", index)) from None
        return out

    def _parse_inline(self, ts: int, event: dict[str, Any]) -> list[FeedEvent]:
        if "fx" in event:
            # One FX tuple per currency, in the order written.
            return [
                (ts, None, cur, _positive(rate, f"fx {cur}"), None)
                for cur, rate in event["fx"].items()
            ]
        if "bids" in event:
            bids = _side(event["bids"], "bids", descending=True)
            asks = _side(event["asks"], "asks", descending=False)
        else:
            bids = _side([(event["bid"], event.get("bid_size", self._size))], "bid", True)
            asks = _side([(event["ask"], event.get("ask_size", self._size))], "ask", False)
        return [_book(ts, str(event["venue"]), str(event["symbol"]), bids, asks)]

    def _load_csv(self, path_text: str) -> list[FeedEvent]:
        path = self.ctx.resolve_path(path_text)
        try:
            handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 (with below)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}", ("csv",)) from None
        out: list[FeedEvent] = []
        self._volume_index = []
        with handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in _CSV_REQUIRED if c not in header]
            unknown = [c for c in header if c not in _CSV_COLUMNS]
            if missing or unknown:
                what = (
                    f"missing column(s) {', '.join(missing)}"
                    if missing
                    else f"unknown column(s) {', '.join(unknown)}"
                )
                raise ArbframeError(f"{path}:1: {what} (expected {','.join(_CSV_COLUMNS)})")
            last = 0
            for row in reader:
                try:
                    if None in row or any(row[c] is None for c in _CSV_REQUIRED):
                        raise ValueError("wrong number of columns")
                    at = _duration_ns(row["at"])
                    if at < last:
                        raise ValueError(f"at {row['at']!r} is earlier than the previous row")
                    last = at
                    if not row["venue"] or not row["symbol"]:
                        raise ValueError("venue and symbol must not be empty")
                    # An absent or empty size cell means the default size.
                    bid_size = row.get("bid_size") or self._size
                    ask_size = row.get("ask_size") or self._size
                    bids = _side([(row["bid"], bid_size)], "bid", descending=True)
                    asks = _side([(row["ask"], ask_size)], "ask", descending=False)
                    out.append(_book(self._start + at, row["venue"], row["symbol"], bids, asks))
                except ValueError as exc:
                    raise ArbframeError(f"{path}:{reader.line_num}: {exc}") from None
        return out

    def venues(self) -> list[str]:
        return list(self._venues)

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def events(self) -> Iterator[FeedEvent]:
        # Tuples are immutable, so sharing them between runs of the same feed is safe.
        if not self._volumes:
            return iter(self._events)
        return self._with_volumes()

    def _with_volumes(self) -> Iterator[FeedEvent]:
        report, volumes, i = self.ctx.report_volume, self._volumes, 0
        for event in self._events:
            while i < len(volumes) and volumes[i][0] <= event[0]:
                report(*volumes[i][1:])
                i += 1
            yield event
        for _, venue, symbol, value in volumes[i:]:
            report(venue, symbol, value)


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    return str(exc)


@hookimpl
def arbframe_register_feeds(register: Register) -> None:
    register(ScriptedFeed)
