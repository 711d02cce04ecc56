"""One contract, every store: memory, sqlite, postgres and redis pass the same tests, against
the real servers (see ``require_service`` in conftest.py), outages included."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import PG_HOST, PG_PORT, REDIS_HOST, REDIS_PORT, pg_url, redis_url

from arbframe.components import Context, RunInfo, SnapshotRecord, StateStore, StoreUnavailable
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.testing import TcpProxy

pytestmark = pytest.mark.services

REGISTRY = build_registry(get_plugin_manager())
ALL_BYTES = bytes(range(256)) * 4  # NUL, invalid UTF-8: a payload is bytes, not text


def context(base: Path, mode: str = "paper") -> Context:
    return Context(
        info=RunInfo("t", 0, mode, "simulated", "USDT", "t"),
        resolve_path=lambda path: base / path,
        error=None,  # type: ignore[arg-type]
    )


def build(type_name: str, config: dict[str, Any], base: Path) -> StateStore:
    cls = REGISTRY.get("state", type_name).cls
    return cls(config, name=f"state[{type_name}]", ctx=context(base))  # type: ignore[return-value]


def record(
    seq: int, session: str = "s1", payload: bytes = ALL_BYTES, **changes: Any
) -> SnapshotRecord:
    fields: dict[str, Any] = {
        "session": session,
        "seq": seq,
        "ts": 1_700_000_000_000_000_000 + seq,
        "taken_at": 1_700_000_000.123456 + seq / 7,  # not a round float: must come back exact
        "reason": "periodic",
        "version": 1,
        "checksum": hashlib.sha256(payload).hexdigest(),
        "payload": payload,
        "manifest": {
            "trades": [{"trade_id": f"BTC-{seq}", "symbol": "BTC", "legs": [{"venue": "a"}]}],
            "balances": {"a": {"USDT": "1000.123456789012345678"}},
            "kpi": {"trades_closed": seq, "pnl": "-1.5"},
            "note": "ünïcode ✓",
        },
    }
    return SnapshotRecord(**{**fields, **changes})


# ---- the stores under test ------------------------------------------------------------------


@pytest.fixture
def make_store(request, tmp_path) -> Iterator[Callable[..., StateStore]]:
    """``make_store(type_name, port=None)``: an opened store of that type in this test's own
    database (``port``: reach the server through that port, e.g. a TcpProxy's)."""
    opened: list[StateStore] = []

    def make(type_name: str, port: int | None = None, open_it: bool = True) -> StateStore:
        if type_name == "postgres":
            schema = request.getfixturevalue("pg_schema")
            config = {"url": pg_url(schema, port or PG_PORT)}
        elif type_name == "redis":
            env = request.getfixturevalue("redis_env")
            config = {"url": redis_url(port or REDIS_PORT), "env": env}
        elif type_name == "sqlite":
            config = {"path": "state/state.db"}
        else:
            config = {}
        store = build(type_name, config, tmp_path)
        opened.append(store)
        if open_it:
            store.open()
        return store

    yield make
    for store in opened:
        store.close()


STORES = ["memory", "sqlite", "postgres", "redis"]
SERVERS = {"postgres": (PG_HOST, PG_PORT), "redis": (REDIS_HOST, REDIS_PORT)}


@pytest.fixture(params=STORES)
def store(request, make_store) -> StateStore:
    from arbframe_plugins.state.memory import MemoryStore

    MemoryStore.records.clear()  # one space per process: start each test empty
    return make_store(request.param)


# ---- the contract ---------------------------------------------------------------------------


def test_load_returns_what_save_was_given(store):
    saved = record(1)
    store.save(saved)
    assert store.load("s1", 1) == saved  # bytes, checksum, manifest, exact floats


def test_load_of_what_was_never_saved_is_none(store):
    store.save(record(1))
    assert store.load("s1", 2) is None
    assert store.load("other", 1) is None


def test_a_store_keeps_a_checksum_that_does_not_match(store):
    # The kernel checks checksums; a store that "fixed" one would hide a damaged payload.
    damaged = record(1, checksum="0" * 64)
    store.save(damaged)
    assert store.load("s1", 1) == damaged


def test_an_empty_payload_and_manifest_come_back(store):
    empty = record(1, payload=b"", manifest={})
    store.save(empty)
    assert store.load("s1", 1) == empty


def test_snapshots_are_newest_first_without_payloads(store):
    for seq in (2, 1, 3):
        store.save(record(seq))
    listed = store.snapshots("s1")
    assert [r.seq for r in listed] == [3, 2, 1]
    assert all(r.payload == b"" for r in listed)
    assert listed[0] == record(3, payload=b"", checksum=record(3).checksum)
    assert store.snapshots("nobody") == []


def test_save_replaces_the_snapshot_of_the_same_seq(store):
    store.save(record(1))
    again = record(1, payload=b"second", reason="shutdown", manifest={"x": 1})
    store.save(again)
    assert store.load("s1", 1) == again
    assert [r.seq for r in store.snapshots("s1")] == [1]


def test_prune_keeps_the_newest(store):
    for seq in range(1, 6):
        store.save(record(seq))
    store.save(record(1, session="s2"))
    store.prune("s1", 2)
    assert [r.seq for r in store.snapshots("s1")] == [5, 4]
    assert store.load("s1", 3) is None and store.load("s1", 5) == record(5)
    assert [r.seq for r in store.snapshots("s2")] == [1]  # another session is untouched
    store.prune("s1", 5)  # more than held: nothing goes
    assert [r.seq for r in store.snapshots("s1")] == [5, 4]


def test_reset_forgets_one_session(store):
    for seq in (1, 2, 3):
        store.save(record(seq))
    store.save(record(1, session="s2"))
    assert store.reset("s1") == 3
    assert store.snapshots("s1") == [] and store.load("s1", 3) is None
    assert store.reset("s1") == 0
    assert [s["session"] for s in store.sessions()] == ["s2"]
    store.save(record(1))  # the session starts again from scratch
    assert [r.seq for r in store.snapshots("s1")] == [1]


def test_sessions_lists_each_with_its_last_snapshot(store):
    assert store.sessions() == []
    for seq in (1, 2):
        store.save(record(seq))
    store.save(record(7, session="s2"))
    latest = record(2)
    assert sorted(store.sessions(), key=lambda s: s["session"]) == [
        {
            "session": "s1",
            "snapshots": 2,
            "last_seq": 2,
            "last_ts": latest.ts,
            "last_taken_at": latest.taken_at,
        },
        {
            "session": "s2",
            "snapshots": 1,
            "last_seq": 7,
            "last_ts": record(7).ts,
            "last_taken_at": record(7).taken_at,
        },
    ]


def test_durable_says_whether_a_crash_keeps_the_snapshots(store):
    assert store.durable is (store.type_name in ("sqlite", "postgres"))


# ---- outages --------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["postgres", "redis"])
def test_an_outage_raises_store_unavailable_then_the_store_recovers(make_store, type_name):
    with TcpProxy(*SERVERS[type_name]) as proxy:
        store = make_store(type_name, port=proxy.port)
        store.save(record(1))
        proxy.cut()  # a real outage: live connections closed, new ones refused
        started = time.monotonic()
        for call in (
            lambda: store.save(record(2)),
            lambda: store.load("s1", 1),
            store.sessions,
        ):
            with pytest.raises(StoreUnavailable):
                call()
        assert time.monotonic() - started < 10  # fails fast: never hangs a run
        proxy.restore()
        store.save(record(2))
        assert [r.seq for r in store.snapshots("s1")] == [2, 1]
        assert store.load("s1", 1) == record(1)


@pytest.mark.parametrize("type_name", ["postgres", "redis"])
def test_a_store_that_could_not_open_works_once_the_server_is_back(make_store, type_name):
    with TcpProxy(*SERVERS[type_name]) as proxy:
        proxy.cut()
        store = make_store(type_name, port=proxy.port, open_it=False)
        with pytest.raises(StoreUnavailable):
            store.open()
        proxy.restore()
        store.save(record(1))  # migrates first where it must
        assert store.load("s1", 1) == record(1)


@pytest.mark.parametrize("type_name", ["postgres", "redis"])
def test_a_store_routed_through_its_proxy_really_loses_its_connection_when_cut(
    make_store, type_name
):
    store = make_store(type_name)
    store.save(record(1))  # straight to the server
    proxy = store.route_through_proxy()
    assert proxy is not None and proxy.target == SERVERS[type_name]
    assert store.route_through_proxy() is proxy  # one proxy for the store's life
    store.save(record(2))
    proxy.cut()
    with pytest.raises(StoreUnavailable, match=f"through 127.0.0.1:{proxy.port}"):
        store.save(record(3))
    proxy.restore()
    store.save(record(3))
    assert [r.seq for r in store.snapshots("s1")] == [3, 2, 1]

    store.close()  # the proxy goes with the store, for good
    proxy.restore()
    assert proxy.closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)


