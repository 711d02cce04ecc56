"""Columnar market data: order books in Parquet, partitioned by venue, symbol and day.

A dataset is a directory in the Hive layout pyarrow, DuckDB and Spark read::

    DIR/venue=<venue>/symbol=<symbol>/date=<YYYY-MM-DD>/part-<first ts, ns>-<random>.parquet

(``venue`` and ``symbol`` percent-encoded, e.g. ``symbol=USDT%2FKRW``; ``date`` is the UTC day
of the rows). Each part holds one (venue, symbol, day) in time order, one row per book:

=================  =========================  ==================================================
column             type                       meaning
=================  =========================  ==================================================
``ts``             timestamp[ns, UTC], set    when the book was published (recorded: arrived)
``bid_price_<i>``  float64, null = no level   bid level i (1 = best), strictly falling with i
``bid_size_<i>``   float64, null = no level   its size, in the base asset
``ask_price_<i>``  float64, null = no level   ask level i (1 = best), strictly rising with i
``ask_size_<i>``   float64, null = no level   its size
=================  =========================  ==================================================

A side with fewer levels than the file has columns leaves the deepest ones null. The file's
metadata names its venue, symbol and schema (``arbframe.schema: book/1``), so a part copied out
of its directory still says what it is. A part is written under a hidden temporary name and
renamed when complete, so a killed writer leaves whole files only (readers skip ``.*``).

Reading validates every batch with vectorised checks (pyarrow.compute) and builds the feed's
events with C-level iterators: no Python loop per level.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, repeat
from operator import getitem
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from arbframe.errors import ArbframeError

SCHEMA_TAG = b"book/1"
DAY_NS = 86_400 * 1_000_000_000
DEFAULT_LEVELS = 10
ROW_GROUP_ROWS = 16_384  # ~5 MB of 10-level books: scans fast, buffers (and reads) small
PART_ROWS = 1_000_000  # a part is closed (and renamed) at this many rows (and at midnight)
READ_BATCH_ROWS = 16_384  # rows read and validated at once (vectorised)
EVENT_CHUNK_ROWS = 2_048  # rows turned into Python objects at once
SIDES = (("bid", True), ("ask", False))

Side = tuple[tuple[float, float], ...]
Event = tuple[int, str, str, Side, Side]


def book_schema(levels: int, venue: str = "", symbol: str = "") -> pa.Schema:
    """The schema of a part with ``levels`` levels a side (see the module docstring)."""
    fields = [pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False)]
    for side, _ in SIDES:
        for i in range(1, levels + 1):
            fields += [
                pa.field(f"{side}_price_{i}", pa.float64()),
                pa.field(f"{side}_size_{i}", pa.float64()),
            ]
    meta = {b"arbframe.schema": SCHEMA_TAG, b"arbframe.venue": venue.encode()}
    meta[b"arbframe.symbol"] = symbol.encode()
    return pa.schema(fields, metadata=meta)


def partition_dir(root: Path, venue: str, symbol: str, day: int) -> Path:
    date = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
    return (
        root
        / f"venue={quote(venue, safe='')}"
        / f"symbol={quote(symbol, safe='')}"
        / f"date={date}"
    )


# ---- writing ----------------------------------------------------------------------------------


@dataclass
class _Part:
    """The part being written for one (venue, symbol): its day, rows buffered and written."""

    directory: Path
    day: int
    first_ts: int
    tmp: Path
    writer: pq.ParquetWriter | None = None
    rows: list[tuple[int, Side, Side]] = field(default_factory=list)
    written: int = 0


class DatasetWriter:
    """Append books to a dataset; ``close()`` (or leaving the ``with`` block) finishes every
    part. Rows of one (venue, symbol) must come in time order."""

    def __init__(
        self,
        root: Path,
        *,
        levels: int = DEFAULT_LEVELS,
        row_group_rows: int = ROW_GROUP_ROWS,
        part_rows: int = PART_ROWS,
        part_span_ns: int | None = None,
        all_or_nothing: bool = False,
    ) -> None:
        self.root = Path(root)
        self.levels = levels
        self.row_group_rows = row_group_rows
        self.part_rows = part_rows
        self.part_span_ns = part_span_ns
        self.all_or_nothing = all_or_nothing  # parts renamed only by close(); abort() drops all
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final) of finished parts
        self.rows = 0
        self.files: list[Path] = []
        self._parts: dict[tuple[str, str], _Part] = {}
        self._last: dict[tuple[str, str], int] = {}
        # Per (venue, symbol): the first time at or after which this writer's books would
        # overlap a part already in the directory (see ``_barrier``).
        self._first: dict[tuple[str, str], int] = {}
        self._barrier: dict[tuple[str, str], tuple[int, Path] | None] = {}
        self._pad: Side = ((None, None),) * levels  # type: ignore[assignment]

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self, ts: int, venue: str, symbol: str, bids: Sequence[Any], asks: Sequence[Any]
    ) -> None:
        """One book: ``bids`` and ``asks`` best first, (price, size) pairs; levels beyond the
        writer's ``levels`` are dropped."""
        key = (venue, symbol)
        if ts < self._last.get(key, ts):
            raise ArbframeError(
                f"{venue} {symbol}: time goes backwards ({ts} after {self._last[key]})"
            )
        if key not in self._last:
            self._barrier[key] = self._first_overlap(venue, symbol, ts)
        barrier = self._barrier[key]
        if barrier is not None and ts >= barrier[0]:
            first = self._first.get(key, ts)
            raise ArbframeError(
                f"{barrier[1]}: {venue} {symbol}: the dataset already holds books from "
                f"{_iso(barrier[0])} on, and the new ones from {_iso(first)} to {_iso(ts)} "
                "overlap them (replay would find time going backwards); write to another "
                "directory, or move that venue's existing parts out of the way"
            )
        self._first.setdefault(key, ts)
        self._last[key] = ts
        part = self._parts.get(key)
        day = ts // DAY_NS
        if part is not None and (
            part.day != day
            or part.written + len(part.rows) >= self.part_rows
            or (self.part_span_ns is not None and ts - part.first_ts >= self.part_span_ns)
        ):
            self._finish(part)
            part = None
        if part is None:
            directory = partition_dir(self.root, venue, symbol, day)
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / f".part-{ts:019d}-{os.urandom(4).hex()}.parquet.tmp"
            part = self._parts[key] = _Part(directory, day, ts, tmp)
        part.rows.append((ts, tuple(bids), tuple(asks)))
        self.rows += 1
        if len(part.rows) >= self.row_group_rows:
            self._flush(part, key)

    def _first_overlap(self, venue: str, symbol: str, first: int) -> tuple[int, Path] | None:
        """The parts already in the directory for (venue, symbol) that books from ``first``
        on could overlap (those ending at or after it): the earliest time of theirs and the
        part. A book at or after that time overlaps one of them; earlier ones (a day filled
        in before the data) and a span wholly after the existing data are fine."""
        barrier: tuple[int, Path] | None = None
        for path in dataset_files(self.root, venue, symbol):
            lo, hi = part_span(path)
            if lo is None or hi is None or hi < first:
                continue
            if barrier is None or lo < barrier[0]:
                barrier = (lo, path)
        return barrier

    def _flush(self, part: _Part, key: tuple[str, str]) -> None:
        if not part.rows:
            return
        if part.writer is None:
            part.writer = pq.ParquetWriter(
                part.tmp, book_schema(self.levels, *key), compression="snappy"
            )
        part.writer.write_table(self._table(part.rows, key), row_group_size=self.row_group_rows)
        part.written += len(part.rows)
        part.rows = []

    def _table(self, rows: list[tuple[int, Side, Side]], key: tuple[str, str]) -> pa.Table:
        n, pad = self.levels, self._pad
        ts, bids, asks = zip(*rows, strict=True)
        columns: list[Any] = [pa.array(ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))]
        for sides in (bids, asks):
            # Pad every side to n levels, then transpose: a tuple of (price, size) per level.
            by_level = zip(*[(side + pad)[:n] for side in sides], strict=True)
            for level in by_level:
                prices, sizes = zip(*level, strict=True)
                columns += [pa.array(prices, pa.float64()), pa.array(sizes, pa.float64())]
        return pa.Table.from_arrays(columns, schema=book_schema(n, *key))

    def _finish(self, part: _Part) -> None:
        key = next(k for k, p in self._parts.items() if p is part)
        self._flush(part, key)
        del self._parts[key]
        if part.writer is None:
            return
        part.writer.close()
        final = part.directory / f"{part.tmp.name[1:].removesuffix('.tmp')}"
        self._pending.append((part.tmp, final))
        if not self.all_or_nothing:
            self._publish()

    def _publish(self) -> None:
        for tmp, final in self._pending:
            os.replace(tmp, final)  # whole or absent: a reader never sees a partial part
            self.files.append(final)
        self._pending.clear()

    def close(self) -> None:
        for part in list(self._parts.values()):
            self._finish(part)
        self._publish()

    def abort(self) -> None:
        """Drop every part not published yet (all of them when ``all_or_nothing``)."""
        for part in self._parts.values():
            if part.writer is not None:
                part.writer.close()
            part.tmp.unlink(missing_ok=True)
        self._parts.clear()
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending.clear()


