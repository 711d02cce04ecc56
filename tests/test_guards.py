"""Guard tiers: the most restrictive verdict wins, and every decision is counted."""

from __future__ import annotations

from decimal import Decimal as D

from conftest import book, two_venue_scenario

# Two separate opportunities: entry at 1s (reverts at 2s), a second one at 3s.
EVENTS = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),
    book("2s", "b", 99.80, 99.85),
    book("3s", "b", 100.60, 100.70),
    book("4s", "b", 99.80, 99.85),
]


def test_symbol_guard_degrades_size_to_the_cap(run_scenario):
    scenario = two_venue_scenario(EVENTS)
    scenario["guards"] = [{"type": "symbol", "max_notional": 20}]  # 0.5 BTC ~ 50 USDT
    result = run_scenario(scenario)
    assert {f.amount for f in result.fills} == {D("0.200")}  # 50 * 20/50 / 100.00
    guards = result.summary["guards"]
    assert guards["by_guard"] == {"symbol": {"degrade": 2, "rules": {"max_notional": 2}}}
    assert guards["decisions"] == {"symbol": {"allow": 0, "degrade": 2, "cooldown": 0, "block": 0}}
    assert guards["triggers"] == {"max_notional": 2}


def test_cooldown_after_a_loss_skips_the_next_opportunity(run_scenario):
    losing = [
        book("0s", "a", 99.90, 100.00),
        book("1s", "b", 100.60, 100.70),
        book("2s", "b", 101.60, 101.70),  # widens: stop loss
        book("3s", "b", 100.05, 100.10),  # flat again
        book("4s", "b", 100.60, 100.70),
    ]  # a new opportunity, inside the cooldown
    scenario = two_venue_scenario(losing, stop_loss_bps=50)
    scenario["guards"] = [{"type": "symbol", "max_consecutive_losses": 1, "cooldown": "1m"}]
    result = run_scenario(scenario)
    assert [t.exit_reason for t in result.trades] == ["stop_loss"]
    assert result.summary["guards"]["by_guard"]["symbol"]["cooldown"] == 1
    assert result.summary["guards"]["triggers"] == {"max_consecutive_losses": 1}
    # without the guard the second opportunity is taken: the guard is what stopped it
    del scenario["guards"]
    assert len(run_scenario(scenario).trades) == 2


def test_global_guard_blocks_after_the_daily_loss_limit(run_scenario):
    losing = [
        book("0s", "a", 99.90, 100.00),
        book("1s", "b", 100.60, 100.70),
        book("2s", "b", 101.60, 101.70),
        book("3s", "b", 100.05, 100.10),
        book("4s", "b", 100.60, 100.70),
    ]
    scenario = two_venue_scenario(losing, stop_loss_bps=50)
    scenario["guards"] = [{"type": "symbol"}, {"type": "global", "daily_loss_limit": 0.1}]
    result = run_scenario(scenario)
    assert len(result.trades) == 1 and result.trades[0].net_pnl <= D("-0.1")
    by_guard = result.summary["guards"]["by_guard"]
    assert by_guard["global"] == {"allow": 1, "block": 1, "rules": {"daily_loss_limit": 1}}
    # the symbol guard was asked too, and allowed both intents
    assert by_guard["symbol"] == {"allow": 2, "rules": {}}
