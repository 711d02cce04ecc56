"""`arbframe tune`: parameters applied through the loader, the grid covered once, the best
trial checked against independent `arbframe run`s, constraints, pruning, --top, bad input,
walk-forward and stress marks. Studies live in SQLite under each test's tmp_path."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import shutil
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytest

from arbframe import studies
from arbframe.cli import main
from arbframe.errors import ScenarioError
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.scenario import load_scenario
from arbframe.tuning import Runner, broken_constraints, load_tuning, window_overrides
from arbframe.walkforward import drop, overfit

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
D68 = SCENARIOS / "d68_tuning.yaml"


def tune(capsys: Any, *args: str) -> tuple[int, Any, str]:
    """`arbframe tune ARGS --json --no-progress` in-process: (exit code, JSON or None, stderr)."""
    code = main(["tune", *args, "--json", "--no-progress"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def run_json(capsys: Any, path: Path) -> dict[str, Any]:
    assert main(["run", str(path), "--json"]) in (0, 1)
    return json.loads(capsys.readouterr().out)


def study(tmp_path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'studies.db'}")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ARBFRAME_STATE_DIR", str(tmp_path))  # studies.db goes there
    monkeypatch.delenv("ARBFRAME_DATABASE_URL", raising=False)
    return tmp_path


def write(tmp_path: Path, tuning: str, extra: str = "", name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        f"extends: {SCENARIOS / '_campaign_base.yaml'}\nname: {path.stem}\nduration: 2m\n"
        f"seed: 14\n{extra}tuning:\n{tuning}"
    )
    return path


# ---- parameters and bad input -------------------------------------------------------------------


def test_params_are_applied_through_the_loader(tmp_path: Path) -> None:
    path = write(tmp_path, "  params:\n    strategy.stop_loss_bps: {low: 10, high: 50}\n")
    registry = build_registry(get_plugin_manager())
    loaded = load_scenario(
        path, registry, overrides={"strategy.entry_bps": 35, "feeds.0.tick.upbit": 500}
    )
    assert loaded.data["strategy"]["entry_bps"] == 35
    assert loaded.data["feeds"][0]["tick"]["upbit"] == 500
    assert loaded.data["strategy"]["exit_bps"] == 5  # the rest as written
    # a value that breaks the scenario is reported at the tuning key that set it
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, registry, overrides={"strategy.stop_loss_bps": -3})
    assert str(err.value).startswith(f"{path}:7:5: strategy.stop_loss_bps: -3 is less than")


@pytest.mark.parametrize(
    ("tuning", "expected"),
    [
        ("  params:\n    strategy.entry_bps: {low: 50, high: 10}\n",
         "t.yaml:7:5: tuning.params['strategy.entry_bps']: low (50) must be below high (10)"),
        ("  params:\n    strategy.entry_bpz: {low: 10, high: 50}\n",
         "t.yaml:7:5: tuning.params['strategy.entry_bpz']: strategy.entry_bpz is not in the "
         "scenario"),
        ("  sampler: grid\n  params:\n    strategy.entry_bps: {low: 10, high: 50}\n",
         "t.yaml:8:5: tuning.params['strategy.entry_bps']: the grid sampler needs a step"),
        ("  params:\n    strategy.stop_loss_bps: {low: -10, high: 50}\n",
         "t.yaml:7:5: strategy.stop_loss_bps: -10 is less than"),
        ("  objective: {metric: portfolio.pnlz}\n"
         "  params:\n    strategy.entry_bps: {choices: [1]}\n",
         "t.yaml:6:23: tuning.objective.metric: "),
        ("  sampler: annealing\n  params:\n    strategy.entry_bps: {choices: [1]}\n",
         "t.yaml:6:12: tuning.sampler: 'annealing' is not one of"),
        ("  sampler: grid\n  trials: 5\n  params:\n    strategy.entry_bps: {choices: [1, 2]}\n",
         "t.yaml:7:11: tuning.trials: 5 trials, but the grid has 2 combinations"),
        ("  sampler: grid\n  params:\n    strategy.entry_bps: {low: 0, high: 1e6, step: 0.001}\n",
         "t.yaml:8:5: tuning.params['strategy.entry_bps']: more than 100,000 values"),
        ("  params:\n    strategy.entry_bps: {choices: [1]}\n  stress: {scenarios: [nope.yaml]}\n",
         "t.yaml:8:24: tuning.stress.scenarios[0]: "),
        ("  params:\n    strategy.entry_bps: {choices: [1]}\n  walk_forward: {at: duration, "
         "start: soon, train: 1m, validate: 1m, windows: 2}\n",
         "t.yaml:8:39: tuning.walk_forward.start: not an ISO 8601 time"),
        ("  params:\n    strategy.entry_bps: {choices: [1]}\n  walk_forward: {at: feeds.0.start, "
         "start: '2021-08-20T00:00:00Z', train: 1m, validate: 1m, windows: 2}\n",
         "t.yaml:8:22: tuning.walk_forward.at: feeds.0.start is not written in the scenario"),
        # the schema error follows the branch whose keys are written
        ("  params:\n    strategy.entry_bps: {choices: []}\n",
         "t.yaml:7:35: tuning.params['strategy.entry_bps'].choices: [] should be non-empty"),
        ("  params:\n    strategy.entry_bps: {choices: [1, 1]}\n",
         "t.yaml:7:35: tuning.params['strategy.entry_bps'].choices: [1, 1] has non-unique"),
        ("  params:\n    strategy.entry_bps: {low: 1, high: 5, step: 0}\n",
         "t.yaml:7:49: tuning.params['strategy.entry_bps'].step: 0 is less than or equal to"),
        # every edge is applied: a bad high (the low is fine)
        ("  params:\n    venues.upbit.fees.taker_bps: {low: 1, high: 5000}\n",
         "t.yaml:7:5: venues.upbit.fees.taker_bps: 5000 is"),
        # walk-forward: equal train and validate lengths (raw PnL is compared)
        ("  params:\n    strategy.entry_bps: {choices: [1]}\n  walk_forward: {at: seed, "
         "start: '2021-08-20T00:00:00Z', train: 2m, validate: 1m, windows: 2}\n",
         "t.yaml:8:80: tuning.walk_forward.validate: validate (1m) must be as long as train"),
        # every window's parts are loaded: `at` set to a time where a number is expected
        ("  params:\n    strategy.entry_bps: {choices: [1]}\n  walk_forward: {at: seed, "
         "start: '2021-08-20T00:00:00Z', train: 1m, validate: 1m, windows: 2}\n",
         "t.yaml:8:22: tuning.walk_forward.at: window 0 train: "),
    ],
)  # fmt: skip
def test_a_bad_tuning_block_exits_2_naming_the_key(
    tmp_path: Path, capsys: Any, tuning: str, expected: str
) -> None:
    code, out, err = tune(capsys, str(write(tmp_path, tuning)))
    assert (code, out) == (2, None)
    assert err.startswith(str(tmp_path / expected)), err
    assert "Traceback" not in err
    assert not (tmp_path / "studies.db").exists() or not optuna.get_all_study_names(
        f"sqlite:///{tmp_path / 'studies.db'}"
    )  # refused before any study was made


def test_a_scenario_without_tuning_is_refused(capsys: Any) -> None:
    code, _, err = tune(capsys, str(SCENARIOS / "c1_mixed.yaml"))
    assert code == 2 and "no tuning: block" in err


def test_arbframe_run_ignores_the_tuning_block(capsys: Any) -> None:
    summary = run_json(capsys, D68)
    assert summary["passed"]
    assert summary["portfolio"]["pnl"].startswith("-")  # the loose stop as written: a loss


# ---- d68: grid, best against baseline, constraints, --top ---------------------------------------


@pytest.fixture(scope="module")
def d68(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """d68_tuning tuned once (2 worker processes) for the tests below."""
    state = tmp_path_factory.mktemp("d68")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARBFRAME_STATE_DIR", str(state))
        mp.delenv("ARBFRAME_DATABASE_URL", raising=False)
        storage = f"sqlite:///{state / 'studies.db'}"
        code = main(["tune", str(D68), "--storage", storage, "--no-progress", "--json"])
    assert code == 0
    return state, optuna.load_study(study_name="d68_tuning", storage=storage)


def test_the_grid_runs_every_combination_once(d68: Any) -> None:
    _, found = d68
    trials = found.get_trials()
    combos = {(t.params["strategy.entry_bps"], t.params["strategy.stop_loss_bps"]) for t in trials}
    assert combos == set(itertools.product([20, 45, 60], [60, 120]))
    assert len(trials) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:  # everything a trial is judged by, and what reproduces it
        assert t.user_attrs["seed"] == 14
        assert t.user_attrs["code_version"]
        assert {"pnl", "fees", "sharpe", "expectancy", "max_drawdown", "trades_closed"} <= set(
            t.user_attrs["kpis"]
        )
        assert t.value == float(t.user_attrs["kpis"]["pnl"])


def test_the_best_trial_beats_the_baseline_run_independently(
    d68: Any, tmp_path: Path, capsys: Any
) -> None:
    _, found = d68
    feasible = [t for t in found.get_trials() if not t.user_attrs["constraints_broken"]]
    best = max(feasible, key=lambda t: t.value)
    # the best parameters written into a scenario and run by `arbframe run`
    rerun = tmp_path / "best.yaml"
    rerun.write_text(
        f"extends: {D68}\nstrategy: {{entry_bps: {best.params['strategy.entry_bps']}, "
        f"stop_loss_bps: {best.params['strategy.stop_loss_bps']}}}\n"
    )
    again = run_json(capsys, rerun)
    baseline = run_json(capsys, D68)
    assert again["portfolio"]["pnl"] == best.user_attrs["kpis"]["pnl"]
    assert float(again["portfolio"]["pnl"]) > float(baseline["portfolio"]["pnl"])
    assert found.user_attrs["baseline"]["kpis"]["pnl"] == baseline["portfolio"]["pnl"]


def test_a_trial_breaking_a_constraint_is_never_the_best(d68: Any, capsys: Any) -> None:
    state, found = d68
    for t in found.get_trials():
        over = float(t.user_attrs["kpis"]["max_drawdown"]) > 30
        assert t.user_attrs["constraints_broken"] == (["max_drawdown"] if over else [])
    broken = [t for t in found.get_trials() if t.user_attrs["constraints_broken"]]
    # d68's loose stop (3 trials) and entry 60 with the tight stop: the bound bites 4 times
    assert sorted(
        (t.params["strategy.entry_bps"], t.params["strategy.stop_loss_bps"]) for t in broken
    ) == [(20, 120), (45, 120), (60, 60), (60, 120)]
    storage = f"sqlite:///{state / 'studies.db'}"
    code, rows, _ = tune(capsys, str(D68), "--storage", storage, "--top", "10")
    assert code == 0
    assert [r["feasible"] for r in rows] == sorted((r["feasible"] for r in rows), reverse=True)
    assert rows[0]["feasible"] and rows[0]["rank"] == 1


def test_top_ranks_the_stored_trials_without_running(d68: Any, capsys: Any) -> None:
    state, found = d68
    storage = f"sqlite:///{state / 'studies.db'}"
    code, rows, _ = tune(capsys, "--study", "d68_tuning", "--storage", storage, "--top", "2")
    assert code == 0 and len(rows) == 2
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["value"] >= rows[1]["value"]
    assert len(found.get_trials()) == 6  # nothing ran
    assert main(["tune", "--study", "d68_tuning", "--storage", storage, "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["RANK", "TRIAL", "VALUE"]
    assert "strategy.stop_loss_bps=60" in text.splitlines()[1]


def test_top_of_a_missing_study_is_bad_input(tmp_path: Path, capsys: Any) -> None:
    code, _, err = tune(capsys, "--study", "nothing", "--top", "3")
    assert code == 2 and "no study named nothing" in err


# ---- pruning, stress, walk-forward ---------------------------------------------------------------


def test_pruning_stops_a_hopeless_trial_early(tmp_path: Path, capsys: Any) -> None:
    # Queued in grid order: the good entries first; 90 bp trades a few times, then loses.
    path = write(
        tmp_path,
        "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [20, 25, 30, 90]}\n"
        "  pruning: {checkpoints: 10, startup_trials: 2, warmup: 1}\n",
        extra="strategy: {stop_loss_bps: 60}\n",
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 0, err
    trials = study(tmp_path, "t").get_trials()
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned, [(t.params, t.intermediate_values) for t in trials]
    for t in pruned:  # stopped before the end of its scenario time, at a checkpoint
        assert t.user_attrs["kpis"]["complete"] is False
        assert t.user_attrs["kpis"]["elapsed_s"] < 120
        step = max(t.intermediate_values)  # below the median of earlier trials there
        done = [s for s in trials if s.number < t.number and s.state.name == "COMPLETE"]
        earlier = [s.intermediate_values[step] for s in done]
        assert t.intermediate_values[step] < statistics.median(earlier)
    assert summary["trials"]["pruned"] == len(pruned)


def test_stress_marks_a_set_that_breaks_a_guard_bound(tmp_path: Path, capsys: Any) -> None:
    # d69_fee_surge expects >= 10 entries on its thin edge (5 bp): 40 bp barely trades there.
    path = write(
        tmp_path,
        "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [5, 40]}\n"
        f"  stress: {{scenarios: [{SCENARIOS / 'd69_fee_surge.yaml'}]}}\n",
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 0, err
    by_entry = {t.params["strategy.entry_bps"]: t for t in study(tmp_path, "t").get_trials()}
    assert by_entry[5].user_attrs["stress_broken"] is False
    assert by_entry[40].user_attrs["stress_broken"] is True
    [result] = by_entry[40].user_attrs["stress"]
    assert result["scenario"].endswith("d69_fee_surge.yaml") and not result["passed"]
    assert "portfolio.entries" in result["broken"]
    assert summary["trials"]["stress_broken"] == 1
    # --no-stress: the same study name elsewhere runs no stress
    code, summary, _ = tune(capsys, str(path), "--no-stress", "--study", "plain")
    assert all("stress" not in t.user_attrs for t in study(tmp_path, "plain").get_trials())


def test_walk_forward_reports_in_and_out_of_sample(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "wf.yaml"
    text = (SCENARIOS / "d75_walk_forward.yaml").read_text()
    text = text.replace(
        "extends: real_link_zero_fee.yaml", f"extends: {SCENARIOS / 'real_link_zero_fee.yaml'}"
    )
    text = text.replace("../data/", f"{SCENARIOS.parent / 'data'}/")
    text = text.replace("duration: 30m", "duration: 6m").replace("windows: 3", "windows: 2")
    text = text.replace("train: 10m", "train: 3m").replace("validate: 10m", "validate: 3m")
    text = text.replace("walk_forward.reported: {eq: 3}", "walk_forward.reported: {eq: 2}")
    path.write_text(
        text.replace("choices: [1, 2, 4]", "choices: [1, 2]").replace(
            "complete: {eq: 3}", "complete: {eq: 2}"
        )
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 0, err
    walk = summary["walk_forward"]
    assert walk["reported"] == 2 and len(walk["windows"]) == 2
    first, second = walk["windows"]
    assert first["train"] == {"start": "2021-08-20T00:00:00Z", "end": "2021-08-20T00:03:00Z"}
    assert first["validate"] == {"start": "2021-08-20T00:03:00Z", "end": "2021-08-20T00:06:00Z"}
    assert second["train"]["start"] == "2021-08-20T00:03:00Z"  # step: validate's length
    for w in walk["windows"]:
        tuned = study(tmp_path, f"d75_walk_forward.wf{w['index']}")
        best = max(tuned.get_trials(), key=lambda t: t.value)
        assert w["params"] == best.params and w["in_sample"]["value"] == best.value
        assert w["in_sample"]["kpis"]["elapsed_s"] <= 180
        assert w["out_of_sample"]["value"] == float(w["out_of_sample"]["kpis"]["pnl"])
        fell = drop(w["in_sample"]["value"], w["out_of_sample"]["value"], "maximize")
        assert w["overfit"] == (fell > 0.5)
    # stored with the study, for reports
    assert (
        study(tmp_path, "d75_walk_forward").user_attrs["walk_forward"]["windows"] == walk["windows"]
    )


def test_drop_is_relative_to_the_in_sample_value() -> None:
    assert drop(10.0, 4.0, "maximize") == pytest.approx(0.6)
    assert drop(10.0, 12.0, "maximize") == 0.0
    assert drop(-10.0, -15.0, "maximize") == pytest.approx(0.5)
    assert drop(2.0, 3.0, "minimize") == pytest.approx(0.5)
    assert math.isinf(drop(0.0, -1.0, "maximize"))


def test_workers_on_sqlite_never_take_one_trial_twice(tmp_path: Path, capsys: Any) -> None:
    # Short trials, four workers: they take queued trials at the same moments.
    path = write(
        tmp_path,
        "  sampler: grid\n  workers: 4\n  params:\n"
        "    strategy.entry_bps: {choices: [15, 20, 25, 30, 35, 40]}\n"
        "    strategy.stop_loss_bps: {low: 60, high: 120, step: 60}\n",
    )
    path.write_text(path.read_text().replace("duration: 2m", "duration: 30s"))
    code, summary, err = tune(capsys, str(path))
    assert code == 0, err
    # a worker whose ask() lost the race for the last queued trial leaves a surplus FAIL
    trials = [t for t in study(tmp_path, "t").get_trials() if studies.counted(t)]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 12
    assert len({tuple(t.params.values()) for t in trials}) == 12
    assert summary["trials"]["failed"] == 0


# ---- review findings: study reuse, walk-forward parts, boundaries --------------------------------


def test_a_changed_scenario_never_joins_the_old_study(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path, "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [20]}\n")
    path.write_text(path.read_text().replace("duration: 2m", "duration: 20s"))
    code, summary, err = tune(capsys, str(path))
    assert code == 0, err
    # same name, other params: refused at the name, nothing run, the old study untouched
    text = path.read_text()
    path.write_text(text.replace("choices: [20]", "choices: [30]"))
    code, out, err = tune(capsys, str(path))
    assert (code, out) == (2, None)
    assert err.startswith(f"{path}:2:7: name: study t in ") and "--study NAME" in err, err
    assert [t.params for t in study(tmp_path, "t").get_trials()] == [{"strategy.entry_bps": 20}]
    path.write_text(text.replace("duration: 20s", "duration: 21s"))  # the scenario, not tuning
    assert tune(capsys, str(path))[0] == 2
    code, summary, err = tune(capsys, str(path), "--study", "t2")  # a new name runs
    assert code == 0 and summary["trials"]["complete"] == 1, err
    path.write_text(text + "  expect: {trials.complete: {eq: 1}}\n")  # expect: same trials
    code, summary, err = tune(capsys, str(path))
    assert code == 0 and summary["study"] == "t", err


def _rows(start: str, end: str) -> int:
    """Book rows in [start, end) of both venues' files, counted from the CSVs themselves."""
    count = 0
    for venue in ("binance", "huobi"):
        csv = SCENARIOS.parent / "data/real" / f"{venue}_LINKUSDT_orderbook10_1s_20210820.csv.gz"
        with gzip.open(csv, "rt") as lines:
            next(lines)
            count += sum(start <= line[:19] < end for line in lines)
    return count


