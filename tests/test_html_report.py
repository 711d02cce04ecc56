"""`arbframe report` and `arbframe run --report`: one self-contained HTML file per run
directory or study, opened in headless Chromium (tests/headless.py) to check that it renders
every chart with no error and no request off the machine; and the events.jsonl it draws
guards and faults from."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from headless import chromium, colour_pixels, visit, vivid_pixels

from arbframe import html_report, studies
from arbframe.cli import main
from arbframe.html_report import equity_curve, load_run, pnl_by
from arbframe.model import Action, GuardDecision
from arbframe.outputs import Outputs
from arbframe.studies import study_storage
from arbframe.study_report import study_report

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
RUN_CHARTS = ("equity", "heatmap", "exits", "spreads", "guards", "faults")
STUDY_CHARTS = ("history", "importance", "sensitivity", "walk_forward")
REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", re.I)


def run_out(tmp_path_factory: pytest.TempPathFactory, scenario: str, *extra: str) -> Path:
    out = tmp_path_factory.mktemp(scenario) / "out"
    status = main(["run", str(SCENARIOS / f"{scenario}.yaml"), "--out", str(out), *extra])
    assert status == 0
    return out


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with every section filled: trades on two routes, guard cooldowns, a venue fault
    injected, detected and recovered, and the alerts it fired."""
    return run_out(tmp_path_factory, "drill_venue_errors", "--report")


@pytest.fixture(scope="module")
def kill_drill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five faults, an engine killed and revived from its snapshot: events booked again."""
    return run_out(tmp_path_factory, "d71_failure")


def offline(html: str, requests: list[str]) -> None:
    assert not REMOTE.search(html), REMOTE.search(html)
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests


# ---- the run report ------------------------------------------------------------------------


def test_run_report_renders_every_chart_offline_without_errors(drill: Path) -> None:
    report = drill / "report.html"
    seen = visit(report.as_uri())
    assert seen.errors == []
    offline(report.read_text(encoding="utf-8"), seen.requests)
    assert set(seen.charts) == set(RUN_CHARTS)
    for name, chart in seen.charts.items():
        assert chart["traces"] >= 1 and chart["svgs"] >= 1, (name, chart)
        assert vivid_pixels(seen.shots[name]) >= 50, name  # drawn, not a blank frame
    # Each chart's plotting area (legend left out) holds its traces' colours.
    expected = {
        "equity": ("#1f77b4", "#d62728"),  # realised PnL line, drawdown
        "exits": ("#1f77b4", "#9467bd"),  # trades and PnL per exit reason
        "guards": ("#1f77b4",),  # the symbol guard's cooldowns
        "faults": ("#d62728", "#ff7f0e", "#2ca02c"),  # injected, detected, recovered
    }
    for name, colours in expected.items():
        for colour in colours:
            assert colour_pixels(seen.shots[name], colour) >= 40, (name, colour)


def test_a_page_error_is_caught(tmp_path: Path) -> None:
    """The checks above can fail: a console error and an uncaught exception are both seen."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>x</p><script>console.error('deliberate');"
        "throw new Error('boom');</script></body></html>"
    )
    seen = visit(page.as_uri())
    assert any("deliberate" in e for e in seen.errors), seen.errors
    assert any("boom" in e and e.startswith("exception") for e in seen.errors), seen.errors
    assert seen.charts == {}


