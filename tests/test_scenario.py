"""Scenario loading: every problem renders as ``file:line:col: key.path: message``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arbframe import schema_walk
from arbframe.components import Exchange, Feed, Strategy
from arbframe.errors import ArbframeError, ScenarioError
from arbframe.plugins import ComponentInfo, Registry, build_registry, get_plugin_manager
from arbframe.scenario import LoadedScenario, check_expect_paths, load_scenario
from arbframe.schema import DURATION, NONNEGATIVE_DECIMAL, POSITIVE_DECIMAL, summary_schema


class Paper(Exchange):
    type_name = "paper"
    interface_version = 2
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "api_key": {"type": "string"},
            "fees": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "taker_bps": {"type": "number", "minimum": 0},
                    "maker_bps": {"type": "number"},
                },
            },
        },
    }


class Synthetic(Feed):
    type_name = "synthetic"
    interface_version = 2
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["pattern"],
        "properties": {"pattern": {"enum": ["flat", "spike"]}, "interval": DURATION},
    }


class Scripted(Feed):
    type_name = "scripted"
    interface_version = 2


class Replay(Feed):
    type_name = "replay"
    interface_version = 2


class SpreadArb(Strategy):
    type_name = "spread_arb"
    interface_version = 2
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["entry_bps"],
        "properties": {
            "entry_bps": {"type": "number", "minimum": 0},
            "size": {"type": "number"},
            "close_at_end": {"type": "boolean"},
            "weights": {"type": "array", "items": {"$ref": "#/$defs/weight"}},
            "tick": POSITIVE_DECIMAL,
            "floor": NONNEGATIVE_DECIMAL,
        },
        "$defs": {"weight": {"type": "integer", "minimum": 1}},
    }


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    for cls in (Paper, Synthetic, Scripted, Replay, SpreadArb):
        reg.add(ComponentInfo(cls.kind, cls.type_name, cls, "test", "<local>"))
    return reg


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative paths make the rendered file part exact and readable.
    monkeypatch.chdir(tmp_path)


VALID = """\
name: demo
duration: 10m
venues:
  upbit:
    type: paper
    fees: {taker_bps: 5}
feeds:
  - type: synthetic
    pattern: flat
strategy:
  type: spread_arb
  entry_bps: 3
