"""When a leg fails, the position is rebalanced or unwound, never left naked silently."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal as D

from conftest import book, two_venue_scenario

EVENTS = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),
    book("2s", "b", 100.20, 100.25),  # holds; too narrow for a new entry once flat
    book("3s", "b", 99.80, 99.85),  # (99.85 - 99.90) / 99.90 < 5 bp: reversion
]


def exposure(fills):
    out = defaultdict(D)
    for f in fills:
        out[f.venue] += f.amount if f.side == "buy" else -f.amount
    return dict(out)


def test_rejected_leg_is_unwound(run_scenario):
    scenario = two_venue_scenario(EVENTS)
    scenario["faults"] = [{"type": "order_reject", "venue": "b", "role": "entering", "count": 1}]
    result = run_scenario(scenario)
    [trade] = result.trades
    assert [(f.venue, f.side, f.role) for f in result.fills] == [
        ("a", "buy", "entering"),
        ("a", "sell", "unwinding"),
    ]
    assert exposure(result.fills) == {"a": D(0)}
    assert trade.exit_reason == "leg_failure" and trade.net_pnl < 0
    assert not trade.exited  # the kernel closed it, not an exit decision
    s = result.summary
    assert (s["portfolio"]["trades_closed"], s["portfolio"]["exits"]) == (1, 0)
    assert s["faults"]["order_reject"] == 1
    assert s["alerts"] == {"P2": 1}
    assert s["orders"]["rejected"] == 1
    assert s["portfolio"]["open_trades"] == 0
    assert s["reconciliation"]["passed"] is True


def test_partially_filled_leg_is_hedged_down(run_scenario):
    scenario = two_venue_scenario(EVENTS)
    scenario["faults"] = [
        {"type": "partial_fill", "venue": "b", "role": "entering", "fraction": 0.4, "count": 1}
    ]
    result = run_scenario(scenario)
    [trade] = result.trades
    legs = [(f.venue, f.side, f.amount, f.role) for f in result.fills]
    assert legs == [
        ("a", "buy", D("0.500"), "entering"),
        ("b", "sell", D("0.200"), "entering"),
        ("a", "sell", D("0.300"), "unwinding"),
        ("a", "sell", D("0.200"), "exiting"),
        ("b", "buy", D("0.200"), "exiting"),
    ]
    assert trade.exit_reason == "reversion"
    assert exposure(result.fills) == {"a": D(0), "b": D(0)}


def test_rebalance_policy_retries_the_missing_leg(run_scenario):
    rebalance = {"leg_risk": {"policy": "rebalance", "max_retries": 2}}
    scenario = two_venue_scenario(EVENTS, execution=rebalance)
    scenario["faults"] = [{"type": "order_reject", "venue": "b", "role": "entering", "count": 1}]
    result = run_scenario(scenario)
    # b's first entry order was rejected; the retry (a second order on b) filled it.
    orders = list(result.run.execution.orders.values())
    assert [(o.venue, o.role, o.state.value) for o in orders[:3]] == [
        ("a", "entering", "filled"),
        ("b", "entering", "rejected"),
        ("b", "entering", "filled"),
    ]
    legs = [(f.venue, f.side, f.amount, f.role) for f in result.fills]
    assert legs[:2] == [("a", "buy", D("0.500"), "entering"), ("b", "sell", D("0.500"), "entering")]
    assert [t.exit_reason for t in result.trades] == ["reversion"]
    assert result.summary["faults"]["order_reject"] == 1
    assert "P2" not in result.summary["alerts"]  # no unwind was needed
    # The same fault under the default policy unwinds instead: the policy made the difference.
    unwound = run_scenario(dict(scenario, strategy=two_venue_scenario(EVENTS)["strategy"]))
    assert [t.exit_reason for t in unwound.trades] == ["leg_failure"]


def test_unwind_that_keeps_failing_raises_p0_and_halts(run_scenario):
    scenario = two_venue_scenario(EVENTS + [book("5s", "b", 100.60, 100.70)])
    scenario["faults"] = [
        {"type": "order_reject", "venue": "b", "role": "entering"},
        {"type": "order_reject", "venue": "a", "role": "unwinding"},
    ]
    result = run_scenario(scenario)
    s = result.summary
    assert s["alerts"] == {"P0": 1, "P2": 1}
    assert s["portfolio"]["open_trades"] == 1  # reported, not hidden
    assert exposure(result.fills) == {"a": D("0.500")}
    # halted: the later opportunity at 5s is not taken
    assert len(result.run.execution.trades) == 1
