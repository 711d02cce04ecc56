#!/usr/bin/env python
"""What one snapshot save costs in each state store: the median of N saves of a payload.

    python benchmarks/state_save.py [--saves 200] [--kb 50] [--json]

Uses the real stores against real servers: a temporary SQLite file, PostgreSQL at
$ARBFRAME_DATABASE_URL (default the local `test` database, in a schema of its own, dropped
after) and Redis at $ARBFRAME_REDIS_URL (default local, an env of its own, deleted after).
A store whose server is down is reported as such. Nothing asserts these timings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from arbframe.components import Context, RunInfo, SnapshotRecord, StoreUnavailable
from arbframe.plugins import build_registry, get_plugin_manager

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"


def manifest(seq: int) -> dict[str, Any]:
    trades = [{"trade_id": f"BTC-{seq}-{i}", "symbol": "BTC", "legs": 2} for i in range(3)]
    orders = [{"client_id": f"s-{seq}-{i}", "symbol": "BTC", "state": "open"} for i in range(2)]
    balances = {"a": {"USDT": "10000.5", "BTC": "1.25"}, "b": {"USDT": "9000", "BTC": "0.75"}}
    return {"trades": trades, "orders": orders, "balances": balances, "kpi": {"pnl": "1.5"}}


def measure(store: Any, saves: int, payload_kb: int) -> list[float]:
    payload = os.urandom(payload_kb * 1024)
    checksum = hashlib.sha256(payload).hexdigest()
    store.open()
    timings = []
    for seq in range(1, saves + 1):
        record = SnapshotRecord(
            "bench", seq, seq, time.time(), "periodic", 1, checksum, payload, manifest(seq)
        )
        started = time.perf_counter()
        store.save(record)
        timings.append(time.perf_counter() - started)
        if seq % 20 == 0:
            store.prune("bench", 20)  # as the kernel keeps `snapshots.keep`
    store.reset("bench")
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--kb", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    registry = build_registry(get_plugin_manager())
    tmp = Path(tempfile.mkdtemp())
    info = RunInfo("bench", 0, "paper", "simulated", "USDT", "bench")
    ctx = Context(info=info, resolve_path=lambda p: tmp / p, error=None)  # type: ignore[arg-type]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    pg = os.environ.get("ARBFRAME_DATABASE_URL", PG_DEFAULT)
    configs = {
        "memory": {},
        "sqlite": {"path": "state.db"},
        "postgres": {"url": f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"},
        "redis": {"url": os.environ.get("ARBFRAME_REDIS_URL", REDIS_DEFAULT), "env": schema},
    }
    results: dict[str, Any] = {}
    with _schema(pg, schema):
        for type_name, config in configs.items():
            store: Any = registry.get("state", type_name).cls(config, name=type_name, ctx=ctx)
            try:
                timings = measure(store, args.saves, args.kb)
                results[type_name] = {
                    "median_ms": float(f"{statistics.median(timings) * 1e3:.3g}"),
                    "p95_ms": float(f"{sorted(timings)[int(len(timings) * 0.95) - 1] * 1e3:.3g}"),
                }
            except StoreUnavailable as err:
                results[type_name] = {"error": str(err)}
            finally:
                store.close()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"one save of a {args.kb} kB payload, {args.saves} saves:")
        for type_name, r in results.items():
            figure = r.get("error") or f"median {r['median_ms']} ms, p95 {r['p95_ms']} ms"
            print(f"  {type_name:<9} {figure}")
    return 0


class _schema:
    """A PostgreSQL schema for the run, dropped after (skipped when the server is down)."""

    def __init__(self, url: str, name: str) -> None:
        self.conninfo = url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
        self.name = name

    def __enter__(self) -> None:
        self._run(f"CREATE SCHEMA {self.name}")

    def __exit__(self, *exc: object) -> None:
        self._run(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")

    def _run(self, sql: str) -> None:
        import psycopg

        try:
            with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=2) as db:
                db.execute(sql)
        except psycopg.OperationalError as err:
            print(f"postgres: {err}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
