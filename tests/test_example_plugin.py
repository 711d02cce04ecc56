"""The example third-party plugin (examples/arbframe-example) and the docs that describe it.

The package is not pip-installed for this: its module is imported by path and registered
with ``get_plugin_manager(extra_plugins=(module,))``, the way a plugin author tests one.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import tomllib
from collections import Counter
from decimal import Decimal
from importlib.metadata import entry_points
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import pytest

from arbframe.errors import ScenarioError
from arbframe.plugins import Registry, build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario
from arbframe.schema import SLOTS, composed_schema, core_schema

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "arbframe-example"
MODULE = EXAMPLE / "arbframe_example.py"
SCENARIO = EXAMPLE / "example.yaml"
START_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("arbframe_example_under_test", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plugin_manager(module: ModuleType) -> pluggy.PluginManager:
    installed = [ep.name for ep in entry_points(group="arbframe") if ep.value == "arbframe_example"]
    if not installed:
        return get_plugin_manager(extra_plugins=(module,))
    # Also pip-installed here: swap the installed copy for the file under test (the two
    # would otherwise register `sine` twice, which the registry refuses).
    pm = get_plugin_manager()
    for name in installed:
        pm.unregister(name=name)
    pm.register(module)
    return pm


@pytest.fixture
def wired(example: ModuleType) -> tuple[pluggy.PluginManager, Registry]:
    pm = plugin_manager(example)
    return pm, build_registry(pm)


def run_example(wired: tuple[pluggy.PluginManager, Registry], path: Path, alerts: Path) -> Run:
    pm, registry = wired
    loaded = load_scenario(path, registry, env={"ARBFRAME_EXAMPLE_ALERTS": str(alerts)})
    return Run(loaded, registry, pm)


def test_example_types_register_next_to_the_builtins(example: ModuleType, wired: Any) -> None:
    _, registry = wired
    sine, alerts = registry.get("feed", "sine"), registry.get("alert", "jsonl_alerts")
    assert sine.cls is example.SineFeed and alerts.cls is example.JsonlAlerts
    assert sine.distribution == alerts.distribution == "<local>"
    assert {"paper", "spread_arb", "order_reject"} <= {i.type_name for i in registry.all()}
    schema = composed_schema(registry)
    assert "sine" in schema["$defs"]["feeds_component"]["properties"]["type"]["enum"]
    assert "jsonl_alerts" in schema["$defs"]["alerts_component"]["properties"]["type"]["enum"]


def test_example_scenario_end_to_end(example: ModuleType, wired: Any, tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    run = run_example(wired, SCENARIO, alerts)
    summary = run.execute()
    assert isinstance(run.feeds[0], example.SineFeed)
    assert summary["passed"] is True, [e for e in summary["expectations"] if not e["passed"]]

    # The sine feed's books reached the venues: 0 s to 600 s, one book a second on each.
    assert summary["events"]["quotes"] == 601 * 2
    a, b = run.market.book("a", "BTC"), run.market.book("b", "BTC")
    assert a.ts == b.ts == START_NS + 600 * 10**9
    first = run.audit.first_mid
    assert first[("a", "BTC")] == pytest.approx(30000) == first[("b", "BTC")]  # sin(0) = 0

    # One trade per half period, alternating direction with the sign of the premium.
    trades = run.execution.closed
    reasons = Counter(t.exit_reason for t in trades)
    assert reasons["leg_failure"] == 1 and reasons["reversion"] >= 18
    routes = Counter(t.buy_venue for t in trades)
    assert abs(routes["a"] - routes["b"]) <= 1
    for trade in trades:
        assert trade.entry_spread_bps >= 30 + 5 + 5  # entry_bps plus both taker fees
        if trade.exit_reason == "reversion":
            assert trade.net_pnl > 0  # ~ 67 bp gross for 20 bp of fees
    [failed] = [t for t in trades if t.exit_reason == "leg_failure"]
    assert failed.net_pnl < 0
    p = summary["portfolio"]
    assert p["losses"] == 1 and Decimal(p["pnl"]) > 0 and p["open_trades"] == 0

    # The rejected entry raised one P2 alert, which jsonl_alerts wrote.
    assert summary["faults"]["order_reject"] == 1 and summary["alerts"] == {"P2": 1}
    [line] = alerts.read_text().splitlines()
    row = json.loads(line)
    assert row["run"] == "sine_example" and row["severity"] == "P2"
    assert row["title"] == f"leg mismatch on {failed.trade_id}"


def test_sine_books_follow_the_formula(wired: Any, tmp_path: Path) -> None:
    run = run_example(wired, SCENARIO, tmp_path / "alerts.jsonl")
    assert not (tmp_path / "alerts.jsonl").exists()  # wired, not run: jsonl_alerts opened nothing
    events = list(islice(run.feeds[0].events(), 0, 62))  # t = 0 s .. 30 s, a then b
    for ts, venue, symbol, bids, asks in events:
        t = (ts - START_NS) / 1e9
        mid = 30000 * (1 + 100e-4 * math.sin(2 * math.pi * t / 60) if venue == "b" else 1)
        assert symbol == "BTC"
        assert bids == ((pytest.approx(mid * (1 - 1e-4)), 10.0),)
        assert asks == ((pytest.approx(mid * (1 + 1e-4)), 10.0),)
    assert [e[1] for e in events[:4]] == ["a", "b", "a", "b"]
    assert events[31][0] == START_NS + 15 * 10**9  # a quarter period: b is 100 bp rich
    assert events[31][3][0][0] == pytest.approx(30000 * 1.01 * (1 - 1e-4))


def test_zero_period_is_reported_where_it_was_written(wired: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    feed = "  - {type: sine, symbol: BTC, price: 30000, venues: [a, b], period: 0s}"
    path.write_text(f"extends: {SCENARIO}\nname: bad\nfeeds:\n{feed}\n")
    with pytest.raises(ScenarioError) as err:
        run_example(wired, path, tmp_path / "alerts.jsonl")
    column = feed.index("0s") + 1
    assert str(err.value) == f"{path}:4:{column}: feeds[0].period: must be longer than 0"


def test_example_package_metadata() -> None:
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["entry-points"]["arbframe"] == {"example": "arbframe_example"}
    assert meta["tool"]["setuptools"]["py-modules"] == ["arbframe_example"]
    assert any(dep.startswith("arbframe") for dep in meta["project"]["dependencies"])
    assert len(MODULE.read_text(encoding="utf-8").splitlines()) < 120


# --- the docs quote real files and name every key -----------------------------------------

SNIPPET = re.compile(r"<!-- snippet: (\S+) -->\n```[a-z]*\n(.*?)```", re.S)


def test_docs_snippets_are_verbatim_copies() -> None:
    text = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    snippets = SNIPPET.findall(text)
    assert len(snippets) >= 4
    for source, body in snippets:
        assert body.strip(), f"empty snippet of {source}"
        assert body in (REPO / source).read_text(encoding="utf-8"), f"stale snippet of {source}"


def test_scenario_reference_names_every_key() -> None:
    text = (REPO / "docs" / "scenarios.md").read_text(encoding="utf-8")
    missing = [f"top-level {key}" for key in core_schema()["properties"] if f"`{key}`" not in text]
    registry = build_registry(get_plugin_manager())
    for kind in SLOTS.values():
        for name, info in registry.types(kind).items():
            if not info.cls.__module__.startswith("arbframe_plugins."):
                continue  # the reference covers the built-in types only
            if f"`{name}`" not in text:
                missing.append(f"{kind} type {name}")
            missing += [
                f"{name}.{key}"
                for key in info.schema.get("properties", {})
                if f"`{key}`" not in text and f"`{key}." not in text
            ]
    assert missing == [], f"not in docs/scenarios.md: {missing}"
