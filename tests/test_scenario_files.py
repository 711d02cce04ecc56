"""Every scenario in scenarios/ is a regression test: it asserts the lifecycle happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.scenario import load_scenario

SCENARIOS = sorted(
    p
    for p in (Path(__file__).parent.parent / "scenarios").glob("*.yaml")
    if not p.name.startswith("_")
)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_asserts_entries_and_money(path):
    expect = load_scenario(path, build_registry(get_plugin_manager())).data.get("expect", {})
    assert "portfolio.entries" in expect, "every scenario says how many entries it expects"
    money = {"portfolio.pnl", "portfolio.fees", "portfolio.winrate", "portfolio.wins"}
    assert money & set(expect), "and checks an outcome: PnL, fees, win rate or wins"
    assert len(expect) >= 4
