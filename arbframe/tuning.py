"""`arbframe tune`: search a scenario's parameters with Optuna.

Every trial is the scenario with the trial's values written over its `tuning.params`
paths, loaded and validated as `arbframe run` would and run through the same engine, in
worker processes that share one study. The study's creator queues every trial up front
(grid: each combination; otherwise trials the sampler fills in), so workers on any number
of machines only take queued trials: no grid combination runs twice and the study holds
`trials` counted trials (a worker whose ask() raced another's for the last queued trial
also leaves a "surplus" FAIL trial, which `studies.counted` leaves out). A study remembers
the fingerprint of the scenario and tuning block that made it: another scenario under the
same study name is refused, never silently judged against the old trials.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from arbframe import studies
from arbframe.errors import ArbframeError
from arbframe.plugins import Registry, build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import LoadedScenario, load_scenario, summary_path_problem
from arbframe.summary import lookup
from arbframe.units import iso_to_ns, parse_duration

METRICS = {
    "pnl": "portfolio.pnl",
    "sharpe": "portfolio.sharpe",
    "expectancy": "portfolio.expectancy",
}
DEFAULT_TRIALS = 20
MAX_VALUES = 100_000  # a parameter's values, a grid's combinations: bounded like any input
READY_WAIT_S = 60.0  # how long a joining process waits for the creator to queue the trials
optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress line says what matters


class TrialFailed(Exception):  # noqa: N818 (a trial's outcome, reported, not raised out)
    pass


@dataclass(frozen=True)
class Tuning:
    """A scenario's `tuning:` block, checked."""

    path: Path
    study: str
    params: dict[str, dict[str, Any]]
    metric: str
    direction: str
    constraints: dict[str, Any]
    sampler: str
    trials: int
    seed: int
    workers: int
    pruning: dict[str, Any] | None
    walk_forward: dict[str, Any] | None
    stress: list[Path]
    expect: dict[str, Any]
    grid: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""  # of the resolved scenario, its tuning block included

    @property
    def objective(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "constraints": self.constraints}


def load_tuning(path: Path, registry: Registry | None = None) -> Tuning:
    """Load the scenario and check its `tuning:` block: each parameter's edges and choices
    are applied and validated, so a value that breaks the scenario fails here, at its key."""
    registry = registry or build_registry(get_plugin_manager())
    loaded = load_scenario(path, registry)
    block = loaded.data.get("tuning")
    if block is None:
        raise ArbframeError(f"{path}: no tuning: block, nothing to tune (see docs/scenarios.md)")
    objective = block.get("objective", {})
    metric = METRICS.get(objective.get("metric", "pnl"), objective.get("metric", "pnl"))
    problem = summary_path_problem(metric)
    if problem:
        raise loaded.error(("tuning", "objective", "metric"), problem)
    sampler = block.get("sampler", "tpe")
    for name, spec in block["params"].items():
        _check_param(loaded, registry, name, spec, sampler)
    if (
        sampler == "grid"
        and math.prod(len(_values(s)) for s in block["params"].values()) > MAX_VALUES
    ):
        raise loaded.error(("tuning", "params"), f"more than {MAX_VALUES:,} grid combinations")
    grid = _grid(block["params"]) if sampler == "grid" else []
    trials = block.get("trials", len(grid) if grid else DEFAULT_TRIALS)
    if grid and trials > len(grid):
        raise loaded.error(
            ("tuning", "trials"), f"{trials} trials, but the grid has {len(grid)} combinations"
        )
    walk = block.get("walk_forward")
    if walk is not None:
        _check_walk_forward(loaded, registry, walk)
    stress = [path.parent / s for s in block.get("stress", {}).get("scenarios", [])]
    for i, stressed in enumerate(stress):  # the params must fit there too, at every edge
        for name, spec in block["params"].items():
            for value in _edges(spec):
                try:
                    load_scenario(stressed, registry, overrides={name: value})
                except ArbframeError as err:
                    where = ("tuning", "stress", "scenarios", i)
                    raise loaded.error(where, str(err)) from None
    return Tuning(
        path=path,
        study=block.get("study", loaded.data["name"]),
        params=block["params"],
        metric=metric,
        direction=objective.get("direction", "maximize"),
        constraints=objective.get("constraints", {}),
        sampler=sampler,
        trials=trials,
        seed=block.get("seed", 0),
        workers=block.get("workers", 1),
        pruning=block.get("pruning"),
        walk_forward=walk,
        stress=stress,
        expect=block.get("expect", {}),
        grid=grid,
        fingerprint=fingerprint(_what_trials_see(loaded.data)),
    )


