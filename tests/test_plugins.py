"""Hook specs, the component registry and third-party plugins."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arbframe import hookspecs
from arbframe.components import INTERFACE_VERSION, KINDS, Exchange, Feed, FeedEvent, Strategy
from arbframe.errors import ArbframeError
from arbframe.hookspecs import hookimpl
from arbframe.plugins import BrokenPlugin, Registry, build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario
from arbframe.schema import composed_schema

REPO = Path(__file__).resolve().parents[1]
START_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z


def hookspec_functions() -> dict[str, Any]:
    specs = {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "arbframe_spec")
    }
    assert len(specs) >= 15  # 7 registration hooks and 8 run events at the time of writing
    return specs


# --- hook specs and their documentation ----------------------------------------------------


def test_every_hookspec_has_a_docstring() -> None:
    for name, fn in hookspec_functions().items():
        assert fn.__doc__ and fn.__doc__.strip(), f"{name} has no docstring"


def test_every_hookspec_is_documented() -> None:
    docs = REPO / "docs" / "plugins.md"
    assert docs.is_file(), "docs/plugins.md is missing"
    text = docs.read_text(encoding="utf-8")
    missing = [name for name in hookspec_functions() if name not in text]
    assert missing == [], f"hooks not mentioned in docs/plugins.md: {missing}"


def test_registration_hooks_cover_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kind has a registrar hook, and a class registered through it lands under that
    kind and no other."""
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    registrars = [name for name in hookspec_functions() if name.startswith("arbframe_register_")]
    assert len(registrars) == len(KINDS)
    probes = {
        kind: type(f"Probe_{kind}", (base,), {"type_name": f"probe_{kind}", "interface_version": 2})
        for kind, base in KINDS.items()
    }
    plural = {"strategy": "strategies", "state": "state_stores"}
    hooks = {kind: f"arbframe_register_{plural.get(kind, kind + 's')}" for kind in KINDS}
    assert sorted(hooks.values()) == sorted(registrars)
    plugins = [registrar(hooks[kind], probes[kind]) for kind in KINDS]
    registry = build_registry(get_plugin_manager(extra_plugins=tuple(plugins)))
    assert registry.broken == []
    for kind in KINDS:
        assert {i.cls for i in registry.types(kind).values()} == {probes[kind]}, kind


# --- a third-party plugin ------------------------------------------------------------------


class IdleStrategy(Strategy):
    """Watches every quote and never trades."""

    type_name = "idle"
    interface_version = 2
    description = "Counts market events; never trades."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"label": {"type": "string"}},
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.seen: list[tuple[int, str, tuple[float, float]]] = []
        self.started = self.ended = False

    def on_start(self) -> None:
        self.started = True

    def on_market(self, ts: int, symbol: str) -> None:
        books = [self.ctx.market.book(v, symbol) for v in ("a", "b")]
        self.seen.append((ts, symbol, tuple(book.bids[0][0] for book in books)))

    def on_end(self) -> None:
        self.ended = True


class StepsFeed(Feed):
    """`count` books per venue, one a second, the bid stepping up by `step`."""

    type_name = "steps"
    interface_version = 2
    description = "A staircase of books on each venue."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venues", "count"],
        "properties": {
            "venues": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "symbol": {"type": "string"},
            "count": {"type": "integer", "minimum": 1, "maximum": 1000},
            "step": {"type": "number"},
        },
    }

    def venues(self) -> list[str]:
        return list(self.config["venues"])

    def symbols(self) -> list[str]:
        return [self.config.get("symbol", "BTC")]

    def events(self) -> Iterator[FeedEvent]:
        step = self.config.get("step", 1.0)
        for i in range(self.config["count"]):
            for venue in self.config["venues"]:
                bid = 100.0 + i * step
                yield (
                    START_NS + i * 10**9,
                    venue,
                    self.symbols()[0],
                    ((bid, 5.0),),
                    ((bid + 0.5, 5.0),),
                )


class ThirdParty:
    """A plugin object as a third party would ship it (one module, two component types)."""

    @hookimpl
    def arbframe_register_strategies(self, register: Any) -> None:
        register(IdleStrategy)

    @hookimpl
    def arbframe_register_feeds(self, register: Any) -> None:
        register(StepsFeed)