# ---- reading ----------------------------------------------------------------------------------


def is_parquet(path: Path) -> bool:
    """A Parquet file or a dataset directory (anything else is read as CSV)."""
    return path.is_dir() or path.suffix == ".parquet"


def dataset_files(root: Path, venue: str | None = None, symbol: str | None = None) -> list[Path]:
    """The parts under ``root`` (of ``venue`` / ``symbol`` when given), in time order."""
    v = f"venue={quote(venue, safe='')}" if venue is not None else "venue=*"
    s = f"symbol={quote(symbol, safe='')}" if symbol is not None else "symbol=*"
    # date=YYYY-MM-DD and part-<ts:019d> both sort lexically in time order.
    return sorted(root.glob(f"{v}/{s}/date=*/part-*.parquet"))


def part_span(path: Path) -> tuple[int | None, int | None]:
    """A part's first and last time (ns), from its footer's statistics when it has them
    (arbframe's parts do), else from its ``ts`` column; (None, None) when it has no rows."""
    try:
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        column = parquet.schema_arrow.get_field_index("ts")
        lows, highs = [], []
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            if not group.num_rows:
                continue
            stats = group.column(column).statistics if column >= 0 else None
            if stats is None or not stats.has_min_max or stats.physical_type != "INT64":
                break
            lows.append(stats.min_raw)  # raw: the ns (``min`` would be a datetime, in us)
            highs.append(stats.max_raw)
        else:
            if not lows:
                return None, None
            return int(min(lows)), int(max(highs))
        ts = parquet.read(columns=["ts"]).column("ts").cast(pa.int64()).drop_null()
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise ArbframeError(f"{path}: cannot read: {exc}") from None
    if not len(ts):
        return None, None
    return int(np.min(ts.to_numpy())), int(np.max(ts.to_numpy()))


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts / 1e9, UTC).isoformat(timespec="milliseconds")


