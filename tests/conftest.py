"""Shared helpers: small two-venue scenarios built from scripted books, and the real
services (PostgreSQL, Redis) that store tests use."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakevenues.fixture import fake_venues  # noqa: F401 (a fixture for the ccxt tests)


def two_venue_scenario(events: list[dict[str, Any]], **strategy: Any) -> dict[str, Any]:
    """Venues `a` (taker 10 bp) and `b` (taker 20 bp), both in USDT, 10 ms latency."""
    market = {"default": {"price_tick": "0.01", "amount_step": "0.001"}}
    return {
        "name": "hand_checked",
        "duration": "1h",
        "venues": {
            "a": {
                "type": "paper",
                "quote": "USDT",
                "fees": {"taker_bps": 10},
                "latency": "10ms",
                "markets": market,
            },
            "b": {
                "type": "paper",
                "quote": "USDT",
                "fees": {"taker_bps": 20},
                "latency": "10ms",
                "markets": market,
            },
        },
        "capital": {"a": {"USDT": 10000, "BTC": 1}, "b": {"USDT": 10000, "BTC": 1}},
        "feeds": [{"type": "scripted", "size": 10, "events": copy.deepcopy(events)}],
        "strategy": {
            "type": "spread_arb",
            "entry_bps": 10,
            "exit_bps": 5,
            "size": {"base": 0.5},
            **strategy,
        },
    }


def book(at: str, venue: str, bid: float, ask: float, **extra: Any) -> dict[str, Any]:
    return {"at": at, "venue": venue, "symbol": "BTC", "bid": bid, "ask": ask, **extra}


@pytest.fixture
def scenario() -> Any:
    return two_venue_scenario


# ---- real services (PostgreSQL, Redis) ------------------------------------------------------

REQUIRE_SERVICES = "ARBFRAME_REQUIRE_SERVICES"
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def require_service(name: str, probe: Callable[[], object]) -> None:
    """Skip the test when ``probe()`` cannot reach ``name``; fail it instead when
    ``ARBFRAME_REQUIRE_SERVICES=1`` (CI), so a service that is down never passes unnoticed."""
    try:
        probe()
    except Exception as err:  # whatever the client raises, the service is not usable
        message = f"{name} is not reachable: {type(err).__name__}: {err}"
        if os.environ.get(REQUIRE_SERVICES) == "1":
            pytest.fail(f"{message} ({REQUIRE_SERVICES}=1: service tests must not skip)")
        pytest.skip(message)


def pg_url(schema: str, port: int = PG_PORT) -> str:
    """The test database, with ``schema`` first on the search path: each test has its own
    tables and leaves nothing behind."""
    return (
        f"postgresql+psycopg://postgres@{PG_HOST}:{port}/test"
        f"?options=-csearch_path%3D{schema}&connect_timeout=2"
    )


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test (dropped after it); see ``pg_url``."""
    import psycopg

    conninfo = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test connect_timeout=2"
    require_service("PostgreSQL", lambda: psycopg.connect(conninfo).close())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")


def redis_url(port: int = REDIS_PORT) -> str:
    return f"redis://{REDIS_HOST}:{port}/0"


@pytest.fixture
def redis_env() -> Iterator[str]:
    """A key env of this test's own (``arbframe:<env>:...``), deleted after it."""
    import redis

    client = redis.Redis.from_url(redis_url(), socket_connect_timeout=1, socket_timeout=1)
    require_service("Redis", client.ping)
    env = f"t-{uuid.uuid4().hex[:12]}"
    yield env
    names = list(client.scan_iter(match=f"arbframe:{env}:*"))
    if names:
        client.delete(*names)
    client.close()
