"""Outage faults against a scripted market whose every moment is known in advance.

The script (`market`): venues `a` and `b` each publish a book every second from 0 s; at the
listed seconds b's bid jumps (100.60 against a's ask 100.00: an entry, buy a / sell b) and
it is back the second after (a reversion exit). Latency 10 ms both ways, so an order sent at
t is executed and answered at t + 10 ms. Each test works out by hand when the fault fires,
when the kernel notices and when it recovers, and checks the run against that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import book, two_venue_scenario
from jsonschema import Draft202012Validator

from arbframe.errors import ArbframeError
from arbframe.hookspecs import hookimpl
from arbframe.orders import OrderState

S = 1_000_000_000
MS = 1_000_000
SUMMARY_SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "schemas" / "summary.schema.json").read_text()
)


def market(spikes: set[int], seconds: int = 40) -> list[dict[str, Any]]:
    events = []
    for t in range(seconds):
        events.append(book(f"{t}s", "a", 99.90, 100.00))
        bid, ask = (100.60, 100.70) if t in spikes else (99.80, 99.85)
        events.append(book(f"{t}s", "b", bid, ask))
    return events


class FaultEvents:
    """A plugin recording the `arbframe_on_fault` hook."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, dict[str, Any]]] = []

    @hookimpl
    def arbframe_on_fault(self, name: str, fault: str, phase: str, detail: dict) -> None:
        self.seen.append((fault, phase, name, detail))


def run(run_scenario, spikes, faults, seconds=40, seed=None, plugins=(), **execution):
    scenario = two_venue_scenario(market(spikes, seconds), execution=execution)
    scenario["faults"] = faults
    result = run_scenario(scenario, seed=seed, plugins=plugins)
    Draft202012Validator(SUMMARY_SCHEMA).validate(result.summary)
    assert result.summary["reconciliation"]["passed"] is True
    return result


def at(result, ts: int) -> float:
    """Seconds since the run's start."""
    return (ts - result.summary["time"]["start_ns"]) / S


def opened(result) -> list[float]:
    return [at(result, t.opened_at) for t in result.trades if t.fills]


def feed_cut(**extra: Any) -> dict[str, Any]:
    fault = {"type": "feed_disconnect", "name": "s1_feed", "venue": "a", "at": "10s"}
    return {"duration": "5s", **fault, **extra}


NO_JITTER = {"initial": "1s", "max": "30s", "factor": 2, "jitter": 0}


# ---- feed_disconnect ------------------------------------------------------------------------


def test_feed_disconnect_stops_a_books_and_recovers_at_the_first_book_after_reconnecting(
    run_scenario,
):
    """Down at 10 s for 5 s; attempts 1, 2, 4 s apart: 11 s and 13 s fail (the outage lasts
    until 15 s), 17 s succeeds, and a's book of 17 s is the recovery: 7 s to repair."""
    events = FaultEvents()
    result = run(
        run_scenario, {5, 13, 20}, [feed_cut(backoff=NO_JITTER)], plugins=(events,),
        max_book_age="2s",
    )  # fmt: skip
    faults = result.summary["faults"]
    assert faults["feed_disconnect"] == 1
    assert faults["timeline"]["s1_feed"] == {
        "type": "feed_disconnect",
        "target": "a",
        "firings": 1,
        "injected_at_s": 10.0,
        "detected_at_s": 10.0,
        "recovered_at_s": 17.0,
        "mttr_s": 7.0,
        "stats": {"reconnect_attempts": 3, "books_dropped": 7},  # a's books of 10..16 s
        "entries_after": 1,  # the trade at 20 s
        "exits_after": 1,
    }
    assert faults["unrecovered"] == 0
    assert [at(result, ts) for ts in result.run.links["a"].attempts] == [11.0, 13.0, 17.0]
    # What reached the kernel: a's books up to 9 s, then from 17 s; b's all along.
    a_books = [at(result, ts) for ts, _, _ in result.run.audit.history["a", "BTC"]]
    assert a_books == [float(t) for t in (*range(10), *range(17, 40))]
    assert len(result.run.audit.history["b", "BTC"]) == 40
    # b's spike at 13 s met a book of a's 4 s old: refused, no trade in the outage.
    assert result.run.execution.refusals["stale_book"] == 1
    assert opened(result) == [5.0, 20.0]  # trading resumed after the recovery
    assert [(f, p) for f, p, _, _ in events.seen] == [
        ("s1_feed", "injected"),
        ("s1_feed", "detected"),
        ("s1_feed", "recovered"),
    ]


