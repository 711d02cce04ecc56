"""Hostile or absurd scenario files are refused with one line, quickly and in small memory."""

from __future__ import annotations

import functools
import tracemalloc
import warnings
from pathlib import Path

import pytest
from test_scenario import VALID, error_of, load, registry, write

from arbframe import scenario
from arbframe.errors import ArbframeError, ScenarioError
from arbframe.plugins import Registry
from arbframe.scenario import load_scenario
from arbframe.yaml_limits import MAX_BYTES, MAX_EXTENDS, deep_nesting_at

__all__ = ["registry"]  # the fixture, shared with test_scenario


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def limit_values(monkeypatch: pytest.MonkeyPatch, values: int) -> None:
    monkeypatch.setattr(scenario, "_Budget", functools.partial(scenario._Budget, values=values))


# --- alias expansion ----------------------------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_billion_laughs_is_refused_at_the_alias_in_small_memory(registry: Registry) -> None:
    tracemalloc.start()
    try:
        message = error_of(registry, LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 9**9 values if expanded; counting stops inside the first *e of f (line 5).
    assert message == (
        "s.yaml:5:4: f[0]: alias *e expands to more than 100000 values in all, "
        "with the files it extends"
    )
    assert peak < 100 * 2**20


def test_the_value_count_spans_the_extends_chain(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_values(monkeypatch, 30)
    write("base.yaml", VALID)  # 15 values, the document included
    # 17 values: the document, extends, guards and its 14 items; read before the base.
    write("child.yaml", "extends: base.yaml\nguards: [" + ", ".join(["1"] * 14) + "]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.yaml", registry, env={})
    # The 31st value: the base's 14th.
    assert str(info.value).startswith("base.yaml:11:9: strategy.type: too many values (more")


def test_many_values_without_aliases(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    limit_values(monkeypatch, 20)
    # VALID holds 15 values, guards is the 16th: its item [4] the 21st.
    assert error_of(registry, VALID + "guards: [1, 2, 3, 4, 5, 6, 7]\n") == (
        "s.yaml:13:22: guards[4]: too many values (more than 100000 values in all, with the "
        "files it extends)"
    )


def test_anchors_aliases_and_merge_keys_in_normal_use(registry: Registry) -> None:
    text = """\
name: demo
duration: &d 10m
venues:
  upbit: &paper
    type: paper
    fees: &fees {taker_bps: 5}
  binance:
    <<: *paper
    fees: {<<: *fees, maker_bps: 1}
feeds:
  - &flat {type: synthetic, pattern: flat}
  - *flat
strategy: {type: spread_arb, entry_bps: 3, size: 2}
description: *d
"""
    data = load(registry, text)
    assert data["venues"] == {
        "upbit": {"type": "paper", "fees": {"taker_bps": 5}},
        "binance": {"type": "paper", "fees": {"taker_bps": 5, "maker_bps": 1}},
    }
    assert data["feeds"] == [{"type": "synthetic", "pattern": "flat"}] * 2
    assert data["description"] == "10m"
    # An error in a value reached through an alias points at the anchored value.
    bad = text.replace("description: *d", "seed: *d")
    assert error_of(registry, bad) == "s.yaml:2:11: seed: '10m' is not of type 'integer'"


def test_a_redefined_anchor_is_valid_yaml_and_prints_nothing(registry: Registry) -> None:
    text = VALID + "description: &a x\nmode: &a paper\nreport_currency: *a\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ruamel warns about it on stderr
        assert load(registry, text)["report_currency"] == "paper"  # the latest anchor


# --- nesting ------------------------------------------------------------------------------


def test_deep_flow_nesting_is_refused_before_parsing(registry: Registry) -> None:
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    # The top-level mapping is one level, each bracket another: the 64th crosses 64.
    assert error_of(registry, text) == "s.yaml:1:67: nested more than 64 levels deep"


def test_deep_block_nesting_is_refused_before_parsing(registry: Registry) -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(200))
    assert error_of(registry, text) == "s.yaml:65:129: nested more than 64 levels deep"


def test_deep_compact_sequences_are_refused(registry: Registry) -> None:
    message = error_of(registry, "- " * 5000 + "x\n")
    assert message == "s.yaml:1:129: nested more than 64 levels deep"  # the 65th `- `


def test_nesting_up_to_the_limit_is_parsed(registry: Registry) -> None:
    # 63 brackets: 64 levels with the top mapping; the next problem is the unknown key.
    text = VALID + "deep: " + "[" * 63 + "]" * 63 + "\n"
    assert error_of(registry, text).startswith("s.yaml:13:1: deep: unknown key 'deep'")
    text = VALID + "deep: " + "[" * 64 + "]" * 64 + "\n"
    assert error_of(registry, text) == "s.yaml:13:70: nested more than 64 levels deep"


@pytest.mark.parametrize(
    "text",
    [
        "a: ['[[[[', \"{{{{\", '''']'']\n",  # brackets in quotes
        "a: b[[[[ # [[[[\n",  # in a plain scalar, and in a comment
        "a: !tag '[[[['\n",
        "a: |\n  [[[[\n   {{{{\n\n  [[[[\nb: 1\n",  # a block scalar's text
        "- >-\n  [[[[\n- x\n",
    ],
)
def test_the_nesting_estimate_ignores_quoted_and_plain_brackets(text: str) -> None:
    assert deep_nesting_at(text, limit=3) is None
    assert deep_nesting_at(text.replace("[[[[", "[[[[[[[[[[[[[[["), limit=3) is None


def test_nesting_the_estimate_misses_is_still_refused(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scenario, "deep_nesting_at", lambda text: None)
    # Parsed by ruamel, refused exactly while building values: at the 65th level.
    text = VALID + "deep: " + "[" * 70 + "]" * 70 + "\n"
    assert error_of(registry, text) == (
        "s.yaml:13:71: deep" + "[0]" * 64 + ": nested more than 64 levels deep"
    )
    # Too deep for ruamel's recursive composer: its RecursionError is one line too.
    text = "a: " + "[" * 1000 + "]" * 1000 + "\n"
    assert error_of(registry, text) == "s.yaml: nested too deeply to parse"


# --- size and extends -----------------------------------------------------------------------


def test_a_huge_file_is_refused(registry: Registry) -> None:
    text = VALID + "description: '" + "x" * MAX_BYTES + "'\n"
    with pytest.raises(ArbframeError) as info:
        load_scenario(write("s.yaml", text), registry, env={})
    assert str(info.value) == (
        "s.yaml: too large (a scenario and the files it extends may hold 1024 KiB in all)"
    )


def test_the_size_limit_spans_the_extends_chain(registry: Registry) -> None:
    write("base.yaml", VALID + "description: '" + "x" * (MAX_BYTES // 2) + "'\n")
    write("child.yaml", "extends: base.yaml\ndescription: '" + "y" * (MAX_BYTES // 2) + "'\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.yaml", registry, env={})
    assert str(info.value) == (
        "child.yaml:1:10: extends: base.yaml: too large (a scenario and the files it extends "
        "may hold 1024 KiB in all)"
    )


def test_extending_an_endless_file_is_refused(registry: Registry) -> None:
    write("child.yaml", "extends: /dev/zero\nname: x\n")
    with pytest.raises(ScenarioError, match=r"^child\.yaml:1:10: extends: /dev/zero: too large"):
        load_scenario("child.yaml", registry, env={})


def test_a_long_extends_chain_is_refused(registry: Registry) -> None:
    write("f0.yaml", VALID)
    for i in range(1, 40):
        write(f"f{i}.yaml", f"extends: f{i - 1}.yaml\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario("f39.yaml", registry, env={})
    last = 39 - (MAX_EXTENDS - 1)  # the first file to name one more base than allowed
    assert str(info.value) == (
        f"f{last}.yaml:1:10: extends: more than {MAX_EXTENDS} files in the extends chain"
    )
    assert load_scenario(f"f{MAX_EXTENDS - 1}.yaml", registry, env={}).data["name"] == "demo"
