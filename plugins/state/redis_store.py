"""`redis`: hot state in Redis, for dashboards and other tools to read as it changes.

Not durable (``durable = False``): Redis may lose what it holds, so a session that must
survive a crash also needs the `sqlite` or `postgres` store. Each save writes, in one
MULTI/EXEC transaction (a reader never sees half a snapshot), the snapshot itself and the
manifest spread into readable keys; the layout and TTL policy are in
:mod:`arbframe.keyspace`. Which manifest entries become which keys:

- ``trades``: list of open trades (dicts with ``trade_id``, ``symbol``) -> ``position``
- ``orders``: list of open orders (dicts with ``client_id``, ``symbol``) -> ``order``
- ``balances``: ``{venue: {asset: amount}}`` -> ``balance`` (symbol slot = venue)
- ``guards``: ``{guard name: state}`` -> ``guard``;  ``kpi``: ``{name: value}`` -> ``kpi``
- ``feed``: the feed position -> ``session:_:feed``

A save replaces the previous one's hot keys: a trade or order no longer in the manifest
disappears.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import redis

from arbframe import keyspace
from arbframe.components import SnapshotRecord, StateStore, StoreUnavailable
from arbframe.errors import ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.schema import DURATION
from arbframe.stores import REDIS_URL_ENV
from arbframe.tcpproxy import TcpProxy
from arbframe.units import parse_duration

METADATA = ("ts", "taken_at", "reason", "version", "checksum", "manifest")
NS_PER_S = 1_000_000_000


def redis_url_from(config: dict[str, Any]) -> str:
    url = config.get("url") or os.environ.get(REDIS_URL_ENV)
    if not url:
        raise ConfigError(f"needs a url: set url, or the environment variable {REDIS_URL_ENV}")
    try:
        redis.connection.parse_url(url)
    except ValueError as err:
        raise ConfigError(str(err), ("url",) if config.get("url") else ()) from None
    return url


class RedisStore(StateStore):
    type_name = "redis"
    interface_version = 2
    durable = False
    description = "Hot state in Redis: snapshots and readable per-domain keys (not durable)."
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {
                "type": "string",
                "description": "redis://host:port/db (default: $ARBFRAME_REDIS_URL).",
            },
            "env": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.-]+$",
                "description": "The env part of every key (default: the run's mode).",
            },
            "ttl": {
                **DURATION,
                "default": "7d",
                "description": "Snapshots expire this long after the session's last save.",
            },
            "hot_ttl": {
                **DURATION,
                "default": "3d",
                "description": "Hot keys expire this long after the session ends "
                "(a shutdown snapshot); they never expire while it is live.",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.url = redis_url_from(config)
        self.env = config.get("env") or ctx.info.mode
        self.ttl_s = _seconds(config.get("ttl", "7d"), "ttl")
        self.hot_ttl_s = _seconds(config.get("hot_ttl", "3d"), "hot_ttl")
        self.client: redis.Redis | None = None
        self.proxy: TcpProxy | None = None

    def describe(self) -> str:
        where = redis.connection.parse_url(self.url)
        via = f" through {self.proxy.host}:{self.proxy.port}" if self.proxy else ""
        return f"{self.name} (redis {where.get('host', '?')}:{where.get('port', 6379)}{via})"

    def route_through_proxy(self) -> TcpProxy | None:
        """Reconnect through a local TcpProxy in front of the server (for the `state_outage`
        fault); None for a unix socket, or TLS (whose certificate names the server, not the
        proxy)."""
        if self.proxy is None:
            where = redis.connection.parse_url(self.url)
            if "connection_class" in where:  # unix:// or rediss://
                return None
            self.proxy = TcpProxy(where.get("host", "localhost"), where.get("port", 6379))
            self._disconnect()  # the next call connects through the proxy
        return self.proxy

    def key(self, session: str, domain: str, symbol: str, field: str) -> str:
        return keyspace.key(self.env, session, domain, symbol, field)

    def _snapshot_key(self, session: str, seq: int | str) -> str:
        return self.key(session, keyspace.SNAPSHOT, keyspace.NO_SYMBOL, str(seq))

    def _index_key(self, session: str) -> str:
        return self.key(session, keyspace.SNAPSHOT, keyspace.NO_SYMBOL, "index")

    def _hotkeys_key(self, session: str) -> str:
        return self.key(session, "session", keyspace.NO_SYMBOL, "hotkeys")

    @contextmanager
    def _redis(self) -> Iterator[redis.Redis]:
        try:
            if self.client is None:
                url = self.url if self.proxy is None else via(self.url, self.proxy)
                self.client = keyspace.connect(url)
            yield self.client
        except (redis.ConnectionError, redis.TimeoutError) as err:
            raise StoreUnavailable(f"{self.describe()}: {err}") from err

    # ---- the contract -----------------------------------------------------------------------

    def open(self) -> None:
        with self._redis() as client:
            client.ping()

    def save(self, record: SnapshotRecord) -> None:
        session, snapshot = record.session, self._snapshot_key(record.session, record.seq)
        hot = self._hot_values(record)
        with self._redis() as client:
            held = [int(seq) for seq in client.zrange(self._index_key(session), 0, -1)]
            stale = {_text(k) for k in client.smembers(self._hotkeys_key(session))} - set(hot)
            pipe = client.pipeline(transaction=True)
            pipe.delete(snapshot, self._hotkeys_key(session), *stale)
            pipe.hset(snapshot, mapping=_fields(record))
            pipe.zadd(self._index_key(session), {str(record.seq): record.seq})
            for name, value in hot.items():
                pipe.set(name, value)  # SET clears a TTL: the session is live again
            pipe.sadd(self._hotkeys_key(session), *hot)
            # Snapshots expire together, ttl after the last save; hot keys once it ended.
            for seq in {*held, record.seq}:
                pipe.expire(self._snapshot_key(session, seq), self.ttl_s)
            pipe.expire(self._index_key(session), self.ttl_s)
            if record.reason == "shutdown":
                for name in (*hot, self._hotkeys_key(session)):
                    pipe.expire(name, self.hot_ttl_s)
            pipe.execute()

    def _hot_values(self, record: SnapshotRecord) -> dict[str, str]:
        """The hot keys of ``record`` and their text values."""
        session, manifest = record.session, record.manifest
        hot: dict[str, str] = {}

        def put(domain: str, symbol: str, field: str, value: Any) -> None:
            hot[self.key(session, domain, symbol or keyspace.NO_SYMBOL, field)] = _value(value)

        for trade in _dicts(manifest.get("trades")):
            put("position", trade.get("symbol", ""), str(trade.get("trade_id")), trade)
        for order in _dicts(manifest.get("orders")):
            put("order", order.get("symbol", ""), str(order.get("client_id")), order)
        for venue, assets in (manifest.get("balances") or {}).items():
            for asset, amount in (assets or {}).items():
                put("balance", venue, asset, amount)
        for guard, state in (manifest.get("guards") or {}).items():
            put("guard", "", guard, state)
        for name, value in (manifest.get("kpi") or {}).items():
            put("kpi", "", name, value)
        status = keyspace.ENDED if record.reason == "shutdown" else keyspace.LIVE
        put("session", "", "status", status)
        put("session", "", "last_seq", record.seq)
        put("session", "", "last_ts", record.ts)
        put("session", "", "last_taken_at", repr(record.taken_at))
        put("session", "", "last_reason", record.reason)
        if "feed" in manifest:
            put("session", "", "feed", manifest["feed"])
        return hot

    def load(self, session: str, seq: int) -> SnapshotRecord | None:
        with self._redis() as client:
            fields = client.hgetall(self._snapshot_key(session, seq))
        if not fields:
            return None
        return _record(session, seq, {_text(k): v for k, v in fields.items()})

    def snapshots(self, session: str) -> list[SnapshotRecord]:
        with self._redis() as client:
            seqs = [int(s) for s in client.zrevrange(self._index_key(session), 0, -1)]
            pipe = client.pipeline(transaction=False)
            for seq in seqs:
                pipe.hmget(self._snapshot_key(session, seq), METADATA)
            rows = pipe.execute()
        return [
            _record(session, seq, {**dict(zip(METADATA, row, strict=True)), "payload": b""})
            for seq, row in zip(seqs, rows, strict=True)
            if row[0] is not None  # expired since the index was read
        ]

    def sessions(self) -> list[dict[str, Any]]:
        found = []
        with self._redis() as client:
            for name in client.scan_iter(match=keyspace.pattern(self.env, None, "snapshot")):
                parts = keyspace.parse(_text(name))
                if parts is None or parts.field != "index":
                    continue
                newest = client.zrevrange(_text(name), 0, 0)
                if not newest:
                    continue
                seq = int(newest[0])
                ts, taken_at = client.hmget(
                    self._snapshot_key(parts.session, seq), "ts", "taken_at"
                )
                if ts is None:
                    continue
                found.append(
                    {
                        "session": parts.session,
                        "snapshots": client.zcard(_text(name)),
                        "last_seq": seq,
                        "last_ts": int(ts),
                        "last_taken_at": float(taken_at),
                    }
                )
        return sorted(found, key=lambda s: s["session"])

    def reset(self, session: str) -> int:
        with self._redis() as client:
            names = list(client.scan_iter(match=keyspace.pattern(self.env, session)))
            snapshots = 0
            for name in names:
                parts = keyspace.parse(_text(name))
                snapshots += bool(parts and parts.domain == "snapshot" and parts.field.isdigit())
            if names:
                client.delete(*names)
        return snapshots

    def prune(self, session: str, keep: int) -> None:
        with self._redis() as client:
            old = [int(s) for s in client.zrange(self._index_key(session), 0, -keep - 1)]
            if old:
                pipe = client.pipeline(transaction=True)
                pipe.zrem(self._index_key(session), *map(str, old))
                pipe.delete(*(self._snapshot_key(session, seq) for seq in old))
                pipe.execute()

    def close(self) -> None:
        self._disconnect()
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None

    def _disconnect(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def via(url: str, proxy: TcpProxy) -> str:
    """``url`` pointed at ``proxy``: user, password (as written), db and options kept."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    address = f"{proxy.host}:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{address}" if credentials else address))


def _fields(record: SnapshotRecord) -> dict[str, Any]:
    return {
        "payload": record.payload,
        "ts": record.ts,
        "taken_at": repr(record.taken_at),  # repr: the float back exactly
        "reason": record.reason,
        "version": record.version,
        "checksum": record.checksum,
        "manifest": json.dumps(record.manifest),
    }


def _record(session: str, seq: int, fields: dict[str, Any]) -> SnapshotRecord:
    return SnapshotRecord(
        session=session,
        seq=seq,
        ts=int(fields["ts"]),
        taken_at=float(fields["taken_at"]),
        reason=_text(fields["reason"]),
        version=int(fields["version"]),
        checksum=_text(fields["checksum"]),
        payload=bytes(fields["payload"]),
        manifest=json.loads(fields["manifest"]),
    )


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [item for item in items or () if isinstance(item, dict)]


def _value(value: Any) -> str:
    """Readable text: strings and numbers as written, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, default=str, sort_keys=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seconds(duration: Any, key: str) -> int:
    seconds = parse_duration(duration) // NS_PER_S
    if seconds < 1:
        raise ConfigError("must be at least 1s", (key,))
    return seconds


@hookimpl
def arbframe_register_state_stores(register: Register) -> None:
    register(RedisStore)