def test_feed_disconnect_does_nothing_before_its_time(run_scenario):
    cut = feed_cut(at="30s", backoff=NO_JITTER)
    result = run(run_scenario, {5, 13, 20}, [cut], max_book_age="2s")
    assert opened(result) == [5.0, 13.0, 20.0]
    timeline = result.summary["faults"]["timeline"]["s1_feed"]
    assert timeline["injected_at_s"] == timeline["detected_at_s"] == 30.0
    # 30 s + 1 s, 3 s, 7 s: the outage ends at 35 s, the attempt at 37 s succeeds.
    assert timeline["recovered_at_s"] == 37.0 and timeline["mttr_s"] == 7.0


def test_backoff_grows_by_its_factor_up_to_its_cap(run_scenario):
    """initial 1 s, x3, capped at 5 s: waits 1, 3, 5, 5, 5, ... from 10 s, so attempts at
    11, 14, 19, 24, 29, 34; the outage ends at 30 s: the attempt at 34 s succeeds."""
    cut = feed_cut(duration="20s", backoff={"initial": "1s", "max": "5s", "factor": 3, "jitter": 0})
    result = run(run_scenario, set(), [cut])
    attempts = [at(result, ts) for ts in result.run.links["a"].attempts]
    assert attempts == [11.0, 14.0, 19.0, 24.0, 29.0, 34.0]
    timeline = result.summary["faults"]["timeline"]["s1_feed"]
    assert timeline["recovered_at_s"] == 34.0 and timeline["stats"]["reconnect_attempts"] == 6


def jittered(run_scenario, seed: int) -> list[int]:
    cut = feed_cut(duration="25s", backoff={"initial": "1s", "max": "4s", "factor": 2,
                                            "jitter": 0.2})  # fmt: skip
    result = run(run_scenario, set(), [cut], seed=seed)
    start = result.summary["time"]["start_ns"] + 10 * S
    return [ts - start for ts in result.run.links["a"].attempts]


def test_backoff_jitter_stays_within_its_bounds_and_replays_with_the_seed(run_scenario):
    attempts = jittered(run_scenario, seed=3)
    waits = [b - a for a, b in zip([0, *attempts], attempts, strict=False)]
    nominal = [1, 2, 4, 4, 4, 4, 4, 4, 4, 4][: len(waits)]
    for wait, base in zip(waits, nominal, strict=True):
        assert 0.8 * base * S <= wait <= 1.2 * base * S
    assert any(wait != base * S for wait, base in zip(waits, nominal, strict=True))
    # The last attempt is the first at or after the outage's end (25 s after the cut).
    assert attempts[-2] < 25 * S <= attempts[-1]
    assert jittered(run_scenario, seed=3) == attempts  # reproducible
    assert jittered(run_scenario, seed=4) != attempts  # and the seed's


def test_an_outage_longer_than_the_run_is_unrecovered(run_scenario):
    """The data ends at 19 s: attempts at 11, 13 and 17 s; the next (25 s) is never made,
    though the wind-down runs the clock on for the orders still in flight."""
    result = run(run_scenario, set(), [feed_cut(duration="1h", backoff=NO_JITTER)], seconds=20)
    faults = result.summary["faults"]
    timeline = faults["timeline"]["s1_feed"]
    assert timeline["detected_at_s"] == 10.0
    assert timeline["recovered_at_s"] is None and timeline["mttr_s"] is None
    assert timeline["stats"]["reconnect_attempts"] == 3
    assert faults["unrecovered"] == 1


def test_a_window_after_the_data_never_opens(run_scenario):
    late = [
        feed_cut(at="30s"),
        spike(at="25s", duration="1h"),
        {**errors(429, at="30s"), "name": "b_429"},
    ]
    result = run(run_scenario, {5}, late, seconds=20)
    timeline = result.summary["faults"]["timeline"]
    assert [t["injected_at_s"] for t in timeline.values()] == [None, None, None]
    assert result.run.venues["b"].extra_latency == 0
    assert result.run.links["a"].attempts == []


