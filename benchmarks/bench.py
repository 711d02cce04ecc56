#!/usr/bin/env python
"""Hot-path benchmarks: throughput, decision latency, per-order cost, peak memory.

    python benchmarks/bench.py [--quotes N] [--repeat R] [--json]

Every run is a real scenario: ``scenarios/_campaign_base.yaml`` (two paper venues,
``spread_arb`` on the ``synthetic`` feed) loaded through the real loader, with the duration
(and, for the 10-symbol case, the symbols and capital) overridden by a small scenario that
``extends`` it. See benchmarks/README.md for what each figure means and how it is measured.
Timings are wall-clock on whatever machine runs this: nothing asserts them.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "scenarios" / "_campaign_base.yaml"
REAL = ROOT / "scenarios" / "real_link_binance_huobi.yaml"

INTERVAL_MS = 100  # the synthetic feed's default interval; every venue quotes every symbol once
VENUES = 2  # upbit and binance in the base scenario

TARGETS = {
    "throughput_1_symbol": (">=", 150_000, "quotes/s"),
    "decision_p99_us": ("<=", 50.0, "us"),
    "order_overhead_us": ("<=", 50.0, "us"),
    "peak_rss_mib": ("<=", 200e6 / 2**20, "MiB"),  # 200 MB
}


# ---- scenarios --------------------------------------------------------------------------


def scenario(quotes: int, symbols: int = 1) -> dict[str, Any]:
    """An override of the campaign base that makes exactly `quotes` quote events flow."""
    per_interval = VENUES * symbols
    intervals = -(-quotes // per_interval)
    # The driver stops after the first event past start + duration, so end 1 ms before the
    # next interval starts: `intervals` whole intervals, i.e. per_interval * intervals quotes.
    over: dict[str, Any] = {
        "extends": str(BASE),
        "name": f"bench_{symbols}sym",
        "duration": f"{intervals * INTERVAL_MS - 1}ms",
    }
    if symbols > 1:
        # BTC-like assets X00, X01, ...: the base scenario's tick grids suit them.
        prices = {f"X{i:02d}": 60000.0 * (1 + 0.05 * i) for i in range(symbols)}
        over["feeds"] = [
            {
                "type": "synthetic",
                "symbols": prices,
                "venues": ["upbit", "binance"],
                "pattern": "mixed",
                "tick": {"upbit": 1000, "binance": 0.01},
            }
        ]
        # Same capital per symbol as the base scenario has for its one symbol.
        over["capital"] = {
            "upbit": {"KRW": 13_500_000 * symbols, **dict.fromkeys(prices, 0.2)},
            "binance": {"USDT": 10_000 * symbols, **dict.fromkeys(prices, 0.2)},
        }
    return over


def make_run(spec: dict[str, Any] | Path, workdir: Path) -> Run:
    if isinstance(spec, Path):
        path = spec
    else:
        path = workdir / f"{spec['name']}.yaml"
        path.write_text(json.dumps(spec, indent=1))  # JSON is YAML
    pm = get_plugin_manager()
    registry = build_registry(pm)
    return Run(load_scenario(path, registry), registry, pm)


def timed_execute(run: Run) -> tuple[float, float, dict[str, Any]]:
    """Wall and CPU time of Run.execute (feed generation, engine, strategy, venues, summary)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run.execute()
    return time.perf_counter() - wall, time.process_time() - cpu, summary


def best_of(repeat: int, spec: dict[str, Any] | Path, workdir: Path) -> dict[str, Any]:
    """Run `repeat` times; keep the fastest (the machine may be busy with other work)."""
    times, cpu_times = [], []
    summary: dict[str, Any] = {}
    for _ in range(repeat):
        elapsed, cpu, summary = timed_execute(make_run(spec, workdir))
        times.append(elapsed)
        cpu_times.append(cpu)
    quotes = summary["events"]["quotes"]
    return {
        "quotes": quotes,
        "seconds_best": round(min(times), 4),
        "seconds_all": [round(t, 4) for t in times],
        "quotes_per_s": round(quotes / min(times)),
        # The same from this process's CPU time (higher when it had to wait for the CPU).
        "quotes_per_cpu_s": round(quotes / min(cpu_times)),
        "orders": summary["orders"].get("submitted", 0),
        "trades": summary["portfolio"]["trades_closed"],
        "orders_per_million_quotes": round(summary["orders"].get("submitted", 0) * 1e6 / quotes),
        # Entry intents the guards refused (each one costs a guard round on its quote).
        "guard_refusals": sum(
            n
            for counts in summary["guards"]["by_guard"].values()
            for action, n in counts.items()
            if action in ("degrade", "cooldown", "block")
        ),
    }


# ---- the floor ------------------------------------------------------------------------------


