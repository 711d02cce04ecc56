"""D69 stress scenarios: each one's guard rule is what holds its bound (the same scenario
without that rule fails its `expect:`), and each `expect:` holds for at least 18 of seeds
0-19, as the campaigns' bands do (tests/test_campaign_bands.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.scenario import load_scenario
from arbframe.testing import run_scenario_file

SCENARIOS = Path(__file__).parent.parent / "scenarios"
# scenario -> (guard type, the rule's config key)
D69 = {
    "d69_slippage_stress": ("route", "slippage"),
    "d69_fee_surge": ("symbol", "max_consecutive_losses"),
    "d69_flash_crash": ("route", "max_consecutive_losses"),
    "d69_flash_spike": ("symbol", "max_consecutive_losses"),
    "d69_noise_saturation": ("route", "max_consecutive_losses"),
    "d69_multisymbol_stagger": ("symbol", "max_consecutive_losses"),
}
SEEDS = range(20)
MIN_PASSING = 18


def without_rule(name: str, tier: str, rule: str, tmp_path: Path) -> Path:
    """The scenario, merged (``extends`` resolved), with ``rule`` dropped from its ``tier``
    guard."""
    loaded = load_scenario(SCENARIOS / f"{name}.yaml", build_registry(get_plugin_manager()))
    data = copy.deepcopy(loaded.data)
    data.pop("extends", None)
    dropped = 0
    for guard in data["guards"]:
        if guard["type"] == tier and rule in guard:
            del guard[rule]
            dropped += 1
    assert dropped == 1, f"{name}: no {tier} guard with {rule}"
    path = tmp_path / f"{name}_without_{rule}.yaml"
    path.write_text(json.dumps(data))
    return path


def failures(summary: dict) -> list[str]:
    return [e["name"] for e in summary["expectations"] if not e["passed"]]


@pytest.mark.parametrize("name", sorted(D69))
def test_the_guard_rule_is_what_holds_the_bound(name, tmp_path):
    tier, rule = D69[name]
    guarded = run_scenario_file(SCENARIOS / f"{name}.yaml").summary
    assert failures(guarded) == []
    unguarded = run_scenario_file(without_rule(name, tier, rule, tmp_path)).summary
    failed = failures(unguarded)
    assert f"guards.triggers.{rule}" in failed  # (the rule is gone: it cannot fire)
    # ... and the bound it held is broken without it:
    assert "portfolio.max_drawdown" in failed, failed
    assert unguarded["reconciliation"]["passed"] is True


@pytest.mark.parametrize("name", sorted(D69))
def test_expect_holds_for_most_seeds(name):
    failed: dict[int, list[str]] = {}
    for seed in SEEDS:
        summary = run_scenario_file(SCENARIOS / f"{name}.yaml", seed=seed).summary
        assert summary["reconciliation"]["passed"], (name, seed)
        if not summary["passed"]:
            failed[seed] = failures(summary)
    assert len(SEEDS) - len(failed) >= MIN_PASSING, f"{name}: {failed}"
