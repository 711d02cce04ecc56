"""`memory`: snapshots kept in the process (no file, no server).

Every memory store of a process shares one space, so a run resumes what an earlier run of
the same process left: enough for drills that kill and resume the engine inside one process
(the `engine_kill` fault) and for tests; gone when the process ends, so it cannot resume a
crashed session. It is what a run uses when its scenario configures no `state:` store.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from arbframe.components import SnapshotRecord, StateStore
from arbframe.hookspecs import hookimpl


class MemoryStore(StateStore):
    type_name = "memory"
    interface_version = 2
    durable = False
    description = "Snapshots in process memory: in-process drills and tests only."

    records: dict[str, dict[int, SnapshotRecord]] = {}  # the process's one space

    def save(self, record: SnapshotRecord) -> None:
        self.records.setdefault(record.session, {})[record.seq] = record

    def load(self, session: str, seq: int) -> SnapshotRecord | None:
        return self.records.get(session, {}).get(seq)

    def snapshots(self, session: str) -> list[SnapshotRecord]:
        held = self.records.get(session, {})
        return [replace(held[seq], payload=b"") for seq in sorted(held, reverse=True)]

    def sessions(self) -> list[dict[str, Any]]:
        out = []
        for session, held in self.records.items():
            if held:
                last = held[max(held)]
                out.append(
                    {
                        "session": session,
                        "snapshots": len(held),
                        "last_seq": last.seq,
                        "last_ts": last.ts,
                        "last_taken_at": last.taken_at,
                    }
                )
        return out

    def reset(self, session: str) -> int:
        return len(self.records.pop(session, {}))

    def prune(self, session: str, keep: int) -> None:
        held = self.records.get(session, {})
        for seq in sorted(held)[:-keep]:
            del held[seq]


@hookimpl
def arbframe_register_state_stores(register: Any) -> None:
    register(MemoryStore)