def scenario_text(strategy: str = "{type: idle, label: watcher}", count: int = 5) -> str:
    return f"""\
name: third_party
duration: 1h
venues:
  a: {{type: paper, quote: USDT, fees: {{taker_bps: 10}}, latency: 10ms,
      markets: {{default: {{price_tick: "0.01", amount_step: "0.001"}}}}}}
  b: {{type: paper, quote: USDT, fees: {{taker_bps: 10}}, latency: 10ms,
      markets: {{default: {{price_tick: "0.01", amount_step: "0.001"}}}}}}
capital: {{a: {{USDT: 10000, BTC: 1}}, b: {{USDT: 10000, BTC: 1}}}}
feeds:
  - {{type: steps, venues: [a, b], count: {count}}}
strategy: {strategy}
"""


def test_third_party_plugin_runs_end_to_end(tmp_path: Path) -> None:
    pm = get_plugin_manager(extra_plugins=(ThirdParty(),))
    registry = build_registry(pm)
    idle = registry.get("strategy", "idle")
    assert idle.cls is IdleStrategy
    assert idle.distribution == "<local>"
    assert registry.get("feed", "steps").cls is StepsFeed
    # The built-ins are still there, next to the new types.
    assert {"paper", "spread_arb", "scripted"} <= {i.type_name for i in registry.all()}
    schema = composed_schema(registry)
    assert "idle" in schema["$defs"]["strategy_component"]["properties"]["type"]["enum"]
    assert "steps" in schema["$defs"]["feeds_component"]["properties"]["type"]["enum"]

    path = tmp_path / "third_party.yaml"
    path.write_text(scenario_text(count=5))
    run = Run(load_scenario(path, registry), registry, pm)
    summary = run.execute()

    [strategy] = run.strategies
    assert isinstance(strategy, IdleStrategy)
    assert strategy.config == {"label": "watcher"}
    assert strategy.started and strategy.ended
    assert isinstance(run.feeds[0], StepsFeed)
    # Both venues publish each second: one market event per instant, after both books of
    # that instant are in (never a new book of a beside an old one of b).
    assert [(ts - START_NS, bids) for ts, _, bids in strategy.seen] == [
        (i * 10**9, (100.0 + i, 100.0 + i)) for i in range(5)
    ]
    assert summary["events"]["quotes"] == 10 and summary["events"]["instants"] == 5
    assert summary["portfolio"]["entries"] == 0 and summary["orders"] == {}
    assert summary["passed"] is True


def test_third_party_config_is_validated_against_its_schema(tmp_path: Path) -> None:
    pm = get_plugin_manager(extra_plugins=(ThirdParty(),))
    registry = build_registry(pm)
    path = tmp_path / "bad.yaml"
    path.write_text(scenario_text(strategy="{type: idle, lable: typo}"))
    with pytest.raises(ArbframeError) as err:
        load_scenario(path, registry)
    assert str(err.value) == (
        f"{path}:11:24: strategy.lable: unknown key 'lable' (did you mean 'label'?)"
    )


def test_without_the_plugin_its_types_are_unknown(tmp_path: Path) -> None:
    registry = build_registry(get_plugin_manager())
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text())
    with pytest.raises(ArbframeError, match=r"unknown feed type 'steps' \(known: replay, "):
        load_scenario(path, registry)


def test_plugin_managers_are_independent() -> None:
    with_extra = build_registry(get_plugin_manager(extra_plugins=(ThirdParty(),)))
    plain = build_registry(get_plugin_manager())
    assert "idle" in with_extra.types("strategy")
    assert "idle" not in plain.types("strategy")


# --- the registry refuses bad registrations: that plugin is broken, the others go on -------


def registrar(kind_hook: str, *classes: Any) -> Any:
    """A plugin object whose `kind_hook` registration hook registers `classes`."""

    def hook(register: Any) -> None:
        for cls in classes:
            register(cls)

    hook.__name__ = kind_hook
    return type("Plugin", (), {kind_hook: staticmethod(hookimpl(hook))})()


class OtherPaper(Exchange):
    type_name = "paper"
    interface_version = 2


class StairsAgain(Feed):
    type_name = "steps"
    interface_version = 2


def only_broken(*plugins: Any) -> tuple[BrokenPlugin, Registry, Any]:
    """Build a registry with `plugins` added; exactly one plugin must come out broken."""
    pm = get_plugin_manager(extra_plugins=plugins)
    registry = build_registry(pm)
    [broken] = registry.broken
    return broken, registry, pm


