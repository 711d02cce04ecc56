"""What `arbframe tune` does end to end: the study, the baseline, walk-forward; a progress
line while trials run; the tuning summary its `tuning.expect` is judged on."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from arbframe import studies
from arbframe.errors import ArbframeError
from arbframe.summary import evaluate
from arbframe.tuning import Runner, TrialFailed, Tuning, kpis, optimize, value_of


@dataclass(frozen=True)
class Options:
    trials: int
    workers: int
    storage: str
    study: str
    walk_forward: bool
    stress: bool
    progress: bool


class Progress:
    """Trials done out of the total, the best value so far and an ETA, on stderr."""

    EVERY_S = 0.5

    def __init__(self, label: str) -> None:
        self.label, self.started, self.last, self.width = label, time.monotonic(), 0.0, 0

    def __call__(self, study: optuna.Study) -> None:
        now = time.monotonic()
        if now - self.last < self.EVERY_S:
            return
        self.last = now
        trials = [t for t in study.get_trials(deepcopy=False) if studies.counted(t)]
        done = sum(t.state.is_finished() for t in trials)
        best = studies.best(study)
        eta = "-"
        if done:
            left = (now - self.started) / done * (len(trials) - done)
            eta = f"{left:.0f}s"
        text = (
            f"{self.label}: trials {done}/{len(trials)}  best "
            f"{'-' if best is None else f'{best.value:.6g} (#{best.number})'}  eta {eta}"
        )
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
            self.width = 0


def tune(tuning: Tuning, options: Options) -> dict[str, Any]:
    """Run (or join) the study, then walk-forward; the tuning summary, judged."""
    runner = Runner()
    progress = Progress(options.study) if options.progress else None

    def baseline(study: optuna.Study, created: bool) -> None:
        if created:  # the scenario as written, while the workers run the trials
            summary = runner.run(tuning.path, {})
            value = value_of(summary, tuning.metric)
            study.set_user_attr("baseline", {"kpis": kpis(summary), "value": value})

    if options.walk_forward and tuning.walk_forward is not None:
        from arbframe.walkforward import check_windows

        check_windows(tuning, runner)  # a window past the data: refused before anything runs
    try:
        study, _ = optimize(
            tuning,
            options.storage,
            options.study,
            options.trials,
            options.workers,
            stress=options.stress,
            progress=progress,
            meanwhile=baseline,
        )
        if options.walk_forward and tuning.walk_forward is not None:
            from arbframe.walkforward import walk_forward

            result = walk_forward(
                tuning, options.storage, options.study, options.workers, runner, progress
            )
            study.set_user_attr("walk_forward", result)
    except TrialFailed as err:
        raise ArbframeError(f"{tuning.path}: the baseline run: {err}") from None
    finally:
        if progress is not None:
            progress.clear()
    return judged(study_summary(study, options.storage), tuning.expect)


def study_summary(study: optuna.Study, storage: str) -> dict[str, Any]:
    """The study as `--json` prints it and `tuning.expect` reads it."""
    trials = [t for t in study.get_trials(deepcopy=False) if studies.counted(t)]
    states = {s: sum(t.state == s for t in trials) for s in TrialState}
    best = studies.best(study)
    attrs = study.user_attrs
    baseline = attrs.get("baseline")
    summary: dict[str, Any] = {
        "study": study.study_name,
        "storage": studies.shown(storage),
        "scenario": attrs.get("scenario"),
        "objective": attrs.get("objective"),
        "code_version": attrs.get("code_version"),
        "trials": {
            "total": len(trials),
            "complete": states[TrialState.COMPLETE],
            "pruned": states[TrialState.PRUNED],
            "failed": states[TrialState.FAIL],
            "infeasible": sum(
                t.state == TrialState.COMPLETE and not studies.feasible(t) for t in trials
            ),
            "stress_broken": sum(bool(t.user_attrs.get("stress_broken")) for t in trials),
            "workers": len({t.user_attrs.get("worker") for t in trials} - {None}),
        },
        "best": None if best is None else studies.row(1, best),
        "baseline": baseline,
        "best_minus_baseline": None,
    }
    if best is not None and baseline is not None and best.value is not None:
        summary["best_minus_baseline"] = best.value - baseline["value"]
    walk = attrs.get("walk_forward")
    if walk is not None:
        windows = walk["windows"]
        summary["walk_forward"] = {
            **walk,
            "reported": sum(w["out_of_sample"] is not None for w in windows),
            "overfit": sum(bool(w["overfit"]) for w in windows),
        }
    return summary


def judged(summary: dict[str, Any], expect: dict[str, Any]) -> dict[str, Any]:
    summary["expectations"] = evaluate(expect, summary)
    complete = summary["trials"]["complete"] > 0
    summary["passed"] = complete and all(e["passed"] for e in summary["expectations"])
    return summary


def summary_text(summary: dict[str, Any], top: list[dict[str, Any]]) -> str:
    """A readable end of run: counts, best against baseline, the top trials, expectations."""
    t = summary["trials"]
    lines = [
        f"study {summary['study']} ({summary['storage']}), objective "
        f"{summary['objective']['metric']} ({summary['objective']['direction']})",
        f"trials: {t['total']} ({t['complete']} complete, {t['pruned']} pruned, {t['failed']} "
        f"failed, {t['infeasible']} infeasible, {t['stress_broken']} broken under stress) "
        f"by {t['workers']} worker{'s' if t['workers'] != 1 else ''}",
    ]
    best, base = summary["best"], summary["baseline"]
    if best is not None:
        lines.append(f"best: #{best['trial']} value {best['value']:.6g} with {best['params']}")
    if base is not None:
        lines.append(f"baseline (the scenario as written): value {base['value']:.6g}")
    if top:
        lines += ["", studies.top_text(top)]
    if "walk_forward" in summary:
        from arbframe.walkforward import table

        lines += ["", "walk-forward (in sample: tuned on train; out of sample: validate)"]
        lines.append(table(summary["walk_forward"]))
    if summary["expectations"]:
        lines.append("")
        for e in summary["expectations"]:
            lines.append(f"{'ok  ' if e['passed'] else 'FAIL'} {e['name']}: {e['actual']} "
                         f"(expected {e['expected']})")  # fmt: skip
    lines.append("PASSED" if summary["passed"] else "FAILED")
    return "\n".join(lines)
