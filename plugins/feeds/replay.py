"""The ``replay`` feed: recorded L2 books from CSV or Parquet files, one source per venue.

Recordings can be large, so nothing is loaded up front: each venue's file is read row by
row and the venues are merged lazily by timestamp. Headers are checked at construction,
so a wrong path, column mapping or level count fails before the run starts; a bad row
fails when it is reached, as ``<file>:<line>: <what is wrong>``.

The default layout is the one of ``data/real/`` (see its README):
``timestamp,symbol,b1..b10,bv1..bv10,a1..a10,av1..av10`` with naive UTC timestamps.

A venue's path may also be a ``.parquet`` file or a dataset directory in the layout of
``arbframe.marketdata`` (``arbframe record`` and ``arbframe data import`` write it): its parts
for that venue and the feed's symbol are read a record batch at a time, and every batch is
validated (vectorised) with the same rules, a bad row failing as ``<file>: row <n>: column
<c>: ...``. ``columns`` and ``timestamp_unit`` apply to CSV only.
"""

from __future__ import annotations

import csv
import gzip
import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from arbframe import marketdata
from arbframe.components import Feed, FeedEvent
from arbframe.errors import ArbframeError, ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.units import iso_to_ns

if TYPE_CHECKING:
    from arbframe.components import FeedContext

DEFAULT_COLUMNS = {
    "timestamp": "timestamp",
    "bid_price": "b{i}",  # {i} is the level, 1 = best
    "bid_size": "bv{i}",
    "ask_price": "a{i}",
    "ask_size": "av{i}",
}
# Epoch-number timestamp units, in ns; "iso" (the default) means ISO 8601 text.
UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_INF = float("inf")
_MAX_LEVELS = 1000  # bound on the level auto-detection scan

Side = tuple[tuple[float, float], ...]
Cols = tuple[tuple[int, int], ...]  # (price index, size index) per level, best first


def _epoch_parser(unit_ns: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text) * unit_ns  # the common case: whole numbers
        except ValueError:
            pass
        try:  # Decimal, not float: 1629417600.123 s must not come back as ...122999 ns
            return int(Decimal(text) * unit_ns)
        except (ArithmeticError, ValueError):
            raise ValueError(f"not an epoch number: {text!r}") from None

    return parse


def _open(path: Path) -> TextIO:
    # utf-8-sig: a byte-order mark (spreadsheet exports) must not end up in the first name.
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _side(row: Sequence[str], cols: Cols, bids: bool) -> Side:
    """One side of a row, best first; empty or zero levels are skipped (the hot path)."""
    out: list[tuple[float, float]] = []
    last = _INF if bids else 0.0
    for pi, si in cols:
        p = row[pi]
        s = row[si]
        if not p or not s:
            continue
        price = float(p)
        size = float(s)
        if 0.0 < price < _INF and 0.0 < size < _INF:
            if (price >= last) if bids else (price <= last):
                raise ValueError(
                    f"{'bid' if bids else 'ask'} levels are not best first ({last} then {price})"
                )
            out.append((price, size))
            last = price
        elif not ((price == 0.0 and 0.0 <= size < _INF) or (size == 0.0 and 0.0 <= price < _INF)):
            raise ValueError(f"bad level: price {p!r}, size {s!r}")  # negative, NaN or inf
    return tuple(out)


@dataclass(frozen=True)
class _Source:
    """One venue's file and where its columns are, from the checked header."""

    venue: str
    path: Path
    header: tuple[str, ...]
    ts_index: int
    bids: Cols
    asks: Cols


@dataclass(frozen=True)
class _ParquetSource:
    """One venue's Parquet parts, in time order, and the levels to read."""

    venue: str
    files: tuple[Path, ...]
    levels: int | None


