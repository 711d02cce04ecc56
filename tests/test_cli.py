"""The `arbframe` command, run as a real subprocess (and in-process where that is cheaper)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from arbframe.cli import main
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.scenario import load_scenario
from arbframe.schema import SLOTS

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
BASE = SCENARIOS / "_campaign_base.yaml"
C1 = SCENARIOS / "c1_mixed.yaml"
SUMMARY_SCHEMA = json.loads((REPO / "schemas" / "summary.schema.json").read_text())
KPI_KEYS = (
    "entries",
    "exits",
    "trades_closed",
    "wins",
    "winrate",
    "pnl",
    "fees",
    "slippage",
    "max_drawdown",
    "sharpe",
)
BUILTIN_TYPES = {
    "exchange": {"paper"},
    "feed": {"synthetic", "scripted", "replay"},
    "strategy": {"spread_arb"},
    "guard": {"exchange", "route", "symbol", "global"},
    "sink": {"sqlite", "postgres"},
    "alert": {"log", "telegram", "webhook"},
    "fault": {"order_reject", "partial_fill", "slippage_stress", "flash_move"},
    "state": {"memory", "sqlite", "postgres", "redis"},
    "universe": {"single", "fixed_list", "top_n", "full_market"},
}
# The built-in feed types and those of any installed third-party plugin (the example's `sine`).
INSTALLED_FEEDS = ", ".join(sorted(build_registry(get_plugin_manager()).types("feed")))
# file:line:col: [key.path: ]message -- one line.
ERROR_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): "
    r"(?:(?P<key>[\w.\[\]'-]+): )?(?P<message>\S.*)$"
)


def arbframe(
    *args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m arbframe ARGS` in a subprocess (exercises arbframe/__main__.py).

    -P keeps the working directory off sys.path, so the installed package is what runs,
    not the source folder beside the tests.
    """
    return subprocess.run(
        [sys.executable, "-P", "-m", "arbframe", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def repo_scenarios() -> list[Path]:
    found = sorted(SCENARIOS.glob("*.yaml"))
    assert any(p.name.startswith("_") for p in found)  # the base files are included
    return found


def write_scenario(tmp_path: Path, body: str, name: str = "scenario.yaml") -> Path:
    """A scenario extending the repo's campaign base by absolute path; line 1 is `extends`."""
    path = tmp_path / name
    path.write_text(f"extends: {BASE}\n" + body)
    return path


def single_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stderr.endswith("\n")
    return lines[0]


def located(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    line = single_error_line(result)
    match = ERROR_LINE.match(line)
    assert match, f"not file:line:col: key: message -- {line!r}"
    return match.groupdict()


# --- run -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c1_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("c1") / "out"
    return arbframe("run", C1, "--out", out), out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_run_writes_outputs_that_agree(c1_run: tuple[Any, Path]) -> None:
    result, out = c1_run
    assert result.returncode == 0, result.stderr
    assert "all expectations hold" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "events.jsonl",
        "fills.jsonl",
        "orders.jsonl",
        "summary.json",
        "trades.jsonl",
    ]

    summary = json.loads((out / "summary.json").read_text())
    Draft202012Validator(SUMMARY_SCHEMA).validate(summary)
    assert summary["scenario"] == "c1_mixed"
    assert summary["seed"] == load_scenario(C1, build_registry(get_plugin_manager())).data["seed"]
    assert summary["mode"] == "paper"
    assert summary["passed"] is True
    for kpis in (summary["portfolio"], summary["symbols"]["BTC"]):
        for key in KPI_KEYS:
            assert key in kpis, key
    assert summary["expectations"]
    for e in summary["expectations"]:
        assert set(e) >= {"name", "expected", "actual", "passed"}
        assert e["passed"] is True
    names = [e["name"] for e in summary["expectations"]]
    assert "portfolio.winrate" in names and "reconciliation.passed" in names

    fills = read_jsonl(out / "fills.jsonl")
    trades = read_jsonl(out / "trades.jsonl")
    orders = read_jsonl(out / "orders.jsonl")
    portfolio = summary["portfolio"]
    assert portfolio["trades_closed"] > 0 and portfolio["entry_failures"] == 0
    assert len(trades) == portfolio["trades_closed"]
    assert len({t["trade_id"] for t in trades}) == len(trades)
    trade_ids = {t["trade_id"] for t in trades}
    assert fills and all(f["trade_id"] in trade_ids for f in fills)
    # Each trade lists exactly its own fills, and every fill is some trade's.
    by_trade: dict[str, set[str]] = {}
    for f in fills:
        by_trade.setdefault(f["trade_id"], set()).add(f["fill_id"])
    assert {t["trade_id"]: set(t["fills"]) for t in trades} == by_trade
    assert summary["symbols"]["BTC"]["trades_closed"] == sum(t["symbol"] == "BTC" for t in trades)
    assert portfolio["wins"] == sum(1 for t in trades if float(t["net_pnl"]) > 0)
    # Orders: the counts in the summary are those of orders.jsonl.
    assert summary["orders"]["submitted"] == len(orders)
    assert summary["orders"].get("filled", 0) == sum(o["state"] == "filled" for o in orders)
    assert {f["client_id"] for f in fills} <= {o["client_id"] for o in orders}


def test_run_is_deterministic_and_seed_matters(tmp_path: Path, c1_run: tuple[Any, Path]) -> None:
    _, first = c1_run
    again = arbframe("run", C1, "--out", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    reference = (first / "summary.json").read_bytes()
    assert (tmp_path / "again" / "summary.json").read_bytes() == reference
    assert (tmp_path / "again" / "fills.jsonl").read_bytes() == (first / "fills.jsonl").read_bytes()

    other = arbframe("run", C1, "--seed", "8", "--out", tmp_path / "other")
    assert other.returncode in (0, 1), other.stderr
    changed = json.loads((tmp_path / "other" / "summary.json").read_text())
    assert changed["seed"] == 8
    assert (tmp_path / "other" / "summary.json").read_bytes() != reference
    baseline = json.loads(reference)
    assert changed["portfolio"] != baseline["portfolio"]  # the books differ, not just the seed


def test_run_json_prints_the_summary(tmp_path: Path) -> None:
    result = arbframe("run", C1, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    Draft202012Validator(SUMMARY_SCHEMA).validate(summary)
    assert summary["passed"] is True and summary["scenario"] == "c1_mixed"


def test_failing_expectation_exits_1_and_names_it(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        "name: impossible\nexpect:\n"
        "  portfolio.entries: {min: 100000}\n  portfolio.exits: {min: 1}\n",
    )
    result = arbframe("run", path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    fail_lines = [line for line in result.stdout.splitlines() if line.split()[:1] == ["FAIL"]]
    assert len(fail_lines) == 1, result.stdout
    assert "portfolio.entries" in fail_lines[0] and "100000" in fail_lines[0]
    assert re.search(r"PASS\s+portfolio\.exits", result.stdout)
    assert "EXPECTATIONS FAILED" in result.stdout

    as_json = arbframe("run", path, "--json")
    assert as_json.returncode == 1
    summary = json.loads(as_json.stdout)
    assert summary["passed"] is False
    failed = [e for e in summary["expectations"] if not e["passed"]]
    assert [e["name"] for e in failed] == ["portfolio.entries"]
    assert failed[0]["expected"] == {"min": 100000}
    assert isinstance(failed[0]["actual"], int) and failed[0]["actual"] < 100000


def test_expectation_on_a_value_the_run_did_not_produce_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path the summary can hold but this run did not (no take-profit happened) fails the
    run; a path no summary can hold is refused when the file is loaded (exit 2)."""
    path = write_scenario(
        tmp_path,
        "name: missing\nduration: 1m\nexpect:\n  portfolio.exit_reasons.take_profit: {eq: 0}\n",
    )
    assert main(["run", str(path), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    [failed] = [e for e in summary["expectations"] if not e["passed"]]
    assert failed["name"] == "portfolio.exit_reasons.take_profit" and failed["actual"] is None
    assert failed["error"]
    typo = write_scenario(
        tmp_path, "name: typo\nexpect:\n  portfolio.winrat: {min: 0.4}\n", name="typo.yaml"
    )
    assert main(["validate", str(typo)]) == 2
    assert capsys.readouterr().err == (
        f"{typo}:4:3: expect['portfolio.winrat']: no such value in the run summary "
        "(did you mean 'portfolio.winrate'?)\n"
    )


# --- input errors: exit 2, one line, no traceback -------------------------------------------

# (body after the `extends:` line, expected line, col, key, message fragments)
BAD_INPUTS = {
    # The flow mapping opened on line 3 is never closed; line 4 is where that shows.
    "malformed_yaml": (
        "name: x\nvenues: {upbit: {type: paper}\nseed: 3\n",
        4,
        1,
        None,
        ["expected ',' or '}'"],
    ),
    "mapping_in_scalar": ("name: a: b\n", 2, 8, None, ["mapping values are not allowed"]),
    "unknown_key": (
        "name: x\nbogus_key: 1\n",
        3,
        1,
        "bogus_key",
        ["unknown key 'bogus_key'", "duration"],
    ),
    "unknown_strategy_type": (
        "name: x\nstrategy:\n  type: nosuch\n",
        4,
        9,
        "strategy.type",
        ["unknown strategy type 'nosuch'", "spread_arb"],
    ),
    "unknown_feed_type": (
        "name: x\nfeeds:\n  - type: nosuch\n",
        4,
        11,
        "feeds[0].type",
        ["unknown feed type 'nosuch'", f"(known: {INSTALLED_FEEDS})"],
    ),
    "out_of_range_core": ("name: x\nseed: -5\n", 3, 7, "seed", ["-5", "minimum of 0"]),
    "out_of_range_plugin": (
        "name: x\nstrategy:\n  stop_loss_bps: -1\n",
        4,
        18,
        "strategy.stop_loss_bps",
        ["-1", "less than or equal to the minimum of 0"],
    ),
    "missing_env_var": (
        "name: ${ARBFRAME_TEST_SURELY_UNSET}\n",
        2,
        7,
        "name",
        ["ARBFRAME_TEST_SURELY_UNSET", "not set"],
    ),
    "missing_base_file": (None, 1, 10, "extends", ["no_such_base.yaml", "no such file"]),
    "capital_unknown_venue": (
        "name: x\ncapital:\n  kraken: {USDT: 1}\n",
        4,
        3,
        "capital.kraken",
        ["unknown venue 'kraken'", "upbit, binance"],
    ),
    "feed_unknown_venue": (
        "name: x\nfeeds:\n  - type: scripted\n    events:\n"
        "      - {at: 1s, venue: kraken, symbol: BTC, bid: 1, ask: 2}\n",
        4,
        5,
        "feeds[0]",
        ["unknown venue 'kraken'", "upbit, binance"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_located_line(tmp_path: Path, case: str) -> None:
    body, line, col, key, fragments = BAD_INPUTS[case]
    if body is None:  # the `extends` line itself is the problem
        path = tmp_path / "scenario.yaml"
        path.write_text("extends: no_such_base.yaml\nname: x\n")
    else:
        path = write_scenario(tmp_path, body)
    env = {k: v for k, v in os.environ.items() if k != "ARBFRAME_TEST_SURELY_UNSET"}
    result = arbframe("run", path, "--out", tmp_path / "out", env=env)
    where = located(result)
    assert where["file"] == str(path)
    assert (int(where["line"]), int(where["col"])) == (line, col), where
    assert where["key"] == key, where  # None: a YAML syntax error has no key
    for fragment in fragments:
        assert fragment in where["message"], where
    assert not (tmp_path / "out").exists()  # nothing ran


def test_missing_scenario_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    line = single_error_line(arbframe("run", missing))
    assert line == f"{missing}: no such file"


def test_same_errors_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_scenario(tmp_path, "name: x\ncapital:\n  kraken: {USDT: 1}\n")
    assert main(["run", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == f"{path}:4:3: capital.kraken: unknown venue 'kraken' "
        "(venues: upbit, binance)\n"
    )


# --- validate ------------------------------------------------------------------------------


def test_validate_accepts_every_repo_scenario(fake_venues) -> None:
    # Validating wires the venues as a run would: a real venue's start-up check asks the
    # exchange for its markets, here the local fakes (live_* scenarios).
    files = repo_scenarios()
    result = arbframe("validate", *files, env={**os.environ, **fake_venues.env()})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [f"{p}: ok" for p in files]


def test_validate_names_the_broken_file(tmp_path: Path, fake_venues) -> None:
    bad = write_scenario(tmp_path, "name: x\nseed: -1\n", name="broken.yaml")
    files = [*repo_scenarios(), bad]
    env = {**os.environ, **fake_venues.env()}  # the live_* scenarios' venues
    result = arbframe("validate", *files, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [error] = result.stderr.splitlines()
    assert error.startswith(f"{bad}:3:7: seed: ")
    assert f"{bad}: ok" not in result.stdout
    assert len(result.stdout.splitlines()) == len(files) - 1

    as_json = arbframe("validate", "--json", *files, env=env)
    assert as_json.returncode == 2
    rows = json.loads(as_json.stdout)
    assert [r["file"] for r in rows] == [str(p) for p in files]
    assert all(set(r) == {"file", "valid"} and r["valid"] is True for r in rows[:-1])
    assert rows[-1]["valid"] is False
    assert set(rows[-1]) == {"file", "valid", "error"}
    assert rows[-1]["error"] == error


def test_validate_json_all_valid() -> None:
    result = arbframe("validate", "--json", C1, BASE)
    assert result.returncode == 0
    assert json.loads(result.stdout) == [
        {"file": str(C1), "valid": True},
        {"file": str(BASE), "valid": True},
    ]


# --- plugins -------------------------------------------------------------------------------


def test_plugins_json_lists_every_builtin_type() -> None:
    result = arbframe("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    found: dict[str, set[str]] = {}
    keys = {"kind", "type", "plugin", "distribution", "module", "class", "description", "broken"}
    for row in rows:
        assert set(row) == keys and row["broken"] is None
        found.setdefault(row["kind"], set()).add(row["type"])
    assert set(found) == set(BUILTIN_TYPES)
    for kind, types in BUILTIN_TYPES.items():
        assert types <= found[kind], kind
    dist = f"arbframe {version('arbframe')}"
    assert dist == "arbframe 0.1.0"
    builtin = [r for r in rows if r["type"] in BUILTIN_TYPES[r["kind"]]]
    assert all(r["distribution"] == dist for r in builtin)
    assert all(r["description"] for r in builtin)
    paper = next(r for r in rows if r["type"] == "paper")
    assert paper["class"] == "arbframe_plugins.exchanges.paper.PaperExchange"
    assert paper["module"] == "arbframe_plugins.exchanges.paper" and paper["plugin"] == "paper"


def test_plugins_text_listing() -> None:
    result = arbframe("plugins")
    assert result.returncode == 0, result.stderr
    listed = {tuple(line.split()[:4]) for line in result.stdout.splitlines()}
    for kind, types in BUILTIN_TYPES.items():
        for type_name in types:
            assert (kind, type_name, "arbframe", "0.1.0") in listed, (kind, type_name)


def test_plugins_with_autoload_disabled_is_empty() -> None:
    env = {**os.environ, "ARBFRAME_DISABLE_PLUGIN_AUTOLOAD": "1"}
    as_json = arbframe("plugins", "--json", env=env)
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == []
    text = arbframe("plugins", env=env)
    assert text.returncode == 0, text.stderr
    assert "Traceback" not in text.stderr and text.stdout == ""


# --- schema --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def composed() -> dict[str, Any]:
    result = arbframe("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    return schema


def test_schema_accepts_every_repo_scenario(composed: dict[str, Any]) -> None:
    registry = build_registry(get_plugin_manager())
    validator = Draft202012Validator(composed)
    for path in repo_scenarios():
        data = load_scenario(path, registry).data
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], path


def test_schema_slots_enumerate_the_known_types(composed: dict[str, Any]) -> None:
    for slot, kind in SLOTS.items():
        enum = composed["$defs"][f"{slot}_component"]["properties"]["type"]["enum"]
        assert enum == sorted(enum)
        assert BUILTIN_TYPES[kind] <= set(enum), slot
    assert composed["properties"]["strategy"] == {"$ref": "#/$defs/strategy_component"}
    assert composed["properties"]["venues"]["additionalProperties"] == {
        "$ref": "#/$defs/venues_component"
    }
    assert composed["properties"]["feeds"]["items"] == {"$ref": "#/$defs/feeds_component"}


def test_schema_rejects_bad_components(composed: dict[str, Any]) -> None:
    registry = build_registry(get_plugin_manager())
    data = load_scenario(C1, registry).data
    validator = Draft202012Validator(composed)
    assert validator.is_valid(data)
    assert not validator.is_valid({**data, "strategy": {"type": "nosuch"}})
    # The plugin's own config schema applies through the type's branch.
    assert not validator.is_valid({**data, "strategy": {**data["strategy"], "entry_bps": "x"}})
    assert not validator.is_valid({**data, "strategy": {**data["strategy"], "bogus": 1}})
    feed = {**data["feeds"][0], "pattern": "no_such_pattern"}
    assert not validator.is_valid({**data, "feeds": [feed]})


def test_schema_without_plugins_is_still_valid() -> None:
    env = {**os.environ, "ARBFRAME_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = arbframe("schema", env=env)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    registry = build_registry(get_plugin_manager())
    data = load_scenario(C1, registry).data
    assert not Draft202012Validator(schema).is_valid(data)  # no type can fill any slot


def test_schema_summary() -> None:
    result = arbframe("schema", "summary")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema == SUMMARY_SCHEMA
    Draft202012Validator.check_schema(schema)


# --- help, entry points --------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["run"], ["validate"], ["plugins"], ["schema"]])
def test_help(command: list[str]) -> None:
    result = arbframe(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: arbframe {' '.join(command)}".rstrip())


def test_no_command_prints_help_and_exits_2() -> None:
    result = arbframe()
    assert result.returncode == 2
    assert "run" in result.stdout and "validate" in result.stdout


def test_console_script_and_version() -> None:
    script = shutil.which("arbframe") or str(Path(sys.executable).with_name("arbframe"))
    assert Path(script).exists(), "installing arbframe must install the `arbframe` script"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"arbframe {version('arbframe')}"
    as_module = arbframe("--version")
    assert as_module.stdout == result.stdout
