#!/usr/bin/env python
"""Replay from CSV against replay from Parquet, on the real LINK books, in one run.

    python benchmarks/replay.py [--quotes N] [--repeat R] [--json]

The two 2 h recordings of data/real/ (Binance and Huobi LINK/USDT, 1 s, 10 levels) are
repeated back to back, each copy shifted by 2 h, until about ``--quotes`` quotes: once as
gzipped CSV in the files' own layout, once as a Parquet dataset (arbframe.marketdata). Then:

(a) the feed alone: iterate the replay feed's events, no engine, CSV then Parquet;
(b) end to end: the same scenario (``real_link_zero_fee``'s settings over the whole span) on
    each; the trades must be identical, or the script fails;
(c) the bare-loop floor: the same decision (spread_arb's edge after fees on both venues' top of
    book) over preloaded arrays, no engine; each end-to-end figure as a multiple of it;
(d) peak memory of the Parquet replay at two sizes, each in a fresh process.

Timings are the best of ``--repeat`` runs; nothing asserts them (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from arbframe.marketdata import DatasetWriter
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real"
FILES = {
    "binance": REAL / "binance_LINKUSDT_orderbook10_1s_20210820.csv.gz",
    "huobi": REAL / "huobi_LINKUSDT_orderbook10_1s_20210820.csv.gz",
}
BASE = ROOT / "scenarios" / "_real_link_base.yaml"
SPAN = timedelta(hours=2)  # one copy of the recordings
QUOTES_PER_COPY = 14_400  # 7,200 rows on each of the two venues


# ---- the data -----------------------------------------------------------------------------------


def write_csv_copies(copies: int, out: Path) -> dict[str, Path]:
    """Each venue's file repeated ``copies`` times, each copy 2 h after the previous."""
    paths = {}
    for venue, source in FILES.items():
        with gzip.open(source, "rt", newline="") as handle:
            header, *rows = list(csv.reader(handle))
        stamps = [datetime.fromisoformat(row[0]) for row in rows]
        path = paths[venue] = out / f"{venue}.csv.gz"
        with gzip.open(path, "wt", newline="", compresslevel=1) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            for k in range(copies):
                shift = SPAN * k
                for stamp, row in zip(stamps, rows, strict=True):
                    writer.writerow([str(stamp + shift), *row[1:]])
    return paths


def write_parquet_copies(copies: int, out: Path) -> Path:
    """The same books as a Parquet dataset (read from the original files once)."""
    events = list(feed({v: str(p) for v, p in FILES.items()}).events())
    shift = int(SPAN.total_seconds()) * 10**9
    with DatasetWriter(out, levels=10) as writer:
        for venue in FILES:
            mine = [e for e in events if e[1] == venue]
            for k in range(copies):
                for ts, _, symbol, bids, asks in mine:
                    writer.add(ts + k * shift, venue, symbol, bids, asks)
    return out


def feed(venues: dict[str, str]) -> Any:
    """A replay feed of LINK over ``venues`` (built as a run would, through the registry)."""
    from arbframe.testing import feed_context

    registry = build_registry(get_plugin_manager())
    cls = registry.get("feed", "replay").cls
    return cls({"symbol": "LINK", "venues": venues}, name="feeds[0]", ctx=feed_context(ROOT))


# ---- (a) the feed alone -------------------------------------------------------------------------


def feed_only(venues: dict[str, str], repeat: int) -> dict[str, Any]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        events = feed(venues).events()
        gc.collect()
        started = time.perf_counter()
        n = 0
        for _ in events:
            n += 1
        best = min(best, time.perf_counter() - started)
    return {"quotes": n, "seconds": round(best, 4), "us_per_quote": round(best / n * 1e6, 3)}


# ---- (b) end to end -----------------------------------------------------------------------------


def scenario(venues: dict[str, str], copies: int, workdir: Path, name: str) -> Path:
    spec = {
        "extends": str(BASE),
        "name": name,
        "duration": f"{2 * copies}h",
        "venues": {"binance": {"fees": {"taker_bps": 0}}, "huobi": {"fees": {"taker_bps": 0}}},
        "feeds": [{"type": "replay", "symbol": "LINK", "venues": venues}],
    }
    path = workdir / f"{name}.yaml"
    path.write_text(json.dumps(spec, indent=1))  # JSON is YAML
    return path


