"""Filling datasets (``arbframe.marketdata``): recording a scenario's feeds, importing CSV,
and describing what a dataset holds. The command line (``arbframe record``, ``arbframe data``)
wires the components and calls these.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from arbframe.components import Feed, FeedEvent
from arbframe.errors import ArbframeError
from arbframe.marketdata import DatasetWriter, dataset_files, part_span, partitions


@dataclass
class RecordStats:
    """What a recording wrote, and what it left out."""

    books: int = 0
    fx_updates: int = 0  # FX rates a feed derived (not books): not recorded
    crossed: int = 0  # books with best bid >= best ask: not recorded (replay would refuse them)
    first_ts: int | None = None
    last_ts: int | None = None
    by_market: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "books": self.books,
            "fx_updates_not_recorded": self.fx_updates,
            "crossed_books_not_recorded": self.crossed,
            "first": _iso(self.first_ts),
            "last": _iso(self.last_ts),
            "by_market": dict(self.by_market),
            "files": list(self.files),
            "interrupted": self.interrupted,
        }


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts / 1e9, UTC).isoformat(timespec="milliseconds")


class Recorder:
    """Feed events into a dataset writer, counting what is kept and what is not."""

    def __init__(self, writer: DatasetWriter, progress: Callable[[RecordStats], None] | None):
        self.writer = writer
        self.stats = RecordStats()
        self.progress = progress

    def add(self, event: FeedEvent) -> None:
        ts, venue, symbol, bids, asks = event
        stats = self.stats
        if venue is None:  # an FX rate the feed derived from a book: not a book
            stats.fx_updates += 1
            return
        if bids and asks and bids[0][0] >= asks[0][0]:
            stats.crossed += 1
            return
        self.writer.add(ts, venue, symbol, bids, asks)
        stats.books += 1
        key = f"{venue}/{symbol}"
        stats.by_market[key] = stats.by_market.get(key, 0) + 1
        if stats.first_ts is None:
            stats.first_ts = ts
        stats.last_ts = ts
        if self.progress is not None:  # it redraws at most twice a second
            self.progress(stats)

    def finish(self) -> RecordStats:
        self.writer.close()
        self.stats.files = [str(path) for path in self.writer.files]
        return self.stats


def record(
    feeds: list[Feed],
    writer: DatasetWriter,
    duration_ns: int,
    *,
    progress: Callable[[RecordStats], None] | None = None,
    closers: Iterable[Callable[[], Any]] = (),
) -> RecordStats:
    """Write every book the feeds publish. A pushed feed (real venues) is recorded for
    ``duration_ns`` of wall time; a simulated one (synthetic, replay) for ``duration_ns`` of
    its own time, as fast as it produces. SIGINT / SIGTERM end the recording; what it has is
    written either way. ``closers`` (the venues' ``aclose``) run in the loop at the end."""
    recorder = Recorder(writer, progress)
    try:
        streams = [feed.events() for feed in feeds]
        if any(hasattr(stream, "__aiter__") for stream in streams):
            recorder.stats.interrupted = asyncio.run(
                _pushed(streams, recorder, duration_ns, list(closers))
            )
        else:
            recorder.stats.interrupted = _simulated(streams, recorder, duration_ns)
    finally:
        stats = recorder.finish()
    return stats


def _simulated(streams: list[Any], recorder: Recorder, duration_ns: int) -> bool:
    import heapq
    from operator import itemgetter

    stop = _Stop()
    with stop.installed():
        end = None
        for event in heapq.merge(*streams, key=itemgetter(0)):
            if end is None:
                end = event[0] + duration_ns
            if event[0] > end or stop.requested:
                break
            recorder.add(event)
    return stop.requested


async def _pushed(
    streams: list[Any], recorder: Recorder, duration_ns: int, closers: list[Callable[[], Any]]
) -> bool:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def drain(stream: Any) -> None:
        if hasattr(stream, "__aiter__"):
            async for event in stream:
                recorder.add(event)
        else:  # a simulated feed next to a pushed one: its events, stamped as they are
            for event in stream:
                recorder.add(event)

    tasks = [asyncio.ensure_future(drain(stream)) for stream in streams]
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            [*tasks, stopper], timeout=duration_ns / 1e9, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return stop.is_set()
    finally:
        for task in (*tasks, stopper):
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        for close in closers:
            await close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class _Stop:
    """SIGINT / SIGTERM ask a simulated recording to stop (between two events)."""

    requested = False

    def installed(self) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def scope() -> Any:
            def handler(signum: int, frame: Any) -> None:
                self.requested = True

            old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield self
            finally:
                for sig, previous in old.items():
                    signal.signal(sig, previous)

        return scope()


# ---- import ------------------------------------------------------------------------------------


def import_csv(
    feeds: Iterable[Feed],
    writer: DatasetWriter,
    progress: Callable[[RecordStats], None] | None = None,
) -> RecordStats:
    """Write the books of replay feeds (one CSV file each) to the dataset: the replay feed's
    own reader parses and validates them, so a file imports exactly when it replays. A bad
    file writes nothing (parts are finished only once every file has been read)."""
    recorder = Recorder(writer, progress)
    try:
        for feed in feeds:
            for event in feed.events():
                recorder.add(event)
    except BaseException:
        writer.abort()
        raise
    return recorder.finish()


# ---- info --------------------------------------------------------------------------------------


def describe(root: Path) -> dict[str, Any]:
    """Rows, time span and files per (venue, symbol) of a dataset, from the files' footers
    (row counts, and the first and last times in the statistics of ``ts``). ``overlaps``
    lists the parts that start before the previous part of their market ends: replay refuses
    such a market (time goes backwards), e.g. one imported twice into the same directory."""
    if not root.is_dir():
        raise ArbframeError(f"{root}: not a directory")
    markets = []
    for venue, symbol in partitions(root):
        files = dataset_files(root, venue, symbol)
        rows = 0
        first = last = None
        overlaps = []
        for path in files:
            try:
                rows += pq.ParquetFile(path).metadata.num_rows
            except Exception as exc:  # noqa: BLE001 (any unreadable file: say which)
                raise ArbframeError(f"{path}: cannot read: {exc}") from None
            lo, hi = part_span(path)
            if lo is None or hi is None:
                continue
            if last is not None and lo < last:
                overlaps.append(str(path))
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
        markets.append(
            {
                "venue": venue,
                "symbol": symbol,
                "rows": rows,
                "files": len(files),
                "first": _iso(first),
                "last": _iso(last),
                "overlaps": overlaps,
            }
        )
    return {"root": str(root), "rows": sum(m["rows"] for m in markets), "markets": markets}


def progress_line(stream: Any) -> Callable[[RecordStats], None]:
    """A progress callback redrawing one line on ``stream`` at most twice a second."""
    last = [0.0]

    def show(stats: RecordStats) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5:
            return
        last[0] = now
        at = _iso(stats.last_ts) or "-"
        stream.write(f"\rrecorded {stats.books:,} books, last at {at}   ")
        stream.flush()

    return show
