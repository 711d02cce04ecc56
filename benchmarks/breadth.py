#!/usr/bin/env python
"""Breadth benchmark: how per-quote cost, decision latency and memory scale with symbols.

    python benchmarks/breadth.py [--quotes N] [--sizes 1x2,10x3,50x3,100x3] [--json]
    python benchmarks/breadth.py --profile 100x3      # cProfile of one size, top functions

Each size (symbols x venues) runs in a fresh interpreter: a `synthetic` feed with generated
symbols (`generate:`) on paper venues, `spread_arb` and the four guard tiers. Every size gets
the same number of quote events, so per-quote figures compare. See benchmarks/README.md ("Breadth").
Timings are wall-clock on whatever machine runs this: nothing asserts them.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INTERVAL_MS = 100  # the synthetic feed's default interval
SIZES = "1x2,10x3,50x3,100x3"
VENUES = {  # USDT venues, so any generated price fits their (fine) default grid
    "a": {"taker_bps": 5, "latency": "30ms"},
    "b": {"taker_bps": 10, "latency": "20ms"},
    "c": {"taker_bps": 8, "latency": "25ms"},
}
TARGETS = {
    "cost_ratio_100x3": ("<=", 1.5, "x the 1x2 per-quote cost"),
    "decision_p99_us": ("<=", 50.0, "us"),
    "peak_mib_100": ("<=", 300e6 / 2**20, "MiB"),  # 300 MB
}


def scenario(symbols: int, venues: int, quotes: int, seed: int = 7) -> dict[str, Any]:
    """A scenario with exactly `quotes` quote events: `symbols` generated symbols priced
    1 to 50,000 USDT, quoted on the first `venues` of a, b, c."""
    names = list(VENUES)[:venues]
    intervals = -(-quotes // (symbols * venues))
    feed = {
        "type": "synthetic",
        "venues": names,
        "pattern": "mixed",
        "generate": {"count": symbols, "prefix": "S", "price": [1, 50000], "volume": [1e5, 1e9]},
    }
    prices = _prices(feed, seed)
    return {
        "name": f"breadth_{symbols}x{venues}",
        "mode": "backtest",
        "clock": "simulated",
        "seed": seed,
        # The driver runs up to the first event past the end: end 1 ms before the next
        # interval, so `intervals` whole intervals flow.
        "duration": f"{intervals * INTERVAL_MS - 1}ms",
        "report_currency": "USDT",
        "venues": {
            name: {
                "type": "paper",
                "quote": "USDT",
                "fees": {"taker_bps": v["taker_bps"]},
                "latency": v["latency"],
                "markets": {"default": {"price_tick": "0.00000001", "amount_step": "0.000001"}},
            }
            for name, v in VENUES.items()
            if name in names
        },
        # Each symbol gets about what the campaigns give BTC: 12,000 USDT of it per venue.
        "capital": {
            name: {"USDT": 10_000 * symbols, **{s: round(12_000 / p, 6) for s, p in prices.items()}}
            for name in names
        },
        "feeds": [feed],
        "strategy": {
            "type": "spread_arb",
            "entry_bps": 20,
            "exit_bps": 5,
            "take_profit_bps": 80,
            "stop_loss_bps": 60,
            "max_hold": "15s",
            "size": {"quote": 1000},
        },
        # All four guard tiers, so every entry asks each of them. The limits are set wide
        # enough never to bind: a binding limit turns the rest of a run into refusals, at a
        # different point for each size, and per-quote figures would stop comparing.
        "guards": [
            {"type": "exchange", "max_exposure": 1e12, "stale_book": "5s"},
            {"type": "route", "max_open_trades": 1, "max_consecutive_losses": 3, "cooldown": "20s"},
            {
                "type": "symbol",
                "max_notional": 2000,
                "max_consecutive_losses": 1,
                "cooldown": "20s",
            },
            {"type": "global", "daily_loss_limit": 1_000_000},
        ],  # fmt: skip
    }


def _prices(feed: dict[str, Any], seed: int) -> dict[str, float]:
    """The generated symbols' starting prices, from the feed itself (seeded, as in the run)."""
    from arbframe_plugins.feeds.synthetic import SyntheticFeed

    from arbframe.components import FeedContext, RunInfo

    # Built by hand, not with arbframe.testing.feed_context: that imports pytest, whose
    # memory would count in every size's peak.
    ctx = FeedContext(
        info=RunInfo("breadth", seed, "backtest", "simulated", "USDT", "breadth"),
        resolve_path=Path,
        error=None,
        fx_rate=lambda currency: 1.0,
        venue_quote=lambda venue: "USDT",
    )
    config = {k: v for k, v in feed.items() if k != "type"}
    built = SyntheticFeed(config, name="feeds[0]", ctx=ctx)
    return {s: built.specs[s].price for s in built.symbols()}