class ReplayFeed(Feed):
    type_name = "replay"
    interface_version = 2
    description = "Recorded L2 books from CSV (optionally .gz) or Parquet, one per venue, streamed."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["symbol", "venues"],
        "properties": {
            "symbol": {"type": "string", "minLength": 1},
            "venues": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "string", "minLength": 1, "format": "path"},
                "description": "venue -> a CSV file (.csv, .csv.gz), a .parquet file, or a "
                "dataset directory (its parts of that venue and the feed's symbol)",
            },
            "levels": {
                "type": "integer",
                "minimum": 1,
                "description": "levels per side to use; default: all in the file",
            },
            "columns": {
                "type": "object",
                "description": "CSV column names (templates with {i} for the level)",
                "additionalProperties": False,
                "properties": {key: {"type": "string", "minLength": 1} for key in DEFAULT_COLUMNS},
            },
            "timestamp_unit": {"enum": ["iso", *UNITS], "default": "iso"},
            "start": {"type": ["string", "null"], "description": "skip rows before (ISO)"},
            "limit": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "at most this many rows per venue",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: FeedContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self._symbol: str = config["symbol"]
        self._columns = {**DEFAULT_COLUMNS, **config.get("columns", {})}
        unit = config.get("timestamp_unit", "iso")
        self._parse_ts = iso_to_ns if unit == "iso" else _epoch_parser(UNITS[unit])
        start = config.get("start")
        try:
            self._start = -_INF if start is None else iso_to_ns(start)
        except ValueError:
            raise ConfigError(f"not an ISO 8601 time: {start!r}", ("start",)) from None
        self._limit: int | None = config.get("limit")
        self._sources: list[_Source | _ParquetSource] = [
            self._source(venue, path, config.get("levels"))
            for venue, path in config["venues"].items()
        ]

    def _column(self, key: str, level: int) -> str:
        try:
            return self._columns[key].format(i=level)
        except (KeyError, IndexError, ValueError):
            raise ArbframeError(
                f"{self.name}: columns.{key}: bad template "
                f"{self._columns[key]!r} (use {{i}} for the level)"
            ) from None

    def _source(self, venue: str, path_text: str, levels: int | None) -> _Source | _ParquetSource:
        path = self.ctx.resolve_path(path_text)
        if marketdata.is_parquet(path):
            return self._parquet_source(venue, path, levels)
        try:
            with _open(path) as handle:
                header = tuple(next(csv.reader(handle), ()))
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(
                f"cannot read {path}: {exc.strerror or exc}", ("venues", venue)
            ) from None
        index = {column: i for i, column in enumerate(header)}

        def find(key: str, level: int) -> int | None:
            return index.get(self._column(key, level))

        keys = ("bid_price", "bid_size", "ask_price", "ask_size")
        # A template without {i} names a single column, so only one level can exist.
        most = _MAX_LEVELS if all("{i}" in self._columns[k] for k in keys) else 1
        available = 0
        while available < most and all(find(k, available + 1) is not None for k in keys):
            available += 1
        wanted = available if levels is None else levels
        if find("timestamp", 0) is None:
            raise ArbframeError(f"{path}:1: no column {self._column('timestamp', 0)!r}")
        if wanted == 0 or wanted > available:
            level = available + 1
            absent = [self._column(k, level) for k in keys if find(k, level) is None]
            why = f"no column {absent[0]!r}" if absent else "column names have no {i}"
            if levels is None:  # no level asked for: the file lacks the first one's columns
                raise ArbframeError(f"{path}:1: {why}")
            raise ArbframeError(
                f"{path}:1: {wanted} level(s) wanted but only {available} available ({why})"
            )

        def pairs(price: str, size: str) -> Cols:  # every column exists: checked just above
            return tuple(
                (index[self._column(price, i)], index[self._column(size, i)])
                for i in range(1, wanted + 1)
            )

        return _Source(
            venue,
            path,
            header,
            index[self._column("timestamp", 0)],
            pairs("bid_price", "bid_size"),
            pairs("ask_price", "ask_size"),
        )

    def _parquet_source(self, venue: str, path: Path, levels: int | None) -> _ParquetSource:
        if path.is_dir():
            files = marketdata.dataset_files(path, venue, self._symbol)
            if not files:
                held = ", ".join(f"{v}/{s}" for v, s in marketdata.partitions(path)) or "nothing"
                raise ConfigError(
                    f"{path}: no data for venue {venue!r}, symbol {self._symbol!r} "
                    f"(it holds {held})",
                    ("venues", venue),
                )
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError(f"cannot read {path}: no such file", ("venues", venue))
        try:  # the first part's schema, now: a wrong file or level count fails before the run
            schema = marketdata.pq.read_schema(files[0])
        except (OSError, marketdata.pa.ArrowException) as exc:
            raise ConfigError(f"cannot read {files[0]}: {exc}", ("venues", venue)) from None
        try:
            available = marketdata.file_levels(files[0], schema)
        except ArbframeError as err:
            raise ConfigError(str(err), ("venues", venue)) from None
        if available == 0:
            raise ArbframeError(f"{files[0]}: {marketdata.no_level_columns(schema)}")
        if levels is not None and levels > available:
            raise ArbframeError(
                f"{files[0]}: {levels} level(s) wanted but only {available} available"
            )
        return _ParquetSource(venue, tuple(files), levels)

    def venues(self) -> list[str]:
        return [source.venue for source in self._sources]

    def csv_levels(self) -> int:
        """The most levels a side its CSV sources give (``arbframe data import`` sizes the
        dataset's columns by it)."""
        return max((len(s.bids) for s in self._sources if isinstance(s, _Source)), default=0)

    def symbols(self) -> list[str]:
        return [self._symbol]

    def events(self) -> Iterator[FeedEvent]:
        if len(self._sources) > 1 and all(isinstance(s, _ParquetSource) for s in self._sources):
            # Merged a chunk at a time, vectorised, with heapq.merge's order (below).
            batches = [(s.venue, self._batches(s)) for s in self._sources]  # type: ignore[arg-type]
            return marketdata.merge_books(batches, self._symbol)
        streams = [self._rows(source) for source in self._sources]
        if len(streams) == 1:
            return streams[0]
        # heapq.merge breaks timestamp ties by argument order, i.e. the config's venue order.
        return heapq.merge(*streams, key=itemgetter(0))

    def _batches(self, src: _ParquetSource) -> Iterator[Any]:
        start = None if self._start == -_INF else int(self._start)
        return marketdata.read_batches(src.files, levels=src.levels, start=start, limit=self._limit)

    def _rows(self, src: _Source | _ParquetSource) -> Iterator[FeedEvent]:
        if isinstance(src, _ParquetSource):
            return marketdata.merge_books([(src.venue, self._batches(src))], self._symbol)
        return self._csv_rows(src)

    def _csv_rows(self, src: _Source) -> Iterator[FeedEvent]:
        """Stream one venue's file; locals are bound once because this runs per row."""
        venue, symbol, parse_ts = src.venue, self._symbol, self._parse_ts
        ts_index, bid_cols, ask_cols = src.ts_index, src.bids, src.asks
        width, start, limit = len(src.header), self._start, self._limit
        previous = -1 << 62
        count = 0
        if limit is not None and limit <= 0:
            return
        with _open(src.path) as handle:
            reader = csv.reader(handle)
            try:
                next(reader, None)  # the header, checked at construction
                for row in reader:
                    if not row:
                        continue  # a blank line
                    try:
                        if len(row) != width:
                            raise ValueError(f"expected {width} columns, got {len(row)}")
                        ts = parse_ts(row[ts_index])
                        if ts < previous:
                            raise ValueError(f"timestamp {row[ts_index]!r} goes backwards")
                        previous = ts
                        if ts < start:
                            continue
                        bids = _side(row, bid_cols, True)
                        asks = _side(row, ask_cols, False)
                        if bids and asks and bids[0][0] >= asks[0][0]:
                            raise ValueError(
                                f"crossed book: best bid {bids[0][0]} >= best ask {asks[0][0]}"
                            )
                    except ValueError as exc:
                        raise ArbframeError(
                            f"{src.path}:{reader.line_num}: {self._explain(src, row, exc)}"
                        ) from None
                    yield (ts, venue, symbol, bids, asks)
                    count += 1
                    if count == limit:
                        return
            except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
                # e.g. a truncated .gz, or a NUL byte in the text
                raise ArbframeError(f"{src.path}:{reader.line_num}: cannot read: {exc}") from None

    def _explain(self, src: _Source, row: Sequence[str], exc: ValueError) -> str:
        """Name the offending cell for a conversion error (error path only, never per row)."""
        if len(row) != len(src.header):
            return str(exc)
        try:
            self._parse_ts(row[src.ts_index])
        except ValueError:
            return f"column {src.header[src.ts_index]}: bad timestamp {row[src.ts_index]!r}"
        for pi, si in src.bids + src.asks:
            for i in (pi, si):
                try:
                    if row[i]:
                        float(row[i])
                except ValueError:
                    return f"column {src.header[i]}: not a number: {row[i]!r}"
        return str(exc)


@hookimpl
def arbframe_register_feeds(register: Register) -> None:
    register(ReplayFeed)
