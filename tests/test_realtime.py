"""The wall-clock driver: pacing, the simulated driver's instants and order, stops, the
duration, loop health, pushed feeds, and the same trades as a simulated run."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from arbframe import realtime
from arbframe.clock import SimClock
from arbframe.driver import DriveStats, StopRequest, run_simulated
from arbframe.errors import ScenarioError
from arbframe.realtime import Histogram, LoopHealth, WallClock, run_wall
from arbframe.report import format_summary
from arbframe.schema import summary_schema

T0 = 1_700_000_000 * 10**9
MS = 1_000_000
S = 1_000 * MS
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
TARGETS: Any = {"a": {"X": (lambda entry: None, lambda *args: None)}}  # a venue that ignores books


def book(ts: int, venue: str = "a", symbol: str = "X", price: float = 100.0) -> Any:
    return (ts, venue, symbol, ((price - 0.1, 1.0),), ((price + 0.1, 1.0),))


class World:
    """Fake venues and strategies that log everything the driver makes them do, with
    `clock.now`, and schedule calls the way venues and strategies do: at once, after a
    latency that lands exactly on the next instant, and in chains across instants."""

    def __init__(self, clock: Any, strategies: int = 2) -> None:
        self.clock = clock
        self.log: list[tuple[Any, ...]] = []
        self.queue: deque[Any] = deque()
        self.delivered: list[Any] = []
        self.on_market = [self._strategy(i) for i in range(strategies)]
        self.targets = {
            v: {s: (self._record(v, s), self._on_book(v)) for s in ("X", "Y")} for v in "ab"
        }
        # Scheduled before the first event (now = 0): due long before it.
        clock.call_later(5 * MS, self.call, "before the first event")

    def call(self, tag: str, chain: int = 0) -> None:
        self.log.append(("call", tag, self.clock.now))
        self.queue.append(tag)
        if chain:
            self.clock.call_later(7 * MS, self.call, f"{tag}>", chain - 1)

    def _record(self, venue: str, symbol: str) -> Any:
        return lambda entry: self.log.append(("record", venue, symbol, entry[0]))

    def _on_book(self, venue: str) -> Any:
        def on_book(ts: int, symbol: str, bids: Any, asks: Any) -> None:
            self.log.append(("book", venue, symbol, ts, self.clock.now))
            if venue == "b":  # a venue answering 10 ms later: often the next instant's time
                self.clock.call_later(10 * MS, self.call, f"ack {symbol}@{ts}")

        return on_book

    def _strategy(self, i: int) -> Any:
        def on_market(ts: int, symbol: str) -> None:
            self.log.append(("decide", i, ts, symbol, self.clock.now))
            self.clock.call_later(0, self.call, f"now {i}{symbol}@{ts}")
            self.clock.call_later(3 * MS, self.call, f"chain {i}{symbol}@{ts}", 2)

        return on_market

    def set_fx(self, currency: str, rate: float) -> None:
        self.log.append(("fx", currency, rate, self.clock.now))

    def drain(self) -> None:
        while self.queue:
            self.delivered.append(self.queue.popleft())

    def args(self, events: Any, duration: int) -> tuple[Any, ...]:
        return (
            events,
            duration,
            self.targets,
            self.set_fx,
            self.on_market,
            (self.queue, self.drain),
            lambda ts: self.log.append(("first", ts)),
        )


EVENTS = [
    book(T0),
    book(T0, "b"),
    (T0, None, "KRW", 1350.0, None),
    book(T0 + 10 * MS, "b", "Y"),
    book(T0 + 10 * MS, "a", "Y"),
    book(T0 + 10 * MS, "b", "X"),
    book(T0 + 20 * MS, "b", "X", 101.0),
    (T0 + 25 * MS, None, "KRW", 1351.0, None),  # an instant with FX only
    book(T0 + 30 * MS, "a", "X", 99.0),
    book(T0 + 37 * MS, "b", "Y"),
    book(T0 + 60 * MS),
    book(T0 + 100 * MS, "b", "Y", 98.0),
    book(T0 + 200 * MS),  # after the duration: cut
]


def simulated(events: list[Any], duration: int) -> World:
    world = World(SimClock())
    world.between = []  # type: ignore[attr-defined]
    stats = run_simulated(
        world.clock,
        *world.args(iter(events), duration),
        between=lambda _now, ts: world.between.append(ts),
    )
    world.clock.drain()  # the wind-down, then the last events
    world.drain()
    world.stats = stats  # type: ignore[attr-defined]
    return world


def wall(events: Any, duration: int, speed: float, **kwargs: Any) -> World:
    world = World(WallClock())
    world.between = []  # type: ignore[attr-defined]
    world.stats = asyncio.run(  # type: ignore[attr-defined]
        run_wall(
            world.clock,
            *world.args(events, duration),
            speed=speed,
            between=lambda _now, ts: world.between.append(ts),  # type: ignore[attr-defined]
            **kwargs,
        )
    )
    world.clock.drain()
    world.drain()
    return world


# ---- the same instants, in the same order ----------------------------------------------------


@pytest.mark.parametrize("speed", [2.0, 1e6])  # on time; and always late (everything is due)
def test_same_instants_and_calls_as_the_simulated_driver(speed: float) -> None:
    expected = simulated(EVENTS, 150 * MS)
    got = wall(EVENTS, 150 * MS, speed)
    assert got.log == expected.log
    assert got.delivered == expected.delivered
    assert (
        got.between
        == expected.between
        == [  # type: ignore[attr-defined]
            T0 + t * MS for t in (10, 20, 25, 30, 37, 60, 100)
        ]
    )
    assert got.stats == expected.stats  # type: ignore[attr-defined]
    assert expected.stats.end == T0 + 150 * MS  # type: ignore[attr-defined]
    # the log really has what the comparison is about
    kinds = {entry[0] for entry in expected.log}
    assert kinds == {"first", "call", "record", "book", "decide", "fx"}
    assert any(e[:2] == ("call", "before the first event") for e in expected.log)


def test_calls_due_at_an_instant_run_before_its_books() -> None:
    # Venue b's ack of its book at 0 ms, due at 10 ms, runs before the books of 10 ms;
    # every call due later runs after them, however late the loop runs (speed 1e6).
    got = wall(EVENTS, 150 * MS, 1e6)
    books = got.log.index(("record", "b", "Y", T0 + 10 * MS))
    calls = [(i, e[2]) for i, e in enumerate(got.log) if e[0] == "call"]
    assert all(i < books for i, at in calls if at < T0 + 10 * MS)
    assert all(i > books for i, at in calls if at > T0 + 10 * MS)
    assert got.log.index(("call", f"ack X@{T0}", T0 + 10 * MS)) < books


def test_a_late_loop_runs_no_call_before_an_earlier_instant() -> None:
    # A call blocks the loop past the next instant's time and a later call's: when the loop
    # wakes, both are due, but the instant comes first, as in scenario time.
    clock = WallClock()
    log: list[tuple[str, int]] = []

    def blocking() -> None:
        log.append(("blocks", clock.now))
        time.sleep(0.05)

    def on_market(ts: int, symbol: str) -> None:
        log.append(("decide", ts))
        if ts == T0:
            clock.call_later(5 * MS, blocking)
            clock.call_later(15 * MS, lambda: log.append(("later", clock.now)))

    asyncio.run(
        run_wall(
            clock, [book(T0), book(T0 + 10 * MS)], S, TARGETS, lambda c, r: None, [on_market],
            (deque(), lambda: None), lambda ts: None, speed=1.0,
        )
    )  # fmt: skip
    clock.drain()
    assert log == [
        ("decide", T0),
        ("blocks", T0 + 5 * MS),
        ("decide", T0 + 10 * MS),
        ("later", T0 + 15 * MS),
    ]


def test_an_exhausted_feed_ends_the_run_at_its_last_instant() -> None:
    expected = simulated(EVENTS[:-1], 10 * S)
    got = wall(EVENTS[:-1], 10 * S, 5.0)
    assert got.log == expected.log
    assert got.stats.end == T0 + 100 * MS  # type: ignore[attr-defined]


def test_empty_feed() -> None:
    world = wall([], S, 1.0)
    assert world.stats == DriveStats()  # type: ignore[attr-defined]


# ---- pacing, the duration, stops -------------------------------------------------------------


def test_a_recorded_feed_is_paced() -> None:
    events = [book(T0 + k * 100 * MS, "ab"[k % 2]) for k in range(21)]  # 2 s of scenario
    started = time.perf_counter()
    world = wall(events, 10 * S, 20.0)  # 2 s at speed 20: about 0.1 s
    took = time.perf_counter() - started
    assert 0.05 < took < 1.5, took
    assert world.stats.quotes == 21  # type: ignore[attr-defined]
    assert world.stats.instants == 21  # type: ignore[attr-defined]


def test_the_duration_cuts_the_run_and_its_time_runs_out() -> None:
    events = [book(T0), book(T0 + 50 * MS), book(T0 + 10 * S)]
    started = time.perf_counter()
    world = wall(events, 1 * S, 10.0)  # the last stretch, to 1 s, is waited for: 0.1 s
    took = time.perf_counter() - started
    assert 0.05 < took < 1.0, took
    stats = world.stats  # type: ignore[attr-defined]
    assert (stats.quotes, stats.instants, stats.end, stats.stopped) == (2, 2, T0 + S, False)


def _stop_later(stop: StopRequest, after: float, bare: bool) -> threading.Thread:
    def stop_it() -> None:
        time.sleep(after)
        if bare:
            stop.requested = True  # no wake-up: the driver's poll sees it
        else:
            stop.request()

    thread = threading.Thread(target=stop_it)
    thread.start()
    return thread


@pytest.mark.parametrize("bare", [False, True])
def test_a_stop_from_another_thread_ends_a_sleeping_run_at_once(
    bare: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not bare:  # request() wakes the driver: no poll needed
        monkeypatch.setattr(realtime, "POLL_S", 30.0)
    # The next event is 60 s away: the stop must not wait for it.
    events = [book(T0), book(T0 + 60 * S), book(T0 + 61 * S)]
    stop = StopRequest()
    thread = _stop_later(stop, 0.2, bare)
    started = time.perf_counter()
    world = wall(events, 120 * S, 1.0, stop=stop)
    took = time.perf_counter() - started
    thread.join()
    assert took < 1.0, took
    stats = world.stats  # type: ignore[attr-defined]
    assert stats.stopped and stats.quotes == 1 and stats.end == T0


def test_a_stop_ends_a_busy_run_between_instants() -> None:
    events = [book(T0 + k * 10 * MS, "ab"[k % 2]) for k in range(6000)]  # 60 s
    stop = StopRequest()
    thread = _stop_later(stop, 0.3, bare=False)
    started = time.perf_counter()
    world = wall(events, 120 * S, 1.0, stop=stop)
    thread.join()
    assert time.perf_counter() - started < 1.0
    stats = world.stats  # type: ignore[attr-defined]
    assert stats.stopped and 5 < stats.instants < 100
    # never inside an instant: every instant decided for each strategy
    decided = [e for e in world.log if e[0] == "decide"]
    assert len(decided) == 2 * stats.instants


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        wall(EVENTS, S, 0.0)


# ---- the clock ------------------------------------------------------------------------------


def test_calls_fire_at_their_scenario_time_fifo_and_on_the_wall() -> None:
    clock = WallClock()
    fired: list[tuple[str, int, float]] = []
    loop_start: list[float] = []

    def note(tag: str) -> None:
        fired.append((tag, clock.now, time.perf_counter() - loop_start[0]))

    def first(ts: int) -> None:
        loop_start.append(time.perf_counter())
        clock.now = ts  # what a component scheduling from on_first would see: its ts
        clock.call_later(500 * MS, note, "b1")
        clock.call_later(200 * MS, note, "a1")
        clock.call_later(500 * MS, note, "b2")
        clock.call_later(200 * MS, note, "a2")
        clock.call_at(ts + 500 * MS, note, "b3")
        assert (clock.pending, clock.next_due) == (5, T0 + 200 * MS)

    async def main() -> DriveStats:
        return await run_wall(
            clock, [book(T0)], 2 * S, TARGETS,
            lambda c, r: None, [], (deque(), lambda: None), first, speed=10.0,
        )  # fmt: skip

    # The feed is exhausted at once: the run ends at its last instant, the calls wait for
    # the wind-down, which runs them in scenario time.
    asyncio.run(main())
    assert fired == [] and clock.pending == 5
    clock.drain()
    assert [(tag, now) for tag, now, _ in fired] == [
        ("a1", T0 + 200 * MS),
        ("a2", T0 + 200 * MS),
        ("b1", T0 + 500 * MS),
        ("b2", T0 + 500 * MS),
        ("b3", T0 + 500 * MS),
    ]

    # With the run going on (a later event), they fire by themselves, on the wall.
    clock, fired[:], loop_start[:] = WallClock(), [], []
    events = [book(T0), book(T0 + S)]

    async def main2() -> DriveStats:
        return await run_wall(
            clock, events, 2 * S, TARGETS,
            lambda c, r: None, [], (deque(), lambda: None), first, speed=10.0,
        )  # fmt: skip

    asyncio.run(main2())
    assert [tag for tag, _, _ in fired] == ["a1", "a2", "b1", "b2", "b3"]
    assert [now for _, now, _ in fired] == [T0 + 200 * MS] * 2 + [T0 + 500 * MS] * 3
    walls = [t for _, _, t in fired]
    assert 0.015 < walls[0] < 0.5 and 0.04 < walls[2] < 0.8, walls  # 20 ms and 50 ms


def test_a_call_in_the_past_runs_at_once_and_time_never_goes_back() -> None:
    clock = WallClock()
    seen: list[int] = []

    def first(ts: int) -> None:
        clock.now = ts + 5 * MS
        clock.call_at(ts - 1 * S, lambda: seen.append(clock.now))

    started = time.perf_counter()
    asyncio.run(
        run_wall(
            clock, [book(T0), book(T0 + 10 * MS)], S, TARGETS, lambda c, r: None, [],
            (deque(), lambda: None), first, speed=1.0,
        )
    )  # fmt: skip
    assert seen == [T0 + 5 * MS]
    assert time.perf_counter() - started < 0.5


def test_many_calls_are_one_loop_handle() -> None:
    clock = WallClock()
    order: list[int] = []
    handles: list[int] = []

    def first(ts: int) -> None:
        for i in range(20_000):  # e.g. order timeouts
            clock.call_at(ts + (i % 100) * MS + 10 * MS, order.append, i)
        handles.append(len(asyncio.get_running_loop()._scheduled))  # noqa: SLF001

    asyncio.run(
        run_wall(
            clock, [book(T0), book(T0 + 200 * MS)], S, TARGETS, lambda c, r: None, [],
            (deque(), lambda: None), first, speed=10.0,
        )
    )  # fmt: skip
    assert handles[0] <= 3  # the clock's one handle (and the driver's sleep), not 20,000
    assert len(order) == 20_000 and clock.pending == 0
    assert order == sorted(order, key=lambda i: (i % 100, i))  # time order, FIFO among equals


def test_an_error_in_a_fired_call_ends_the_run_with_it() -> None:
    clock = WallClock()

    def boom() -> None:
        raise RuntimeError("a bug in a venue")

    def first(ts: int) -> None:
        clock.call_at(ts + 100 * MS, boom)

    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="a bug in a venue"):
        asyncio.run(
            run_wall(
                clock, [book(T0), book(T0 + 60 * S)], 120 * S,
                TARGETS, lambda c, r: None, [],
                (deque(), lambda: None), first, speed=1.0,
            )
        )  # fmt: skip
    assert time.perf_counter() - started < 1.0


# ---- pushed feeds -----------------------------------------------------------------------------


async def _pushed(events: list[tuple[float, Any]]) -> Any:
    """An async source: each event after a real pause (s); pause 0 = already waiting."""
    for pause, event in events:
        if pause:
            await asyncio.sleep(pause)
        yield event


def test_a_pushed_feed_is_taken_as_it_comes() -> None:
    source = _pushed(
        [
            (0.0, book(T0)),
            (0.0, book(T0, "b")),  # already waiting, with the same time: the same instant
            (0.05, book(T0 + 50 * MS, "b", "Y")),
            (0.0, book(T0 + 50 * MS, "a", "Y")),
            # stamped 60 ms, taken at about 150 ms: the calls of up to 67 ms have run
            (0.1, book(T0 + 60 * MS, "a", "X")),
        ]
    )
    started = time.perf_counter()
    world = wall(source, 10 * S, 1.0)
    assert time.perf_counter() - started < 1.0  # not paced, and not waiting for the end
    stats = world.stats  # type: ignore[attr-defined]
    assert (stats.quotes, stats.instants, stats.stopped) == (5, 3, False)
    decided = [(e[1], e[2] - T0, e[3]) for e in world.log if e[0] == "decide"]
    assert decided == [
        (0, 0, "X"), (1, 0, "X"),
        (0, 50 * MS, "Y"), (1, 50 * MS, "Y"),
        (0, 67 * MS, "X"), (1, 67 * MS, "X"),  # time does not go back
    ]  # fmt: skip
    assert world.between == [T0 + 50 * MS, T0 + 67 * MS]  # type: ignore[attr-defined]
    # calls fired by themselves while the driver waited for events, each at its time
    assert ("call", f"ack X@{T0}", T0 + 10 * MS) in world.log
    assert ("call", f"chain 1Y@{T0 + 50 * MS}>>", T0 + 67 * MS) in world.log


def test_a_quiet_pushed_feed_ends_at_the_duration() -> None:
    source = _pushed([(0.0, book(T0)), (30.0, book(T0 + 30 * S))])
    started = time.perf_counter()
    world = wall(source, 200 * MS, 1.0)
    assert 0.15 < time.perf_counter() - started < 1.0
    stats = world.stats  # type: ignore[attr-defined]
    assert (stats.quotes, stats.end, stats.stopped) == (1, T0 + 200 * MS, False)


def test_a_stop_ends_a_pushed_feed_waiting_for_events() -> None:
    source = _pushed([(0.0, book(T0)), (30.0, book(T0 + 30 * S))])
    stop = StopRequest()
    thread = _stop_later(stop, 0.1, bare=False)
    started = time.perf_counter()
    world = wall(source, 60 * S, 1.0, stop=stop)
    thread.join()
    assert time.perf_counter() - started < 1.0
    assert world.stats.stopped  # type: ignore[attr-defined]


# ---- loop health ----------------------------------------------------------------------------


def test_loop_health_measures_lag_decisions_and_orders() -> None:
    health = LoopHealth()
    events = [book(T0 + k * 20 * MS, "ab"[k % 2]) for k in range(20)]
    world = World(WallClock())
    world.on_market.append(lambda ts, symbol: health.order_sent())  # one order per decision
    health.order_sent()  # outside a decision: not counted
    asyncio.run(run_wall(world.clock, *world.args(events, S), speed=4.0, health=health))
    loop = health.summary()
    assert set(loop) == {"lag_ms", "quote_to_decision_us", "decision_to_order_us"}
    lag, q2d, d2o = loop["lag_ms"], loop["quote_to_decision_us"], loop["decision_to_order_us"]
    assert lag["count"] > 20  # every instant and every call
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["max"] < 100  # ms
    assert q2d["count"] == 20 and 0 < q2d["p50"] <= q2d["p99"] <= q2d["max"] < 50_000  # µs
    assert d2o["count"] == 20 and 0 < d2o["p50"] <= d2o["max"] <= q2d["max"]


def test_loop_health_without_samples() -> None:
    assert LoopHealth().summary()["decision_to_order_us"] == {
        "p50": None,
        "p99": None,
        "max": None,
        "count": 0,
    }


def test_histogram_quantiles_are_close_in_fixed_memory() -> None:
    h = Histogram()
    for v in range(1, 100_001):
        h.add(v * 1000)  # 1 µs .. 100 ms, uniform
    assert h.count == 100_000 and h.max == 100_000_000 and len(h.counts) == 1024
    assert h.quantile(0.5) == pytest.approx(50_000_000, rel=0.04)
    assert h.quantile(0.99) == pytest.approx(99_000_000, rel=0.04)
    assert h.quantile(1.0) == 100_000_000
    h.add(-5)  # early by a hair: on time
    h.add(7)
    h.add((1 << 63) - 1)
    assert h.quantile(0.0) == 0.0


# ---- the simulated driver's `between` ---------------------------------------------------------


def test_run_simulated_calls_between_after_due_calls_before_the_books() -> None:
    world = World(SimClock())
    seen: list[tuple[int, int, int]] = []

    def between(_now: int, ts: int) -> None:
        books = sum(1 for e in world.log if e[0] == "book")
        seen.append((ts, world.clock.now, books))

    run_simulated(world.clock, *world.args(iter(EVENTS[:4]), S), between=between)
    # between the instants at 0 and 10 ms: the ack due at 10 ms has run, no book of 10 ms
    assert seen == [(T0 + 10 * MS, T0 + 10 * MS, 2)]


# ---- runs: the same trades under either clock -------------------------------------------------

SHORT = f"""\
extends: {SCENARIOS / "_campaign_base.yaml"}
name: short_wall
duration: 20s
venues:
  upbit: {{latency: 100ms}}
  binance: {{latency: 50ms}}     # answers land on the other venue's quotes: equal times