def partitions(root: Path) -> list[tuple[str, str]]:
    """Every (venue, symbol) a dataset holds."""
    found = {
        (unquote(p.parents[2].name.partition("=")[2]), unquote(p.parents[1].name.partition("=")[2]))
        for p in dataset_files(root)
    }
    return sorted(found)


def file_levels(path: Path, schema: pa.Schema) -> int:
    """How many levels a side the part has; refuses a file that is not a book part."""
    names = set(schema.names)
    if "ts" not in names:
        raise ArbframeError(f"{path}: not an arbframe book file: no column 'ts'")
    if not pa.types.is_timestamp(schema.field("ts").type) and not pa.types.is_integer(
        schema.field("ts").type
    ):
        raise ArbframeError(f"{path}: column ts: {schema.field('ts').type}, not a timestamp")
    levels = 0
    while all(f"{s}_{k}_{levels + 1}" in names for s, _ in SIDES for k in ("price", "size")):
        levels += 1
    for s, _ in SIDES:
        for k in ("price", "size"):
            for i in range(1, levels + 1):
                kind = schema.field(f"{s}_{k}_{i}").type
                if not pa.types.is_floating(kind) and not pa.types.is_integer(kind):
                    raise ArbframeError(f"{path}: column {s}_{k}_{i}: {kind}, not a number")
    return levels


