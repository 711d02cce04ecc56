"""Where tuning studies live and how their trials are ranked (`arbframe tune --top`).

A study is Optuna's: SQLite under the state dir by default, PostgreSQL when
``$ARBFRAME_DATABASE_URL`` is set, so several `arbframe tune` processes (or machines)
share one. Each finished trial carries its parameters, every KPI, its seed and the code
version in ``trial.user_attrs``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from arbframe import __version__
from arbframe.errors import ArbframeError
from arbframe.stores import STATE_DIR_ENV

DATABASE_URL_ENV = "ARBFRAME_DATABASE_URL"
STUDY_SCHEMA = "arbframe_studies"
"""The PostgreSQL schema of the studies. The state store reads the same $ARBFRAME_DATABASE_URL
and both keep an Alembic ``alembic_version`` table: in one schema, each would find the
other's revision and refuse to start."""


def study_storage(url: str | None) -> str:
    """The SQLAlchemy URL of the study storage: `url`, else $ARBFRAME_DATABASE_URL, else
    SQLite in the state dir. ``postgresql://`` means psycopg 3 (the driver installed), in the
    schema ``arbframe_studies`` unless the URL sets its own ``options`` (a search path)."""
    url = url or os.environ.get(DATABASE_URL_ENV)
    if not url:
        state = Path(os.environ.get(STATE_DIR_ENV) or ".arbframe")
        state.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{state.absolute() / 'studies.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if "options" not in parsed.query:
            search_path = {"options": f"-csearch_path={STUDY_SCHEMA}"}
            url = parsed.update_query_dict(search_path).render_as_string(hide_password=False)
    return url


def shown(url: str) -> str:
    """The storage URL for display: without a password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    try:
        with _schema_lock(url):
            storage = optuna.storages.RDBStorage(url)
    except Exception as err:  # SQLAlchemy: unreachable server, bad URL, unknown driver
        message = " ".join(str(err).split())[:300]
        raise ArbframeError(f"study storage {shown(url)}: {message}") from None
    if url.startswith("sqlite"):
        _immediate_transactions(storage.engine)
    return storage


def _immediate_transactions(engine: Any) -> None:
    """SQLite ignores SELECT ... FOR UPDATE, so two workers could both take one queued trial:
    each transaction takes the write lock from its start instead (SQLAlchemy's pysqlite
    recipe), which makes taking a trial atomic, as it is on PostgreSQL."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def autocommit_driver(connection: Any, record: Any) -> None:
        connection.isolation_level = None  # the driver's own BEGIN would be deferred

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened so far lack the listeners


@contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """On PostgreSQL, one process at a time opens the storage: processes starting together on
    an empty database would each create Optuna's tables, and all but one fail."""
    if not url.startswith("postgresql"):
        yield  # SQLite locks its file
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as db:
            db.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            if f"search_path={STUDY_SCHEMA}" in str(engine.url.query.get("options", "")):
                db.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {STUDY_SCHEMA}"))
                db.commit()
            try:
                yield
            finally:
                db.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
    finally:
        engine.dispose()


SCHEMA_LOCK = 0x61726266_74756E65  # "arbftune": the advisory lock key of the storage's schema


@cache
def code_version() -> str:
    """arbframe's version, and the git commit when running from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" if commit else __version__


def counted(trial: FrozenTrial) -> bool:
    """A trial of the study's budget (not one a worker opened after the queue ran dry)."""
    return not trial.user_attrs.get("surplus", False)


def feasible(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and not trial.user_attrs.get("constraints_broken")


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best first: feasible ones by value, then those breaking a constraint."""
    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    return sorted(done, key=lambda t: (not feasible(t), sign * (t.value or 0.0), t.number))


def best(study: optuna.Study) -> FrozenTrial | None:
    top = ranked(study)
    return top[0] if top and feasible(top[0]) else None


def row(rank: int, trial: FrozenTrial) -> dict[str, Any]:
    """One ranked trial for --top and --json."""
    attrs = trial.user_attrs
    return {
        "rank": rank,
        "trial": trial.number,
        "value": trial.value,
        "params": trial.params,
        "feasible": feasible(trial),
        "constraints_broken": attrs.get("constraints_broken", []),
        "stress_broken": attrs.get("stress_broken"),
        "kpis": attrs.get("kpis", {}),
        "seed": attrs.get("seed"),
        "code_version": attrs.get("code_version"),
        "worker": attrs.get("worker"),
    }


def top_rows(study: optuna.Study, n: int) -> list[dict[str, Any]]:
    return [row(i, t) for i, t in enumerate(ranked(study)[:n], start=1)]


def top_text(rows: list[dict[str, Any]]) -> str:
    """The ranking as an aligned table."""
    header = ("RANK", "TRIAL", "VALUE", "PNL", "TRADES", "MAX DD", "SHARPE", "MARK", "PARAMS")
    lines = [header]
    for r in rows:
        k = r["kpis"]
        mark = ", ".join(
            (["infeasible: " + "+".join(r["constraints_broken"])] if not r["feasible"] else [])
            + (["stress broken"] if r["stress_broken"] else [])
        )
        params = " ".join(f"{name}={value}" for name, value in r["params"].items())
        lines.append(
            (
                str(r["rank"]),
                f"#{r['trial']}",
                f"{r['value']:.6g}",
                _short_money(k.get("pnl")),
                str(k.get("trades_closed", "-")),
                _short_money(k.get("max_drawdown")),
                str(k.get("sharpe", "-")),
                mark or "-",
                params,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _short_money(text: str | None) -> str:
    return "-" if text is None else f"{float(text):,.2f}"