def make_run(path: Path) -> Run:
    pm = get_plugin_manager()
    registry = build_registry(pm)
    return Run(load_scenario(path, registry), registry, pm)


def end_to_end(path: Path, repeat: int) -> dict[str, Any]:
    times: list[float] = []
    summary: dict[str, Any] = {}
    trades: list[Any] = []
    for _ in range(repeat):
        run = make_run(path)
        gc.collect()
        started = time.perf_counter()
        summary = run.execute()
        times.append(time.perf_counter() - started)
        trades = [
            (
                t.trade_id,
                str(t.net_pnl),
                [(f.ts, f.venue, f.side, str(f.price), str(f.amount)) for f in t.fills],
            )  # fmt: skip
            for t in run.execution.closed
        ]
    quotes = summary["events"]["quotes"]
    return {
        "quotes": quotes,
        "seconds_best": round(min(times), 4),
        "seconds_all": [round(t, 4) for t in times],
        "us_per_quote": round(min(times) / quotes * 1e6, 3),
        "quotes_per_s": round(quotes / min(times)),
        "trades": len(trades),
        "pnl": summary["portfolio"]["pnl"],
        "_trades": trades,
    }


# ---- (c) the bare-loop floor ------------------------------------------------------------------


def bare_loop(dataset: Path, repeat: int) -> dict[str, Any]:
    """spread_arb's entry test over preloaded arrays: each venue's best bid and ask, updated
    quote by quote in time order; both routes' edge after fees against entry_bps."""
    events = list(feed({"binance": str(dataset), "huobi": str(dataset)}).events())
    venue_of = [0 if e[1] == "binance" else 1 for e in events]
    bid = [e[3][0][0] for e in events]
    ask = [e[4][0][0] for e in events]
    del events
    fees, entry = 0.0, 2.0  # real_link_zero_fee: 0 bp fees, entry_bps 2
    best = float("inf")
    edges = 0
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        bids, asks = [0.0, 0.0], [0.0, 0.0]
        edges = 0
        for v, b, a in zip(venue_of, bid, ask, strict=True):
            bids[v], asks[v] = b, a
            if (
                asks[0]
                and asks[1]
                and (
                    (bids[1] - asks[0]) / asks[0] * 1e4 - fees >= entry
                    or (bids[0] - asks[1]) / asks[1] * 1e4 - fees >= entry
                )
            ):
                edges += 1
        best = min(best, time.perf_counter() - started)
    n = len(bid)
    return {"quotes": n, "seconds": round(best, 4), "us_per_quote": round(best / n * 1e6, 3),
            "edges": edges}  # fmt: skip


# ---- (d) memory ---------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(path: Path) -> None:
    run = make_run(path)
    before = _peak_rss_mib()
    summary = run.execute()
    print(json.dumps({"quotes": summary["events"]["quotes"], "rss_before_run_mib":
                      round(before, 1), "peak_rss_mib": round(_peak_rss_mib(), 1)}))  # fmt: skip


