"""The venue health monitor (arbframe.health): error rate and latency over a rolling window,
degraded periods, the score, the order-rate budget; fed by the order flow in a run, and what
the exchange guard's circuit breaker makes of it."""

from __future__ import annotations

import pytest
from test_fault_injection import at, market, run

from arbframe.errors import ArbframeError, ConfigError
from arbframe.health import VenueHealth, venue_error

S = 1_000_000_000
MS = 1_000_000


def monitor(now: list[int], **config):
    return VenueHealth(["a", "b"], config, lambda: now[0])


def test_error_rate_over_the_window_and_degraded_periods():
    now = [100 * S]
    health = monitor(now, window="10s", min_orders=3, max_error_rate=0.5)
    health.answered("b", 5 * MS, True)
    health.answered("b", 5 * MS, True)
    assert health.error_rate("b") == (1.0, 2)
    assert not health.degraded("b")  # 2 answers: below the minimum sample
    health.answered("b", 5 * MS, False)
    assert health.degraded("b") and health.score("b") == 0.0  # 2 of 3
    assert health.error_rate("a") == (0.0, 0) and health.score("a") == 1.0
    now[0] += 10 * S  # the window moves past all three
    assert health.error_rate("b") == (0.0, 0)
    assert not health.degraded("b") and health.score("b") == 1.0
    health.timed_out("b")  # no answer at all: an error without a latency
    health.timed_out("b")
    health.answered("b", 5 * MS, False)
    assert health.degraded("b")
    summary = health.summary()["b"]
    assert summary["errors"] == 4 and summary["answers"] == 6
    assert summary["degraded_periods"] == 2
    assert summary["latency_ms_p50"] == 5.0


def test_latency_bound_and_the_score():
    now = [100 * S]
    health = monitor(now, max_latency="100ms", max_error_rate=0.5)
    for _ in range(98):
        health.answered("a", 10 * MS, False)
    health.answered("a", 100 * MS, False)
    assert not health.degraded("a")  # p99 at the bound
    health.answered("a", 400 * MS, False)
    health.answered("a", 400 * MS, False)
    assert health.degraded("a")  # p99 past it
    assert health.score("a") == pytest.approx(100 / 400)
    summary = health.summary()["a"]
    assert (summary["latency_ms_p50"], summary["latency_ms_p99"]) == (10.0, 400.0)
    health.answered("b", 10 * MS, True)  # 1 error in 4 on b: half the bound ...
    for _ in range(3):
        health.answered("b", 10 * MS, False)
    assert health.score("b") == 1.0  # ... but 4 answers are below min_orders (5): no evidence
    health.answered("b", 10 * MS, True)  # 2 errors in 8 (8 >= 5): half the bound
    for _ in range(3):
        health.answered("b", 10 * MS, False)
    assert health.score("b") == pytest.approx(0.5)


def test_degraded_at_the_default_error_rate_bound_with_the_minimum_sample():
    now = [100 * S]
    health = monitor(now)  # defaults: min_orders 5, max_error_rate 0.2
    health.answered("b", 5 * MS, True)
    for _ in range(3):
        health.answered("b", 5 * MS, False)
    assert health.error_rate("b") == (0.25, 4) and not health.degraded("b")  # 4 < min_orders
    health.answered("b", 5 * MS, False)
    assert health.error_rate("b") == (0.2, 5)  # exactly at the bound ...
    assert health.degraded("b")  # ... is degraded ("at or above")
    assert health.score("b") == 0.0
    health.answered("b", 5 * MS, False)  # 1 in 6: under the bound
    assert not health.degraded("b")
    assert health.summary()["b"]["degraded_periods"] == 1


def test_venue_errors_are_told_from_business_refusals():
    assert venue_error("429 Too Many Requests") and venue_error("503 Service Unavailable")
    assert not venue_error("insufficient balance") and not venue_error("no liquidity")


def test_rate_limits_name_known_venues():
    with pytest.raises(ConfigError) as err:
        monitor([0], rate_limits={"nowhere": {"soft": 1, "hard": 2}})
    assert err.value.key == ("rate_limits", "nowhere")
    with pytest.raises(ConfigError) as err:
        monitor([0], rate_limits={"a": {"soft": 3, "hard": 2}})
    assert err.value.key == ("rate_limits", "a", "hard")


def test_state_survives_a_snapshot():
    now = [100 * S]
    health = monitor(now, rate_limits={"a": {"soft": 1, "hard": 3}})
    health.sent("a")
    health.sent("a")
    health.answered("a", 7 * MS, True)
    again = monitor(now, rate_limits={"a": {"soft": 1, "hard": 3}})
    again.restore_state(health.snapshot_state())
    assert again.summary() == health.summary()
    assert again.error_rate("a") == health.error_rate("a") == (1.0, 1)
    assert again.rate_level("a") == health.rate_level("a") == 1


# ---- in a run ---------------------------------------------------------------------------------


def test_the_order_flow_feeds_the_monitor_and_the_breaker_cools_the_venue(run_scenario):
    """Entries at 5, 12, 13, 14 and 20 s; b answers 429 from 10 to 15 s. The breaker (2 of
    4 answers) trips on the intent at 14 s and keeps b out for 30 s, so the entry at 20 s
    is refused too."""
    fault = {"type": "venue_errors", "venue": "b", "at": "10s", "duration": "5s", "error": 429}
    breaker = {"max_error_rate": 0.5, "min_orders": 4, "cooldown": "30s"}
    result = run(run_scenario, {5, 12, 13, 14, 20}, [fault])
    health = result.summary["health"]["b"]
    assert (health["errors"], health["degraded_periods"]) == (3, 1)
    assert health["latency_ms_p50"] == 10.0  # paper latency
    assert len([t for t in result.trades if t.fills]) == 5  # without the breaker
    scenario_guards = [{"type": "exchange", "circuit_breaker": breaker}]
    result = run_with_guards(run_scenario, scenario_guards, fault)
    assert result.summary["guards"]["triggers"] == {"circuit_breaker": 1}
    assert [at(result, t.opened_at) for t in result.trades if t.fills] == [5.0, 12.0, 13.0]
    first = result.summary["guard_first"]["exchange"]["cooldown"]
    assert first["rule"] == "circuit_breaker" and first["reason"].startswith("b: error rate 50%")
    assert result.summary["execution"]["refused"]["cooldown"] >= 1  # 20 s: b still cooling


def run_with_guards(run_scenario, guards, fault):
    from conftest import two_venue_scenario

    scenario = two_venue_scenario(market({5, 12, 13, 14, 20}, 40))
    scenario["faults"] = [fault]
    scenario["guards"] = guards
    return run_scenario(scenario)


def test_a_latency_spike_shows_in_the_percentiles(run_scenario):
    fault = {"type": "latency_spike", "venue": "b", "at": "10s", "duration": "5s", "extra": "1s"}
    result = run(run_scenario, {5, 12, 20}, [fault])
    health = result.summary["health"]["b"]
    assert health["latency_ms_p99"] >= 1000 and health["degraded_periods"] == 1
    assert result.summary["health"]["a"]["degraded_periods"] == 0


def test_an_unknown_venue_in_health_is_a_positioned_error(run_scenario):
    from conftest import two_venue_scenario

    scenario = two_venue_scenario(market({5}, 10))
    scenario["health"] = {"rate_limits": {"nowhere": {"soft": 1, "hard": 2}}}
    with pytest.raises(ArbframeError, match=r"health\.rate_limits\.nowhere: unknown venue"):
        run_scenario(scenario)