def test_walk_forward_parts_are_half_open(tmp_path: Path) -> None:
    walk = {"at": "feeds.0.start", "start": "2021-08-20T00:00:00Z", "train": "1m",
            "validate": "1m", "windows": 2}  # fmt: skip
    path = tmp_path / "wf.yaml"
    text = (SCENARIOS / "d75_walk_forward.yaml").read_text()
    text = text.replace("extends: real_link_zero_fee.yaml",
                        f"extends: {SCENARIOS / 'real_link_zero_fee.yaml'}")  # fmt: skip
    path.write_text(text.replace("../data/", f"{SCENARIOS.parent / 'data'}/"))
    runner = Runner()
    parts = [*window_overrides(walk, 0).values(), window_overrides(walk, 1)["validate"]]
    quotes = [runner.run(path, part)["events"]["quotes"] for part in parts]
    # train [00:00, 00:01), validate [00:01, 00:02), the next validate [00:02, 00:03)
    expected = [
        _rows("2021-08-20 00:00:00", "2021-08-20 00:01:00"),
        _rows("2021-08-20 00:01:00", "2021-08-20 00:02:00"),
        _rows("2021-08-20 00:02:00", "2021-08-20 00:03:00"),
    ]
    assert quotes == expected and all(expected)


def test_a_replay_start_past_the_data_ends_cleanly(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "past.yaml"
    path.write_text(
        f"extends: {SCENARIOS / 'd75_walk_forward.yaml'}\nname: past\nduration: 1m\n"
        "feeds:\n  - type: replay\n    symbol: LINK\n    start: '2021-08-21T00:00:00Z'\n"
        f"    venues:\n      binance: {SCENARIOS.parent}/data/real/"
        "binance_LINKUSDT_orderbook10_1s_20210820.csv.gz\n"
        f"      huobi: {SCENARIOS.parent}/data/real/huobi_LINKUSDT_orderbook10_1s_20210820.csv.gz\n"
    )
    assert main(["run", str(path), "--json"]) == 1  # its expectations fail; no internal error
    out, err = capsys.readouterr()
    assert json.loads(out)["events"]["quotes"] == 0 and "internal error" not in err
    # tune refuses a walk-forward whose last window is past the data, before any study
    text = path.read_text().replace("2021-08-21T00:00:00Z", "2021-08-20T00:00:00Z")
    path.write_text(text + "tuning:\n  sampler: grid\n  params:\n"
                    "    strategy.entry_bps: {choices: [1]}\n  walk_forward:\n"
                    "    at: feeds.0.start\n    start: '2021-08-20T01:00:00Z'\n"
                    "    train: 20m\n    validate: 20m\n    windows: 3\n")  # fmt: skip
    code, out, err = tune(capsys, str(path))
    assert (code, out) == (2, None)
    assert err.startswith(
        f"{path}:20:14: tuning.walk_forward.windows: window 2's validate "
        "part (2021-08-20T02:00:00Z to 2021-08-20T02:20:00Z) has no book"
    ), err
    assert not (tmp_path / "studies.db").exists() or not optuna.get_all_study_names(
        f"sqlite:///{tmp_path / 'studies.db'}"
    )


def test_overfit_means_a_drop_of_more_than_the_limit() -> None:
    # in 10, out 5: worse by 5, half of 10 -> exactly the 0.5 limit, not overfit; out 4.9 is
    assert not overfit(10.0, 5.0, "maximize", 0.5)
    assert overfit(10.0, 4.9, "maximize", 0.5)
    assert not overfit(4.0, 6.0, "minimize", 0.5)  # 2 worse on 4
    assert overfit(4.0, 6.5, "minimize", 0.5)


def test_a_constraint_bound_itself_is_feasible() -> None:
    tuning: Any = type("T", (), {"constraints": {"max_drawdown": 30, "min_trades": 5}})()
    assert broken_constraints(tuning, {"max_drawdown": "30", "trades_closed": 5}) == []
    assert broken_constraints(tuning, {"max_drawdown": "30.000001", "trades_closed": 4}) == [
        "max_drawdown",
        "min_trades",
    ]


def test_every_trial_infeasible_leaves_no_best_and_fails(tmp_path: Path, capsys: Any) -> None:
    path = write(
        tmp_path,
        "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [20, 30]}\n"
        "  objective: {constraints: {min_trades: 100000}}\n"
        "  expect: {best_minus_baseline: {gt: 0}}\n",
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 1, err
    assert summary["trials"]["complete"] == 2 and summary["trials"]["infeasible"] == 2
    assert summary["best"] is None and summary["best_minus_baseline"] is None


def test_minimize_ranks_the_lowest_value_first(tmp_path: Path, capsys: Any) -> None:
    path = write(
        tmp_path,
        "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [20, 60]}\n"
        "  objective: {metric: pnl, direction: minimize}\n",
        extra="strategy: {stop_loss_bps: 60}\n",
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 0, err
    values = sorted(t.value for t in study(tmp_path, "t").get_trials())
    assert values[0] < values[1]
    assert summary["best"]["value"] == values[0]
    code, rows, _ = tune(capsys, "--study", "t", "--top", "2")
    assert [r["value"] for r in rows] == values


def test_a_best_below_the_baseline_is_negative_and_fails(tmp_path: Path, capsys: Any) -> None:
    # as written: entry 20 with the tight stop; the only trial, entry 60, does worse
    path = write(
        tmp_path,
        "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [60]}\n"
        "  expect: {best_minus_baseline: {gt: 0}}\n",
        extra="strategy: {entry_bps: 20, stop_loss_bps: 60}\n",
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 1, err
    [trial] = study(tmp_path, "t").get_trials()
    baseline = summary["baseline"]["value"]
    assert trial.value < baseline
    assert summary["best_minus_baseline"] == trial.value - baseline < 0


def test_a_failing_grid_trial_ends_as_fail(tmp_path: Path, capsys: Any) -> None:
    # entry 100000 bp never trades: its sharpe is not a number, the trial fails (the rest runs)
    path = write(
        tmp_path,
        "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [20, 100000]}\n"
        "  objective: {metric: sharpe}\n",
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 0, err
    assert (summary["trials"]["complete"], summary["trials"]["failed"]) == (1, 1)
    [failed] = [t for t in study(tmp_path, "t").get_trials() if t.state.name == "FAIL"]
    assert failed.params == {"strategy.entry_bps": 100000}
    assert "portfolio.sharpe is None, not a number" in failed.user_attrs["error"]


def test_a_single_failing_grid_trial_ends_as_fail(tmp_path: Path, capsys: Any) -> None:
    # Optuna's GridSampler raised KeyError 'grid_id' telling the last queued combination
    path = write(
        tmp_path,
        "  sampler: grid\n  params:\n    strategy.entry_bps: {choices: [100000]}\n"
        "  objective: {metric: sharpe}\n",
    )
    code, summary, err = tune(capsys, str(path))
    assert code == 1 and "internal error" not in err, err  # no trial completed
    assert (summary["trials"]["complete"], summary["trials"]["failed"]) == (0, 1)
    [trial] = study(tmp_path, "t").get_trials()
    assert trial.state.name == "FAIL" and "not a number" in trial.user_attrs["error"]


def test_a_copy_of_the_scenario_elsewhere_joins_the_same_study(tmp_path: Path) -> None:
    """Another machine has the checkout in another place: same scenario, same fingerprint;
    an edit to what a trial sees still changes it."""
    prints = []
    for where in ("a", "b/deeper"):
        scenarios = tmp_path / where / "scenarios"
        shutil.copytree(SCENARIOS, scenarios)
        (scenarios.parent / "data").symlink_to(SCENARIOS.parent / "data")  # replay paths
        prints.append(load_tuning(scenarios / "d75_walk_forward.yaml").fingerprint)
    assert prints[0] == prints[1]
    edited = tmp_path / "a" / "scenarios" / "d75_walk_forward.yaml"
    edited.write_text(edited.read_text().replace("choices: [1, 2, 4]", "choices: [1, 2, 5]"))
    assert load_tuning(edited).fingerprint != prints[0]