@pytest.mark.parametrize("fixture", ["drill", "kill_drill"])
def test_equity_and_heatmap_are_the_summarys_money_exactly(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    out: Path = request.getfixturevalue(fixture)
    record = load_run(out)
    portfolio = record.summary["portfolio"]
    curve = equity_curve(record.trades)
    assert len(curve) == portfolio["trades_closed"] > 0
    assert curve[-1][1] == Decimal(portfolio["pnl"])  # the last point: the realised PnL
    assert max(d for _, _, d in curve) == Decimal(portfolio["max_drawdown"])
    assert any(d > 0 for _, _, d in curve)  # a drawdown to draw
    routes = {
        (symbol, route): Decimal(kpis["pnl"])
        for symbol, by_route in record.summary["routes"].items()
        for route, kpis in by_route.items()
    }
    assert pnl_by(record.trades, "symbol", "route") == routes
    if fixture == "drill":  # the page shows the figure from the trades, said to be realised
        html = (out / "report.html").read_text()
        assert f"<td class='num'>{portfolio['pnl']}</td>" in html
        assert "Realised: the closed trades" in html


def test_report_command_defaults_next_to_the_run_and_prints_json(
    kill_drill: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(kill_drill), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(kill_drill / "report.html")}
    html = (kill_drill / "report.html").read_text()
    for fault in ("s1_feed", "s2_store", "s3_kill", "s4_latency", "s5_corrupt"):
        assert f"<td>{fault}</td>" in html
    chosen = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(kill_drill), "-o", str(chosen)]) == 0
    assert capsys.readouterr().out.strip() == str(chosen)
    assert chosen.read_text().count("data-chart=") == len(RUN_CHARTS)


def test_a_long_trade_list_is_cut_saying_so(
    kill_drill: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html_report, "MAX_TRADE_ROWS", 3)
    out = tmp_path / "r.html"
    assert main(["report", str(kill_drill), "-o", str(out)]) == 0
    html = out.read_text()
    trades = len((kill_drill / "trades.jsonl").read_text().splitlines())
    assert f"Trades (the first 3 of {trades}; trades.jsonl has all)" in html
    assert html.count("<td>BTC</td><td>") == 3 + 2  # three trades, two routes' PnL rows


def test_a_run_recorded_without_events_still_reports(kill_drill: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    for name in ("summary.json", "trades.jsonl"):
        (old / name).write_bytes((kill_drill / name).read_bytes())
    assert main(["report", str(old)]) == 0
    html = (old / "report.html").read_text()
    assert "no events.jsonl" in html and "data-chart='guards'" not in html


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", "missing: no such run directory"),
        (lambda d: d, "no summary.json, so not a run directory"),
        (lambda d: _file(d / "a_file", "x"), "a_file: not a directory"),
        (lambda d: _run_dir(d, '{"portfolio": {}}', '{"trade_id": 1}\n'), "a trade without"),
        (lambda d: _run_dir(d, '{"portfolio": {}}', "{}\nnot json\n"), "trades.jsonl:2: not valid"),
        (lambda d: _run_dir(d, "[1, 2", ""), "summary.json: not valid JSON"),
    ],
)
def test_not_a_run_directory_is_exit_2_with_one_line(
    make: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = make(tmp_path)
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "report.html").exists()


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _run_dir(path: Path, summary: str, trades: str) -> Path:
    _file(path / "summary.json", summary)
    _file(path / "trades.jsonl", trades)
    return path


def test_run_report_is_written_when_an_expectation_fails(tmp_path: Path) -> None:
    scenario = tmp_path / "failing.yaml"
    scenario.write_text(
        f"extends: {SCENARIOS / 'c1_mixed.yaml'}\nexpect: {{portfolio.entries: {{min: 100000}}}}\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--report"]) == 1
    html = (out / "report.html").read_text()
    assert "expectations FAILED" in html and "<td>portfolio.entries</td><td>NO</td>" in html


def test_run_report_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SCENARIOS / "c1_mixed.yaml"), "--report"]) == 2
    assert "--report needs --out" in capsys.readouterr().err


# ---- events.jsonl ----------------------------------------------------------------------------


