"""Every scenario in scenarios/ is a regression test: its expectations fail when its run
does not happen, and they name entries and an outcome in money."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakevenues.server import FakeVenues

from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.scenario import load_scenario
from arbframe.summary import evaluate
from arbframe.testing import run_scenario_file

SCENARIOS = sorted(
    p
    for p in (Path(__file__).parent.parent / "scenarios").glob("*.yaml")
    if not p.name.startswith("_")
)
NOTHING = {  # what a run where nothing was traded (or nothing arrived) reports
    "entries": 0,
    "exits": 0,
    "trades_closed": 0,
    "open_trades": 0,
    "wins": 0,
    "losses": 0,
    "winrate": None,
    "avg_r": None,
    "expectancy": None,
    "pnl": "0",
    "gross_pnl": "0",
    "fees": "0",
    "slippage": "0",
    "sharpe": None,
    "exit_reasons": {},
}


@pytest.fixture
def venues_for(monkeypatch):
    """Live scenarios (``live_*``) run against the local fakes of their venues."""

    @contextmanager
    def scope(path: Path):
        if not path.stem.startswith("live_"):
            yield
            return
        with FakeVenues() as fake:
            for key, value in fake.env().items():
                monkeypatch.setenv(key, value)
            yield

    return scope


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_asserts_entries_and_money(path, venues_for):
    with venues_for(path):
        check_scenario(path)


def check_scenario(path: Path) -> None:
    expect = load_scenario(path, build_registry(get_plugin_manager())).data.get("expect", {})
    assert "portfolio.entries" in expect, "every scenario says how many entries it expects"
    money = {"portfolio.pnl", "portfolio.fees", "portfolio.winrate", "portfolio.wins"}
    assert money & set(expect), "and checks an outcome: PnL, fees, win rate or wins"
    # ...and those checks have teeth: the scenario's own summary with its trading (or its
    # data) taken away must fail them, while the real one passes.
    summary = run_scenario_file(path).summary
    assert summary["passed"], [e for e in summary["expectations"] if not e["passed"]]
    idle = copy.deepcopy(summary)
    idle["portfolio"].update(NOTHING)
    idle["events"]["quotes"] = 0
    failed = [e["name"] for e in evaluate(expect, idle) if not e["passed"]]
    assert failed, f"{path.name}: its expectations hold even when nothing happens"
