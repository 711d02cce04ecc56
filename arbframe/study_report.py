"""`arbframe report STUDY`: one self-contained HTML page from an Optuna study of `arbframe tune`.

It reads the study as tuning writes it (``study.user_attrs``: scenario, objective, baseline,
walk_forward; ``trial.user_attrs``: kpis, constraints_broken, seed, stress, surplus, ...;
parameter names are the dotted scenario paths they override) and draws it with Optuna's own
plotly figures. The best trial is `arbframe tune`'s (`studies.best`: the best feasible one),
and surplus trials (opened by a worker after the queue ran dry) are left out.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from arbframe.errors import ArbframeError
from arbframe.html_page import chart, note, page, section, table, write_html
from arbframe.plugins import one_line
from arbframe.studies import DATABASE_URL_ENV, best, counted, feasible

KPIS = ("pnl", "fees", "trades_closed", "winrate", "sharpe", "max_drawdown", "expectancy")


def load_study(name: str, storage: str) -> Any:
    """The study ``name`` in ``storage``; a clear error (exit 2) when there is none."""
    import optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        url = make_url(storage)
    except SQLAlchemyError as err:
        raise ArbframeError(  # not echoed: a malformed URL may still hold a password
            f"the study storage (--storage or ${DATABASE_URL_ENV}) is not a database URL: {err}"
        ) from None
    shown, database = url.render_as_string(hide_password=True), url.database
    if storage.startswith("sqlite") and database and not Path(database).exists():
        raise ArbframeError(
            f"{name}: no such run directory, and no study storage at {shown} "
            "(`arbframe tune` creates it; --storage URL names another)"
        )
    try:
        names = optuna.get_all_study_names(storage)
    except (SQLAlchemyError, ValueError, ImportError) as err:  # the driver's own words
        why = one_line(getattr(err, "orig", None) or err)
        raise ArbframeError(f"{shown}: cannot read studies: {why}") from None
    if name not in names:
        held = ", ".join(sorted(names)) or "none"
        raise ArbframeError(
            f"{name}: no such run directory, and no study of that name in {shown} "
            f"(studies there: {held})"
        )
    return optuna.load_study(study_name=name, storage=storage)


def default_path(name: str) -> Path:
    """``<study>-report.html`` in the current directory, the name made safe for a file."""
    return Path(re.sub(r"[^A-Za-z0-9._-]+", "_", name) + "-report.html")


def write_study_report(name: str, storage: str, out: Path | None = None) -> Path:
    return write_html(out or default_path(name), study_report(load_study(name, storage)))


def study_report(study: Any) -> str:
    import optuna

    trials = [t for t in study.get_trials(deepcopy=False) if counted(t)]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    infeasible = sum(1 for t in complete if not feasible(t))
    attrs = study.user_attrs
    objective = attrs.get("objective", {})
    subtitle = (
        f"scenario {attrs.get('scenario', '?')}; objective {objective.get('metric', 'value')} "
        f"({study.direction.name.lower()}); {len(trials)} trials, "
        f"{len(complete)} complete, {infeasible} infeasible"
    )
    sections = [_overview(study, complete), _history(study, complete, infeasible)]
    sections += [_importance(study, complete), _sensitivity(study, complete)]
    sections += [_walk_forward(attrs.get("walk_forward")), _stress(trials)]
    sections.append(_trials(trials))
    return page(f"arbframe study: {study.study_name}", subtitle, [s for s in sections if s])


def _overview(study: Any, complete: list[Any]) -> str:
    attrs = study.user_attrs
    objective = attrs.get("objective", {})
    baseline = attrs.get("baseline") or {}
    rows = [
        ["metric", objective.get("metric")],
        ["direction", study.direction.name.lower()],
        ["constraints", json.dumps(objective.get("constraints"))],
        ["baseline value (the unmodified scenario)", baseline.get("value")],
    ]
    parts = [table(["objective", ""], rows)]
    if not complete:
        return section("Study", *parts, note("no complete trial yet"))
    top = best(study)  # the best feasible trial, as `arbframe tune` ranks them
    if top is None:
        return section("Study", *parts, note("no feasible trial: every complete trial breaks "
                                             "a constraint (see Trials)"))  # fmt: skip
    kpis, held = top.user_attrs.get("kpis", {}), baseline.get("kpis", {})
    parts.append(
        table(
            ["best trial", f"#{top.number}"],
            [
                ["value", top.value],
                *([p, v] for p, v in top.params.items()),
                ["seed", top.user_attrs.get("seed")],
                ["code version", top.user_attrs.get("code_version")],
            ],
        )
    )
    names = [k for k in KPIS if k in kpis or k in held]
    parts.append(
        table(["kpi", "best trial", "baseline"], [[k, kpis.get(k), held.get(k)] for k in names])
    )
    return section("Study", *parts)


def _history(study: Any, complete: list[Any], infeasible: int) -> str:
    from optuna.visualization import plot_optimization_history

    if not complete:
        return ""
    caveat = (
        [note(f"Optuna's best-so-far line counts the {infeasible} infeasible trials too")]
        if infeasible
        else []
    )
    fig = plot_optimization_history(study)
    return section("Optimisation history", *caveat, chart("history", fig))


def _importance(study: Any, complete: list[Any]) -> str:
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    from optuna.visualization import plot_param_importances

    if len(complete) < 2 or not any(t.params for t in complete):
        return section("Parameter importance", note("needs two complete trials with parameters"))
    # PED-ANOVA: deterministic, and needs no scikit-learn (Optuna's fANOVA does).
    try:
        with warnings.catch_warnings(record=True) as caveats:  # on the page, not on stderr
            warnings.simplefilter("always")
            importances = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
            fig = plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    except (RuntimeError, ValueError) as err:  # e.g. every trial with the same value
        return section("Parameter importance", note(f"not computable: {err}"))
    rows = [[name, round(value, 4)] for name, value in importances.items()]
    return section(
        "Parameter importance",
        note(
            "PED-ANOVA (Optuna): how much each parameter's distribution in the best trials "
            "differs from all trials', normalised to sum to 1"
        ),
        *(note(f"Optuna: {said}") for said in dict.fromkeys(str(c.message) for c in caveats)),
        chart("importance", fig),
        table(["parameter", "importance"], rows),
    )


def _sensitivity(study: Any, complete: list[Any]) -> str:
    from optuna.visualization import plot_slice

    params = sorted({name for trial in complete for name in trial.params})
    if not params:
        return ""
    fig = plot_slice(study, params=params)
    return section(
        "Sensitivity",
        note("the objective of each complete trial against each parameter"),
        chart("sensitivity", fig, 420),
    )


def _walk_forward(walk: dict[str, Any] | None) -> str:
    import plotly.graph_objects as go

    if not walk or not walk.get("windows"):
        return ""
    windows = walk["windows"]
    rows = [
        [
            w.get("index"),
            _span(w.get("train")),
            _span(w.get("validate")),
            json.dumps(w.get("params")),
            (w.get("in_sample") or {}).get("value"),
            (w.get("out_of_sample") or {}).get("value"),
            w.get("drop"),
            "OVERFIT" if w.get("overfit") else "ok",
        ]
        for w in windows
    ]
    labels = [f"window {w.get('index')}" for w in windows]
    fig = go.Figure()
    for key, name in (("in_sample", "in sample"), ("out_of_sample", "out of sample")):
        fig.add_bar(x=labels, y=[(w.get(key) or {}).get("value") for w in windows], name=name)
    overfit = sum(1 for w in windows if w.get("overfit"))
    return section(
        "Walk-forward",
        note(
            f"{overfit} of {len(windows)} windows flagged overfit by `arbframe tune` (the "
            f"out-of-sample drop beyond {walk.get('overfit_drop')})"
        ),
        chart("walk_forward", fig),
        table(
            [
                "window",
                "train",
                "validate",
                "params",
                "in sample",
                "out of sample",
                "drop",
                "verdict",
            ],
            rows,
        ),
    )


def _span(window: dict[str, Any] | None) -> str:
    return "" if not window else f"{window.get('start')} to {window.get('end')}"


def _stress(trials: list[Any]) -> str:
    rows = [
        [
            trial.number,
            s.get("scenario"),
            "passed" if s.get("passed") else "BROKEN",
            ", ".join(s.get("broken") or ()),
        ]
        for trial in trials
        for s in trial.user_attrs.get("stress") or ()
    ]
    if not rows:
        return ""
    return section("Stress", table(["trial", "stress scenario", "verdict", "broken"], rows, True))


def _trials(trials: list[Any]) -> str:
    """The study's counted trials (surplus ones left out), infeasible ones marked with the
    constraints they break."""
    params = sorted({name for trial in trials for name in trial.params})
    headers = ["trial", "state", "value", "constraints", *params, *KPIS, "stress", "seed", "worker"]
    rows = []
    for t in trials:
        kpis = t.user_attrs.get("kpis", {})
        broken = t.user_attrs.get("stress_broken")
        mark = "" if broken is None else ("BROKEN" if broken else "passed")
        constraints = t.user_attrs.get("constraints_broken")
        verdict = "" if constraints is None else "ok"
        if constraints:
            verdict = "INFEASIBLE: " + ", ".join(constraints)
        rows.append(
            [
                t.number,
                t.state.name.lower(),
                t.value,
                verdict,
                *(t.params.get(p) for p in params),
                *(kpis.get(k) for k in KPIS),
                mark,
                t.user_attrs.get("seed"),
                t.user_attrs.get("worker"),
            ]
        )
    return section(f"Trials ({len(rows)})", table(headers, rows, scroll=True))
