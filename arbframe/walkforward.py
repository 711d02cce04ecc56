"""Walk-forward: tune on a window of recorded data, then run the best parameters on the
window that follows, window after window, and compare in-sample with out-of-sample.

A window's parts are the scenario with its `at` key (a replay feed's `start`) set to the
part's start and `duration` to its length. A big drop out of sample flags overfitting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna

from arbframe import studies
from arbframe.scenario import load_scenario
from arbframe.tuning import Runner, Tuning, iso, kpis, optimize, value_of, window_overrides
from arbframe.units import iso_to_ns, parse_duration


def drop(in_sample: float, out_of_sample: float, direction: str) -> float:
    """How much worse out of sample, as a share of the in-sample magnitude (0: no worse)."""
    worse = in_sample - out_of_sample if direction == "maximize" else out_of_sample - in_sample
    if worse <= 0:
        return 0.0
    return worse / abs(in_sample) if in_sample else math.inf


def overfit(in_sample: float, out_of_sample: float, direction: str, limit: float) -> bool:
    """Overfit: out of sample worse by MORE than `limit` (a drop of exactly `limit` is not)."""
    return drop(in_sample, out_of_sample, direction) > limit


def check_windows(tuning: Tuning, runner: Runner) -> None:
    """Every window's parts hold books: each part's first book (a 1 ns run) is before its end."""
    walk = tuning.walk_forward
    assert walk is not None
    for index in range(walk["windows"]):
        for what, part in window_overrides(walk, index).items():
            summary = runner.run(tuning.path, {**part, "duration": "1ns"})
            end = iso_to_ns(part[walk["at"]]) + parse_duration(part["duration"])
            if summary["time"]["first"] is None or summary["time"]["start_ns"] > end:
                span = _span(part, walk["at"])
                loaded = load_scenario(tuning.path, runner.registry)
                raise loaded.error(
                    ("tuning", "walk_forward", "windows"),
                    f"window {index}'s {what} part ({span['start']} to {span['end']}) has no "
                    "book in the feed's data: fewer windows or an earlier start",
                )


def walk_forward(
    tuning: Tuning,
    storage: str,
    study_name: str,
    workers: int,
    runner: Runner,
    progress: Callable[[optuna.Study], None] | None = None,
) -> dict[str, Any]:
    """Tune each window's train part (its own study, `<study>.wf<i>`), run its best params
    on the validate part; the comparison, as stored in the main study's user attrs."""
    walk = tuning.walk_forward
    assert walk is not None
    limit = walk.get("overfit_drop", 0.5)
    windows = []
    for index in range(walk["windows"]):
        parts = window_overrides(walk, index)
        study, _ = optimize(
            tuning,
            storage,
            f"{study_name}.wf{index}",
            walk.get("trials", tuning.trials),
            workers,
            fixed=parts["train"],
            progress=progress,
        )
        best = studies.best(study)
        entry: dict[str, Any] = {
            "index": index,
            "train": _span(parts["train"], walk["at"]),
            "validate": _span(parts["validate"], walk["at"]),
            "params": None if best is None else best.params,
        }
        if best is None:  # no feasible trial: nothing to carry forward
            entry.update(in_sample=None, out_of_sample=None, drop=None, overfit=None)
        else:
            summary = runner.run(tuning.path, {**best.params, **parts["validate"]})
            value = value_of(summary, tuning.metric)
            fell = drop(best.value or 0.0, value, tuning.direction)
            entry["in_sample"] = {"kpis": best.user_attrs.get("kpis", {}), "value": best.value}
            entry["out_of_sample"] = {"kpis": kpis(summary), "value": value}
            entry["drop"] = None if math.isinf(fell) else round(fell, 6)
            entry["overfit"] = overfit(best.value or 0.0, value, tuning.direction, limit)
        windows.append(entry)
    return {"windows": windows, "overfit_drop": limit}


def _span(part: dict[str, Any], at: str) -> dict[str, str]:
    """A part's [start, end): its run's duration stops 1 ns short of `end`."""
    start = iso_to_ns(part[at])
    return {"start": part[at], "end": iso(start + parse_duration(part["duration"]) + 1)}


def table(result: dict[str, Any]) -> str:
    """The windows side by side: in-sample against out-of-sample."""
    lines = [("WINDOW", "TRAIN FROM", "VALIDATE FROM", "IN SAMPLE", "OUT OF SAMPLE", "DROP", "")]
    for w in result["windows"]:
        ins, oos = w["in_sample"], w["out_of_sample"]
        lines.append(
            (
                str(w["index"]),
                w["train"]["start"],
                w["validate"]["start"],
                "-" if ins is None else f"{ins['value']:.6g}",
                "-" if oos is None else f"{oos['value']:.6g}",
                "-" if w["drop"] is None else f"{w['drop']:.0%}",
                "OVERFIT" if w["overfit"] else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
