"""Sessions: when snapshots are taken, where they go, and which one a resume uses.

:class:`SessionState` writes every snapshot to each configured store. A store that cannot
be reached is reported (a ``state_store`` fault: detected, then recovered) and retried at
the next snapshot, when it also catches up with the latest state; trading carries on as
long as one store took the snapshot. Snapshots are taken between instants: periodically
(``snapshots.every`` of scenario time), after an instant in which orders were sent or a
trade opened or closed (``on_trade``), and at shutdown. Before orders leave, a small
write-ahead record of them is written (see arbframe.snapshot).

Resume takes the newest snapshot whose checksum holds, across the stores; a damaged one is
reported and the one before it used. Write-ahead records newer than it come along. Asked
to resume a session with no usable snapshot, the run refuses: it never silently starts
empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arbframe.components import SnapshotRecord, StateStore, StoreUnavailable
from arbframe.errors import ArbframeError
from arbframe.snapshot import FORMAT_VERSION, checksum


class ResumeError(ArbframeError):
    """Resume was asked for and cannot be honoured (no session, only damaged snapshots), or
    a fresh start would overwrite a session's state: exit 2 with the reason."""


@dataclass
class Found:
    """What a resume starts from."""

    snapshot: SnapshotRecord
    pending: list[SnapshotRecord]  # write-ahead ``orders`` records newer than it, in order
    corrupt: list[tuple[str, int]] = field(default_factory=list)  # (store, seq) refused


class SessionState:
    def __init__(
        self,
        session: str,
        stores: list[StateStore],
        every_ns: int,
        on_trade: bool,
        keep: int,
        events: Callable[..., None],
    ) -> None:
        self.session = session
        self.stores = stores
        self.every_ns = every_ns
        self.on_trade = on_trade
        self.keep = keep
        self._events = events  # events(kind, store=..., **detail): outage and recovery
        self.seq = 0
        self.dirty = False
        self.last_ts: int | None = None
        self.down: dict[str, str] = {}  # store name -> why, while unreachable
        self.taken = 0
        self.failed = 0  # snapshots no store took
        self.corrupt_found: list[tuple[str, int]] = []
        self.make: Callable[[int, str], SnapshotRecord] | None = None

    # ---- opening ----------------------------------------------------------------------------

    def open(self) -> None:
        for store in self.stores:
            try:
                store.open()
            except StoreUnavailable as err:
                self._down(store, err)

    def start_fresh(self) -> None:
        """A clean start (``--reset``, or a new session): forget what the stores hold."""
        for store in self._up():
            try:
                store.reset(self.session)
            except StoreUnavailable as err:
                self._down(store, err)

    def held(self) -> int:
        """The highest snapshot seq any reachable store holds for the session (0: none)."""
        best = 0
        for store in self._up():
            try:
                listed = store.snapshots(self.session)
            except StoreUnavailable as err:
                self._down(store, err)
                continue
            if listed:
                best = max(best, listed[0].seq)
        return best

    # ---- taking -------------------------------------------------------------------------------

    def due(self, now: int) -> str | None:
        """Why a snapshot is due between instants now, or None."""
        if self.dirty and self.on_trade:
            return "trade"
        if self.last_ts is None or now - self.last_ts >= self.every_ns:
            return "periodic"
        return None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def save(self, record: SnapshotRecord) -> bool:
        """Write ``record`` to every store; True when at least one durable one took it."""
        durable = False
        targets = self.stores
        if record.reason == "orders" and any(s.durable for s in self.stores):
            targets = [s for s in self.stores if s.durable]  # hot state shows snapshots only
        for store in targets:
            try:
                store.save(record)
            except StoreUnavailable as err:
                self._down(store, err)
                continue
            if store.name in self.down:
                self._up_again(store, record)
            durable |= store.durable
            if record.reason != "orders":
                try:
                    store.prune(self.session, self.keep)
                except StoreUnavailable as err:
                    self._down(store, err)
        if record.reason != "orders":
            self.last_ts, self.dirty = record.ts, False
            if durable or any(s.name not in self.down for s in self.stores):
                self.taken += 1
            else:
                self.failed += 1
        return durable

    def _down(self, store: StateStore, err: Exception) -> None:
        if store.name not in self.down:
            self.down[store.name] = str(err)
            self._events("detected", store=store.name, why=str(err))

    def _up_again(self, store: StateStore, record: SnapshotRecord) -> None:
        del self.down[store.name]
        self._events("recovered", store=store.name, seq=record.seq)

    def _up(self) -> list[StateStore]:
        return [s for s in self.stores if s.name not in self.down]

    # ---- resuming -----------------------------------------------------------------------------

    def find(self) -> Found:
        """The newest valid snapshot across the stores, and the write-ahead records after it."""
        candidates: list[tuple[int, int, StateStore]] = []  # (seq, store order, store)
        for order, store in enumerate(self._up()):
            try:
                listed = store.snapshots(self.session)
            except StoreUnavailable as err:
                self._down(store, err)
                continue
            candidates += [(r.seq, -order, store) for r in listed]
        if not candidates:
            where = ", ".join(s.name for s in self.stores) or "no store"
            raise ResumeError(f"session {self.session!r} has no snapshot to resume from ({where})")
        candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
        pending: list[SnapshotRecord] = []
        seen: set[int] = set()
        corrupt: list[tuple[str, int]] = []
        for seq, _, store in candidates:
            if seq in seen:
                continue
            record = store.load(self.session, seq)
            if record is None or not _valid(record):
                corrupt.append((store.name, seq))
                continue
            seen.add(seq)
            if record.reason == "orders":
                pending.append(record)
                continue
            self.seq = max(c[0] for c in candidates)
            self.corrupt_found = corrupt
            pending.reverse()
            return Found(record, pending, corrupt)
        detail = ", ".join(f"{name} #{seq}" for name, seq in corrupt) or "none"
        raise ResumeError(
            f"session {self.session!r} has no valid snapshot to resume from "
            f"(damaged: {detail}); start it again with --reset"
        )

    def close(self) -> None:
        for store in self.stores:
            with contextlib.suppress(StoreUnavailable):
                store.close()


def _valid(record: SnapshotRecord) -> bool:
    return record.version == FORMAT_VERSION and checksum(record.payload) == record.checksum


def summary(state: SessionState | None) -> dict[str, Any]:
    if state is None:
        return {}
    return {
        "session": state.session,
        "stores": [s.name for s in state.stores],
        "taken": state.taken,
        "failed": state.failed,
        "last_seq": state.seq,
        "stores_down": sorted(state.down),
        "corrupt_skipped": len(state.corrupt_found),
    }
