"""The incident drills (scenarios/drill_*.yaml): each passes, firing exactly the alerts its
`expect:` names; without its fault it fails (its expectations are not vacuous). The state
outage drill runs against real Redis and PostgreSQL too, as the d70/d71 drills do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import pg_url, redis_url, require_service

from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DRILLS = sorted(SCENARIOS.glob("drill_*.yaml"))
SERVICE_ENV = ("ARBFRAME_DATABASE_URL", "ARBFRAME_REDIS_URL", "ARBFRAME_STATE_DIR")


def run(path: Path, change: Any = None) -> dict[str, Any]:
    pm = get_plugin_manager()
    registry = build_registry(pm)
    loaded = load_scenario(path, registry)
    if change is not None:
        change(loaded.data)
    return Run(loaded, registry, pm).execute()


def defuse(data: dict[str, Any]) -> None:
    """The drill without what causes its incident."""
    if data.get("faults"):
        data["faults"] = []
    else:  # the daily loss drill: a limit no run reaches
        data["guards"] = [{"type": "global", "daily_loss_limit": 10**9}]


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SERVICE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARBFRAME_STATE_DIR", str(tmp_path))


def test_there_are_at_least_ten_drills() -> None:
    assert len(DRILLS) >= 10


@pytest.mark.parametrize("path", DRILLS, ids=lambda p: p.stem)
def test_drill_fires_exactly_its_alerts(path: Path) -> None:
    summary = run(path)
    failed = [e for e in summary["expectations"] if not e["passed"]]
    assert summary["passed"], failed
    named = [e for e in summary["expectations"] if e["name"].startswith("alerting.by_rule.")]
    # "nothing else fired": the total is the sum of what the expectations name
    assert sum(e["expected"]["eq"] for e in named) == summary["alerting"]["fired"]
    fired = {(r, s) for r, sev in summary["alerting"]["by_rule"].items() for s in sev}
    assert fired == {tuple(e["name"].split(".")[2:4]) for e in named}


@pytest.mark.parametrize("path", DRILLS, ids=lambda p: p.stem)
def test_drill_without_its_fault_fails(path: Path) -> None:
    summary = run(path, defuse)
    assert not summary["passed"]
    assert any(not e["passed"] for e in summary["expectations"] if e["name"].startswith("alerting"))


def test_state_loss_drill_on_redis_and_postgres(
    monkeypatch: pytest.MonkeyPatch, pg_schema: str
) -> None:
    """The same alerts when the hot store is Redis, really cut (through a proxy), and
    PostgreSQL keeps the snapshots meanwhile."""
    import redis as redis_lib

    url = redis_url()
    require_service("Redis", lambda: redis_lib.Redis.from_url(url, socket_timeout=1).ping())
    monkeypatch.setenv("ARBFRAME_REDIS_URL", url)
    monkeypatch.setenv("ARBFRAME_DATABASE_URL", pg_url(pg_schema))

    def on_services(data: dict[str, Any]) -> None:
        data["state"] = []  # the stores the environment names: redis (hot), postgres
        data["faults"][0]["store"] = "redis"

    summary = run(SCENARIOS / "drill_state_loss.yaml", on_services)
    assert summary["passed"], [e for e in summary["expectations"] if not e["passed"]]
    assert summary["alerting"]["by_rule"]["state_store_lost"] == {"P2": 1}