@pytest.mark.parametrize(
    ("type_name", "config"),
    [
        ("memory", {}),
        ("sqlite", {"path": "state.db"}),
        ("redis", {"url": "unix:///run/redis/redis.sock"}),
        ("redis", {"url": "rediss://cache.example:6380/0"}),  # TLS
        ("postgres", {"url": "postgresql://u@/db?host=/run/postgresql"}),  # unix socket
        ("postgres", {"url": "postgresql://u@db.example/db?sslmode=verify-full"}),
    ],
)
def test_no_proxy_where_none_can_stand_in_for_the_server(tmp_path, type_name, config):
    # the state_outage fault then makes every call fail for its window instead
    assert build(type_name, config, tmp_path).route_through_proxy() is None


def test_the_postgres_password_survives_the_detour_through_the_proxy(pg_schema, tmp_path):
    url = pg_url(pg_schema).replace("postgres@", "postgres:s%40cr%3At@")  # trust ignores it
    store = build("postgres", {"url": url}, tmp_path)
    proxy = store.route_through_proxy()
    store.save(record(1))
    assert (store.engine.url.password, store.engine.url.port) == ("s@cr:t", proxy.port)
    assert "s@cr" not in store.describe() and "s%40cr" not in store.describe()
    store.close()


def test_the_redis_url_through_the_proxy_keeps_credentials_db_and_options():
    from arbframe_plugins.state.redis_store import via

    with TcpProxy("cache.example", 6380) as proxy:  # (nothing connects: not reached)
        url = via("redis://app:p%40ss@cache.example:6380/3?socket_timeout=2", proxy)
        assert redis.connection.parse_url(url) == {
            "username": "app",
            "password": "p@ss",
            "host": "127.0.0.1",
            "port": proxy.port,
            "db": 3,
            "socket_timeout": 2.0,
        }
        assert redis.connection.parse_url(via("redis://cache.example", proxy))["port"] == proxy.port


def test_a_locked_sqlite_file_is_unavailable_until_released(make_store, tmp_path):
    store = make_store("sqlite")
    store.save(record(1))
    other = sqlite3.connect(tmp_path / "state" / "state.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    with pytest.raises(StoreUnavailable, match="locked"):
        store.save(record(2))
    other.execute("ROLLBACK")
    other.close()
    store.save(record(2))
    assert [r.seq for r in store.snapshots("s1")] == [2, 1]