# ---- latency_spike --------------------------------------------------------------------------


def spike(**extra: Any) -> dict[str, Any]:
    fault = {"type": "latency_spike", "name": "slow_b", "venue": "b", "at": "10s"}
    return {"duration": "5s", "extra": "800ms", **fault, **extra}


def test_latency_spike_is_detected_by_a_slow_answer_and_recovered_by_a_fast_one(run_scenario):
    """Window 10-15 s, +800 ms on b. Entry at 12 s: b answers at 12.81 s (810 ms > 500 ms:
    detected); its exit at 13 s is slow too. The next order sent after 15 s is the entry at
    20 s, answered at 20.01 s: recovered."""
    result = run(run_scenario, {5, 12, 20}, [spike()])
    timeline = result.summary["faults"]["timeline"]["slow_b"]
    assert timeline["injected_at_s"] == 10.0
    assert timeline["detected_at_s"] == 12.81
    assert timeline["recovered_at_s"] == 20.01
    assert timeline["mttr_s"] == 7.2
    assert timeline["stats"] == {"slow_answers": 2}
    b_fills = [at(result, f.ts) for f in result.fills if f.venue == "b"]
    assert b_fills == [5.01, 6.01, 12.81, 13.81, 20.01, 21.01]
    assert opened(result) == [5.0, 12.0, 20.0]


def test_a_latency_spike_under_the_bound_is_not_detected(run_scenario):
    result = run(run_scenario, {5, 12, 20}, [spike(extra="300ms")])
    timeline = result.summary["faults"]["timeline"]["slow_b"]
    assert timeline["injected_at_s"] == 10.0
    assert timeline["detected_at_s"] is None and timeline["recovered_at_s"] is None
    assert result.summary["faults"]["unrecovered"] == 0
    assert [at(result, f.ts) for f in result.fills if f.venue == "b"][2] == 12.31


# ---- venue_errors ---------------------------------------------------------------------------


def errors(error: Any, **extra: Any) -> dict[str, Any]:
    fault = {"type": "venue_errors", "name": "b_down", "venue": "b", "at": "10s"}
    return {"duration": "5s", "error": error, **fault, **extra}


@pytest.mark.parametrize(
    ("error", "reason"), [(429, "429 Too Many Requests"), ("5xx", "503 Service Unavailable")]
)
def test_venue_errors_reject_orders_in_the_window(run_scenario, error, reason):
    """Entries at 5 (before the window), 12, 13, 14 (in it) and 20 s (after). In the window
    b rejects each entry leg on arrival (t + 10 ms) and the kernel unwinds a's leg; the
    first order b accepts after the window is the entry at 20 s."""
    result = run(run_scenario, {5, 12, 13, 14, 20}, [errors(error)])
    b_orders = [o for o in result.run.execution.orders.values() if o.venue == "b"]
    rejected = [(at(result, o.created_at), o.reason) for o in b_orders if o.reason]
    assert rejected == [(12.0, reason), (13.0, reason), (14.0, reason)]
    assert all(o.state is OrderState.REJECTED for o in b_orders if o.reason)
    faults = result.summary["faults"]
    assert faults["venue_errors"] == 3
    timeline = faults["timeline"]["b_down"]
    assert (timeline["injected_at_s"], timeline["detected_at_s"]) == (12.01, 12.01)
    assert timeline["recovered_at_s"] == 20.01 and timeline["mttr_s"] == 8.0
    reasons = [t.exit_reason for t in result.trades]
    assert reasons == ["reversion", "leg_failure", "leg_failure", "leg_failure", "reversion"]
    assert result.summary["portfolio"]["open_trades"] == 0