"""


def write(name: str, text: str) -> str:
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    Path(name).write_text(text, encoding="utf-8")
    return name


def error_of(registry: Registry, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write("s.yaml", text), registry, env={} if env is None else env)
    return str(info.value)


def load(registry: Registry, text: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return load_scenario(write("s.yaml", text), registry, env={} if env is None else env).data


# --- YAML ---------------------------------------------------------------------------------


def test_malformed_yaml(registry: Registry) -> None:
    assert error_of(registry, "name: demo\nvenues: [a, b\nfeeds: []\n") == (
        "s.yaml:3:6: expected ',' or ']', but got ':'"
    )


def test_duplicate_key(registry: Registry) -> None:
    assert error_of(registry, "name: a\nseed: 1\nname: b\n") == (
        's.yaml:3:1: found duplicate key "name" with value "b" (original value: "a")'
    )


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n- b\n", "a list"), ("", "an empty document"), ("just text\n", "str")]
)
def test_top_level_must_be_a_mapping(registry: Registry, text: str, got: str) -> None:
    expected = f"s.yaml:1:1: a scenario must be a mapping of keys, got {got}"
    assert error_of(registry, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 2024-13-45\n", "s.yaml: invalid YAML: month must be in 1..12"),
        ("seed: !!binary aGk=\n", "s.yaml:1:7: seed: unsupported YAML value (bytes)"),
        ("seed: !custom 3\n", "s.yaml:1:7: seed: unsupported YAML value (tag !custom)"),
        ("name: x\n1: y\n", "s.yaml:2:1: keys must be strings, got int 1"),
        # ruamel cannot even hash this key: its TypeError is reported, not raised.
        ("? {a: {b: 1}}\n: x\n", "s.yaml: keys must be strings, got a mapping or a list"),
    ],
)
def test_odd_yaml_is_an_arbframe_error(registry: Registry, text: str, expected: str) -> None:
    assert error_of(registry, text) == expected


@pytest.mark.parametrize(
    "number", [".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "-.inf", "+.inf", "1e999", "-1e999"]
)
def test_non_finite_numbers_are_refused(registry: Registry, number: str) -> None:
    # `size` is a plain number: JSON Schema alone lets NaN and infinities through.
    text = VALID.replace("entry_bps: 3", f"entry_bps: 3\n  size: {number}")
    assert error_of(registry, text) == (
        f"s.yaml:13:9: strategy.size: {number} is not a finite number"
    )


def test_non_finite_numbers_are_refused_in_lists_and_flow_mappings(registry: Registry) -> None:
    text = VALID.replace("{taker_bps: 5}", "{taker_bps: 5, maker_bps: -.Inf}")
    assert error_of(registry, text) == (
        "s.yaml:6:37: venues.upbit.fees.maker_bps: -.Inf is not a finite number"
    )
    text = VALID + "description: [1, !!float .nan]\n"
    assert error_of(registry, text) == "s.yaml:13:18: description[1]: .nan is not a finite number"


def test_integers_too_large_for_a_float_are_refused(registry: Registry) -> None:
    text = VALID.replace("entry_bps: 3", "entry_bps: " + "9" * 400)
    assert error_of(registry, text) == (
        "s.yaml:12:14: strategy.entry_bps: 9999999999999999999999999999999999999... "
        "is too large a number"
    )
    assert load(registry, VALID.replace("entry_bps: 3", "entry_bps: " + "9" * 300))


def test_unknown_tags_on_mappings_and_lists_are_refused(registry: Registry) -> None:
    assert error_of(registry, VALID + "fx: !custom {KRW: 1}\n") == (
        "s.yaml:13:5: fx: unsupported YAML value (tag !custom)"
    )
    assert error_of(registry, VALID + "guards: !custom []\n") == (
        "s.yaml:13:9: guards: unsupported YAML value (tag !custom)"
    )


# --- core schema --------------------------------------------------------------------------


def test_unknown_top_level_key(registry: Registry) -> None:
    assert error_of(registry, VALID + "colour: red\n") == (
        "s.yaml:13:1: colour: unknown key 'colour' (expected one of: alerts, capital, clock, "
        "description, duration, execution, expect, extends, faults, feeds, fx, guards, "
        "inventory, mode, name, reconcile, report_currency, seed, session, sinks, snapshots, "
        "speed, state, strategies, strategy, universe, venues)"
    )


def test_wrong_type(registry: Registry) -> None:
    assert error_of(registry, VALID + "seed: lots\n") == (
        "s.yaml:13:7: seed: 'lots' is not of type 'integer'"
    )


def test_empty_value_points_at_its_key(registry: Registry) -> None:
    assert error_of(registry, VALID + "guards:\n") == (
        "s.yaml:13:1: guards: None is not of type 'array'"
    )


def test_enum_violation(registry: Registry) -> None:
    assert error_of(registry, VALID + "mode: yolo\n") == (
        "s.yaml:13:7: mode: 'yolo' is not one of ['backtest', 'paper', 'shadow', 'live']"
    )


def test_bad_duration(registry: Registry) -> None:
    text = VALID.replace("duration: 10m", "duration: 2 minutes")
    assert error_of(registry, text) == (
        "s.yaml:2:11: duration: '2 minutes' is not a duration (e.g. 250ms, 30s, 2m, 1h) "
        "or a number of seconds"
    )


def test_negative_duration_names_the_minimum(registry: Registry) -> None:
    text = VALID.replace("duration: 10m", "duration: -5")
    assert error_of(registry, text) == "s.yaml:2:11: duration: -5 is less than the minimum of 0"


def test_missing_required_top_level_key(registry: Registry) -> None:
    text = VALID.replace("duration: 10m\n", "")
    assert error_of(registry, text) == "s.yaml:1:1: missing required key 'duration'"


def test_errors_are_reported_first_by_position(registry: Registry) -> None:
    text = VALID.replace("name: demo", "name: not valid!") + "seed: -1\n"
    assert error_of(registry, text) == (
        "s.yaml:1:7: name: 'not valid!' does not match '^[A-Za-z0-9_.-]+$'"
    )


def test_expect_keys_with_dots_render_in_brackets(registry: Registry) -> None:
    text = VALID + "expect:\n  portfolio.winrate: {min: 0.5, most: 1}\n"
    assert error_of(registry, text) == (
        "s.yaml:14:33: expect['portfolio.winrate'].most: unknown key 'most' "
        "(expected one of: eq, ge, gt, le, lt, max, min, ne)"
    )


def test_bad_venue_name_points_at_the_key(registry: Registry) -> None:
    text = VALID.replace("  upbit:", "  Upbit:")
    assert error_of(registry, text) == (
        "s.yaml:4:3: venues.Upbit: key 'Upbit' does not match '^[a-z][a-z0-9_]*$'"
    )


def test_unknown_key_suggests_a_close_one(registry: Registry) -> None:
    assert error_of(registry, VALID + "sede: 3\n") == (
        "s.yaml:13:1: sede: unknown key 'sede' (did you mean 'seed'?)"
    )
    text = VALID.replace("entry_bps: 3", "entry_bps: 3\n  sise: 1")
    assert error_of(registry, text) == (
        "s.yaml:13:3: strategy.sise: unknown key 'sise' (did you mean 'size'?)"
    )


def test_misspelt_required_key_is_reported_where_it_is(registry: Registry) -> None:
    # Not as "missing required key 'entry_bps'" at the block, which comes first.
    text = VALID.replace("entry_bps: 3", "entry_bsp: 3")
    assert error_of(registry, text) == (
        "s.yaml:12:3: strategy.entry_bsp: unknown key 'entry_bsp' "
        "(did you mean 'entry_bps'? it is required)"
    )
    text = VALID.replace("duration: 10m", "duraton: 10m")
    assert error_of(registry, text) == (
        "s.yaml:2:1: duraton: unknown key 'duraton' (did you mean 'duration'? it is required)"
    )


def test_misspelt_required_key_in_an_open_schema(registry: Registry) -> None:
    # `component` allows any key besides `type`: a misspelt `type` is still named.
    text = VALID.replace("  - type: synthetic", "  - tpye: synthetic")
    assert error_of(registry, text) == (
        "s.yaml:8:5: feeds[0].tpye: unknown key 'tpye' (did you mean 'type'? it is required)"
    )


# --- component schemas --------------------------------------------------------------------


def test_unknown_plugin_type_lists_known_ones(registry: Registry) -> None:
    text = VALID.replace("type: synthetic", "type: synthetc")
    assert error_of(registry, text) == (
        "s.yaml:8:11: feeds[0].type: unknown feed type 'synthetc' "
        "(known: replay, scripted, synthetic)"
    )


def test_unknown_nested_key_in_component(registry: Registry) -> None:
    text = VALID.replace("{taker_bps: 5}", "{taker_bps: 5, makr_bps: 1}")
    assert error_of(registry, text) == (
        "s.yaml:6:26: venues.upbit.fees.makr_bps: unknown key 'makr_bps' "
        "(expected one of: maker_bps, taker_bps)"
    )


def test_out_of_range_value_in_component(registry: Registry) -> None:
    text = VALID.replace("entry_bps: 3", "entry_bps: -3")
    assert error_of(registry, text) == (
        "s.yaml:12:14: strategy.entry_bps: -3 is less than the minimum of 0"
    )


def test_enum_violation_in_component(registry: Registry) -> None:
    text = VALID.replace("pattern: flat", "pattern: zigzag")
    assert error_of(registry, text) == (
        "s.yaml:9:14: feeds[0].pattern: 'zigzag' is not one of ['flat', 'spike']"
    )


def test_bad_duration_in_component(registry: Registry) -> None:
    text = VALID.replace("pattern: flat", "pattern: flat\n    interval: soon")
    assert error_of(registry, text) == (
        "s.yaml:10:15: feeds[0].interval: 'soon' is not a duration (e.g. 250ms, 30s, 2m, 1h) "
        "or a number of seconds"
    )


def test_missing_required_key_in_component(registry: Registry) -> None:
    text = VALID.replace("  entry_bps: 3\n", "  size: 1\n")
    assert error_of(registry, text) == "s.yaml:11:3: strategy: missing required key 'entry_bps'"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1e300", "1e+300"),
        ("1e15", "1000000000000000.0"),
        ("1e-300", "1e-300"),
        ("0", "0"),
        ("-1", "-1"),
        ('"1e-8"', "'1e-8'"),
        ('"0"', "'0'"),
        ('"1000000000000000"', "'1000000000000000'"),
        ('"0.0000000000001"', "'0.0000000000001'"),
        ('"0.1234567890123456789012345678901"', "'0.1234567890123456789012345678901'"),
        ('"' + "1" * 400 + '"', "'" + "1" * 56 + "..."),
    ],
)
def test_decimals_out_of_bounds_are_refused(registry: Registry, value: str, shown: str) -> None:
    text = VALID.replace("entry_bps: 3", f"entry_bps: 3\n  tick: {value}")
    assert error_of(registry, text) == (
        f"s.yaml:13:9: strategy.tick: {shown} is not a number from 1e-12 to below 1e15 "
        "(a YAML number, or a decimal string of at most 30 digits)"
    )


@pytest.mark.parametrize(
    "value",
    ["1e-12", "1e-8", "999999999999999", '"0.00000001"', '"999999999999999.99"', '".5"'],
)
def test_decimals_within_bounds_pass(registry: Registry, value: str) -> None:
    text = VALID.replace("entry_bps: 3", f"entry_bps: 3\n  tick: {value}\n  floor: {value}")
    assert load(registry, text)["strategy"]["tick"] == load(registry, text)["strategy"]["floor"]


def test_non_negative_decimals_take_zero_but_not_more_than_1e15(registry: Registry) -> None:
    for zero in ("0", '"0"', '"0.000"', "0.0"):
        assert load(registry, VALID + f"capital: {{upbit: {{USDT: {zero}}}}}\n")
    assert error_of(registry, VALID + "capital: {upbit: {USDT: 1e16}}\n") == (
        "s.yaml:13:25: capital.upbit.USDT: 1e+16 is not a number from 0 to below 1e15 "
        "(a YAML number, or a decimal string of at most 30 digits)"
    )


def test_huge_durations_are_refused(registry: Registry) -> None:
    text = VALID.replace("duration: 10m", "duration: " + "9" * 13 + "d")
    assert error_of(registry, text).startswith("s.yaml:2:11: duration: '9999999999999d' is not")
    text = VALID.replace("duration: 10m", "duration: 1e300")
    assert error_of(registry, text) == (
        "s.yaml:2:11: duration: 1e+300 is greater than the maximum of 1000000000000"
    )


# --- environment --------------------------------------------------------------------------


def test_missing_env_var(registry: Registry) -> None:
    text = VALID.replace("type: paper", "type: paper\n    api_key: ${BINANCE_API_KEY}")
    assert error_of(registry, text) == (
        "s.yaml:6:14: venues.upbit.api_key: environment variable BINANCE_API_KEY is not set"
    )


def test_env_substitution_and_defaults(registry: Registry) -> None:
    text = VALID.replace("type: paper", "type: paper\n    api_key: ${KEY}") + (
        "description: run ${WHO} at ${WHERE:-home}, ${EMPTY:-fallback}\n"
    )
    data = load(registry, text, env={"KEY": "12345", "WHO": "ci", "EMPTY": ""})
    # Exactly "${KEY}" stays a string even though it looks like a number.
    assert data["venues"]["upbit"]["api_key"] == "12345"
    assert data["description"] == "run ci at home, fallback"


def test_env_defaults_to_os_environ(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBFRAME_TEST_WHO", "tester")
    path = write("s.yaml", VALID + "description: by ${ARBFRAME_TEST_WHO}\n")
    assert load_scenario(path, registry).data["description"] == "by tester"


def test_substitution_happens_before_validation(registry: Registry) -> None:
    text = VALID.replace("duration: 10m", "duration: ${RUN_FOR:-forever}")
    assert error_of(registry, text).startswith("s.yaml:2:11: duration: 'forever' is not a duration")


@pytest.mark.parametrize(
    ("key", "written", "env", "value"),
    [
        ("seed", "${SEED}", {"SEED": "7"}, 7),
        ("seed", "${SEED:-0x10}", {}, 16),
        ("name", "${NAME}", {"NAME": "007"}, "007"),  # a string stays a string
        ("duration", "${FOR}", {"FOR": "60s"}, "60s"),  # a duration may be a string
        ("fx", "{KRW: '${KRW}'}", {"KRW": "1350"}, {"KRW": "1350"}),  # so may a decimal
    ],
)
def test_a_whole_placeholder_takes_the_type_the_schema_expects(
    registry: Registry, key: str, written: str, env: dict[str, str], value: Any
) -> None:
    others = [line for line in VALID.splitlines(keepends=True) if not line.startswith(key)]
    assert load(registry, "".join(others) + f"{key}: {written}\n", env=env)[key] == value


@pytest.mark.parametrize(
    ("written", "env", "shown"),
    [
        ("${SEED}", {"SEED": "seven"}, "'seven'"),  # no YAML number: left for validation
        ("${SEED}", {"SEED": "+0o17"}, "'+0o17'"),  # not YAML 1.2 core
        ("${SEED}", {"SEED": "1.5"}, "'1.5'"),  # a float where an integer is wanted
        ("x${SEED}", {"SEED": "7"}, "'x7'"),  # embedded in text: textual
    ],
)
def test_a_placeholder_that_does_not_convert_is_reported_at_the_value(
    registry: Registry, written: str, env: dict[str, str], shown: str
) -> None:
    assert error_of(registry, VALID + f"seed: {written}\n", env=env) == (
        f"s.yaml:13:7: seed: {shown} is not of type 'integer'"
    )


def test_placeholders_in_components_follow_the_plugin_schema(registry: Registry) -> None:
    text = VALID.replace("{taker_bps: 5}", "{taker_bps: '${FEE}'}").replace(
        "entry_bps: 3",
        "entry_bps: ${ENTRY:-2.5}\n  close_at_end: ${CLOSE}\n  weights: [1, '${W}']\n"
        "  tick: ${TICK}",
    )
    env = {"FEE": "5", "CLOSE": "false", "W": "3", "TICK": "0.01"}
    data = load(registry, text, env=env)
    assert data["venues"]["upbit"]["fees"] == {"taker_bps": 5}
    assert data["strategy"] == {
        "type": "spread_arb",
        "entry_bps": 2.5,
        "close_at_end": False,
        "weights": [1, 3],  # through the plugin schema's own $ref
        "tick": "0.01",  # a decimal may be a string: it stays one
    }
    # YAML 1.2 core booleans only; anything else is reported where it was written.
    assert error_of(registry, text, env={**env, "CLOSE": "yes"}) == (
        "s.yaml:13:17: strategy.close_at_end: 'yes' is not of type 'boolean'"
    )


def test_a_non_finite_placeholder_is_refused(registry: Registry) -> None:
    text = VALID.replace("entry_bps: 3", "entry_bps: 3\n  size: ${SIZE}")
    assert error_of(registry, text, env={"SIZE": ".inf"}) == (
        "s.yaml:13:9: strategy.size: .inf (from ${SIZE}) is not a finite number"
    )


def test_placeholders_in_a_block_of_unknown_type_stay_strings(registry: Registry) -> None:
    text = VALID.replace("type: synthetic", "type: synthetc\n    count: ${N}")
    assert error_of(registry, text, env={"N": "3"}).startswith(
        "s.yaml:8:11: feeds[0].type: unknown feed type 'synthetc'"
    )


# --- files and extends --------------------------------------------------------------------


def test_missing_file(registry: Registry) -> None:
    with pytest.raises(ArbframeError) as info:
        load_scenario("nope.yaml", registry, env={})
    assert not isinstance(info.value, ScenarioError)
    assert str(info.value) == "nope.yaml: no such file"


def test_missing_base_file(registry: Registry) -> None:
    write("scenarios/child.yaml", "extends: base.yaml\nname: child\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("scenarios/child.yaml", registry, env={})
    assert str(info.value) == (
        "scenarios/child.yaml:1:10: extends: scenarios/base.yaml: no such file"
    )


def test_extends_cycle(registry: Registry) -> None:
    write("a.yaml", "extends: b.yaml\nname: a\n")
    write("b.yaml", "name: b\nextends: a.yaml\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("a.yaml", registry, env={})
    assert str(info.value) == "b.yaml:2:10: extends: extends cycle: a.yaml -> b.yaml -> a.yaml"


def test_extends_overrides_and_merges_deeply(registry: Registry) -> None:
    write("base.yaml", VALID + "seed: 7\n")
    write("mid.yaml", "extends: base.yaml\nvenues:\n  upbit:\n    fees: {maker_bps: 1}\n")
    write(
        "child.yaml",
        (
            "extends: mid.yaml\n"
            "name: child\n"
            "venues:\n  upbit:\n    fees: {taker_bps: 2.5}\n"
            "feeds:\n  - type: replay\n"
        ),
    )
    loaded = load_scenario("child.yaml", registry, env={})
    assert isinstance(loaded, LoadedScenario)
    assert loaded.path == Path("child.yaml")
    assert loaded.data == {
        "name": "child",
        "duration": "10m",
        "venues": {"upbit": {"type": "paper", "fees": {"taker_bps": 2.5, "maker_bps": 1}}},
        "feeds": [{"type": "replay"}],  # lists replace, they do not merge
        "strategy": {"type": "spread_arb", "entry_bps": 3},
        "seed": 7,
    }


def test_error_in_inherited_value_points_into_base_file(registry: Registry) -> None:
    write("base.yaml", VALID.replace("entry_bps: 3", "entry_bps: -3"))
    write("child.yaml", "extends: base.yaml\nstrategy:\n  size: 2\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.yaml", registry, env={})
    assert str(info.value) == (
        "base.yaml:12:14: strategy.entry_bps: -3 is less than the minimum of 0"
    )


def test_error_in_overriding_value_points_into_child(registry: Registry) -> None:
    write("base.yaml", VALID)
    write("child.yaml", "# tuned\nextends: base.yaml\nstrategy:\n  entry_bps: -1\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.yaml", registry, env={})
    assert str(info.value) == (
        "child.yaml:4:14: strategy.entry_bps: -1 is less than the minimum of 0"
    )


def test_problems_in_the_given_file_come_before_the_base_file(registry: Registry) -> None:
    write("base.yaml", VALID + "seed: -1\n")
    write("child.yaml", "extends: base.yaml\nmode: yolo\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.yaml", registry, env={})
    assert str(info.value) == (
        "child.yaml:2:7: mode: 'yolo' is not one of ['backtest', 'paper', 'shadow', 'live']"
    )


def test_replace_tag_replaces_a_mapping_whole(registry: Registry) -> None:
    write("base.yaml", VALID.replace("{taker_bps: 5}", "{taker_bps: 5, maker_bps: 2}"))
    write(
        "child.yaml",
        "extends: base.yaml\nvenues:\n  upbit:\n    fees: !replace {maker_bps: 1}\n"
        "strategy: !replace\n  type: spread_arb\n  entry_bps: 4\n",
    )
    data = load_scenario("child.yaml", registry, env={}).data
    assert data["venues"]["upbit"] == {"type": "paper", "fees": {"maker_bps": 1}}
    assert data["strategy"] == {"type": "spread_arb", "entry_bps": 4}
    # Without the tag the mappings merge.
    write("child.yaml", "extends: base.yaml\nvenues:\n  upbit:\n    fees: {maker_bps: 1}\n")
    fees = load_scenario("child.yaml", registry, env={}).data["venues"]["upbit"]["fees"]
    assert fees == {"taker_bps": 5, "maker_bps": 1}


def test_replaced_values_point_into_the_extending_file(registry: Registry) -> None:
    write("base.yaml", VALID)
    write("child.yaml", "extends: base.yaml\nstrategy: !replace {type: spread_arb, size: 1}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.yaml", registry, env={})
    assert str(info.value) == "child.yaml:2:11: strategy: missing required key 'entry_bps'"


def test_replace_tag_on_lists_and_scalars_is_harmless(registry: Registry) -> None:
    write("base.yaml", VALID + "seed: 1\n")
    write(
        "child.yaml",
        "extends: base.yaml\nfeeds: !replace [{type: replay}]\nseed: !replace 2\n"
        "description: !replace '3'\nmode: !replace\n",
    )
    with pytest.raises(ScenarioError) as info:  # an empty !replace is null, as untagged
        load_scenario("child.yaml", registry, env={})
    assert str(info.value).startswith("child.yaml:5:7: mode: None is not one of")
    text = Path("child.yaml").read_text().replace("mode: !replace\n", "")
    data = load_scenario(write("child.yaml", text), registry, env={}).data
    assert (data["feeds"], data["seed"], data["description"]) == ([{"type": "replay"}], 2, "3")


def test_replace_tag_in_a_single_file_changes_nothing(registry: Registry) -> None:
    text = VALID.replace("fees: {taker_bps: 5}", "fees: !replace {taker_bps: 5}")
    assert load(registry, text) == load(registry, VALID)


# --- the result ---------------------------------------------------------------------------


def test_valid_file_loads_to_plain_data(registry: Registry) -> None:
    text = VALID.replace("{taker_bps: 5}", "{taker_bps: 5.5, maker_bps: 0x10}") + (
        "seed: 3\nfx: {KRW: 1350}\nexpect:\n  portfolio.winrate: {min: 0.5}\n"
    )
    data = load(registry, text)
    assert data == {
        "name": "demo",
        "duration": "10m",
        "venues": {"upbit": {"type": "paper", "fees": {"taker_bps": 5.5, "maker_bps": 16}}},
        "feeds": [{"type": "synthetic", "pattern": "flat"}],
        "strategy": {"type": "spread_arb", "entry_bps": 3},
        "seed": 3,
        "fx": {"KRW": 1350},
        "expect": {"portfolio.winrate": {"min": 0.5}},
    }

    def types(value: Any) -> set[type]:
        if isinstance(value, dict):
            return {type(value)}.union(*(types(v) for v in value.values()))
        if isinstance(value, list):
            return {type(value)}.union(*(types(v) for v in value))
        return {type(value)}

    # No ruamel CommentedMap/ScalarFloat/HexInt left behind.
    assert types(data) == {dict, list, str, int, float}


# --- expect paths against the summary schema ---------------------------------------------

SUMMARY = {
    "type": "object",
    "properties": {
        "portfolio": {
            "allOf": [{"$ref": "#/$defs/kpis"}],
            "properties": {"equity": {"type": "string"}},
        },
        "symbols": {"type": "object", "additionalProperties": {"$ref": "#/$defs/kpis"}},
        "closed": {"type": "object", "additionalProperties": False, "properties": {"a": {}}},
        "loop": {"$ref": "#/$defs/loop"},
    },
    "$defs": {
        "kpis": {
            "type": "object",
            "properties": {
                "winrate": {"type": "number"},
                "exit_reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        },
        "loop": {"$ref": "#/$defs/loop"},
    },
}


def expect_error(registry: Registry, paths: list[str], schema: dict[str, Any]) -> str | None:
    lines = "".join(f"  {path}: {{min: 0}}\n" for path in paths)
    try:
        load_scenario(write("s.yaml", VALID + "expect:\n" + lines), registry, {}, schema)
    except ScenarioError as e:
        return str(e)
    return None


def test_expect_paths_that_the_summary_can_hold(registry: Registry) -> None:
    paths = [
        "portfolio.winrate",  # through allOf and $ref
        "portfolio.equity",  # the node's own properties next to allOf
        "symbols.BTC.winrate",  # additionalProperties: any symbol
        "portfolio.exit_reasons.stop_loss",
        "closed.a",
        "portfolio",  # a whole mapping may be compared too
    ]
    assert expect_error(registry, paths, SUMMARY) is None


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("portfolio.winrat", "did you mean 'portfolio.winrate'?"),
        ("symbols.BTC.winrat", "did you mean 'symbols.BTC.winrate'?"),
        ("portfolio.exit_reason.stop_loss", "did you mean 'portfolio.exit_reasons.stop_loss'?"),
        ("closed.zzz", "'closed' has: a"),  # additionalProperties: false
        ("portfolio.winrate.x", "'portfolio.winrate' has no keys"),  # below a leaf
        ("zzz", "the summary has: closed, loop, portfolio, symbols"),
        ("loop.x", "'loop' has no keys"),  # a $ref cycle ends
    ],
)
def test_expect_path_the_summary_cannot_hold(registry: Registry, path: str, hint: str) -> None:
    quoted = f"['{path}']" if "." in path else f".{path}"
    assert expect_error(registry, ["portfolio.winrate", path], SUMMARY) == (
        f"s.yaml:15:3: expect{quoted}: no such value in the run summary ({hint})"
    )


def test_expect_paths_report_the_first_by_position(registry: Registry) -> None:
    write("base.yaml", VALID + "expect:\n  portfolio.bad_in_base: {min: 0}\n")
    write("child.yaml", "extends: base.yaml\nexpect:\n  portfolio.winrat: {min: 0}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.yaml", registry, {}, SUMMARY)
    assert str(info.value) == (
        "child.yaml:3:3: expect['portfolio.winrat']: no such value in the run summary "
        "(did you mean 'portfolio.winrate'?)"
    )


def test_expect_paths_against_the_real_summary_schema(registry: Registry) -> None:
    documented = [
        "portfolio.winrate",
        "portfolio.pnl",
        "portfolio.exit_reasons.stop_loss",
        "routes.BTC.binance_to_upbit.entries",
        "reconciliation.balances.venues.binance.USDT.difference",
        "reconciliation.passed",
        "execution.refused.stale_book",
        "guards.global.block",
        "strategies.spread_arb.pnl",
        "events.quotes",
        "time.elapsed_s",
        "symbols.BTC.avg_r",
    ]
    assert expect_error(registry, documented, summary_schema()) is None
    assert expect_error(registry, ["portfolio.winrat"], summary_schema()) == (
        "s.yaml:14:3: expect['portfolio.winrat']: no such value in the run summary "
        "(did you mean 'portfolio.winrate'?)"
    )


SHIPPED = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_validate_with_their_expect_paths(path: Path) -> None:
    registry = build_registry(get_plugin_manager())
    check_expect_paths(load_scenario(path, registry), summary_schema())


# --- walking a schema ----------------------------------------------------------------------


def test_schema_walk_steps_through_items_patterns_and_combinators() -> None:
    root = {
        "type": "object",
        "properties": {"pair": {"type": "array", "prefixItems": [{"type": "integer"}]}},
        "patternProperties": {"^x_": {"enum": [1, 2.5]}},
        "additionalProperties": {"oneOf": [{"type": "boolean"}, {"const": "auto"}]},
        "then": {"properties": {"pair": {"items": {"type": "number"}}}},
    }
    top = schema_walk.flatten([root], root)

    def types(*path: str | int) -> set[str]:
        schemas = top
        for key in path:
            schemas = schema_walk.child(schemas, root, key)
        return schema_walk.declared_types(schemas)

    assert types("pair", 0) == {"integer", "number"}  # prefixItems, and `then`'s items
    assert types("pair", 1) == {"number"}
    assert types("x_1") == {"integer", "number"}  # a patternProperty, not additional
    assert types("other") == {"boolean", "string"}
    assert types("other", "deeper") == set()  # no way down


def test_a_block_naming_another_type_replaces_the_base_block() -> None:
    """Switching the strategy's type must not inherit the base strategy's keys, which mean
    nothing (or something else) to the new type; the same type still merges."""
    registry = build_registry(get_plugin_manager())  # the real types
    write("base.yaml", VALID)
    write("other.yaml", "extends: base.yaml\nstrategy: {type: zscore_arb, symbols: [BTC]}\n")
    with pytest.raises(ScenarioError) as err:  # zscore_arb's own schema, not spread_arb's keys
        load_scenario("other.yaml", registry, env={})
    # judged as a zscore_arb block on its own: spread_arb's entry_bps, size... are not there
    assert str(err.value) == "other.yaml:2:11: strategy: missing required key 'venues'"
    write("same.yaml", "extends: base.yaml\nstrategy: {type: spread_arb, exit_bps: 1}\n")
    with pytest.raises(ScenarioError) as err:  # merged: entry_bps from the base is kept
        load_scenario("same.yaml", registry, env={})
    assert str(err.value) == "same.yaml:2:11: strategy: missing required key 'size'"