def make_run(spec: dict[str, Any], workdir: Path) -> Any:
    from arbframe.plugins import build_registry, get_plugin_manager
    from arbframe.runner import Run
    from arbframe.scenario import load_scenario

    path = workdir / f"{spec['name']}.yaml"
    path.write_text(json.dumps(spec, indent=1))  # JSON is YAML
    pm = get_plugin_manager()
    registry = build_registry(pm)
    return Run(load_scenario(path, registry), registry, pm)


def _peak_rss_mib() -> float:
    """Peak resident set of this process's own address space (VmHWM), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _maxrss_mib()


def _maxrss_mib() -> float:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def percentiles(samples: list[int]) -> dict[str, int]:
    ordered = sorted(samples)
    n = len(ordered)
    return {"median": ordered[n // 2], "p99": ordered[min(n - 1, 99 * n // 100)],
            "max": ordered[-1]}  # fmt: skip


def child(size: str, quotes: int, repeat: int) -> dict[str, Any]:
    """One size, in this fresh process: a plain timed run (throughput, per-quote cost, peak
    RSS), a run with on_market timed (decision latency), a run under tracemalloc."""
    symbols, venues = (int(x) for x in size.split("x"))
    out: dict[str, Any] = {"size": size, "symbols": symbols, "venues": venues}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = scenario(symbols, venues, quotes)

        walls, cpus = [], []
        for i in range(repeat):  # the best of `repeat`: the machine may be busy elsewhere
            run = make_run(spec, work)
            if i == 0:
                out["rss_before_run_mib"] = round(_peak_rss_mib(), 1)
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            summary = run.execute()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            if i == 0:  # the peak of one run, before any other adds to it
                out["peak_rss_mib"] = round(_peak_rss_mib(), 1)
                out["ru_maxrss_mib"] = round(_maxrss_mib(), 1)
            if i < repeat - 1:
                del run, summary
        wall, cpu = min(walls), min(cpus)
        n = summary["events"]["quotes"]
        out.update(
            quotes=n,
            seconds=round(wall, 3),
            quotes_per_s=round(n / wall),
            per_quote_us=round(wall / n * 1e6, 3),
            per_quote_cpu_us=round(cpu / n * 1e6, 3),
            orders=summary["orders"].get("submitted", 0),
            trades=summary["portfolio"]["trades_closed"],
            # Entry intents refused (by a guard, or a cooldown the kernel remembers).
            refused=sum(summary["execution"]["refused"].values()),
            reconciled=summary["reconciliation"]["passed"],
            seconds_all=[round(w, 3) for w in walls],
        )
        # What the run itself added: the interpreter, imports and plugins are not breadth.
        out["run_growth_mib"] = round(out["peak_rss_mib"] - out["rss_before_run_mib"], 1)
        del run, summary
        out["decision"] = decision_latency(spec, work)

        gc.collect()
        run = make_run(spec, work)
        tracemalloc.start()
        run.execute()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_mib"] = round(peak / 2**20, 1)
    return out


def decision_latency(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """Every strategy on_market call timed (one per symbol that changed in an instant),
    minus the median cost of the same wrapper around a no-op."""
    run = make_run(spec, work)
    clock = time.perf_counter_ns
    samples: list[int] = []

    def wrap(on_market: Any) -> Any:
        def timed(ts: int, symbol: str) -> None:
            t0 = clock()
            on_market(ts, symbol)
            samples.append(clock() - t0)

        return timed

    [strategy] = run.strategies
    strategy.on_market = wrap(strategy.on_market)  # the driver looks it up at start
    gc.collect()
    run.execute()
    raw = percentiles(samples)
    calls = len(samples)
    samples.clear()
    nop = wrap(lambda ts, symbol: None)
    for ts in range(min(calls, 300_000)):
        nop(ts, "S00")
    overhead = percentiles(samples)["median"]
    return {
        "calls": calls,
        "raw_ns": raw,
        "wrapper_ns": overhead,
        "median_us": round(max(raw["median"] - overhead, 0) / 1000, 2),
        "p99_us": round(max(raw["p99"] - overhead, 0) / 1000, 2),
        "max_us": round(max(raw["max"] - overhead, 0) / 1000, 2),
    }


def profile(size: str, quotes: int, top: int) -> None:
    symbols, venues = (int(x) for x in size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(scenario(symbols, venues, quotes), Path(tmp))
        profiler = cProfile.Profile()
        profiler.runcall(run.execute)
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)


def run_size(size: str, quotes: int, repeat: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            size,
            "--quotes",
            str(quotes),
            "--repeat",
            str(repeat),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def check(key: str, value: float | None) -> dict[str, Any]:
    op, target, unit = TARGETS[key]
    met = value is not None and (value >= target if op == ">=" else value <= target)
    return {"value": value, "target": f"{op} {target:g} {unit}", "met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=300_000, help="quote events per size")
    parser.add_argument("--sizes", default=SIZES, help="symbols x venues, comma separated")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per size (best)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--profile", metavar="SIZE", help="cProfile one size and stop")
    parser.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.quotes, args.repeat)))
        return 0
    if args.profile:
        profile(args.profile, args.quotes, args.top)
        return 0

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    sizes = args.sizes.split(",")
    say(
        f"arbframe breadth: {args.quotes:,} quotes per size, each in a fresh process "
        f"(Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs)"
    )
    results = [run_size(size, args.quotes, args.repeat) for size in sizes]
    base = results[0]
    say(
        f"{'size':>7} {'quotes/s':>9} {'us/quote':>9} {'ratio':>6} {'cpu ratio':>9} "
        f"{'decide med':>10} {'p99 us':>7} {'peak MiB':>9} {'run MiB':>8} {'traced MiB':>10} "
        f"{'orders':>7}"
    )
    for r in results:
        r["cost_ratio"] = round(r["per_quote_us"] / base["per_quote_us"], 3)
        r["cpu_cost_ratio"] = round(r["per_quote_cpu_us"] / base["per_quote_cpu_us"], 3)
        d = r["decision"]
        say(
            f"{r['size']:>7} {r['quotes_per_s']:>9,} {r['per_quote_us']:>9.2f} "
            f"{r['cost_ratio']:>6.2f} {r['cpu_cost_ratio']:>9.2f} {d['median_us']:>10.2f} "
            f"{d['p99_us']:>7.2f} {r['peak_rss_mib']:>9.1f} {r['run_growth_mib']:>8.1f} "
            f"{r['tracemalloc_peak_mib']:>10.1f} {r['orders']:>7,}"
        )
    # Memory per symbol between consecutive sizes: about constant when memory is linear.
    growth = [
        {
            "from": a["size"],
            "to": b["size"],
            "rss_mib_per_symbol": round(
                (b["run_growth_mib"] - a["run_growth_mib"]) / (b["symbols"] - a["symbols"]), 3
            ),
            "traced_mib_per_symbol": round(
                (b["tracemalloc_peak_mib"] - a["tracemalloc_peak_mib"])
                / (b["symbols"] - a["symbols"]),
                3,
            ),
        }
        for a, b in zip(results, results[1:], strict=False)
        if b["symbols"] > a["symbols"]
    ]
    for g in growth:
        say(
            f"  memory {g['from']} -> {g['to']}: {g['rss_mib_per_symbol']} MiB resident, "
            f"{g['traced_mib_per_symbol']} MiB traced per added symbol"
        )
    largest = results[-1]
    checks = {  # the targets are set for the largest default size, 100x3
        "cost_ratio_100x3": check("cost_ratio_100x3", largest["cost_ratio"]),
        "decision_p99_us": check("decision_p99_us", max(r["decision"]["p99_us"] for r in results)),
        "peak_mib_100": check("peak_mib_100", largest["peak_rss_mib"]),
    }
    for key, c in checks.items():
        say(f"  {key}: {c['value']} (target {c['target']}): {'met' if c['met'] else 'NOT MET'}")
    if not all(r["reconciled"] for r in results):
        say("  RECONCILIATION FAILED in: " + ", ".join(r["size"] for r in results
                                                     if not r["reconciled"]))  # fmt: skip
    if args.json:
        print(json.dumps({"quotes": args.quotes, "python": platform.python_version(),
                          "cpus": os.cpu_count(), "sizes": results, "memory_growth": growth,
                          "targets": checks}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