def bare_loop(quotes: int, workdir: Path) -> dict[str, Any]:
    """The same decision over preloaded events, with no engine: the floor arbframe's
    end-to-end figure is compared with. The feed's events are materialised first (not
    timed); the loop keeps each venue's latest book and computes both routes' edge after
    fees, as spread_arb does, on every quote."""
    run = make_run(scenario(quotes), workdir)
    events = list(itertools.islice(run.feeds[0].events(), quotes))
    fx = run.market.fx
    quotes_of = {v: run.venues[v].quote for v in run.venues}  # type: ignore[attr-defined]
    fees = 15.0
    gc.collect()
    started = time.perf_counter()
    books: dict[str, tuple[float, float]] = {}
    edges = 0
    for _, venue, _, bids, asks in events:
        rate = fx[quotes_of[venue]]
        books[venue] = (bids[0][0] / rate, asks[0][0] / rate)
        if len(books) == 2:
            (bid_a, ask_a), (bid_b, ask_b) = books.values()
            if (bid_b - ask_a) / ask_a * 1e4 - fees >= 20 or (
                bid_a - ask_b
            ) / ask_b * 1e4 - fees >= 20:
                edges += 1
    seconds = time.perf_counter() - started
    return {"quotes": len(events), "seconds": round(seconds, 4),
            "quotes_per_s": round(len(events) / seconds), "edges": edges}  # fmt: skip


# ---- per-quote decision latency ---------------------------------------------------------


