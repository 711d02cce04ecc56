"""spread_arb's signal options, several strategies in one run, and guards that see entries."""

from __future__ import annotations

from decimal import Decimal as D

from conftest import book, two_venue_scenario

S = 1_000_000_000
T0 = 1_704_067_200 * S

# b's bid 10 bp over a's ask: 20 bp short of the 30 bp of entry fees.
NARROW = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.10, 100.20),
    book("2s", "b", 99.70, 99.80),
]


def test_a_negative_entry_threshold_pays_to_get_in(run_scenario):
    assert run_scenario(two_venue_scenario(NARROW)).fills == []  # entry_bps 10: no
    result = run_scenario(two_venue_scenario(NARROW, entry_bps=-25))  # edge -20 >= -25
    [trade] = result.trades
    assert trade.opened_at == T0 + S and round(trade.entry_spread_bps, 6) == 10.0
    assert run_scenario(two_venue_scenario(NARROW, entry_bps=-15)).fills == []  # -20 < -15


CROSS = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),  # enter: buy a, sell b
    book("2s", "a", 100.40, 100.50),  # a's mid 100.45 < b's 100.65
    book("3s", "a", 100.60, 100.70),  # a's mid 100.65 reaches b's: the mids cross
    book("4s", "b", 100.50, 100.55),  # the premium never overshoots to -100 bp
]


def test_exit_when_the_mids_cross(run_scenario):
    plain = run_scenario(two_venue_scenario(CROSS, exit_bps=-100))
    assert [(t.exit_reason, t.closed_at) for t in plain.trades] == [
        ("end_of_run", T0 + 4 * S + 10**7)
    ]
    result = run_scenario(two_venue_scenario(CROSS, exit_bps=-100, exit_on_mid_cross=True))
    [trade] = result.trades
    assert (trade.exit_reason, trade.closed_at) == ("mid_cross", T0 + 3 * S + 10**7)
    assert trade.exited and result.summary["portfolio"]["exits"] == 1


def two_strategies(**global_guard) -> dict:
    scenario = two_venue_scenario(
        [book("0s", "a", 99.90, 100.00), book("1s", "b", 100.60, 100.70)]
        + [book("3s", "b", 99.80, 99.85)]
    )
    strategy = scenario.pop("strategy")
    scenario["strategies"] = [
        {**strategy, "name": "small", "size": {"base": 0.1}},
        {**strategy, "name": "large", "size": {"base": 0.4}},
    ]
    if global_guard:
        scenario["guards"] = [{"type": "global", **global_guard}]
    return scenario


def test_several_strategies_share_a_run(run_scenario):
    result = run_scenario(two_strategies())
    entered = {(f.trade_id, f.venue): f.amount for f in result.fills if f.role == "entering"}
    assert {t.strategy: t.trade_id for t in result.trades} == {"small": "BTC-1", "large": "BTC-2"}
    assert entered == {
        ("BTC-1", "a"): D("0.100"),
        ("BTC-1", "b"): D("0.100"),
        ("BTC-2", "a"): D("0.400"),
        ("BTC-2", "b"): D("0.400"),
    }
    s = result.summary
    assert s["strategies"]["small"]["entries"] == s["strategies"]["large"]["entries"] == 1
    assert D(s["portfolio"]["pnl"]) == sum((t.net_pnl for t in result.trades), D(0))
    assert s["reconciliation"]["passed"] is True


def test_guards_see_entries_as_they_open(run_scenario):
    """The global guard counts open trades from on_trade_opened: with one allowed, the
    second strategy's entry in the same instant is blocked."""
    result = run_scenario(two_strategies(max_open_trades=1))
    assert [t.strategy for t in result.trades] == ["small"]
    by_guard = result.summary["guards"]["by_guard"]
    assert by_guard == {"global": {"allow": 1, "block": 1, "rules": {"max_open_trades": 1}}}
    assert result.summary["guard_state"]["global"]["open_trades"] == 0  # closed again


def test_two_strategies_need_distinct_names(run_scenario, tmp_path):
    import pytest

    from arbframe.errors import ScenarioError

    scenario = two_strategies()
    del scenario["strategies"][1]["name"], scenario["strategies"][0]["name"]
    with pytest.raises(ScenarioError, match="two strategies are named 'spread_arb'"):
        run_scenario(scenario)
    scenario["strategies"][0]["name"] = scenario["strategies"][1]["name"] = "twin"
    with pytest.raises(ScenarioError, match=r"strategies\[1\]\.name: two strategies are named"):
        run_scenario(scenario)
