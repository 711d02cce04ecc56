"""`expect:` values that refer to other summary values: `{sum|min|max|ref: path}`, `*`
expanding over a mapping's keys, sums exact, and a clear error when a path names nothing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arbframe.errors import ScenarioError
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.report import format_summary
from arbframe.scenario import load_scenario
from arbframe.summary import evaluate, expand

CAMPAIGN = Path(__file__).resolve().parents[1] / "scenarios" / "_campaign_base.yaml"


def summary(btc_pnl: str, eth_pnl: str, portfolio_pnl: str) -> dict[str, Any]:
    return {
        "portfolio": {"pnl": portfolio_pnl, "entries": 5, "winrate": 0.5, "passed": True},
        "symbols": {
            "BTC": {"pnl": btc_pnl, "entries": 2, "winrate": 0.25, "passed": True},
            "ETH": {"pnl": eth_pnl, "entries": 3, "winrate": 0.75, "passed": False},
        },
    }


def one(expect: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    [result] = evaluate(expect, data)
    return result


def test_sum_over_a_wildcard_holds_when_the_portfolio_is_the_sum() -> None:
    # 0.1 + 0.2 is not 0.3 in floats: the sum is over exact Decimals.
    result = one({"portfolio.pnl": {"eq": {"sum": "symbols.*.pnl"}}}, summary("0.1", "0.2", "0.3"))
    assert result["passed"], result
    assert result["resolved"] == {"eq": "0.3"}
    assert "error" not in result


def test_sum_fails_when_the_portfolio_differs_from_the_symbols() -> None:
    data = summary("0.1", "0.2", "0.30000001")
    result = one({"portfolio.pnl": {"eq": {"sum": "symbols.*.pnl"}}}, data)
    assert not result["passed"]
    assert result["resolved"] == {"eq": "0.3"}
    assert result["actual"] == "0.30000001"
    # The same reference with the ordering comparators.
    assert one({"portfolio.pnl": {"gt": {"sum": "symbols.*.pnl"}}}, data)["passed"]
    assert not one({"portfolio.pnl": {"le": {"sum": "symbols.*.pnl"}}}, data)["passed"]


def test_counts_sum_too() -> None:
    data = summary("1", "2", "3")
    assert one({"portfolio.entries": {"eq": {"sum": "symbols.*.entries"}}}, data)["passed"]
    data["symbols"]["ETH"]["entries"] = 4
    assert not one({"portfolio.entries": {"eq": {"sum": "symbols.*.entries"}}}, data)["passed"]


def test_between_the_smallest_and_largest_of_the_matches() -> None:
    between = {"portfolio.winrate": {"ge": {"min": "symbols.*.winrate"},
                                     "le": {"max": "symbols.*.winrate"}}}  # fmt: skip
    data = summary("1", "2", "3")
    result = one(between, data)
    assert result["passed"]
    assert result["resolved"] == {"ge": "0.25", "le": "0.75"}
    data["portfolio"]["winrate"] = 0.8
    assert not one(between, data)["passed"]
    data["portfolio"]["winrate"] = 0.2
    assert not one(between, data)["passed"]


def test_ref_compares_with_one_other_value() -> None:
    data = summary("1", "2", "3")
    assert one({"symbols.BTC.winrate": {"lt": {"ref": "symbols.ETH.winrate"}}}, data)["passed"]
    assert not one({"symbols.ETH.winrate": {"lt": {"ref": "symbols.BTC.winrate"}}}, data)["passed"]
    # ref takes one value: a wildcard matching two is an error, not a guess.
    result = one({"portfolio.pnl": {"eq": {"ref": "symbols.*.pnl"}}}, data)
    assert not result["passed"]
    assert result["error"] == "symbols.*.pnl matches 2 values; ref takes one"


def test_a_path_that_matches_nothing_fails_with_an_error() -> None:
    data = summary("1", "2", "3")
    data["symbols"] = {}  # e.g. no symbol traded
    result = one({"portfolio.pnl": {"eq": {"sum": "symbols.*.pnl"}}}, data)
    assert not result["passed"]
    assert result["error"] == "symbols.*.pnl matches nothing in the summary"
    # An empty sum is not 0: with nothing to add up, "0 == 0" would pass vacuously.
    data["portfolio"]["pnl"] = "0"
    assert not one({"portfolio.pnl": {"eq": {"sum": "symbols.*.pnl"}}}, data)["passed"]
    result = one({"portfolio.pnl": {"eq": {"sum": "symbols.BTC.pnl_typo"}}}, summary("1", "2", "3"))
    assert result["error"] == "symbols.BTC.pnl_typo matches nothing in the summary"


def test_values_that_are_not_numbers_are_not_aggregated() -> None:
    data = summary("1", "2", "3")
    data["symbols"]["ETH"]["winrate"] = None  # undefined: no closed trade
    result = one({"portfolio.winrate": {"ge": {"min": "symbols.*.winrate"}}}, data)
    assert not result["passed"]
    assert result["error"] == "symbols.ETH.winrate is None, not a number"
    # Flags are not counts.
    result = one({"portfolio.entries": {"ge": {"sum": "symbols.*.passed"}}}, data)
    assert result["error"] == "symbols.BTC.passed is True, not a number"


def test_a_mapping_of_other_keys_stays_a_literal() -> None:
    data = {"portfolio": {"exit_reasons": {"sum": 3}}}
    # {sum: 3} names no path: compared as the literal mapping it is.
    assert one({"portfolio.exit_reasons": {"eq": {"sum": 3}}}, data)["passed"]


def test_wildcards_expand_at_every_level_in_key_order() -> None:
    data = {
        "routes": {"ETH": {"a_b": {"pnl": "2"}}, "BTC": {"a_b": {"pnl": "1"}, "b_a": {"pnl": "-4"}}}
    }
    assert expand(data, "routes.*.*.pnl") == [
        ("routes.BTC.a_b.pnl", "1"),
        ("routes.BTC.b_a.pnl", "-4"),
        ("routes.ETH.a_b.pnl", "2"),
    ]
    data["total"] = "-1"
    result = one({"total": {"eq": {"sum": "routes.*.*.pnl"}}}, data)
    assert result["passed"] and result["resolved"] == {"eq": "-1"}


def test_the_report_shows_the_reference_and_what_it_came_to() -> None:
    from arbframe.testing import run_scenario_file

    spec = CAMPAIGN.parent / "c1_mixed.yaml"
    done = run_scenario_file(spec, seed=14).summary
    done["expectations"] = evaluate({"portfolio.pnl": {"eq": {"sum": "symbols.*.pnl"}}}, done)
    text = format_summary(done)
    pnl = Decimal(done["portfolio"]["pnl"])
    assert f"PASS  portfolio.pnl == sum(symbols.*.pnl) = {pnl.normalize():f}" in text


def load(tmp_path: Path, expect: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {CAMPAIGN}\nname: refs\nexpect:\n{expect}")
    load_scenario(path, build_registry(get_plugin_manager()))


def test_references_are_checked_when_the_file_is_loaded(tmp_path: Path) -> None:
    load(tmp_path, "  portfolio.pnl: {eq: {sum: symbols.*.pnl}, ge: {min: routes.*.*.pnl}}\n")
    with pytest.raises(ScenarioError) as err:
        load(tmp_path, "  portfolio.pnl: {eq: {sum: symbols.*.pnll}}\n")
    assert "expect['portfolio.pnl'].eq.sum" in str(err.value)
    assert "did you mean 'symbols.*.pnl'" in str(err.value)
    # An ordering comparator takes a number or a reference, nothing else.
    with pytest.raises(ScenarioError) as err:
        load(tmp_path, "  portfolio.pnl: {ge: {total: symbols.*.pnl}}\n")
    assert "expect['portfolio.pnl'].ge" in str(err.value)
