"""The `redis` store's hot keys, its TTL policy, and the keyspace check (`arbframe keyspace`)
against a real Redis."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import redis
from conftest import REDIS_HOST, REDIS_PORT, redis_url
from test_state_stores import build, record

from arbframe import keyspace
from arbframe.testing import TcpProxy

pytestmark = pytest.mark.services

DAY = 86_400
MANIFEST = {
    "trades": [
        {"trade_id": "BTC-1", "symbol": "BTC", "state": "open"},
        {"trade_id": "ETH-1", "symbol": "ETH", "state": "open"},
    ],
    "orders": [{"client_id": "s1-7", "symbol": "BTC", "state": "acknowledged"}],
    "balances": {"binance": {"USDT": "1000.50", "BTC": "0.1"}, "up:bit": {"KRW": "5"}},
    "guards": {"global": {"open": 1}},
    "kpi": {"trades_closed": 3, "pnl": "12.5"},
    "feed": {"ts": 1700000000000000000},
}


@pytest.fixture
def client():
    client = redis.Redis.from_url(redis_url(), decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def store(redis_env, tmp_path):
    store = build("redis", {"url": redis_url(), "env": redis_env}, tmp_path)
    store.open()
    yield store
    store.close()


def hot(client, env: str) -> dict[str, str]:
    """Every hot key of session s1 and its value."""
    names = [n for n in client.scan_iter(match=f"arbframe:{env}:s1:*") if ":snapshot:" not in n]
    return {
        n.removeprefix(f"arbframe:{env}:s1:"): client.get(n) for n in names if ":hotkeys" not in n
    }


def test_the_manifest_is_spread_into_readable_keys(store, client, redis_env):
    store.save(record(4, manifest=MANIFEST))
    assert hot(client, redis_env) == {
        "position:BTC:BTC-1": json.dumps(MANIFEST["trades"][0], sort_keys=True),
        "position:ETH:ETH-1": json.dumps(MANIFEST["trades"][1], sort_keys=True),
        "order:BTC:s1-7": json.dumps(MANIFEST["orders"][0], sort_keys=True),
        "balance:binance:USDT": "1000.50",
        "balance:binance:BTC": "0.1",
        "balance:up%3Abit:KRW": "5",  # a ':' inside a part is encoded, the layout holds
        "guard:_:global": '{"open": 1}',
        "kpi:_:trades_closed": "3",
        "kpi:_:pnl": "12.5",
        "session:_:feed": '{"ts": 1700000000000000000}',
        "session:_:status": "live",
        "session:_:last_seq": "4",
        "session:_:last_ts": str(record(4).ts),
        "session:_:last_taken_at": repr(record(4).taken_at),
        "session:_:last_reason": "periodic",
    }


def test_a_save_replaces_the_previous_hot_keys(store, client, redis_env):
    store.save(record(1, manifest=MANIFEST))
    later = {**MANIFEST, "trades": MANIFEST["trades"][:1], "orders": []}
    store.save(record(2, manifest=later))
    keys = hot(client, redis_env)
    assert "position:ETH:ETH-1" not in keys and "order:BTC:s1-7" not in keys  # closed since
    assert "position:BTC:BTC-1" in keys and keys["session:_:last_seq"] == "2"


def test_snapshots_expire_together_and_hot_keys_only_once_the_session_ended(
    client, redis_env, tmp_path
):
    store = build(
        "redis", {"url": redis_url(), "env": redis_env, "ttl": "2d", "hot_ttl": "1d"}, tmp_path
    )
    store.open()
    for seq in (1, 2):
        store.save(record(seq, manifest=MANIFEST))
    prefix = f"arbframe:{redis_env}:s1"
    snapshot_keys = [f"{prefix}:snapshot:_:{n}" for n in ("1", "2", "index")]
    assert all(2 * DAY - 5 < client.ttl(k) <= 2 * DAY for k in snapshot_keys)
    assert client.ttl(f"{prefix}:position:BTC:BTC-1") == -1  # live: no TTL
    store.save(record(3, manifest=MANIFEST, reason="shutdown"))
    assert client.get(f"{prefix}:session:_:status") == "ended"
    hot_keys = [k for k in client.scan_iter(match=f"{prefix}:*") if ":snapshot:" not in k]
    assert hot_keys and all(DAY - 5 < client.ttl(k) <= DAY for k in hot_keys)
    store.save(record(4, manifest=MANIFEST))  # resumed: live again, TTLs gone
    assert client.ttl(f"{prefix}:position:BTC:BTC-1") == -1
    assert client.get(f"{prefix}:session:_:status") == "live"
    store.close()


def test_a_save_is_one_transaction(store, redis_env, monkeypatch):
    # A reader must never see half a snapshot: every write of a save goes through one
    # MULTI/EXEC pipeline.
    executed = []
    real = redis.client.Pipeline.execute

    def spy(self, *args, **kwargs):
        executed.append((self.transaction, [c[0][0] for c in self.command_stack]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", spy)
    store.save(record(1, manifest=MANIFEST))
    [(transaction, commands)] = executed
    assert transaction is True
    assert {"HSET", "ZADD", "SET", "SADD", "EXPIRE", "DEL"} <= set(commands)


def test_the_store_keys_pass_the_keyspace_check(store, client, redis_env):
    store.save(record(1, manifest=MANIFEST))
    store.save(record(2, manifest=MANIFEST, reason="shutdown"))
    scanned, problems = keyspace.check_keyspace(client, redis_env)
    assert scanned > 10 and problems == []


def test_the_keyspace_check_reports_each_kind_of_violation(client, redis_env, store):
    store.save(record(1, manifest=MANIFEST, reason="shutdown"))
    p = f"arbframe:{redis_env}"
    bad = {
        f"{p}:s1:position:BTC": "has 5 parts, not 6 (arbframe:env:session:domain:symbol:field)",
        f"{p}:s1:wallet:_:x": "unknown domain 'wallet'",
        f"{p}:s1:kpi:BTC:pnl": "domain kpi is not per symbol",
        f"{p}:s1:snapshot:_:latest": "snapshot field 'latest' is neither a seq nor index",
        f"{p}:s2:snapshot:_:9": "has no TTL (snapshot keys must expire)",
        f"{p}:s1:order:BTC:late": "has no TTL (hot keys of an ended session must expire)",
    }
    for name in bad:
        client.set(name, "x")
    client.set(f"{p}:s2:position:BTC:BTC-9", "x")  # live session (no status): no TTL needed
    _, problems = keyspace.check_keyspace(client, redis_env)
    assert {pr.key: pr.problem for pr in problems}.keys() == bad.keys()
    for pr in problems:
        assert pr.problem.startswith(bad[pr.key]), pr


def arbframe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "arbframe", *args], capture_output=True, text=True
    )


def test_the_keyspace_command(client, redis_env, store):
    store.save(record(1, manifest=MANIFEST))
    ok = arbframe("keyspace", "--url", redis_url(), "--env", redis_env, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["problems"] == []
    client.set(f"arbframe:{redis_env}:s1:nonsense", "x")
    bad = arbframe("keyspace", "--url", redis_url(), "--env", redis_env)
    assert bad.returncode == 1
    assert f"arbframe:{redis_env}:s1:nonsense: has 4 parts, not 6" in bad.stdout
    assert bad.stdout.splitlines()[-1].endswith("keys checked, 1 not compliant")


def test_the_keyspace_command_says_when_redis_is_down():
    with TcpProxy(REDIS_HOST, REDIS_PORT) as proxy:
        proxy.cut()
        result = arbframe("keyspace", "--url", redis_url(proxy.port))
    assert result.returncode == 2
    assert result.stderr.startswith("arbframe keyspace: cannot reach Redis:")


def test_key_parts_round_trip_whatever_they_hold():
    name = keyspace.key("paper", "s:1*", "balance", "up bit", "100%")
    assert name.count(":") == 5 and "*" not in name
    assert keyspace.parse(name) == keyspace.KeyParts("paper", "s:1*", "balance", "up bit", "100%")
    assert keyspace.layout_problem(name) is None


def test_the_proxy_refuses_while_cut_and_serves_on_the_same_port_after(redis_env):
    with TcpProxy(REDIS_HOST, REDIS_PORT) as proxy:
        port = proxy.port
        client = redis.Redis(port=port, socket_timeout=1, retry=None)
        assert client.ping()
        proxy.cut()
        with pytest.raises(redis.ConnectionError):
            client.ping()  # the live connection was closed
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)
        proxy.restore()
        assert proxy.port == port and client.ping()
        client.close()
