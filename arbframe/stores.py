"""A scenario's state stores, built and opened outside a run (the operations commands) or by
one, and the check that tells a valid snapshot from a damaged one.

Which stores: the scenario's ``state:`` blocks. Without any, the environment decides:
``ARBFRAME_DATABASE_URL`` adds ``postgres``, ``ARBFRAME_REDIS_URL`` adds ``redis``; when
that gives no durable store, the caller's ``default`` blocks are added (the operations
commands default to the embedded ``sqlite`` store; the runner decides its own).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arbframe.components import CONTEXTS, RunInfo, SnapshotRecord, StateStore, StoreUnavailable
from arbframe.errors import ArbframeError, ConfigError
from arbframe.plugins import Registry
from arbframe.scenario import LoadedScenario

DATABASE_URL_ENV = "ARBFRAME_DATABASE_URL"
"""The PostgreSQL URL of the `postgres` store and sink when their block has no ``url``."""
REDIS_URL_ENV = "ARBFRAME_REDIS_URL"
"""The Redis URL of the `redis` store (and `arbframe keyspace`) without a ``url``."""
STATE_DIR_ENV = "ARBFRAME_STATE_DIR"
"""Where the `sqlite` store keeps ``state.db`` without a ``path`` (default ``.arbframe``)."""
DEFAULT_SQLITE: tuple[dict[str, Any], ...] = ({"type": "sqlite"},)
"""The embedded store at its default path: what the operations commands use by default."""


def run_info(loaded: LoadedScenario | None) -> RunInfo:
    """The RunInfo a run of ``loaded`` has (its session, mode...), seed not overridden."""
    data = loaded.data if loaded is not None else {}
    name = data.get("name", "arbframe")
    return RunInfo(
        name=name,
        seed=data.get("seed", 0),
        mode=data.get("mode", "paper"),
        clock=data.get("clock", "simulated"),
        report_currency=data.get("report_currency", "USDT"),
        session=data.get("session", name),
    )


def store_blocks(
    loaded: LoadedScenario | None, default: tuple[dict[str, Any], ...] = ()
) -> list[tuple[tuple[str | int, ...] | None, dict[str, Any]]]:
    """(where the block sits in the scenario, or None, block) for each store to build."""
    configured = loaded.data.get("state", []) if loaded is not None else []
    if configured:
        return [(("state", i), block) for i, block in enumerate(configured)]
    blocks: list[dict[str, Any]] = []
    if os.environ.get(REDIS_URL_ENV):
        blocks.append({"type": "redis"})
    if os.environ.get(DATABASE_URL_ENV):
        blocks.append({"type": "postgres"})
    if not any(b["type"] != "redis" for b in blocks):  # nothing durable yet
        blocks += default
    return [(None, block) for block in blocks]


def build_stores(
    loaded: LoadedScenario | None,
    registry: Registry,
    default: tuple[dict[str, Any], ...] = (),
) -> list[StateStore]:
    """Construct the stores (config checked, nothing opened): what ``validate`` may call."""
    run = run_info(loaded)
    base = loaded.path.parent if loaded is not None else Path.cwd()

    def no_position(path: tuple[str | int, ...], message: str) -> ArbframeError:
        return ArbframeError(message)

    ctx = CONTEXTS["state"](
        info=run,
        resolve_path=lambda path: base / Path(path),
        error=loaded.error if loaded is not None else no_position,  # type: ignore[arg-type]
    )
    stores = []
    for path, block in store_blocks(loaded, default):
        config = {k: v for k, v in block.items() if k != "type"}
        name = f"{path[0]}[{path[1]}]" if path else block["type"]
        info = registry.types("state").get(block["type"])
        if info is None:  # a scenario's types were checked at load: this one is from the env
            known = ", ".join(sorted(registry.types("state"))) or "none registered"
            raise ArbframeError(f"state type {block['type']} is not installed (known: {known})")
        try:
            store: Any = info.cls(config, name=name, ctx=ctx)
        except ConfigError as err:
            if path is None:  # from the environment, not the scenario
                raise ArbframeError(f"state store {name}: {err.message}") from None
            raise ctx.error((*path, *err.key), err.message) from None
        store.scenario_path = path or ()
        stores.append(store)
    return stores


def open_stores(
    loaded: LoadedScenario | None,
    registry: Registry,
    default: tuple[dict[str, Any], ...] = (),
    on_unavailable: Callable[[StateStore, StoreUnavailable], None] | None = None,
) -> list[StateStore]:
    """Build the stores of ``loaded`` (see the module docstring) and open each.

    A store that cannot be reached stays in the list: it retries its connection on its
    next use, so it works again once the server is back. ``on_unavailable(store, error)``
    hears about it (say so, alert...)."""
    stores = build_stores(loaded, registry, default)
    for store in stores:
        try:
            store.open()
        except StoreUnavailable as err:
            if on_unavailable is not None:
                on_unavailable(store, err)
    return stores


def describe(store: StateStore) -> str:
    """``name (type where)``, for people."""
    described = getattr(store, "describe", None)
    return described() if callable(described) else f"{store.name} ({store.type_name})"


# ---- valid snapshots --------------------------------------------------------------------


def payload_matches(record: SnapshotRecord) -> bool:
    """The payload is the one the kernel wrote: its SHA-256 is the recorded checksum."""
    return hashlib.sha256(record.payload).hexdigest() == record.checksum


@dataclass
class SessionCheck:
    """A session as one store holds it: the newest snapshot whose payload matches its
    checksum (what a resume would use), and the seqs of those that do not."""

    session: str
    snapshots: int
    last_seq: int | None
    valid: SnapshotRecord | None = None
    corrupt: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        valid = self.valid
        return {
            "session": self.session,
            "snapshots": self.snapshots,
            "last_seq": self.last_seq,
            "valid_seq": valid.seq if valid else None,
            "valid_ts": valid.ts if valid else None,
            "valid_taken_at": valid.taken_at if valid else None,
            "valid_reason": valid.reason if valid else None,
            "corrupt": self.corrupt,
        }


def check_session(store: StateStore, session: str) -> SessionCheck:
    """Load every snapshot of ``session``, newest first, and check each payload."""
    held = store.snapshots(session)
    check = SessionCheck(session, len(held), held[0].seq if held else None)
    for meta in held:
        record = store.load(session, meta.seq)
        if record is None:  # pruned or expired since the listing
            continue
        if not payload_matches(record):
            check.corrupt.append(record.seq)
        elif check.valid is None:
            check.valid = record
    return check