def percentiles(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "median": ordered[n // 2],
        "p99": ordered[min(n - 1, (99 * n) // 100)],
        "max": ordered[-1],
    }


def decision_latency(quotes: int, workdir: Path) -> dict[str, Any]:
    """Time venue.on_book + strategy.on_market per instant, minus the timing's own cost.

    The driver hands each book of an instant to its venue's on_book and, once the instant
    is complete (when the next timestamp arrives), calls the strategy's on_market; the
    synthetic feed staggers the venues, so an instant holds one book. A sample is the time
    spent in the instant's on_book calls plus in its on_market: the decision's own work,
    not the feed producing the next event in between. The same wrappers around do-nothing
    functions, called the same way, measure what the timing adds.
    """
    run = make_run(scenario(quotes), workdir)
    clock = time.perf_counter_ns
    samples: list[int] = []
    in_books = [0]  # ns spent in on_book since the last decision

    def wrap_book(on_book: Callable[..., None]) -> Callable[..., None]:
        def timed(ts: int, symbol: str, bids: Any, asks: Any) -> None:
            t0 = clock()
            on_book(ts, symbol, bids, asks)
            in_books[0] += clock() - t0

        return timed

    def wrap_market(on_market: Callable[..., None]) -> Callable[..., None]:
        def timed(ts: int, symbol: str) -> None:
            t0 = clock()
            on_market(ts, symbol)
            samples.append(clock() - t0 + in_books[0])
            in_books[0] = 0

        return timed

    for venue in run.venues.values():  # the driver looks these up when the run starts
        venue.on_book = wrap_book(venue.on_book)  # type: ignore[attr-defined]
    [strategy] = run.strategies
    strategy.on_market = wrap_market(strategy.on_market)  # type: ignore[method-assign]
    gc.collect()
    run.execute()
    measured, raw = len(samples), percentiles(samples)

    # Calibration: the same wrappers around no-ops, in a loop shaped like the driver's.
    samples.clear()
    book, market = wrap_book(lambda ts, s, b, a: None), wrap_market(lambda ts, s: None)
    bids = asks = [(1.0, 1.0)]
    for ts in range(min(quotes, 1_000_000)):
        book(ts, "BTC", bids, asks)
        market(ts, "BTC")
    empty = percentiles(samples)
    overhead = empty["median"]
    return {
        "quotes": measured,
        "raw_ns": raw,
        "empty_wrapper_ns": empty,
        "median_us": round(max(raw["median"] - overhead, 0) / 1000, 2),
        "p99_us": round(max(raw["p99"] - overhead, 0) / 1000, 2),
        "max_us": round(max(raw["max"] - overhead, 0) / 1000, 2),
    }


# ---- per-order overhead -----------------------------------------------------------------


def order_overhead(quotes: int, workdir: Path) -> dict[str, Any]:
    """Time every order's path from the kernel's submit to its trade moving on.

    The order flow's submit (state machine, bookkeeping, the timeout, the venue
    scheduling the arrival after its latency), the venue's _arrive (checks, book walk,
    depletion, its own account, reports scheduled) and the order flow's on_report (each report
    applied through the state machine: fills booked, audited and published, trade legs
    updated, the next orders or the close) are wrapped. Only outermost intervals count, so
    a submit made from inside a report is not counted twice. The wrappers' own cost,
    measured around no-ops, is subtracted.
    """
    run = make_run(scenario(quotes), workdir)
    clock = time.perf_counter_ns
    total = [0, 0]  # ns inside the order path, timed calls
    depth = [0]

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            if depth[0]:
                return fn(*args)
            depth[0] = 1
            t0 = clock()
            try:
                return fn(*args)
            finally:
                total[0] += clock() - t0
                total[1] += 1
                depth[0] = 0

        return timed

    flow = run.execution.flow
    flow.submit = wrap(flow.submit)  # type: ignore[method-assign]
    flow.on_report = wrap(flow.on_report)  # type: ignore[method-assign]
    for venue in run.venues.values():  # submit schedules venue._arrive, looked up per order
        venue._arrive = wrap(venue._arrive)  # type: ignore[attr-defined]
    gc.collect()
    summary = run.execute()
    timed_ns, calls = total

    total[:] = [0, 0]
    nop = wrap(lambda order: None)
    for _ in range(100_000):
        nop(None)
    per_call = total[0] / total[1]

    orders = summary["orders"].get("submitted", 0)
    net = timed_ns - per_call * calls
    return {
        "orders": orders,
        "timed_calls": calls,
        "timed_ns": timed_ns,
        "wrapper_ns_per_call": round(per_call, 1),
        "per_order_us": round(net / orders / 1000, 2) if orders else None,
    }


# ---- peak memory ------------------------------------------------------------------------


def snapshot_cost(quotes: int, workdir: Path, store: str = "memory") -> dict[str, Any]:
    """What keeping state costs: each snapshot (state pickled, checksummed, handed to the
    store) and each write-ahead record, timed where the kernel makes them, and the run's
    end-to-end throughput with state against the same run without."""
    from arbframe import snapshot

    timings: dict[str, list[int]] = {"snapshot": [], "write_ahead": []}
    sizes: list[int] = []
    originals = snapshot.make_record, snapshot.orders_record

    def timed(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            t = time.perf_counter_ns()
            record = fn(*args)
            timings[kind].append(time.perf_counter_ns() - t)
            if kind == "snapshot":
                sizes.append(len(record.payload))
            return record

        return wrapper

    spec = scenario(quotes, 1)
    spec["name"] = "bench_state"
    spec["state"] = (
        [{"type": store}]
        if store == "memory"
        else [{"type": store, "path": str(workdir / "state.db")}]
    )
    snapshot.make_record = timed("snapshot", originals[0])
    snapshot.orders_record = timed("write_ahead", originals[1])
    try:
        elapsed, _, summary = timed_execute(make_run(spec, workdir))
    finally:
        snapshot.make_record, snapshot.orders_record = originals
    plain, _, _ = timed_execute(make_run(scenario(quotes, 1), workdir))
    return {
        "store": store,
        "snapshots": len(timings["snapshot"]),
        "snapshot_us": _us(percentiles(timings["snapshot"])),
        "payload_kib_last": round(sizes[-1] / 1024, 1) if sizes else 0,
        "write_aheads": len(timings["write_ahead"]),
        "write_ahead_us": _us(percentiles(timings["write_ahead"])),
        "seconds_with_state": round(elapsed, 3),
        "seconds_without": round(plain, 3),
        "slowdown": round(elapsed / plain, 3),
        "quotes": summary["events"]["quotes"],
    }


def _us(ns: dict[str, float]) -> dict[str, float]:
    return {k: round(v / 1000, 1) for k, v in ns.items()}


def _maxrss_mib() -> float:
    """getrusage's peak RSS. Linux keeps it across exec, so a child started by a big parent
    reports at least the parent's size: peak_rss_mib() is preferred where it exists."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes / KiB


def _peak_rss_mib() -> float:
    """Peak resident set size of this process's own address space (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return _maxrss_mib()


def memory_child(quotes: int) -> None:
    """Runs in a fresh interpreter: one run, then the peak resident set size."""
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(scenario(quotes), Path(tmp))
        before = _peak_rss_mib()
        summary = run.execute()
        print(
            json.dumps(
                {
                    "quotes": summary["events"]["quotes"],
                    "rss_before_run_mib": round(before, 1),
                    "peak_rss_mib": round(_peak_rss_mib(), 1),
                    "ru_maxrss_mib": round(_maxrss_mib(), 1),
                }
            )
        )


def peak_memory(quotes: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--quotes", str(quotes), "--memory-child"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


# ---- report -----------------------------------------------------------------------------


def check(key: str, value: float | None) -> dict[str, Any]:
    op, target, unit = TARGETS[key]
    met = value is not None and (value >= target if op == ">=" else value <= target)
    return {"value": value, "target": f"{op} {target:,.1f} {unit}".replace(".0 ", " "), "met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=1_000_000, help="quotes per run")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timed runs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.quotes)
        return 0

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    def verdict(c: dict[str, Any]) -> str:
        return f"target {c['target']}: {'met' if c['met'] else 'NOT MET'}"

    n = args.quotes
    say(
        f"arbframe benchmarks: {n:,} quotes per run, best of {args.repeat} "
        f"(Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs)"
    )
    # Memory first, while this process is still small (see _maxrss_mib).
    memory = peak_memory(n)
    mem = check("peak_rss_mib", memory["peak_rss_mib"])
    say(
        f"  peak memory, fresh process: {memory['peak_rss_mib']:.1f} MiB resident "
        f"({memory['rss_before_run_mib']:.1f} MiB before the run)  {verdict(mem)}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        one = best_of(args.repeat, scenario(n, 1), work)
        thr = check("throughput_1_symbol", one["quotes_per_s"])
        say(f"  end to end, 1 symbol:   {one['quotes_per_s']:>9,} quotes/s  {verdict(thr)}")
        say(
            f"      {one['quotes_per_cpu_s']:,} quotes per CPU second; runs took "
            f"{', '.join(f'{t:.2f}' for t in one['seconds_all'])} s"
        )
        say(
            f"      {one['orders']:,} orders, {one['trades']:,} trades, "
            f"{one['guard_refusals']:,} entries refused by guards"
        )
        floor = bare_loop(n, work)
        say(
            f"  bare-loop floor (same decision, preloaded events, no engine): "
            f"{floor['quotes_per_s']:,} quotes/s; arbframe end to end is "
            f"{floor['quotes_per_s'] / one['quotes_per_s']:.1f}x slower"
        )
        ten = best_of(args.repeat, scenario(n, 10), work)
        say(
            f"  end to end, 10 symbols: {ten['quotes_per_s']:>9,} quotes/s "
            f"({ten['quotes_per_cpu_s']:,} per CPU second)"
        )
        say(
            f"      {ten['orders']:,} orders, {ten['trades']:,} trades, "
            f"{ten['guard_refusals']:,} entries refused by guards"
        )
        latency = decision_latency(n, work)
        lat = check("decision_p99_us", latency["p99_us"])
        say(
            f"  decision latency per quote: median {latency['median_us']} us, "
            f"p99 {latency['p99_us']} us  {verdict(lat)}"
        )
        say(
            f"      after subtracting the timing's own cost, "
            f"{latency['empty_wrapper_ns']['median']} ns (raw median "
            f"{latency['raw_ns']['median']} ns, p99 {latency['raw_ns']['p99']} ns)"
        )
        orders = order_overhead(n, work)
        ovh = check("order_overhead_us", orders["per_order_us"])
        say(f"  per-order overhead: {orders['per_order_us']} us  {verdict(ovh)}")
        say(
            f"      submit to strategy update, timed over {orders['orders']:,} orders "
            f"({orders['wrapper_ns_per_call']} ns timing cost per call subtracted)"
        )
        state = snapshot_cost(n, work)
        say(
            f"  state: {state['snapshots']:,} snapshots, median "
            f"{state['snapshot_us']['median']} us (p99 {state['snapshot_us']['p99']} us, last "
            f"{state['payload_kib_last']} KiB); {state['write_aheads']:,} write-ahead records, "
            f"median {state['write_ahead_us']['median']} us; run with state / without: "
            f"{state['slowdown']}x"
        )
        replay = best_of(max(args.repeat, 5), REAL, work)
        say(
            f"  replay feed, {REAL.name}: {replay['quotes_per_s']:,} quotes/s "
            f"({replay['quotes']:,} quotes, {replay['orders']:,} orders)"
        )

    checks = {
        "throughput_1_symbol": thr,
        "decision_p99_us": lat,
        "order_overhead_us": ovh,
        "peak_rss_mib": mem,
    }
    orders_ok = all(r["orders_per_million_quotes"] >= 100 for r in (one, ten))
    say(
        f"  orders per million quotes: {one['orders_per_million_quotes']:,} (1 symbol), "
        f"{ten['orders_per_million_quotes']:,} (10 symbols): "
        f"{'ok' if orders_ok else 'TOO FEW (want hundreds or more)'}"
    )
    say(f"targets met: {sum(c['met'] for c in checks.values())} of {len(checks)}")
    if args.json:
        print(
            json.dumps(
                {
                    "quotes": n,
                    "repeat": args.repeat,
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "throughput": {"1_symbol": one, "10_symbols": ten, "replay_real_link": replay},
                    "bare_loop": floor,
                    "decision_latency": latency,
                    "order_overhead": orders,
                    "memory": memory,
                    "orders_per_million_quotes_ok": orders_ok,
                    "targets": checks,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
