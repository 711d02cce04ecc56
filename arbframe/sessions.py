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
from arbframe.snapshot import FORMAT_VERSION, FULL_EVERY, History, checksum


class ResumeError(ArbframeError):
    """Resume was asked for and cannot be honoured (no session, only damaged snapshots), or
    a fresh start would overwrite a session's state: exit 2 with the reason."""


@dataclass
class Found:
    """What a resume starts from."""

    snapshot: SnapshotRecord
    pending: list[SnapshotRecord]  # write-ahead ``orders`` records newer than it, in order
    corrupt: list[tuple[str, int]] = field(default_factory=list)  # (store, seq) refused
    chain: list[SnapshotRecord] = field(default_factory=list)  # its full one .. itself


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
        self.history = History()  # what the current chain of snapshots already holds
        self._full_seqs: list[int] = []  # the chains this process started

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

    def chain(self) -> History:
        """The history the next snapshot extends: a new chain every FULL_EVERY snapshots."""
        if self.history.snapshots >= FULL_EVERY:
            self.history = History()
        return self.history

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
                if record.reason != "orders":  # that store's chain has a hole: start anew
                    self.history = History()
                continue
            if store.name in self.down:
                self._up_again(store, record)
            durable |= store.durable
        full = record.manifest.get("chain") == "full"
        if full:
            self._full_seqs.append(record.seq)
        if full and len(self._full_seqs) >= 2:  # keep the previous chain whole: a fallback
            keep = max(self.keep, record.seq - self._full_seqs[-2] + 1)
            for store in targets:
                if store.name not in self.down:
                    try:
                        store.prune(self.session, keep)
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
        """The newest snapshot whose chain (its full snapshot and the deltas since) is whole
        and valid, across the stores, and the write-ahead records after it."""
        listed: dict[int, tuple[SnapshotRecord, list[StateStore]]] = {}  # seq -> (meta, holders)
        for store in self._up():
            try:
                for meta in store.snapshots(self.session):
                    listed.setdefault(meta.seq, (meta, []))[1].append(store)
            except StoreUnavailable as err:
                self._down(store, err)
        if not listed:
            where = ", ".join(s.name for s in self.stores) or "no store"
            down = "; ".join(f"{name} unreachable: {why}" for name, why in self.down.items())
            raise ResumeError(
                f"session {self.session!r} has no snapshot to resume from ({where})"
                + (f": {down}" if down else "")
            )
        self.seq = max(listed)
        loaded: dict[int, SnapshotRecord | None] = {}
        corrupt: list[tuple[str, int]] = []

        def valid(seq: int) -> SnapshotRecord | None:
            """The first copy of ``seq`` whose checksum holds, in any store."""
            if seq not in loaded:
                loaded[seq] = None
                for store in listed[seq][1]:
                    record = self._load(seq, store)
                    if record is not None and _valid(record):
                        loaded[seq] = record
                        break
                    corrupt.append((store.name, seq))
            return loaded[seq]

        snapshots = sorted(
            (s for s, (m, _) in listed.items() if m.reason != "orders"), reverse=True
        )
        for i, seq in enumerate(snapshots):
            chain = self._chain(snapshots[i:], listed, valid)
            if chain is None:
                continue
            pending = [
                valid(s) for s in sorted(listed) if s > seq and listed[s][0].reason == "orders"
            ]
            self.corrupt_found = corrupt
            return Found(chain[-1], [r for r in pending if r is not None], corrupt, chain)
        detail = ", ".join(f"{name} #{seq}" for name, seq in corrupt) or "none"
        raise ResumeError(
            f"session {self.session!r} has no valid snapshot to resume from "
            f"(damaged: {detail}); start it again with --reset"
        )

    @staticmethod
    def _chain(
        newest_first: list[int],
        listed: dict[int, tuple[SnapshotRecord, list[StateStore]]],
        valid: Callable[[int], SnapshotRecord | None],
    ) -> list[SnapshotRecord] | None:
        """newest_first[0] and the snapshots back to its chain's full one, oldest first;
        None when one of them is missing or damaged."""
        chain = []
        for seq in newest_first:
            record = valid(seq)
            if record is None:
                return None
            chain.append(record)
            if listed[seq][0].manifest.get("chain", "full") == "full":
                return chain[::-1]
        return None  # its full snapshot was pruned

    def _load(self, seq: int, store: StateStore) -> SnapshotRecord | None:
        try:
            return store.load(self.session, seq)
        except StoreUnavailable as err:
            self._down(store, err)
            return None

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
        "corrupt_skipped": len({seq for _, seq in state.corrupt_found}),  # snapshots, not copies
    }