def peak_memory(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


# ---- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=1_000_000, help="about this many quotes")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timed runs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    copies = max(1, -(-args.quotes // QUOTES_PER_COPY))
    small = max(1, copies // 4)
    say(
        f"replay benchmark: real LINK books x {copies} ({copies * QUOTES_PER_COPY:,} quotes), "
        f"best of {args.repeat} (Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        csv_paths = write_csv_copies(copies, work)
        dataset = write_parquet_copies(copies, work / "dataset")
        small_dataset = write_parquet_copies(small, work / "small")
        (work / "small_csv").mkdir()
        csv_venues = {v: str(p) for v, p in csv_paths.items()}
        pq_venues = {v: str(dataset) for v in FILES}
        sizes = {
            "csv_gz_mib": round(sum(p.stat().st_size for p in csv_paths.values()) / 2**20, 1),
            "parquet_mib": round(
                sum(p.stat().st_size for p in dataset.rglob("*.parquet")) / 2**20, 1
            ),  # fmt: skip
        }
        say(f"  data written in {time.perf_counter() - started:.1f} s: CSV (gzip) "
            f"{sizes['csv_gz_mib']} MiB, Parquet {sizes['parquet_mib']} MiB")  # fmt: skip

        # Memory first, in fresh processes, while this one is small. CSV too: what both
        # grow by is the run's own record (orders, fills, trades), not the feed.
        small_csv = write_csv_copies(small, work / "small_csv")
        memory = {
            "parquet": {
                "small": peak_memory(
                    scenario({v: str(small_dataset) for v in FILES}, small, work, "mem_small")
                ),
                "large": peak_memory(scenario(pq_venues, copies, work, "mem_large")),
            },
            "csv": {
                "small": peak_memory(
                    scenario({v: str(p) for v, p in small_csv.items()}, small, work, "mem_csv_s")
                ),
                "large": peak_memory(scenario(csv_venues, copies, work, "mem_csv_l")),
            },
        }
        for kind, sizes_ in memory.items():
            say(
                f"  (d) peak memory, {kind} replay end to end: {sizes_['small']['peak_rss_mib']} "
                f"MiB at {sizes_['small']['quotes']:,} quotes, {sizes_['large']['peak_rss_mib']}"
                f" MiB at {sizes_['large']['quotes']:,} ({sizes_['large']['rss_before_run_mib']}"
                " MiB before the run)"
            )

        feed_csv = feed_only(csv_venues, args.repeat)
        feed_pq = feed_only(pq_venues, args.repeat)
        feed_ratio = feed_csv["us_per_quote"] / feed_pq["us_per_quote"]
        say(
            f"  (a) feed alone: CSV {feed_csv['us_per_quote']} us/quote, Parquet "
            f"{feed_pq['us_per_quote']} us/quote ({feed_ratio:.1f}x)"
        )

        e2e_csv = end_to_end(scenario(csv_venues, copies, work, "e2e_csv"), args.repeat)
        e2e_pq = end_to_end(scenario(pq_venues, copies, work, "e2e_parquet"), args.repeat)
        same = e2e_csv.pop("_trades") == e2e_pq.pop("_trades")
        speedup = e2e_csv["seconds_best"] / e2e_pq["seconds_best"]
        say(
            f"  (b) end to end: CSV {e2e_csv['us_per_quote']} us/quote "
            f"({e2e_csv['quotes_per_s']:,}/s), Parquet {e2e_pq['us_per_quote']} us/quote "
            f"({e2e_pq['quotes_per_s']:,}/s): Parquet is {speedup:.2f}x CSV (target >= 2.5x); "
            f"{e2e_pq['trades']:,} trades, pnl {e2e_pq['pnl']} USDT, "
            f"{'identical' if same else 'DIFFERENT'} on both"
        )
        floor = bare_loop(dataset, args.repeat)
        say(
            f"  (c) bare-loop floor: {floor['us_per_quote']} us/quote ({floor['edges']:,} quotes "
            f"with an edge); end to end is {e2e_csv['us_per_quote'] / floor['us_per_quote']:.1f}x"
            f" the floor from CSV, {e2e_pq['us_per_quote'] / floor['us_per_quote']:.1f}x from "
            "Parquet"
        )
    results = {
        "copies": copies,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "sizes": sizes,
        "feed_only": {"csv": feed_csv, "parquet": feed_pq},
        "end_to_end": {
            "csv": e2e_csv,
            "parquet": e2e_pq,
            "parquet_speedup": round(speedup, 2),
            "same_trades": same,
        },  # fmt: skip
        "bare_loop": floor,
        "ratio_to_floor": {
            "csv": round(e2e_csv["us_per_quote"] / floor["us_per_quote"], 2),
            "parquet": round(e2e_pq["us_per_quote"] / floor["us_per_quote"], 2),
        },
        "memory": memory,
    }
    if args.json:
        print(json.dumps(results, indent=2))
    if not same:
        print("the CSV and Parquet replays traded differently", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