def no_level_columns(schema: pa.Schema) -> str:
    """Why a file with a ``ts`` column has no level: the first level column it lacks."""
    names = set(schema.names)
    absent = [f"{s}_{k}_1" for s, _ in SIDES for k in ("price", "size")]
    return f"no column {next(c for c in absent if c not in names)!r} (not a book part?)"


def read_books(
    files: Iterable[Path],
    venue: str,
    symbol: str,
    *,
    levels: int | None = None,
    start: int | None = None,
    limit: int | None = None,
    batch_rows: int = READ_BATCH_ROWS,
) -> Iterator[Event]:
    """Stream the books of ``files`` (one venue and symbol, in time order) as feed events,
    a record batch at a time. Rows before ``start`` (ns) are skipped; at most ``limit`` are
    yielded. A bad row fails as ``<file>: row <n>: column <c>: <what is wrong>``."""
    for data in read_batches(files, levels=levels, start=start, limit=limit, batch_rows=batch_rows):
        yield from _events(data, repeat(venue), symbol)


def read_batches(
    files: Iterable[Path],
    *,
    levels: int | None = None,
    start: int | None = None,
    limit: int | None = None,
    batch_rows: int = READ_BATCH_ROWS,
) -> Iterator[_Batch]:
    """The validated batches of ``files`` (see ``read_books``), as numpy arrays."""
    count, previous = 0, None
    for path in files:
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise ArbframeError(f"{path}: cannot read: {exc}") from None
        available = file_levels(path, parquet.schema_arrow)
        wanted = available if levels is None else levels
        if available == 0:
            raise ArbframeError(f"{path}: {no_level_columns(parquet.schema_arrow)}")
        if wanted == 0 or wanted > available:
            raise ArbframeError(f"{path}: {wanted} level(s) wanted but only {available} available")
        columns = ["ts"] + [f"{s}_{k}_{i}" for s, _ in SIDES for i in range(1, wanted + 1)
                            for k in ("price", "size")]  # fmt: skip
        first_row = 0
        try:
            batches = parquet.iter_batches(batch_size=batch_rows, columns=columns)
            for batch in batches:
                data = _Batch.of(batch, wanted)
                bad = _check(batch, data, wanted, previous)
                if bad is not None:
                    row, column, what = bad
                    raise ArbframeError(
                        f"{path}: row {first_row + row + 1}: column {column}: {what}"
                    )
                first_row += len(batch)
                if not len(batch):
                    continue
                previous = int(data.ts[-1])
                if start is not None and data.ts[0] < start:  # time order: skip a prefix
                    data = data.cut(int(np.searchsorted(data.ts, start)), None)
                if limit is not None and len(data.ts) > limit - count:
                    data = data.cut(0, limit - count)
                if len(data.ts):
                    yield data
                    count += len(data.ts)
                if count == limit:
                    return
        except (OSError, pa.ArrowException) as exc:
            raise ArbframeError(f"{path}: row {first_row + 1}: cannot read: {exc}") from None


def _matrix(batch: pa.RecordBatch, first: int, levels: int) -> np.ndarray:
    """Columns first, first + 2, ... (one side's prices, or sizes) as rows x levels floats;
    a null is NaN."""
    return np.column_stack(
        [batch.column(first + 2 * i).to_numpy(zero_copy_only=False) for i in range(levels)]
    ).astype(np.float64, copy=False)