def test_events_give_guards_and_faults_their_scenario_time(kill_drill: Path) -> None:
    summary = json.loads((kill_drill / "summary.json").read_text())
    lines = (kill_drill / "events.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))  # the revival re-publishes; each row once
    events = [json.loads(line) for line in lines]
    start = summary["time"]["start_ns"]
    lost = set()
    for name, fault in summary["faults"]["timeline"].items():
        for phase in ("injected", "detected", "recovered"):
            moments = [e["ts"] for e in events if e["event"] == "fault" and e["fault"] == name
                       and e["phase"] == phase]  # fmt: skip
            if not moments:
                lost.add(name)
                continue
            assert round((min(moments) - start) / 1e9, 3) == fault[f"{phase}_at_s"], (name, phase)
    # What a killed engine had not delivered dies with it (the timeline keeps it): only the
    # two faults that kill the engine may miss a moment.
    assert lost <= {"s3_kill", "s5_corrupt"}
    for guard, by_action in summary["guard_first"].items():
        for action, first in by_action.items():
            mine = [e for e in events if e["event"] == "guard" and e["guard"] == guard
                    and e["action"] == action]  # fmt: skip
            assert mine[0]["ts"] == first["ts"] and mine[0]["rule"] == first["rule"]


def test_events_are_written_once_across_a_resume(tmp_path: Path) -> None:
    execution = SimpleNamespace(orders={}, closed=[], ledger=SimpleNamespace(fills=[]))
    cooldown = GuardDecision(5, "symbol", Action.COOLDOWN, "2 losses", until=9, symbol="BTC",
                             rule="max_consecutive_losses")  # fmt: skip
    fault = {"name": "venue_errors", "fault": "errors", "detail": {"venue": "a"}}
    first = Outputs(tmp_path, execution)  # type: ignore[arg-type]
    first.arbframe_on_guard_decision(run=None, decision=cooldown)
    first.arbframe_on_guard_decision(run=None, decision=cooldown)  # again after a revival
    first.arbframe_on_fault(run=None, phase="detected", ts=7, **fault)
    first.finish({"session": "s"})
    first.close()
    resumed = Outputs(tmp_path, execution, resuming="s")  # type: ignore[arg-type]
    resumed.arbframe_on_fault(run=None, phase="detected", ts=7, **fault)  # after the snapshot
    resumed.arbframe_on_fault(run=None, phase="recovered", ts=12, **fault)
    resumed.close()
    rows = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(r["event"], r["ts"], r.get("phase", r.get("action"))) for r in rows] == [
        ("guard", 5, "cooldown"),
        ("fault", 7, "detected"),
        ("fault", 12, "recovered"),
    ]
    assert rows[0]["until"] == 9 and rows[1]["detail"] == {"venue": "a"}


# ---- the study report --------------------------------------------------------------------------


CONSTRAINTS = {"max_drawdown": 30, "min_trades": 5}  # as a scenario's tuning.objective