def _what_trials_see(data: dict[str, Any]) -> dict[str, Any]:
    """The resolved scenario less what never changes a trial (tuning's expect and workers)."""
    block = {k: v for k, v in data["tuning"].items() if k not in ("expect", "workers")}
    return {**data, "tuning": block}


def fingerprint(data: Any) -> str:
    """A stable hash of a resolved scenario (with its tuning block)."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_param(
    loaded: LoadedScenario, registry: Any, name: str, spec: dict[str, Any], sampler: str
) -> None:
    where = ("tuning", "params", name)
    if "choices" not in spec:
        low, high, step = spec["low"], spec["high"], spec.get("step")
        if low >= high:
            raise loaded.error(where, f"low ({low}) must be below high ({high})")
        if spec.get("log") and (low <= 0 or step is not None):
            raise loaded.error(where, "a log scale needs low > 0 and no step")
        if sampler == "grid" and step is None:
            raise loaded.error(where, "the grid sampler needs a step (or choices)")
        if step is not None and (high - low) / step >= MAX_VALUES:
            raise loaded.error(where, f"more than {MAX_VALUES:,} values from low to high")
    for value in _edges(spec):  # a range's schema bounds are intervals: its edges suffice
        load_scenario(loaded.path, registry, overrides={name: value})


def _edges(spec: dict[str, Any]) -> list[Any]:
    if "choices" in spec:
        return list(spec["choices"])
    return [_typed(spec, spec["low"]), _typed(spec, spec["high"])]


def _typed(spec: dict[str, Any], value: Any) -> Any:
    """Integers stay integers when the whole range is; decimals are trimmed to the step's
    places (Optuna's floats would otherwise write 0.30000000000000004 into a scenario)."""
    if _is_int(spec):
        return int(value)
    step = spec.get("step")
    if step is None:
        return float(value)
    places = max(0, -Decimal(str(step)).normalize().as_tuple().exponent)  # type: ignore[operator]
    return round(float(value), places)


def _is_int(spec: dict[str, Any]) -> bool:
    keys = [spec["low"], spec["high"], spec.get("step", 1)]
    return all(isinstance(v, int) for v in keys) and not spec.get("log")


def _values(spec: dict[str, Any]) -> list[Any]:
    """Every value of a grid parameter."""
    if "choices" in spec:
        return list(spec["choices"])
    low, high, step = (Decimal(str(spec[k])) for k in ("low", "high", "step"))
    count = int((high - low) / step) + 1
    return [_typed(spec, low + i * step) for i in range(count)]


def _grid(params: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    names = list(params)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(_values(params[n]) for n in names))
    ]


def _check_walk_forward(loaded: LoadedScenario, registry: Any, walk: dict[str, Any]) -> None:
    try:
        iso_to_ns(walk["start"])
    except ValueError:
        raise loaded.error(("tuning", "walk_forward", "start"), "not an ISO 8601 time") from None
    if not _written(loaded.data, walk["at"]):
        message = f"{walk['at']} is not written in the scenario (set it, e.g. to the data's start)"
        raise loaded.error(("tuning", "walk_forward", "at"), message)
    if parse_duration(walk["train"]) != parse_duration(walk["validate"]):
        # in- and out-of-sample values (raw PnL, trades) are compared: equal lengths
        message = f"validate ({walk['validate']}) must be as long as train ({walk['train']})"
        raise loaded.error(("tuning", "walk_forward", "validate"), message)
    for index in range(walk["windows"]):  # every window's parts, before anything runs
        for what, overrides in window_overrides(walk, index).items():
            try:
                load_scenario(loaded.path, registry, overrides=overrides)
            except ArbframeError as err:
                message = f"window {index} {what}: {err}"
                raise loaded.error(("tuning", "walk_forward", "at"), message) from None