@dataclass
class _Batch:
    """A record batch as numpy: times and, per side, prices and sizes (rows x levels)."""

    ts: np.ndarray
    sides: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def of(cls, batch: pa.RecordBatch, levels: int) -> _Batch:
        ts = batch.column(0)
        if pa.types.is_timestamp(ts.type):
            ts = ts.cast(pa.int64())
        if ts.null_count:
            ts = ts.fill_null(-(1 << 62))  # refused by the check, with its row
        offsets = (1, 1 + 2 * levels)  # bid columns, then ask columns
        sides = [(_matrix(batch, o, levels), _matrix(batch, o + 1, levels)) for o in offsets]
        return cls(ts.to_numpy().astype(np.int64, copy=False), sides)

    def cut(self, start: int, stop: int | None) -> _Batch:
        """Rows ``start:stop`` (views, no copy)."""
        rows = slice(start, stop)
        return _Batch(self.ts[rows], [(p[rows], q[rows]) for p, q in self.sides])

    def take(self, rows: np.ndarray) -> _Batch:
        """The rows at these indices, in this order."""
        return _Batch(self.ts[rows], [(p[rows], q[rows]) for p, q in self.sides])

    @staticmethod
    def stack(batches: list[_Batch]) -> _Batch:
        """The batches' rows one after the other; a side narrower than the widest is padded
        with missing levels (NaN), which events leave out."""
        if len(batches) == 1:
            return batches[0]
        width = max(b.sides[0][0].shape[1] for b in batches)

        def pad(m: np.ndarray) -> np.ndarray:
            extra = width - m.shape[1]
            return m if not extra else np.pad(m, ((0, 0), (0, extra)), constant_values=np.nan)

        sides = [
            tuple(np.concatenate([pad(b.sides[s][k]) for b in batches]) for k in (0, 1))
            for s in (0, 1)
        ]
        return _Batch(np.concatenate([b.ts for b in batches]), sides)  # type: ignore[arg-type]

    @staticmethod
    def join(a: _Batch, b: _Batch) -> _Batch:
        """``a``'s rows, then ``b``'s."""
        return _Batch.stack([a, b])


def merge_books(streams: list[tuple[str, Iterator[_Batch]]], symbol: str) -> Iterator[Event]:
    """Several venues' batches merged into one stream of events in time order, ties in the
    order of ``streams`` (as ``heapq.merge`` would), vectorised: each round takes up to a
    chunk of rows from every venue, up to the earliest of their last times, and orders them
    with one stable sort instead of a heap step per event."""
    live = [_Cursor(venue, batches, k) for k, (venue, batches) in enumerate(streams)]
    live = [c for c in live if c.fill()]
    names = [venue for venue, _ in streams]
    while len(live) > 1:
        bound = min(c.data.ts[min(c.pos + EVENT_CHUNK_ROWS, len(c.data.ts)) - 1] for c in live)
        pieces, ranks = [], []
        for c in live:
            c.past(bound)  # every row at the bound is in hand, even a run across batches
            end = c.pos + int(np.searchsorted(c.data.ts[c.pos :], bound, side="right"))
            if end > c.pos:
                pieces.append(c.data.cut(c.pos, end))
                ranks.append(np.full(end - c.pos, c.rank))
                c.pos = end
        # Stable: equal times keep the streams' order, then each stream's own order. The
        # rows are reordered as arrays, so events are still made one at a time, lazily.
        rank = np.concatenate(ranks)
        together = _Batch.stack(pieces)
        order = np.lexsort((rank, together.ts))
        venues = map(names.__getitem__, rank[order].tolist())
        yield from _events(together.take(order), venues, symbol)
        live = [c for c in live if c.fill()]
    for c in live:  # one venue left: its rows as they are
        yield from _events(c.data.cut(c.pos, None), repeat(c.venue), symbol)
        for data in c.batches:
            yield from _events(data, repeat(c.venue), symbol)


class _Cursor:
    """A venue's position in its stream of batches, with at least a chunk of rows ahead
    while the stream lasts."""

    def __init__(self, venue: str, batches: Iterator[_Batch], rank: int) -> None:
        self.venue, self.batches, self.rank = venue, batches, rank
        self.data: _Batch = _Batch(np.empty(0, np.int64), [])
        self.pos = 0

    def fill(self) -> bool:
        """Top up the rows ahead; False once the stream is exhausted."""
        while len(self.data.ts) - self.pos < EVENT_CHUNK_ROWS and self._more():
            pass
        return self.pos < len(self.data.ts)

    def past(self, bound: int) -> None:
        """Read on until a row after ``bound`` is in hand (or the stream ends)."""
        while self.data.ts[-1] <= bound and self._more():
            pass

    def _more(self) -> bool:
        more = next(self.batches, None)
        if more is None:
            return False
        rest = self.data.cut(self.pos, None)
        self.data = more if not len(rest.ts) else _Batch.join(rest, more)
        self.pos = 0
        return True