feeds:
  - type: synthetic
    symbols: {{BTC: 60000}}
    venues: [upbit, binance]
    pattern: mixed
    tick: {{upbit: 1000, binance: 0.01}}
    episode_every: 1s
    persist_for: 3s
strategy: {{max_hold: 2s}}
guards: null
"""


def _record(result: Any) -> Any:
    trades = [
        (t.trade_id, t.state.value, t.exit_reason, t.opened_at, t.closed_at, t.net_pnl)
        for t in result.trades
    ]
    fills = [(f.client_id, f.ts, f.price, f.amount, f.fee) for f in result.fills]
    return trades, fills


@pytest.mark.parametrize("seed", [3, 5])
def test_a_run_makes_the_same_trades_under_either_clock(run_scenario, seed: int) -> None:
    simulated_run = run_scenario(SHORT, seed=seed)
    wall_run = run_scenario(
        SHORT
        + "clock: wall\nspeed: 200\n"
        + "expect: {loop.lag_ms.count: {min: 1}, loop.decision_to_order_us.count: {min: 1}}\n",
        seed=seed,
    )
    trades, fills = _record(simulated_run)
    assert len(trades) >= 5 and {t[2] for t in trades} >= {"reversion", "max_hold"}
    assert _record(wall_run) == (trades, fills)
    a, b = simulated_run.summary, wall_run.summary
    assert b["clock"] == "wall" and "loop" not in a
    for key in ("portfolio", "orders", "events", "time", "reconciliation"):
        assert a[key] == b[key], key
    assert b["passed"], b["expectations"]
    Draft202012Validator(summary_schema()).validate(b)
    assert b["loop"]["quote_to_decision_us"]["count"] == b["events"]["instants"]
    assert re.search(r"\nloop: lag p50 [\d.]+ / p99 [\d.]+ / max [\d.]+ ms; ", format_summary(b))
    assert wall_run.run.execution.flow.health is wall_run.run.health
    assert simulated_run.run.execution.flow.health is None


def test_speed_must_be_positive_in_a_scenario(run_scenario) -> None:
    with pytest.raises(ScenarioError, match="speed: 0 is less than or equal to the minimum"):
        run_scenario(SHORT + "clock: wall\nspeed: 0\n")


def test_ctrl_c_ends_a_sleeping_wall_run_at_once(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(SHORT.replace("duration: 20s", "duration: 60s") + "clock: wall\n")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "arbframe", "run", str(path), "--out", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (out / "fills.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the run has started once its outputs exist
    time.sleep(0.3)
    signalled = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert time.perf_counter() - signalled < 2.0
    assert proc.returncode == 130, stderr
    assert "interrupted at" in stderr
    summary = json.loads(stdout)
    assert summary["complete"] is False and summary["loop"]["lag_ms"]["count"] > 0