def _written(data: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False
    return True


def window_overrides(walk: dict[str, Any], index: int) -> dict[str, dict[str, Any]]:
    """The scenario overrides of window `index`'s train and validate parts. Each part is
    half-open, [start, start + length): a run keeps the books at its start and at its end,
    so its duration is the length less 1 ns, and no book is in both train and validate."""
    train, validate = parse_duration(walk["train"]), parse_duration(walk["validate"])
    step = parse_duration(walk.get("step", walk["validate"]))
    start = iso_to_ns(walk["start"]) + index * step
    return {
        "train": {walk["at"]: iso(start), "duration": _exact(train - 1)},
        "validate": {walk["at"]: iso(start + train), "duration": _exact(validate - 1)},
    }


def _exact(ns: int) -> str:
    """A duration of exactly `ns` nanoseconds, as the scenario schema takes it."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{seconds}s{rest}ns"


def iso(ns: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


# ---- one trial ---------------------------------------------------------------------------------


class Runner:
    """Runs scenario files with overrides in this process, with plugins loaded once."""

    def __init__(self) -> None:
        self.pm = get_plugin_manager()
        self.registry = build_registry(self.pm)

    def run(
        self,
        path: Path,
        overrides: dict[str, Any],
        checkpoint: Callable[[Run, int], bool] | None = None,
        checkpoints: int = 10,
    ) -> dict[str, Any]:
        """The summary of `path` run with `overrides`. `checkpoint(run, step)` is called at
        each of `checkpoints` equal stretches of scenario time; True stops the run there."""
        run = Run(load_scenario(path, self.registry, overrides=overrides), self.registry, self.pm)
        progress = None
        if checkpoint is not None:
            total, done = parse_duration(run.scenario["duration"]), [0]

            def progress(elapsed_ns: int, quotes: int) -> None:
                step = min(checkpoints, int(checkpoints * elapsed_ns / total)) if total else 0
                if step > done[0]:
                    done[0] = step
                    if checkpoint(run, step):
                        run.stop.request()

        return run.execute(progress=progress)


def value_of(summary: dict[str, Any], metric: str) -> float:
    value = lookup(summary, metric)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TrialFailed(f"{metric} is {value!r}, not a number") from None


def kpis(summary: dict[str, Any]) -> dict[str, Any]:
    """Every portfolio KPI (money as exact strings), and how the run ended."""
    return {
        **summary["portfolio"],
        "elapsed_s": summary["time"]["elapsed_s"],
        "complete": summary["complete"],
        "passed": summary["passed"],
    }


def broken_constraints(tuning: Tuning, k: dict[str, Any]) -> list[str]:
    c, broken = tuning.constraints, []
    if "max_drawdown" in c and Decimal(k["max_drawdown"]) > Decimal(str(c["max_drawdown"])):
        broken.append("max_drawdown")
    if "min_trades" in c and k["trades_closed"] < c["min_trades"]:
        broken.append("min_trades")
    return broken


def suggest(trial: Trial, tuning: Tuning) -> dict[str, Any]:
    """The trial's value for each parameter (a queued grid trial's are fixed)."""
    values = {}
    for name, spec in tuning.params.items():
        if tuning.sampler == "grid" or "choices" in spec:
            choices = _values(spec) if tuning.sampler == "grid" else spec["choices"]
            values[name] = trial.suggest_categorical(name, choices)
        elif _is_int(spec):
            step = spec.get("step", 1)
            values[name] = trial.suggest_int(name, spec["low"], spec["high"], step=step,
                                             log=spec.get("log", False))  # fmt: skip
        else:
            raw = trial.suggest_float(name, spec["low"], spec["high"], step=spec.get("step"),
                                      log=spec.get("log", False))  # fmt: skip
            values[name] = _typed(spec, raw)
    return values


def run_trial(
    runner: Runner, tuning: Tuning, trial: Trial, fixed: dict[str, Any], stress: bool
) -> float:
    """Run one trial (reporting at checkpoints for pruning); record its KPIs; its value."""
    params = suggest(trial, tuning)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("code_version", studies.code_version())
    trial.set_user_attr("scenario", str(tuning.path))
    checkpoints = (tuning.pruning or {}).get("checkpoints", 10)

    def checkpoint(run: Run, step: int) -> bool:
        trial.report(value_of(run.summary(complete=False), tuning.metric), step)
        return trial.should_prune()

    summary = runner.run(
        tuning.path,
        {**fixed, **params},
        checkpoint if tuning.pruning else None,
        checkpoints,
    )
    trial.set_user_attr("seed", summary["seed"])
    trial.set_user_attr("kpis", kpis(summary))
    if not summary["complete"]:  # stopped at a checkpoint
        raise optuna.TrialPruned(f"stopped at {summary['time']['elapsed_s']} s of scenario time")
    trial.set_user_attr("constraints_broken", broken_constraints(tuning, kpis(summary)))
    if stress and tuning.stress:
        results = [stress_run(runner, path, params) for path in tuning.stress]
        trial.set_user_attr("stress", results)
        trial.set_user_attr("stress_broken", not all(r["passed"] for r in results))
    return value_of(summary, tuning.metric)


def stress_run(runner: Runner, path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """`params` through a robustness scenario: did its expectations (guard bounds) hold?"""
    summary = runner.run(path, params)
    failed = [e["name"] for e in summary["expectations"] if not e["passed"]]
    return {"scenario": str(path), "passed": summary["passed"], "broken": failed}


# ---- workers and the shared study ---------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What a worker process needs (picklable: spawned processes start from nothing)."""

    scenario: Path
    storage: str
    study: str
    index: int
    fixed: dict[str, Any] = field(default_factory=dict)
    stress: bool = False


