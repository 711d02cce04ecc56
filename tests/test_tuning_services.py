"""Two `arbframe tune` processes started together against the real PostgreSQL join one
study: every grid combination runs once, both contribute, every KPI is stored."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
from conftest import PG_HOST, PG_PORT

pytestmark = pytest.mark.services

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_two_processes_join_one_postgres_study(pg_schema: str, tmp_path: Path) -> None:
    # 8 combinations of a 10-minute campaign (about 1 s each): long enough that the process
    # starting second still finds trials to take.
    scenario = tmp_path / "grid.yaml"
    scenario.write_text(
        f"extends: {SCENARIOS / '_campaign_base.yaml'}\nname: grid\nduration: 10m\nseed: 14\n"
        "tuning:\n  sampler: grid\n  workers: 1\n  params:\n"
        "    strategy.entry_bps: {choices: [15, 20, 25, 30]}\n"
        "    strategy.stop_loss_bps: {low: 60, high: 120, step: 60}\n"
    )
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test?options=-csearch_path%3D{pg_schema}"
    name = f"join_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "ARBFRAME_DATABASE_URL": url, "ARBFRAME_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "arbframe", "tune", str(scenario), "--study", name, "--json"]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    storage = "postgresql+psycopg://" + url.split("://", 1)[1]
    study = optuna.load_study(study_name=name, storage=storage)
    try:
        trials = [t for t in study.get_trials() if not t.user_attrs.get("surplus")]
        assert len(trials) == 8 and all(t.state.name == "COMPLETE" for t in trials)
        combos = [
            (t.params["strategy.entry_bps"], t.params["strategy.stop_loss_bps"]) for t in trials
        ]
        assert sorted(combos) == sorted(itertools.product([15, 20, 25, 30], [60, 120]))
        # each process's worker (its own pid) ran some of them
        pids = {t.user_attrs["worker"] for t in trials}
        assert len(pids) == 2, pids
        for t in trials:
            kpis = t.user_attrs["kpis"]
            assert {"pnl", "fees", "entries", "exits", "winrate", "sharpe", "expectancy"} <= set(
                kpis
            )
            assert {"max_drawdown", "trades_closed"} <= set(kpis)
            assert t.value == float(kpis["pnl"])
            assert t.user_attrs["seed"] == 14 and t.user_attrs["code_version"]
        assert "baseline" in study.user_attrs  # run once, by the process that created it
    finally:
        optuna.delete_study(study_name=name, storage=storage)


def test_studies_and_the_state_store_share_one_database(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$ARBFRAME_DATABASE_URL serves the state store and the studies alike, and both keep an
    Alembic version table: the studies live in their own schema, so neither refuses the
    other's revision. (PGOPTIONS stands in for the database's default search path, so this
    test has its own tables; an explicit `options` in the URL would override it.)"""
    from sqlalchemy import create_engine

    from arbframe import studies
    from arbframe.db.migrate import current, head, upgrade

    monkeypatch.setenv("PGOPTIONS", f"-csearch_path={pg_schema}")
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
    name = f"shared_{uuid.uuid4().hex[:8]}"
    storage = studies.open_storage(studies.study_storage(url))
    study = optuna.create_study(study_name=name, storage=storage)
    try:
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0))
        engine = create_engine(f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test")
        try:
            upgrade(engine)  # refused before: "Can't locate revision" (Optuna's, v3.2.0.a)
            assert current(engine) == head()
        finally:
            engine.dispose()
        reopened = studies.open_storage(studies.study_storage(url))  # Optuna checks its version
        again = optuna.load_study(study_name=name, storage=reopened)
        assert [t.value for t in again.get_trials()] == [1.0]
    finally:
        optuna.delete_study(study_name=name, storage=storage)
