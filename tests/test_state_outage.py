"""The `state_outage` drill on the network stores: a real cut (a TcpProxy between the store
and its server), noticed at the next snapshot, snapshots going on to the other store, and
the store caught up once it answers again. Needs the real servers (see conftest.py)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from conftest import PG_HOST, PG_PORT, REDIS_HOST, REDIS_PORT, pg_url, redis_url
from redis.backoff import NoBackoff
from redis.retry import Retry

from arbframe import keyspace
from arbframe.hookspecs import hookimpl
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario
from arbframe.stores import DATABASE_URL_ENV, REDIS_URL_ENV
from arbframe.tcpproxy import TcpProxy

pytestmark = pytest.mark.services

CAMPAIGN = Path(__file__).resolve().parents[1] / "scenarios" / "_campaign_base.yaml"
CUT_AT, CUT_FOR = 60, 40  # seconds after the first event
SCENARIO: dict[str, Any] = {
    "extends": str(CAMPAIGN),  # two venues, synthetic BTC, spread_arb: trades every minute
    "name": "state_outage_drill",
    "duration": "3m",
    "faults": [
        {
            "type": "state_outage",
            "name": "redis_cut",
            "store": "redis",
            "at": f"{CUT_AT}s",
            "duration": f"{CUT_FOR}s",
        },
    ],
}


class Where:
    """The session's snapshots as the servers hold them, read with plain clients."""

    def __init__(self, schema: str, env: str, session: str) -> None:
        self.schema, self.env, self.session = schema, env, session
        self.index = keyspace.key(env, session, "snapshot", keyspace.NO_SYMBOL, "index")
        self.redis = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=1)

    def postgres_seqs(self) -> list[int]:
        """Full snapshots (not write-ahead records), oldest first."""
        with psycopg.connect(
            f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True
        ) as db:
            rows = db.execute(
                f"SELECT seq FROM {self.schema}.snapshots "
                "WHERE session = %s AND reason <> 'orders' ORDER BY seq",
                (self.session,),
            )
            return [seq for (seq,) in rows]

    def redis_seqs(self) -> list[int]:
        return sorted(int(seq) for seq in self.redis.zrange(self.index, 0, -1))


def probe(port: int) -> str | None:
    """What a plain Redis client through ``port`` meets: None when it is served."""
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),  # the default retries with a backoff: seconds per probe
    )
    try:
        client.ping()
    except redis.ConnectionError as err:
        return type(err).__name__
    finally:
        client.close()
    return None


class Observer:
    """A plugin that looks at the servers at each moment of the drill (between instants, so
    no snapshot has been taken since the moment itself)."""

    def __init__(self, where: Where) -> None:
        self.where = where
        self.run: Run | None = None
        self.proxy: TcpProxy | None = None
        self.seen: dict[str, dict[str, Any]] = {}

    @hookimpl
    def arbframe_on_fault(self, detail: dict[str, Any], fault: str, phase: str) -> None:
        if fault != "redis_cut":
            return
        moment = detail["phase"] if phase == "injected" else phase  # cut, restored
        drill = next(f for f in self.run.faults if f.name == fault)  # type: ignore[union-attr]
        self.proxy = drill.proxy
        self.seen[moment] = {
            "postgres": self.where.postgres_seqs(),
            "redis": self.where.redis_seqs(),
            "through_proxy": probe(drill.proxy.port),
            "detail": detail,
        }


def run_drill(path: Path, scenario: dict[str, Any], observer: Observer) -> dict[str, Any]:
    path.write_text(json.dumps(scenario))
    pm = get_plugin_manager(extra_plugins=(observer,))
    registry = build_registry(pm)
    run = observer.run = Run(load_scenario(path, registry), registry, pm)
    return run.execute()


@pytest.fixture(params=["configured", "environment"])
def drill(request, pg_schema, redis_env, monkeypatch) -> Iterator[tuple[dict[str, Any], Where]]:
    """The scenario with its stores in its `state:` blocks, or chosen by the environment
    (no `state:`, no `snapshots:`: the drill alone makes the run keep state)."""
    scenario = copy.deepcopy(SCENARIO)
    session = scenario["session"] = f"outage-{uuid.uuid4().hex[:8]}"
    if request.param == "configured":
        env = redis_env
        scenario["state"] = [
            {"type": "redis", "url": redis_url(), "env": env},
            {"type": "postgres", "url": pg_url(pg_schema)},
        ]
        scenario["snapshots"] = {"every": "5s", "keep": 1000}
    else:
        env = "paper"  # the redis store's env without `env:`: the run's mode
        monkeypatch.setenv(REDIS_URL_ENV, redis_url())
        monkeypatch.setenv(DATABASE_URL_ENV, pg_url(pg_schema))
    where = Where(pg_schema, env, session)
    yield scenario, where
    names = list(where.redis.scan_iter(match=keyspace.pattern(env, session)))
    if names:
        where.redis.delete(*names)
    where.redis.close()


def test_a_cut_redis_store_is_noticed_bypassed_and_caught_up(drill, tmp_path):
    scenario, where = drill
    observer = Observer(where)
    summary = run_drill(tmp_path / "drill.yaml", scenario, observer)
    seen = observer.seen

    faults = summary["faults"]
    assert faults["state_store_detected"] == 1 and faults["state_store_recovered"] == 1
    timeline = faults["timeline"]["redis_cut"]
    assert CUT_AT <= timeline["detected_at_s"] < CUT_AT + CUT_FOR  # at the next snapshot
    assert timeline["recovered_at_s"] >= CUT_AT + CUT_FOR
    assert summary["state"]["stores"] == ["redis", "postgres"]
    assert summary["state"]["stores_down"] == []

    # A real cut: while it lasts a plain client through the proxy is refused; it is served
    # again once restored.
    assert seen["cut"]["through_proxy"] == "ConnectionError"
    assert seen["restored"]["through_proxy"] is None

    # Snapshots went on to postgres through the outage, none reached redis.
    assert seen["restored"]["postgres"][-1] > seen["cut"]["postgres"][-1]
    assert seen["restored"]["redis"] == seen["cut"]["redis"]

    # Caught up: the first snapshot after the outage is in redis, and so is the last one.
    recovered_seq = seen["recovered"]["detail"]["seq"]
    assert seen["recovered"]["redis"][-1] == recovered_seq
    assert recovered_seq > seen["restored"]["postgres"][-1]
    last = where.postgres_seqs()[-1]
    assert where.redis_seqs()[-1] == last == summary["state"]["last_seq"]
    hot_last_seq = keyspace.key(where.env, where.session, "session", keyspace.NO_SYMBOL, "last_seq")
    assert int(where.redis.get(hot_last_seq)) == last

    # The proxy went with the store when the run closed it.
    assert observer.proxy is not None and observer.proxy.closed
    assert probe(observer.proxy.port) == "ConnectionError"
