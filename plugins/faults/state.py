"""State faults: a state store out of reach, and a damaged snapshot.

* `state_outage`: the store named `store` (or the first non-durable one, `hot`) cannot be
  reached from `at` for `duration`. A store that can route through a proxy (`redis`,
  `postgres`) really loses its connection: the fault puts a local TCP proxy between the
  store and its server and cuts it; other stores fail every call for the window. The
  kernel notices at its next snapshot (detected), keeps trading on the other stores, and
  catches the store up once it answers again (recovered).
* `snapshot_corruption`: at `at`, the newest full snapshot in every store is damaged
  (bytes of its payload flipped; its checksum no longer matches) and, with `kill: true`
  (the default), the engine is killed at once, so its revival must notice the damage and
  resume from the snapshot before (detected at the revival, recovered when the venues
  have answered).
"""

from __future__ import annotations

from typing import Any

from arbframe.components import Fault, StateStore, StoreUnavailable
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.schema import DURATION
from arbframe.units import parse_duration

_CALLS = ("save", "load", "snapshots", "sessions", "reset", "prune")


class StateOutage(Fault):
    type_name = "state_outage"
    interface_version = 2
    description = "A state store out of reach for a while (a real cut for network stores)."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["at", "duration"],
        "properties": {
            "at": {**DURATION, "description": "When, after the run's first event."},
            "duration": {**DURATION, "description": "How long the store stays unreachable."},
            "store": {
                "type": "string",
                "default": "hot",
                "description": "The store's name (its `name:`, else its type), or `hot`: "
                "the first store that is not durable (else the first store).",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.at = parse_duration(config["at"])
        self.duration = parse_duration(config["duration"])
        self.target = config.get("store", "hot")
        self.store_name: str | None = None
        """The store cut (``hot`` resolved): the kernel notes its outage on this fault."""
        self.down = False

    def arm(self) -> None:
        self._install()

    def on_start(self, ts: int) -> None:
        clock = self.ctx.clock
        clock.call_at(ts + self.at, self.cut)
        clock.call_at(ts + self.at + self.duration, self.restore)

    def _install(self) -> None:
        store = self._store()
        if getattr(self, "_on", None) is store:
            return
        self._on, self.store_name = store, store.name
        proxy = getattr(store, "route_through_proxy", None)
        self.proxy = proxy() if proxy is not None else None
        if self.proxy is None:  # no network to cut: every call fails for the window
            for call in _CALLS:
                setattr(store, call, self._failing(getattr(store, call)))
        elif self.down:
            self.proxy.cut()

    # A revived engine has new store objects: the drill goes on with them.
    def snapshot_state(self) -> dict[str, Any]:
        return {"down": self.down}  # (not the store or its proxy: they belong to a process)

    def restore_state(self, state: dict[str, Any]) -> None:
        self.down = state["down"]
        self._install()

    def _store(self) -> StateStore:
        stores = self.ctx.stores()
        for store in stores:
            if store.name == self.target or (self.target == "hot" and not store.durable):
                return store
        if self.target == "hot" and stores:  # no hot store: the one there is
            return stores[0]
        names = ", ".join(s.name for s in stores) or "none"
        raise ConfigError(f"no state store {self.target!r} to cut (stores: {names})", ("store",))

    def _failing(self, call: Any) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailable(f"{self.target}: unreachable (state_outage drill)")
            return call(*args, **kwargs)

        return guarded

    def cut(self) -> None:
        self.down = True
        if self.proxy is not None:
            self.proxy.cut()
        self.ctx.fired(self.type_name, store=self.target, phase="cut")

    def restore(self) -> None:
        self.down = False
        if self.proxy is not None:
            self.proxy.restore()
        self.ctx.fired(self.type_name, store=self.target, phase="restored")


class SnapshotCorruption(Fault):
    type_name = "snapshot_corruption"
    interface_version = 2
    description = "Damages the newest snapshot (and kills the engine, so resume must notice)."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["at"],
        "properties": {
            "at": {**DURATION, "description": "When, after the run's first event."},
            "kill": {
                "type": "boolean",
                "default": True,
                "description": "Kill the engine right after, so its revival meets the damage.",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.at = parse_duration(config["at"])
        self.kill = config.get("kill", True)

    def arm(self) -> None:
        pass

    def on_start(self, ts: int) -> None:
        self.ctx.clock.call_at(ts + self.at, self.fire)

    def fire(self) -> None:
        damaged = self.ctx.corrupt_snapshot()
        self.ctx.fired(self.type_name, damaged=[f"{store} #{seq}" for store, seq in damaged])
        if self.kill:
            self.ctx.kill_engine(False)


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(StateOutage)
    register(SnapshotCorruption)