def make_study(storage: str, name: str = "c1_tune") -> None:
    """A study in the shape `arbframe tune` writes (arbframe/tuning.py: the objective with its
    constraints, queued trials, kpis as summary.json's portfolio with money as strings,
    constraints_broken, stress, a surplus trial), with SYNTHETIC objective values: a smooth
    function of the two parameters, so this tests the rendering only. Its highest value
    (entry 45, exit 20) breaks min_trades, so it is not the best trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=1))  # fmt: skip
    study.set_user_attr("scenario", "scenarios/c1_mixed.yaml")
    study.set_user_attr(
        "objective",
        {"metric": "portfolio.pnl", "direction": "maximize", "constraints": CONSTRAINTS},
    )
    study.set_user_attr("code_version", "0.1.0")
    baseline = {"pnl": "1.25", "trades_closed": 10, "max_drawdown": "4.5"}
    study.set_user_attr("baseline", {"kpis": baseline, "value": 1.25})
    study.enqueue_trial({"strategy.entry_bps": 45.0, "strategy.exit_bps": 20},
                        user_attrs={"queued": True})  # fmt: skip
    for _ in range(11):
        study.enqueue_trial({}, user_attrs={"queued": True})

    def objective(trial: optuna.Trial) -> float:
        entry = trial.suggest_float("strategy.entry_bps", 20, 80)
        exit_bps = trial.suggest_int("strategy.exit_bps", 0, 20)
        value = round(-((entry - 45) ** 2) / 50 + exit_bps / 10, 6)
        stressed = entry <= 40
        attrs = {"worker": "host:1", "code_version": "0.1.0",
                 "scenario": "scenarios/c1_mixed.yaml", "seed": 7}  # fmt: skip
        kpis = {"pnl": str(value), "trades_closed": 20 - exit_bps, "winrate": 0.5,
                "max_drawdown": "12.5", "complete": True, "passed": True}  # fmt: skip
        broken = ["min_trades"] if kpis["trades_closed"] < CONSTRAINTS["min_trades"] else []
        stress = {"scenario": "scenarios/d69_flash_crash.yaml", "passed": not stressed,
                  "broken": ["portfolio.max_drawdown"] if stressed else []}  # fmt: skip
        attrs |= {"kpis": kpis, "constraints_broken": broken, "stress": [stress],
                  "stress_broken": stressed}  # fmt: skip
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        return value

    study.optimize(objective, n_trials=12)
    surplus = study.ask()  # a worker that found the queue empty (tuning.work)
    surplus.set_user_attr("surplus", True)
    study.tell(surplus, state=optuna.trial.TrialState.FAIL)
    windows = [
        {"index": i, "train": {"start": f"{10 * i}m", "end": f"{10 * i + 10}m"},
         "validate": {"start": f"{10 * i + 10}m", "end": f"{10 * i + 15}m"},
         "params": {"strategy.entry_bps": 45.0}, "in_sample": {"kpis": {}, "value": 3.0},
         "out_of_sample": {"kpis": {}, "value": 3.0 - 2 * i}, "drop": 2.0 * i, "overfit": i > 0}
        for i in range(2)
    ]  # fmt: skip
    study.set_user_attr("walk_forward", {"windows": windows, "overfit_drop": 1.0})


BEST = re.compile(r"<th>best trial</th><th>#(\d+)</th>")


def trial_rows(html: str) -> dict[int, str]:
    """The Trials table's rows by trial number."""
    table = html[html.index("<h2>Trials (") :]
    rows = re.findall(r"<tr><td class='num'>(\d+)</td>(.*?)</tr>", table)
    return {int(number): rest for number, rest in rows}


