"""The Redis key layout shared by the `redis` state store and the tools that read it.

Every key is ``arbframe:{env}:{session}:{domain}:{symbol}:{field}``: six parts, ``_`` in
the symbol slot when the value is not per symbol. Parts are percent-encoded where they would
break the layout (``:``, ``%``, glob characters, spaces), so they split back unambiguously.

Domains and their keys (values are text: JSON for records, decimal text for amounts):

========== ======================= ============ =================================================
domain     symbol slot             field        value
========== ======================= ============ =================================================
snapshot   ``_``                   seq, index   a hash per snapshot (payload and metadata); the
                                                ``index`` sorted set of the seqs held
position   the trade's symbol      trade id     an open trade (JSON)
order      the order's symbol      client id    an open order (JSON)
balance    the venue               asset        the balance (decimal text)
guard      ``_``                   guard name   the guard's state (JSON)
kpi        ``_``                   KPI name     its value
session    ``_``                   status, ...  ``status`` (``live`` / ``ended``), ``last_seq``,
                                                ``last_ts``, ``last_taken_at``, ``last_reason``,
                                                ``feed``, ``hotkeys`` (the set of hot keys)
========== ======================= ============ =================================================

TTL policy, which :func:`check_keyspace` enforces: snapshot keys always carry a TTL (they
expire together, ``ttl`` after the session's last save); hot keys (every other domain) have
none while the session is live and get one (``hot_ttl``) once it ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

TIMEOUT_S = 1.0  # connect and per command: an outage costs a caller about a second
PREFIX = "arbframe"
NO_SYMBOL = "_"
SNAPSHOT = "snapshot"
DOMAINS = ("snapshot", "position", "order", "balance", "guard", "kpi", "session")
HOT_DOMAINS = tuple(d for d in DOMAINS if d != SNAPSHOT)
UNSYMBOLED = ("snapshot", "guard", "kpi", "session")
SESSION_FIELDS = (
    "status",
    "last_seq",
    "last_ts",
    "last_taken_at",
    "last_reason",
    "feed",
    "hotkeys",
)
LIVE, ENDED = "live", "ended"
_SAFE = "!#$&'()+,-./;<=>@^_`{|}~"  # kept as written: everything else is percent-encoded


def connect(url: str) -> redis.Redis:
    """A client that fails fast: 1 s timeouts, one immediate retry (a pooled connection
    that died in an outage is replaced on the retry)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def part(text: str) -> str:
    """One key part, encoded so it holds no ``:`` and no glob character."""
    return quote(text, safe=_SAFE)


def key(env: str, session: str, domain: str, symbol: str, field: str) -> str:
    return ":".join([PREFIX, *map(part, (env, session, domain, symbol, field))])


def pattern(env: str, session: str | None = None, domain: str | None = None) -> str:
    """A SCAN pattern for the keys of ``env`` (and a session, and a domain)."""
    parts = [PREFIX, part(env), part(session) if session else "*"]
    parts += [part(domain), "*", "*"] if domain else ["*"]
    return ":".join(parts)


@dataclass(frozen=True)
class KeyParts:
    env: str
    session: str
    domain: str
    symbol: str
    field: str


def parse(name: str) -> KeyParts | None:
    """The decoded parts of a well-formed key, or None."""
    parts = name.split(":")
    if len(parts) != 6 or parts[0] != PREFIX or not all(parts):
        return None
    return KeyParts(*map(unquote, parts[1:]))


@dataclass(frozen=True)
class KeyProblem:
    key: str
    problem: str


def layout_problem(name: str) -> str | None:
    """Why ``name`` does not follow the layout, or None (TTLs aside)."""
    parts = name.split(":")
    if len(parts) != 6:
        return f"has {len(parts)} parts, not 6 (arbframe:env:session:domain:symbol:field)"
    if not all(parts):
        return "has an empty part"
    if parts[0] != PREFIX:
        return f"does not start with {PREFIX}:"
    if any(part(unquote(p)) != p for p in parts[1:]):
        return "has a part that is not percent-encoded the way arbframe writes it"
    found = parse(name)
    assert found is not None
    if found.domain not in DOMAINS:
        return f"unknown domain {found.domain!r} (known: {', '.join(DOMAINS)})"
    if found.domain in UNSYMBOLED and found.symbol != NO_SYMBOL:
        return f"domain {found.domain} is not per symbol: its symbol part must be {NO_SYMBOL}"
    if found.domain == SNAPSHOT and not (found.field == "index" or found.field.isdigit()):
        return f"snapshot field {found.field!r} is neither a seq nor index"
    if found.domain == "session" and found.field not in SESSION_FIELDS:
        return f"unknown session field {found.field!r}"
    return None


def check_keyspace(
    client: Any, env: str | None = None, batch: int = 500
) -> tuple[int, list[KeyProblem]]:
    """Scan ``arbframe:*`` (or one env's keys) and report keys that break the layout or the
    TTL policy. Returns (keys scanned, problems). ``client``: a redis-py client."""
    match = pattern(env) if env else f"{PREFIX}:*"
    names = sorted(_text(k) for k in client.scan_iter(match=match, count=1000))
    problems: list[KeyProblem] = []
    ttls = _each(client, names, batch, lambda pipe, name: pipe.ttl(name))
    sessions = sorted(
        {(p.env, p.session) for p in map(parse, names) if p is not None and p.env and p.session}
    )
    statuses = dict(
        zip(
            sessions,
            _each(
                client, sessions, batch, lambda pipe, s: pipe.get(key(*s, "session", "_", "status"))
            ),
            strict=True,
        )
    )
    for name, ttl in zip(names, ttls, strict=True):
        problem = layout_problem(name)
        if problem is None:
            found = parse(name)
            assert found is not None
            ended = _text(statuses.get((found.env, found.session)) or "") == ENDED
            if ttl == -1 and (found.domain == SNAPSHOT or ended):
                why = (
                    "snapshot keys" if found.domain == SNAPSHOT else "hot keys of an ended session"
                )
                problem = f"has no TTL ({why} must expire)"
        if problem is not None:
            problems.append(KeyProblem(name, problem))
    return len(names), problems


def _each(client: Any, items: list[Any], batch: int, call: Any) -> Iterable[Any]:
    """``call(pipe, item)`` for every item, pipelined in batches; the answers in order."""
    answers: list[Any] = []
    for start in range(0, len(items), batch):
        pipe = client.pipeline(transaction=False)
        for item in items[start : start + batch]:
            call(pipe, item)
        answers += pipe.execute()
    return answers


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