def sampler_for(tuning: Tuning, index: int) -> optuna.samplers.BaseSampler:
    seed = tuning.seed + index  # workers sampling with one seed would propose the same values
    if tuning.sampler in ("grid", "random"):
        # A grid's combinations are all queued (fixed params): no sampler picks them. Optuna's
        # GridSampler would look up a grid_id queued trials never get (KeyError on tell).
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner_for(tuning: Tuning) -> optuna.pruners.BasePruner:
    if not tuning.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=tuning.pruning.get("startup_trials", 2),
        n_warmup_steps=tuning.pruning.get("warmup", 2),
    )


def work(job: Job) -> None:
    """A worker: take queued trials of the study until none is left."""
    runner = Runner()
    tuning = load_tuning(job.scenario, runner.registry)
    study = optuna.load_study(
        study_name=job.study,
        storage=studies.open_storage(job.storage),
        sampler=sampler_for(tuning, job.index),
        pruner=pruner_for(tuning),
    )
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial = study.ask()
        if not trial.user_attrs.get("queued"):  # another worker took the last one
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            break
        try:
            value = run_trial(runner, tuning, trial, job.fixed, job.stress)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except (ArbframeError, TrialFailed) as err:
            trial.set_user_attr("error", str(err))
            study.tell(trial, state=TrialState.FAIL)
        except BaseException:  # a bug: the trial is over all the same, then the worker ends
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            study.tell(trial, value)


def _work_in_child(job: Job) -> None:
    try:
        work(job)
    except ArbframeError as err:
        raise SystemExit(f"worker {job.index}: {err}") from None