def _events(data: _Batch, venues: Iterator[str], symbol: str) -> Iterator[Event]:
    """The batch's rows as feed events, built by C-level iterators (no Python loop per
    level): one flat list per column, then ``zip(*[zip(prices_i, sizes_i) ...])`` gives each
    row's side as its (price, size) pairs, best first. Flat lists of floats, made a chunk at a
    time, give the garbage collector almost nothing to track. What is returned is itself a
    C-level iterator (chunks made lazily, in order), not a generator: no Python frame is
    resumed per event."""
    levels = data.sides[0][0].shape[1]

    def chunk(at: int) -> Iterator[Event]:
        cut = slice(at, at + EVENT_CHUNK_ROWS)
        sides = []
        for prices, sizes in data.sides:
            p, q = prices[cut], sizes[cut]
            pairs = [zip(p[:, i].tolist(), q[:, i].tolist()) for i in range(levels)]  # noqa: B905
            rows: Iterator[Side] = zip(*pairs)  # noqa: B905 (one length: the chunk's)
            missing = np.isnan(p)
            if missing.any():  # shallower books: cut each at its depth (nulls are trailing)
                rows = map(getitem, rows, map(slice, (~missing).sum(axis=1).tolist()))
            sides.append(rows)
        # ts first: zip stops on it, so no venue is taken from ``venues`` past the chunk.
        return zip(data.ts[cut].tolist(), venues, repeat(symbol), *sides)  # noqa: B905

    return chain.from_iterable(map(chunk, range(0, len(data.ts), EVENT_CHUNK_ROWS)))


def _check(
    batch: pa.RecordBatch, data: _Batch, levels: int, previous: int | None
) -> tuple[int, str, str] | None:
    """The first bad row of a batch: (row in batch, column, what), or None. Vectorised: a
    handful of array operations per side, whatever the number of rows."""
    found: list[tuple[int, str, str]] = []

    def test(mask: np.ndarray, column: str, what: str, first_level: int = 1) -> None:
        """``mask``: rows (column is a name) or rows x levels (column is a prefix)."""
        if not mask.any():  # the usual case: one flat reduction, no per-row one
            return
        rows = mask if mask.ndim == 1 else mask.any(axis=1)
        if rows.any():
            row = int(rows.argmax())
            if mask.ndim == 2:
                column = f"{column}_{int(mask[row].argmax()) + first_level}"
            found.append((row, column, what))

    ts = data.ts
    test(ts == -(1 << 62), "ts", "no time")
    backwards = np.empty(len(ts), dtype=bool)
    backwards[:1] = previous is not None and ts[:1] < previous
    backwards[1:] = ts[1:] < ts[:-1]
    test(backwards, "ts", "time goes backwards")
    for (prices, sizes), (side, bids) in zip(data.sides, SIDES, strict=True):
        offset = 1 if bids else 1 + 2 * levels
        for values, kind, step in ((prices, "price", 0), (sizes, "size", 1)):
            columns = [batch.column(offset + 2 * i + step) for i in range(levels)]
            nan = np.isnan(values)
            if (nan.sum(axis=0) != [column.null_count for column in columns]).any():
                stored = nan & np.column_stack([np.asarray(c.is_valid()) for c in columns])
                test(stored, f"{side}_{kind}", "not a number")  # NaN stored, not a null
            test((values <= 0) | np.isinf(values), f"{side}_{kind}", "not a positive finite number")
        missing = np.isnan(prices)
        test(missing != np.isnan(sizes), f"{side}_size", "price and size not both set")
        if levels > 1:
            after = missing[:, :-1] & ~missing[:, 1:]
            test(after, f"{side}_price", "a level after a missing one", 2)
            worse = prices[:, 1:] >= prices[:, :-1] if bids else prices[:, 1:] <= prices[:, :-1]
            test(worse, f"{side}_price", f"{side} levels are not best first", 2)
    best_bid, best_ask = data.sides[0][0][:, 0], data.sides[1][0][:, 0]
    test(best_bid >= best_ask, "ask_price_1", "crossed book: best bid >= best ask")
    return min(found) if found else None
