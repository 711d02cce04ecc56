"""A pytest plugin for scenario tests (registered through the `pytest11` entry point).

The `run_scenario` fixture writes a scenario (YAML text or a dict) to `tmp_path`, runs it
in-process with every installed plugin, and returns the summary and the run, so plugin
authors test their components the way arbframe tests its own::

    def test_my_feed(run_scenario):
        result = run_scenario({"name": "t", "duration": "1m", ...})
        assert result.summary["portfolio"]["entries"] > 0

`TcpProxy` (from :mod:`arbframe.tcpproxy`) sits between a client and a real server
(PostgreSQL, Redis, a venue) so a test can cut the connection for real and restore it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arbframe.components import FeedContext, RunInfo
from arbframe.model import Fill, Trade
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario
from arbframe.tcpproxy import TcpProxy as TcpProxy  # re-exported: tests import it from here


@dataclass
class ScenarioResult:
    summary: dict[str, Any]
    run: Run

    @property
    def fills(self) -> list[Fill]:
        """Every fill booked, in booking order."""
        return self.run.ledger.fills

    @property
    def trades(self) -> list[Trade]:
        """Closed trades, in closing order."""
        return self.run.execution.closed


def run_scenario_file(
    path: Path, seed: int | None = None, plugins: tuple[Any, ...] = (), **options: Any
) -> ScenarioResult:
    """Load and run a scenario file with every installed plugin, and ``plugins`` (modules or
    objects with hook implementations: a plugin under test, not installed). ``options`` go
    to the run: ``resume=True``, ``reset=True``, ``session="..."``."""
    pm = get_plugin_manager(extra_plugins=plugins)
    registry = build_registry(pm)
    run = Run(load_scenario(path, registry), registry, pm, seed=seed, **options)
    return ScenarioResult(run.execute(), run)


@pytest.fixture
def run_scenario(tmp_path: Path) -> Callable[..., ScenarioResult]:
    """Write `scenario` (YAML text or dict) to tmp_path and run it; extra files beside it;
    `plugins`: plugins to add for this run (e.g. the module under test, not installed)."""

    def run(
        scenario: str | dict[str, Any],
        seed: int | None = None,
        files: dict[str, str] | None = None,
        plugins: tuple[Any, ...] = (),
        **options: Any,
    ) -> ScenarioResult:
        for name, text in (files or {}).items():
            (tmp_path / name).write_text(text)
        path = tmp_path / "scenario.yaml"
        text = scenario if isinstance(scenario, str) else json.dumps(scenario, indent=1)
        path.write_text(text)
        return run_scenario_file(path, seed, plugins, **options)

    return run


def feed_context(
    base: Path,
    seed: int = 0,
    fx: dict[str, float] | None = None,
    quotes: dict[str, str] | None = None,
) -> FeedContext:
    """A context for building a feed outside a run (paths relative to ``base``; venues
    quoted in USDT unless ``quotes`` says otherwise; FX rates from ``fx``, USDT = 1)."""
    rates = {"USDT": 1.0, **(fx or {})}

    def error(path: tuple[str | int, ...], message: str) -> Any:
        from arbframe.errors import ScenarioError

        return ScenarioError(str(base), None, None, ".".join(map(str, path)), message)

    return FeedContext(
        info=RunInfo("test", seed, "backtest", "simulated", "USDT", "test"),
        resolve_path=lambda path: base / path,
        error=error,
        fx_rate=rates.__getitem__,
        venue_quote=lambda venue: (quotes or {}).get(venue, "USDT"),
    )