def create_or_join(
    tuning: Tuning,
    storage: str,
    name: str,
    trials: int,
    fixed: dict[str, Any] | None = None,
) -> tuple[optuna.Study, bool]:
    """The study `name`: created with its trials queued (True), or joined once its creator
    has queued them (False), if it was made from this very scenario (and `fixed`)."""
    rdb = studies.open_storage(storage)
    made_from = fingerprint({"scenario": tuning.fingerprint, "fixed": fixed or {}})
    try:
        study = optuna.create_study(storage=rdb, study_name=name, direction=tuning.direction)
    except optuna.exceptions.DuplicatedStudyError:
        return _join(rdb, storage, name, tuning, made_from), False
    study.set_user_attr("fingerprint", made_from)
    study.set_user_attr("scenario", str(tuning.path))
    study.set_user_attr("objective", tuning.objective)
    study.set_user_attr("code_version", studies.code_version())
    queued = {"queued": True}  # what workers take; anything else is a surplus trial
    if tuning.grid:
        combos = tuning.grid
        if trials < len(combos):  # a seeded sample of the grid
            combos = random.Random(tuning.seed).sample(combos, trials)
        for combo in combos:
            study.enqueue_trial(combo, user_attrs=queued)
    else:
        for _ in range(trials):
            study.enqueue_trial({}, user_attrs=queued)  # the sampler fills it in when taken
    study.set_user_attr("ready", True)
    return study, True


def _join(rdb: Any, storage: str, name: str, tuning: Tuning, made_from: str) -> optuna.Study:
    direction = tuning.direction
    study = optuna.load_study(study_name=name, storage=rdb)
    deadline = time.monotonic() + READY_WAIT_S
    while not study.user_attrs.get("ready"):
        if time.monotonic() > deadline:
            raise ArbframeError(
                f"study {name} in {studies.shown(storage)} exists but its trials were never "
                "queued (its creator died?): tune under another --study"
            )
        time.sleep(0.2)
    if study.user_attrs.get("fingerprint") != made_from:
        loaded = load_scenario(tuning.path, build_registry(get_plugin_manager()))
        key = ("tuning", "study") if "study" in loaded.data["tuning"] else ("name",)
        raise loaded.error(
            key,
            f"study {name} in {studies.shown(storage)} was made from another scenario or "
            f"tuning block ({study.user_attrs.get('scenario', '?')} as it was then): tune under "
            "a new name (--study NAME)",
        )
    if study.direction.name.lower() != direction:
        raise ArbframeError(
            f"study {name} exists to {study.direction.name.lower()}, not to {direction}"
        )
    return study


def optimize(
    tuning: Tuning,
    storage: str,
    name: str,
    trials: int,
    workers: int,
    fixed: dict[str, Any] | None = None,
    stress: bool = False,
    progress: Callable[[optuna.Study], None] | None = None,
    meanwhile: Callable[[optuna.Study, bool], None] | None = None,
) -> tuple[optuna.Study, bool]:
    """Create or join the study and run its queued trials in `workers` processes; wait for
    every trial (other machines' too). `meanwhile(study, created)` runs here as they work."""
    study, created = create_or_join(tuning, storage, name, trials, fixed)
    spawn = multiprocessing.get_context("spawn")  # no inherited threads, connections or state
    jobs = [Job(tuning.path, storage, name, i, fixed or {}, stress) for i in range(workers)]
    processes = [spawn.Process(target=_work_in_child, args=(job,)) for job in jobs]
    for process in processes:
        process.start()
    try:
        if meanwhile is not None:
            meanwhile(study, created)
        while any(p.is_alive() for p in processes) or _unfinished(study):
            if progress is not None:
                progress(study)
            time.sleep(0.2)
            if not any(p.is_alive() for p in processes) and (
                all(p.exitcode for p in processes) or _stale(study)
            ):
                break
    finally:
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ArbframeError(f"study {name}: the workers failed (exit codes {failed})")
    return study, created


def _unfinished(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)))


def _stale(study: optuna.Study) -> bool:
    """Our workers are gone: only trials another machine runs (or a dead worker left) remain.
    Wait while they move; give up after a quiet spell."""
    quiet_until, seen = time.monotonic() + STALE_S, _finished(study)
    while time.monotonic() < quiet_until:
        if not _unfinished(study):
            return False
        time.sleep(1)
        if (now := _finished(study)) != seen:
            seen, quiet_until = now, time.monotonic() + STALE_S
    return True


def _finished(study: optuna.Study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


STALE_S = 300.0  # scenario runs take seconds: five quiet minutes means nobody is running them