def test_duplicate_type_name_names_both_classes() -> None:
    plugin = registrar("arbframe_register_exchanges", OtherPaper)
    broken, registry, pm = only_broken(plugin)
    assert "exchange type 'paper' is registered twice" in broken.reason
    assert "arbframe_plugins.exchanges.paper.PaperExchange (paper)" in broken.reason
    assert f"{__name__}.OtherPaper ({broken.plugin})" in broken.reason
    assert broken.distribution == "<local>" and broken.types == (("exchange", "paper"),)
    # The built-in keeps the name; the refused plugin is out of the manager.
    assert registry.get("exchange", "paper").cls.__name__ == "PaperExchange"
    assert pm.get_name(plugin) is None


def test_duplicate_between_two_third_parties(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    broken, registry, _ = only_broken(
        ThirdParty(), registrar("arbframe_register_feeds", StairsAgain)
    )
    assert "feed type 'steps' is registered twice" in broken.reason
    assert "StepsFeed" in broken.reason and "StairsAgain" in broken.reason
    assert registry.get("feed", "steps").cls is StepsFeed
    assert registry.get("strategy", "idle").cls is IdleStrategy  # ThirdParty is whole


def test_a_broken_plugin_loses_every_type_it_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")

    class Venue(Exchange):
        type_name = "venue"
        interface_version = 2

    class Both:  # exchanges register before feeds: `venue` goes in, then the feed clashes
        @hookimpl
        def arbframe_register_exchanges(self, register: Any) -> None:
            register(Venue)

        @hookimpl
        def arbframe_register_feeds(self, register: Any) -> None:
            register(StairsAgain)

    broken, registry, _ = only_broken(ThirdParty(), Both())
    assert broken.types == (("exchange", "venue"), ("feed", "steps"))
    assert registry.types("exchange") == {}
    assert registry.get("feed", "steps").cls is StepsFeed


def test_a_broken_plugins_event_hooks_are_unregistered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    calls: list[str] = []

    class Observer:
        @hookimpl
        def arbframe_register_feeds(self, register: Any) -> None:
            register(Strategy)  # wrong kind (and no type_name)

        @hookimpl
        def arbframe_on_run_start(self, run: Any) -> None:
            calls.append("start")

    broken, _, pm = only_broken(Observer())
    assert broken.reason == "Strategy is registered as a feed but does not subclass Feed"
    pm.hook.arbframe_on_run_start(run=None)
    assert calls == []


def test_registering_the_same_class_twice_is_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager(
        extra_plugins=(registrar("arbframe_register_feeds", StepsFeed, StepsFeed),)
    )
    registry = build_registry(pm)
    assert [i.cls for i in registry.all()] == [StepsFeed] and registry.broken == []


def test_refuses_a_class_of_the_wrong_kind() -> None:
    broken, registry, _ = only_broken(registrar("arbframe_register_strategies", StepsFeed))
    assert broken.reason == "StepsFeed is registered as a strategy but does not subclass Strategy"
    assert "steps" not in registry.types("strategy") and "steps" not in registry.types("feed")


def test_refuses_a_wrong_interface_version() -> None:
    class Future(Strategy):
        type_name = "from_the_future"
        interface_version = INTERFACE_VERSION + 1

    broken, registry, _ = only_broken(registrar("arbframe_register_strategies", Future))
    assert broken.reason.endswith(
        f".Future targets interface version {INTERFACE_VERSION + 1}, "
        f"this arbframe speaks {INTERFACE_VERSION}"
    )
    assert "from_the_future" not in registry.types("strategy")


def test_refuses_a_class_without_type_name() -> None:
    class Nameless(Strategy):
        pass

    broken, _, _ = only_broken(registrar("arbframe_register_strategies", Nameless))
    assert broken.reason.endswith(".Nameless has no type_name")


def test_refuses_an_instance_instead_of_a_class() -> None:
    instance = IdleStrategy({}, name="x", ctx=None)
    broken, registry, _ = only_broken(registrar("arbframe_register_strategies", instance))
    assert broken.reason.startswith("register() takes a component class, got <")
    assert "idle" not in registry.types("strategy")


class BadSchema(Feed):
    type_name = "bad_schema"
    interface_version = 2
    config_schema = {"type": "object", "properties": {"period": {"minimum": "x"}}}


def test_refuses_an_invalid_config_schema_naming_the_path() -> None:
    broken, registry, _ = only_broken(registrar("arbframe_register_feeds", BadSchema))
    assert broken.reason == (
        f"feed type 'bad_schema' (plugin {broken.plugin}): invalid config_schema at "
        "properties.period.minimum: 'x' is not of type 'number'"
    )
    assert "bad_schema" not in registry.types("feed")


def test_refuses_a_config_schema_that_is_not_an_object() -> None:
    class NotAnObject(Feed):
        type_name = "not_an_object"
        interface_version = 2
        config_schema = True  # a valid JSON Schema, but the kernel adds `type` into it

    broken, _, _ = only_broken(registrar("arbframe_register_feeds", NotAnObject))
    assert broken.reason.endswith("config_schema must be a JSON object, got True")


def test_an_exception_in_a_registrar_breaks_only_that_plugin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")

    class Failing:
        @hookimpl
        def arbframe_register_guards(self, register: Any) -> None:
            raise KeyError("missing")

    broken, registry, _ = only_broken(ThirdParty(), Failing())
    assert broken.reason == "arbframe_register_guards raised KeyError: 'missing'"
    assert sorted(i.type_name for i in registry.all()) == ["idle", "steps"]


def test_explain_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    healthy = build_registry(get_plugin_manager(extra_plugins=(ThirdParty(),)))
    assert healthy.explain_unknown("feed", "bad_schema") == ""

    broken, registry, _ = only_broken(registrar("arbframe_register_feeds", BadSchema))
    assert registry.explain_unknown("feed", "bad_schema") == (
        f" (plugin {broken.plugin!r} provides it but failed to load: {broken.reason})"
    )
    assert registry.explain_unknown("feed", "other") == (
        f" (plugin {broken.plugin!r} failed to load: {broken.reason}; it may have provided it)"
    )

    pm = get_plugin_manager(
        extra_plugins=(
            registrar("arbframe_register_feeds", BadSchema),
            registrar("arbframe_register_strategies", StepsFeed),
        )
    )
    two = build_registry(pm)
    first, second = two.broken
    assert two.explain_unknown("feed", "other") == (
        f" (plugin {first.plugin!r} failed to load: {first.reason}; "
        f"plugin {second.plugin!r} failed to load: {second.reason}; "
        "one of them may have provided it)"
    )


# --- autoload ------------------------------------------------------------------------------


def test_disable_autoload_gives_an_empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_registry(get_plugin_manager()).all()  # sanity: the built-ins are installed
    monkeypatch.setenv("ARBFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager()
    registry = build_registry(pm)
    assert registry.all() == []
    assert all(registry.types(kind) == {} for kind in KINDS)
    # Explicitly given plugins still load.
    only = build_registry(get_plugin_manager(extra_plugins=(ThirdParty(),)))
    assert sorted(i.type_name for i in only.all()) == ["idle", "steps"]


def test_disable_autoload_in_a_fresh_interpreter() -> None:
    code = (
        "import json; from arbframe.plugins import build_registry, get_plugin_manager; "
        "print(json.dumps([i.type_name for i in build_registry(get_plugin_manager()).all()]))"
    )
    base = {k: v for k, v in os.environ.items() if k != "ARBFRAME_DISABLE_PLUGIN_AUTOLOAD"}

    def types(env: dict[str, str]) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**base, **env},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert types({"ARBFRAME_DISABLE_PLUGIN_AUTOLOAD": "1"}) == []
    assert "paper" in types({})


def test_a_version_1_plugin_is_refused_saying_what_changed() -> None:
    class OldStrategy(Strategy):  # written for interface 1: declared its version, run=...
        type_name = "old_style"
        interface_version = 1

        def __init__(self, config: dict[str, Any], *, name: str, run: Any) -> None:
            super().__init__(config, name=name, ctx=run)

    class Undeclared(Strategy):  # a version-1 plugin inheriting the version it never set
        type_name = "undeclared"

    broken, registry, _ = only_broken(registrar("arbframe_register_strategies", OldStrategy))
    assert "OldStrategy targets interface version 1, this arbframe speaks 2" in broken.reason
    for change in ("ctx=", "on_market(ts, symbol)", "ctx.execution", "ctx.report", "RunInfo"):
        assert change in broken.reason, change
    assert "Migrating from version 1" in broken.reason
    assert "old_style" not in registry.types("strategy")
    broken, _, _ = only_broken(registrar("arbframe_register_strategies", Undeclared))
    assert "Undeclared declares no interface_version (set interface_version = 2" in broken.reason