def test_study_report_renders_its_charts_offline_without_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    make_study(storage)
    out = tmp_path / "study.html"
    assert main(["report", "c1_tune", "--storage", storage, "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(out)}
    html = out.read_text(encoding="utf-8")
    study = optuna.load_study(study_name="c1_tune", storage=storage)
    top = studies.best(study)
    assert top is not None and top.number != study.best_trial.number == 0  # 0 breaks min_trades
    assert BEST.findall(html) == [str(top.number)]
    assert str(top.params["strategy.entry_bps"]) in html
    rows = trial_rows(html)
    assert sorted(rows) == list(range(12))  # the surplus trial (#12) left out
    infeasible = sum(1 for t in study.trials if t.user_attrs.get("constraints_broken"))
    assert f"12 trials, 12 complete, {infeasible} infeasible" in html
    assert f"best-so-far line counts the {infeasible} infeasible trials too" in html
    for trial in study.trials[:12]:
        broken = trial.user_attrs["constraints_broken"]
        assert ("<td>INFEASIBLE: min_trades</td>" in rows[trial.number]) == bool(broken)
        assert ("<td>ok</td>" in rows[trial.number]) == (not broken)
    assert "OVERFIT" in html and "BROKEN" in html and "1.25" in html  # walk-forward, stress
    seen = visit(out.as_uri())
    assert seen.errors == []
    offline(html, seen.requests)
    assert set(seen.charts) == set(STUDY_CHARTS)
    for name, chart in seen.charts.items():
        assert chart["traces"] >= 1 and chart["svgs"] >= 1, (name, chart)
        assert vivid_pixels(seen.shots[name]) >= 50, name
    assert seen.charts["sensitivity"]["subplots"] == 2  # one per parameter


def test_study_report_default_storage_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARBFRAME_DATABASE_URL", raising=False)
    monkeypatch.setenv("ARBFRAME_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    make_study(study_storage(None), name="my study")
    assert main(["report", "my study"]) == 0
    assert capsys.readouterr().out.strip() == "my_study-report.html"
    assert (tmp_path / "my_study-report.html").stat().st_size > 1_000_000  # plotly.js inline
    assert main(["report", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope: no such run directory, and no study of that name" in err
    assert "(studies there: my study)" in err


def test_no_study_storage_is_exit_2_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"
    assert main(["report", "c1_tune", "--storage", f"sqlite:///{missing}"]) == 2
    assert "no study storage at" in capsys.readouterr().err
    assert not missing.exists()


def test_a_study_with_little_to_show_says_so(recwarn: pytest.WarningsRecorder) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    empty = optuna.create_study(study_name="empty")
    html = study_report(empty)
    assert "no complete trial yet" in html and "data-chart=" not in html
    flat = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    flat.optimize(lambda trial: 1.0 + 0 * trial.suggest_float("strategy.entry_bps", 0, 1), 4)
    html = study_report(flat)
    # Optuna's caveat is on the page (once), not lost on stderr.
    assert html.count("Optuna: Target and region quantiles select the same set") == 1
    assert not [w for w in recwarn if "quantiles" in str(w.message)]
    infeasible = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for value in (1.0, 2.0):
        trial = infeasible.ask({"strategy.entry_bps": optuna.distributions.IntDistribution(0, 9)})
        trial.set_user_attr("constraints_broken", ["max_drawdown"])
        infeasible.tell(trial, value)
    html = study_report(infeasible)
    assert "no feasible trial" in html and not BEST.search(html)
    assert "2 trials, 2 complete, 2 infeasible" in html
    assert html.count("<td>INFEASIBLE: max_drawdown</td>") == 2


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("not a url", "is not a database URL"),
        (
            "postgresql://u:secret@127.0.0.1:1/x",
            "postgresql+psycopg://u:***@127.0.0.1:1/x?options=",
        ),
    ],
)
def test_an_unusable_study_storage_is_exit_2_without_its_password(
    storage: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "c1_tune", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert message in err and "secret" not in err and err.count("\n") == 1, err


def test_study_storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ARBFRAME_DATABASE_URL", raising=False)
    monkeypatch.delenv("ARBFRAME_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # the default is .arbframe here, made absolute for the workers
    assert study_storage(None) == f"sqlite:///{tmp_path / '.arbframe' / 'studies.db'}"
    monkeypatch.setenv("ARBFRAME_STATE_DIR", str(tmp_path / "arb"))
    assert study_storage(None) == f"sqlite:///{tmp_path / 'arb' / 'studies.db'}"
    monkeypatch.setenv("ARBFRAME_DATABASE_URL", "postgresql://u:p@db/arb")
    own_schema = "?options=-csearch_path%3Darbframe_studies"  # apart from the state store's
    assert study_storage(None) == "postgresql+psycopg://u:p@db/arb" + own_schema
    chosen = "postgresql+psycopg://u:p@db/arb?options=-csearch_path%3Dmine"
    assert study_storage(chosen) == chosen
    assert study_storage("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("required", [{"CI": "true"}, {"ARBFRAME_REQUIRE_SERVICES": "1"}, {}])
def test_without_chromium_the_browser_tests_skip_unless_ci(
    required: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    for name in ("CI", "ARBFRAME_REQUIRE_SERVICES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in required.items():
        monkeypatch.setenv(name, value)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="chromium not found"):
        chromium()


TINY_TUNE = """\
extends: {base}
name: tiny_tune
duration: 2m
seed: 14
strategy: {{stop_loss_bps: 120}}
tuning:
  sampler: grid
  params:
    strategy.entry_bps: {{choices: [45, 60]}}
    strategy.stop_loss_bps: {{choices: [60, 120]}}
  objective:
    metric: pnl
    direction: minimize
    constraints: {{max_drawdown: 19, min_trades: 4}}
  workers: 2
"""


def test_the_report_of_a_real_tune_has_tunes_best_trial_and_marks_the_infeasible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`arbframe tune` on a two-minute grid of 4 trials (a few seconds). Minimising PnL, the
    lowest values come from the entries that trade least: they break min_trades (and the
    drawdown bound), so the best trial is not the study's raw best value."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARBFRAME_DATABASE_URL", raising=False)
    monkeypatch.setenv("ARBFRAME_STATE_DIR", str(tmp_path))
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_TUNE.format(base=SCENARIOS / "_campaign_base.yaml"))
    assert main(["tune", str(scenario), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    storage = study_storage(None)
    study = optuna.load_study(study_name="tiny_tune", storage=storage)
    top = studies.best(study)
    assert top is not None and said["best"]["trial"] == top.number
    assert said["trials"]["infeasible"] >= 1
    assert study.best_trial.number != top.number  # the constraints decide
    assert main(["report", "tiny_tune"]) == 0
    html = Path(capsys.readouterr().out.strip()).read_text(encoding="utf-8")
    assert BEST.findall(html) == [str(top.number)]
    rows = trial_rows(html)
    counted = [t for t in study.trials if studies.counted(t)]
    assert sorted(rows) == [t.number for t in counted]
    assert f"{len(counted)} trials, 4 complete, {said['trials']['infeasible']} infeasible" in html
    for trial in counted:
        broken = trial.user_attrs["constraints_broken"]
        mark = f"<td>INFEASIBLE: {', '.join(broken)}</td>" if broken else "<td>ok</td>"
        assert mark in rows[trial.number], (trial.number, broken)
    assert "<td>INFEASIBLE: max_drawdown, min_trades</td>" in html  # each broken one named


# ---- the equity curve's definition (mutations that survived before) ---------------------------


def _trade(closed_at: int, net_pnl: str) -> dict[str, Any]:
    return {"closed_at": closed_at, "net_pnl": net_pnl}


def test_equity_is_in_close_time_order_whatever_the_line_order(
    kill_drill: Path, tmp_path: Path
) -> None:
    """A resumed run appends the trades it caught up with after newer lines: the curve is
    still in close-time order, ending at the sum."""
    shuffled = [_trade(30, "-2"), _trade(10, "5"), _trade(20, "-4.5")]
    assert equity_curve(shuffled) == [
        (10, Decimal("5"), Decimal("0")),
        (20, Decimal("0.5"), Decimal("4.5")),
        (30, Decimal("-1.5"), Decimal("6.5")),
    ]
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "summary.json").write_bytes((kill_drill / "summary.json").read_bytes())
    lines = (kill_drill / "trades.jsonl").read_text().splitlines()
    (resumed / "trades.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    record = load_run(resumed)
    portfolio = record.summary["portfolio"]
    curve = equity_curve(record.trades)
    times = [ts for ts, _, _ in curve]
    assert times == sorted(times) and len(set(times)) > 1
    assert curve == equity_curve(load_run(kill_drill).trades)
    assert (
        curve[-1][1]
        == Decimal(portfolio["pnl"])
        == sum(Decimal(t["net_pnl"]) for t in record.trades)
    )
    assert max(d for _, _, d in curve) == Decimal(portfolio["max_drawdown"])


def test_drawdown_counts_from_zero_when_the_first_trade_loses() -> None:
    curve = equity_curve([_trade(10, "-3"), _trade(20, "1"), _trade(30, "-0.25")])
    assert [d for _, _, d in curve] == [Decimal("3"), Decimal("2"), Decimal("2.25")]
    assert curve[-1][1] == Decimal("-2.25")