def test_a_timeout_loses_the_order_and_the_kernel_finds_out_by_asking(run_scenario):
    """The entry at 12 s vanishes on its way to b. 500 ms later the kernel asks b, which
    does not know it (answer at 12.51 s: detected); with one query allowed the order is
    booked rejected as lost and a's leg is unwound."""
    result = run(
        run_scenario, {5, 12, 20}, [errors("timeout")], order_timeout="500ms", max_queries=1
    )
    venue_b = result.run.venues["b"]
    lost = [o for o in result.run.execution.orders.values() if o.reason.startswith("lost")]
    assert [(o.venue, at(result, o.created_at)) for o in lost] == [("b", 12.0)]
    assert lost[0].client_id not in venue_b.orders  # b never saw it
    assert result.summary["venues"]["b"]["orders_received"] == 4  # 5, 6, 20 and 21 s
    assert result.summary["orders"]["queries"] == 1
    timeline = result.summary["faults"]["timeline"]["b_down"]
    assert timeline["injected_at_s"] == 12.01
    assert timeline["detected_at_s"] == 12.51
    assert timeline["recovered_at_s"] == 20.01
    unwound = [at(result, f.ts) for f in result.fills if f.role == "unwinding"]
    assert unwound == [12.52]  # sent when the kernel gave the order up, done 10 ms later
    assert opened(result) == [5.0, 12.0, 20.0]


def test_error_rate_draws_from_the_seeded_generator(run_scenario):
    """Entries every 2 s from 10 s to 28 s, in a 20 s window: with rate 1 every b order in
    it is rejected, with 0 none, with 0.5 some (each order a draw), the same ones again for
    the same seed."""

    def outcome(rate, seed=0):
        fault = errors(429, duration="20s", rate=rate)
        result = run(run_scenario, set(range(10, 30, 2)), [fault], seed=seed)
        orders = result.run.execution.orders.values()
        in_window = [o for o in orders if o.venue == "b" and 10 <= at(result, o.created_at) < 30]
        rejected = [o.client_id for o in in_window if o.reason]
        assert result.summary["faults"].get("venue_errors", 0) == len(rejected)
        return rejected, len(in_window)

    assert outcome(0) == ([], 20)  # ten round trips
    rejected, sent = outcome(1)
    assert (len(rejected), sent) == (10, 10)  # every entry rejected: no exit to send
    half, sent = outcome(0.5)
    assert 0 < len(half) < sent
    assert outcome(0.5) == (half, sent)
    assert any(outcome(0.5, seed=s)[0] != half for s in (1, 2, 3))


# ---- names, expectations, the summary ---------------------------------------------------------


def test_expect_on_the_timeline_is_checked_at_load_and_evaluated(run_scenario):
    scenario = two_venue_scenario(market({5, 20}))
    scenario["faults"] = [feed_cut(backoff=NO_JITTER)]
    scenario["expect"] = {
        "faults.timeline.s1_feed.mttr_s": {"max": 7},
        "faults.timeline.s1_feed.stats.reconnect_attempts": {"eq": 3},
        "faults.unrecovered": {"eq": 0},
        "faults.duplicate_orders": {"eq": 0},
        "venues.a.duplicate_orders": {"eq": 0},
    }
    assert run_scenario(scenario).summary["passed"] is True
    scenario["expect"] = {"faults.timeline.s1_feed.mttr_s": {"max": 6.9}}
    assert run_scenario(scenario).summary["passed"] is False
    scenario["expect"] = {"faults.timeline.s1_feed.mttr": {"max": 30}}
    with pytest.raises(ArbframeError, match="no such value in the run summary"):
        run_scenario(scenario)


def test_fault_names_are_unique_and_default_to_their_slot(run_scenario):
    scenario = two_venue_scenario(market(set(), 5))
    scenario["faults"] = [feed_cut(), {**feed_cut(), "venue": "b"}]
    with pytest.raises(ArbframeError, match="two faults are named 's1_feed'"):
        run_scenario(scenario)
    scenario["faults"] = [feed_cut(name="a.b")]
    with pytest.raises(ArbframeError, match="does not match"):
        run_scenario(scenario)
    del scenario["faults"][0]["name"]
    assert list(run_scenario(scenario).summary["faults"]["timeline"]) == ["faults[0]"]


def test_order_faults_keep_counting_and_get_a_timeline(run_scenario):
    reject = {"type": "order_reject", "venue": "b", "role": "entering", "count": 1}
    result = run(run_scenario, {5, 20}, [reject])
    faults = result.summary["faults"]
    assert faults["order_reject"] == 1
    timeline = faults["timeline"]["faults[0]"]
    assert timeline["injected_at_s"] == 5.01 and timeline["detected_at_s"] is None
