"""Snapshots: a run's whole state, taken between instants, and put back on resume.

A snapshot holds what the run needs to carry on as if never stopped: the clock (its time
and every call scheduled, from order timeouts to a venue's pending acknowledgements), the
execution layer (open trades and their legs, every order with its client and exchange ids,
the client id counter), the ledger, guard state, KPI counters, the books and FX rates last
seen, the audit's recent books, each component's own state, and the feed position (the next
instant's time: a resumed run skips the feed up to it).

It is a pickle of that state in which the run's *wiring* (clock, bus, components,
contexts, books, instruments) is written by name, not by value (pickle's persistent ids):
restoring resolves the names against the freshly wired run, so scheduled calls land on the
new objects and object identity inside the state (a trade referenced by its job, its
strategy and the closed list) is preserved. Loading refuses any class outside arbframe,
its plugins and a few standard containers, and the payload's SHA-256 must match the one
recorded when it was written: a damaged snapshot is detected, never half-loaded.

Write-ahead: before the kernel sends orders it writes a small ``orders`` record (the
trade and the orders about to leave). A session that dies before the next full snapshot
finds those orders on resume and asks the venues what became of them, so nothing sent is
ever forgotten, and no client id is used twice.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import pickle
import time
from collections.abc import Callable, Iterable
from typing import Any

from arbframe.clock import NEVER
from arbframe.components import SnapshotRecord
from arbframe.errors import ArbframeError
from arbframe.model import (
    Accepted,
    BalanceChange,
    CancelRejected,
    Closed,
    Fill,
    FillReport,
    Order,
    OrderNotFound,
    OrderStatus,
    Trade,
    TradeState,
)

Run = Any  # arbframe.runner.Run (which imports this module)
FORMAT_VERSION = 1
_WIRED = frozenset({"ctx", "config", "name", "scenario_path"})
_SAFE_MODULES = ("arbframe", "arbframe_plugins")
_SAFE_NAMES = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "getattr"),  # bound methods (scheduled calls) pickle as getattr(obj, name)
    ("collections", "deque"),
    ("collections", "defaultdict"),
    ("collections", "Counter"),
    ("collections", "OrderedDict"),
    ("decimal", "Decimal"),
    ("pathlib", "PosixPath"),
    ("random", "Random"),
    ("pathlib", "WindowsPath"),
    ("copyreg", "_reconstructor"),
    *(("builtins", t) for t in ("object", "int", "float", "list", "dict", "tuple", "str", "bool")),
}  # types among them appear as factories (defaultdict(list)) and in copyreg reconstruction


class SnapshotError(ArbframeError):
    """A snapshot that cannot be used: damaged, of another format, or not of this run."""


def checksum(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def component_state(component: Any) -> dict[str, Any]:
    """What a snapshot keeps of a component by default: every attribute but its wiring
    (``ctx``, ``config``, ``name``). A component may define ``snapshot_state()`` and
    ``restore_state(state)`` to choose."""
    custom = getattr(component, "snapshot_state", None)
    if custom is not None:
        return custom()
    return {k: v for k, v in vars(component).items() if k not in _WIRED}


def restore_component(component: Any, state: dict[str, Any]) -> None:
    custom = getattr(component, "restore_state", None)
    if custom is not None:
        custom(state)
    else:
        vars(component).update(state)


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, refs: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._refs = refs

    def persistent_id(self, obj: Any) -> Any:
        return self._refs.get(id(obj))


# ---- history: what a snapshot shares with the ones before it ----------------------------------
#
# A session's closed trades, settled orders, fills and reports only grow, and once final they
# do not change. A snapshot writes each of them once, by value, under a key; later snapshots
# of the same chain refer to the key. A chain starts with a *full* snapshot (every object by
# value) every FULL_EVERY snapshots, so a resume reads the last full one and the deltas after
# it, and a snapshot's cost follows what changed rather than the length of the session.

FULL_EVERY = 50
_FINGERPRINTS: dict[type, Callable[[Any], Any]] = {}


def historic(cls: type, fingerprint: Callable[[Any], Any]) -> None:
    """Let instances of ``cls`` be written once and shared by later snapshots while
    ``fingerprint(obj)`` (None: not final yet) stays the same."""
    _FINGERPRINTS[cls] = fingerprint


class History:
    """What the snapshots of the current chain already hold: object id -> (key, fingerprint,
    the object itself, kept so its id stays its own)."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[int, Any, Any]] = {}
        self.next = 0
        self.snapshots = 0  # in this chain


class _HistoryPickler(_Pickler):
    """Writes final objects by key; the ones new to the chain go to ``new`` for writing."""

    def __init__(
        self,
        file: io.BytesIO,
        refs: dict[int, str],
        history: History,
        new: list[tuple[int, Any]],
        target: Any = None,
    ) -> None:
        super().__init__(file, refs)
        self._history, self._new, self._target = history, new, target

    def persistent_id(self, obj: Any) -> Any:
        ref = self._refs.get(id(obj))
        if ref is not None:
            return ref
        fingerprint = _FINGERPRINTS.get(type(obj))
        if fingerprint is None or obj is self._target:
            return None
        mark = fingerprint(obj)
        if mark is None:
            return None
        history = self._history
        known = history.keys.get(id(obj))
        if known is not None and known[1] == mark:
            return ("h", known[0])
        key = history.next
        history.next += 1
        history.keys[id(obj)] = (key, mark, obj)
        self._new.append((key, obj))
        return ("h", key)


def dumps_shared(state: Any, refs: dict[int, str], history: History) -> bytes:
    """``state`` with its final objects written once per chain: (new objects, state)."""
    new: list[tuple[int, Any]] = []
    buffer = io.BytesIO()
    _HistoryPickler(buffer, refs, history, new).dump(state)
    defined: dict[int, bytes] = {}
    while new:  # an object's own final parts (a trade's fills) are found as it is written
        key, obj = new.pop()
        part = io.BytesIO()
        _HistoryPickler(part, refs, history, new, target=obj).dump(obj)
        defined[key] = part.getvalue()
    return pickle.dumps((defined, buffer.getvalue()), protocol=pickle.HIGHEST_PROTOCOL)


class _Chain:
    """The history of a chain of snapshots, loaded on demand."""

    def __init__(self, wired: dict[str, Any], modules: set[str]) -> None:
        self.wired, self.modules = wired, modules
        self.defined: dict[int, bytes] = {}
        self.loaded: dict[int, Any] = {}

    def add(self, payload: bytes) -> bytes:
        """Take in one snapshot of the chain; returns its state's bytes."""
        defined, state = _plain_loads(payload)
        self.defined.update(defined)
        return state

    def get(self, key: int) -> Any:
        if key not in self.loaded:
            if key not in self.defined:
                raise SnapshotError(f"the snapshot refers to history #{key} it does not hold")
            self.loaded[key] = _Unpickler(
                io.BytesIO(self.defined[key]), self.wired, self.modules, self
            ).load()
        return self.loaded[key]


def _plain_loads(payload: bytes) -> Any:
    """The (new objects, state bytes) envelope: dicts, ints and bytes only."""

    class Plain(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            raise SnapshotError(f"the snapshot holds a {module}.{name}, which is not allowed")

    return Plain(io.BytesIO(payload)).load()


class _Unpickler(pickle.Unpickler):
    def __init__(
        self,
        file: io.BytesIO,
        wiring: dict[str, Any],
        modules: set[str],
        chain: _Chain | None = None,
    ) -> None:
        super().__init__(file)
        self._wiring = wiring
        self._modules = modules
        self._chain = chain

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and self._chain is not None:
            return self._chain.get(pid[1])
        try:
            return self._wiring[pid]
        except (KeyError, TypeError):
            msg = f"the snapshot refers to {pid!r}, which this run does not have"
            raise SnapshotError(msg) from None

    def find_class(self, module: str, name: str) -> Any:
        root = module.partition(".")[0]
        if (module, name) in _SAFE_NAMES or root in _SAFE_MODULES or root in self._modules:
            return super().find_class(module, name)
        raise SnapshotError(f"the snapshot holds a {module}.{name}, which is not allowed")


def loads_chain(payloads: list[bytes], wired: dict[str, Any], modules: set[str]) -> Any:
    """The state of the last of a chain of snapshots (a full one, then its deltas)."""
    try:
        chain = _Chain(wired, modules)
        state = b""
        for payload in payloads:
            state = chain.add(payload)
        return _Unpickler(io.BytesIO(state), wired, modules, chain).load()
    except SnapshotError:
        raise
    except Exception as err:  # a damaged payload can fail in many ways
        raise SnapshotError(f"the snapshot cannot be read: {type(err).__name__}: {err}") from None


def wiring(run: Run) -> dict[str, Any]:
    """The run's objects a snapshot refers to by name."""
    named: dict[str, Any] = {
        "run": run,
        "clock": run.clock,
        "bus": run.bus,
        "market": run.market,
        "ledger": run.ledger,
        "execution": run.execution,
        "flow": run.execution.flow,
        "reconciler": run.reconciler,
        "guard_chain": run.guard_chain,
        "audit": run.audit,
    }
    for name, venue in run.venues.items():
        named[f"venue:{name}"] = venue
        named[f"ctx:venue:{name}"] = venue.ctx
    for port_name, port in run.execution._ports.items():
        named[f"port:{port_name}"] = port
    for i, strategy in enumerate(run.strategies):
        named[f"strategy:{i}"] = strategy
        named[f"ctx:strategy:{i}"] = strategy.ctx
    for i, guard in enumerate(run.guards):
        named[f"guard:{i}"] = guard
        named[f"ctx:guard:{i}"] = guard.ctx
    for i, fault in enumerate(run.faults):
        named[f"fault:{i}"] = fault
        named[f"ctx:fault:{i}"] = fault.ctx
    for i, feed in enumerate(run.feeds):
        named[f"feed:{i}"] = feed
    for name, obj in _kernel_parts(run):  # universe: and inventory:, when configured
        named[name] = obj
    for instrument in run.market.instruments():
        key = f"{instrument.venue}:{instrument.symbol}"
        named[f"instrument:{key}"] = instrument
        named[f"book:{key}"] = run.market.book(instrument.venue, instrument.symbol)
    return named


def _components(run: Run) -> Iterable[tuple[str, Any]]:
    yield from ((f"venue:{n}", v) for n, v in run.venues.items())
    yield from ((f"strategy:{i}", s) for i, s in enumerate(run.strategies))
    yield from ((f"guard:{i}", g) for i, g in enumerate(run.guards))
    yield from ((f"fault:{i}", f) for i, f in enumerate(run.faults))
    yield from _kernel_parts(run)


def _kernel_parts(run: Run) -> Iterable[tuple[str, Any]]:
    """The kernel's optional parts with state of their own (``snapshot_state``)."""
    universe, inventory = getattr(run, "universe", None), getattr(run, "inventory", None)
    if universe is not None:
        yield "universe", universe
        yield "universe:component", universe.component
        yield "ctx:universe", universe.component.ctx
    if inventory is not None:
        yield "inventory", inventory


def _kernel_state(run: Run) -> dict[str, Any]:
    clock, execution, flow = run.clock, run.execution, run.execution.flow
    return {
        "clock": {k: getattr(clock, k) for k in ("now", "start", "next_due", "_heap", "_seq")},
        "stats": dict(vars(run.stats)),
        "fault_log": _fault_log(run),
        "links": run.links,
        "execution": {
            k: getattr(execution, k)
            for k in ("jobs", "trades", "closed", "refusals", "alert_counts", "halts", "closing")
        }
        | {"trade_seq": execution._trade_seq},
        "flow": {
            "orders": flow.orders,
            "counts": flow.counts,
            "client_seq": flow.client_seq,
            "fill_ids": flow._fill_ids,
            "reports": flow._reports,
        },
        "ledger": dict(vars(run.ledger)),
        "reconcile": run.reconciler.state(),
        "guard_chain": {
            k: v for k, v in vars(run.guard_chain).items() if k not in ("guards", "_publish")
        },
        "market": {
            "fx": run.market.fx,
            "fx_exact": run.market.fx_exact,
            "books": {
                f"{i.venue}:{i.symbol}": (b.bids, b.asks, b.ts)
                for i in run.market.instruments()
                for b in (run.market.book(i.venue, i.symbol),)
            },
        },
        "audit": _audit_state(run.audit),
        "health": run.venue_health.snapshot_state(),
        "components": {name: component_state(c) for name, c in _components(run)},
        # The session's counts so far, this snapshot included: a resumed session goes on
        # counting (and snapshotting) as the uninterrupted one would.
        "session": {"taken": run.sessions.taken + 1, "failed": run.sessions.failed},
    }


def _audit_state(audit: Any) -> dict[str, Any]:
    # What fills took from books no longer remembered cannot be used again: forgetting it
    # now (as the audit would later) keeps the snapshot small, and changes nothing.
    audit._prune()
    return {k: v for k, v in vars(audit).items() if k != "market"}


def manifest(run: Run, next_ts: int) -> dict[str, Any]:
    """The snapshot's contents in plain JSON types: for people, tools and hot keys."""
    execution = run.execution
    return {
        "scenario": run.info.name,
        "seed": run.info.seed,
        "mode": run.info.mode,
        "feed": next_ts,
        "clock_ns": run.clock.now,
        "client_seq": execution.flow.client_seq,
        "trades": [
            {
                "trade_id": job.trade.trade_id,
                "symbol": job.trade.symbol,
                "state": job.trade.state.value,
                "legs": [
                    {
                        "venue": g.venue,
                        "symbol": g.symbol,
                        "position": str(g.position),
                        "target": str(g.target),
                    }
                    for g in job.trade.legs
                ],  # fmt: skip
            }
            for job in execution.jobs.values()
        ],
        "orders": [
            {
                "client_id": o.client_id,
                "exchange_id": o.exchange_id,
                "venue": o.venue,
                "symbol": o.symbol,
                "side": o.side,
                "amount": str(o.amount),
                "filled": str(o.filled),
                "state": o.state.value,
                "trade_id": o.trade_id,
            }
            for o in execution.orders.values()
            if not o.settled
        ],  # fmt: skip
        "balances": {
            venue: {asset: str(amount) for asset, amount in assets.items()}
            for venue, assets in run.ledger.balances.items()
        },
        "guards": {g.name: _plain(g.state()) for g in run.guards},
        "cooldowns": dict(run.guard_chain.cooldowns),
        "kpi": {
            "closed_trades": len(execution.closed),
            "net_pnl": str(sum((t.net_pnl or 0 for t in execution.closed), 0)),
        },
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def dumps(state: Any, refs: dict[int, str]) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, refs).dump(state)
    return buffer.getvalue()


def loads(payload: bytes, wired: dict[str, Any], modules: set[str]) -> Any:
    try:
        return _Unpickler(io.BytesIO(payload), wired, modules).load()
    except SnapshotError:
        raise
    except Exception as err:  # a damaged payload can fail in many ways
        raise SnapshotError(f"the snapshot cannot be read: {type(err).__name__}: {err}") from None


def make_record(
    run: Run,
    seq: int,
    reason: str,
    now: int,
    next_ts: int,
    refs: dict[int, str],
    history: History,
) -> SnapshotRecord:
    """A snapshot: full (it starts a chain: ``history`` is fresh) or a delta of the chain."""
    full = history.snapshots == 0
    history.snapshots += 1
    state: dict[str, Any] = {"version": FORMAT_VERSION, "position": (now, next_ts)}
    state["kernel"] = _kernel_state(run)
    try:
        payload = dumps_shared(state, refs, history)
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise _unpicklable(run, state["kernel"]["components"], refs, err) from None
    return SnapshotRecord(
        session=run.info.session,
        seq=seq,
        ts=now,
        taken_at=time.time(),
        reason=reason,
        version=FORMAT_VERSION,
        checksum=checksum(payload),
        payload=payload,
        manifest={**manifest(run, next_ts), "chain": "full" if full else "delta"},
    )


class UnpicklableState(Exception):
    """A component's state cannot be written into a snapshot (a plugin's bug)."""


def _unpicklable(
    run: Run, components: dict[str, Any], refs: dict[int, str], err: Exception
) -> Exception:
    """Name the component and attribute that a snapshot cannot hold."""
    for name, state in components.items():
        for key, value in state.items():
            try:
                dumps(value, refs)
            except Exception:  # noqa: BLE001 - this is the search for it
                return UnpicklableState(
                    f"cannot snapshot {name}: its attribute {key!r} holds "
                    f"{type(value).__name__} that cannot be pickled ({err}); keep plain "
                    "data in a component, or define snapshot_state()/restore_state() "
                    "(docs/plugins.md, 'Components in snapshots')"
                )
    return UnpicklableState(f"cannot snapshot the run: {err}")


def orders_record(
    run: Run, seq: int, job: Any, orders: list[Any], refs: dict[int, str]
) -> SnapshotRecord:
    """The write-ahead record of orders about to be sent: the trade's working state (its
    job) and the orders."""
    trade = job.trade
    payload = dumps({"version": FORMAT_VERSION, "job": job, "orders": orders,
                     "client_seq": run.execution.flow.client_seq,
                     "trade_seq": run.execution._trade_seq}, refs)  # fmt: skip
    return SnapshotRecord(
        session=run.info.session,
        seq=seq,
        ts=run.clock.now,
        taken_at=time.time(),
        reason="orders",
        version=FORMAT_VERSION,
        checksum=checksum(payload),
        payload=payload,
        manifest={
            "trade_id": trade.trade_id,
            "orders": [
                {
                    "client_id": o.client_id,
                    "venue": o.venue,
                    "symbol": o.symbol,
                    "side": o.side,
                    "amount": str(o.amount),
                }
                for o in orders
            ],  # fmt: skip
        },
    )


def restore_kernel(run: Run, kernel: dict[str, Any], external: set[str]) -> None:
    """Put a snapshot's kernel state into a freshly wired run (in place where others hold
    references: books, FX tables, the audit's history). ``external`` venues outlive the
    process: their own state, their scheduled calls and their reports in flight are not
    restored (what they say now is asked instead)."""
    clock = run.clock
    for key, value in kernel["clock"].items():
        setattr(clock, key, value)
    if external:
        outside = {id(run.venues[name]) for name in external}
        _keep_heap(clock, lambda e: not _from_outside(e, outside, external))
    vars(run.stats).update(kernel["stats"])
    run.stats.stopped, run.stats.next_ts = False, NEVER  # that process stopped; this one runs
    _restore_faults(run, kernel["fault_log"], kernel["links"])
    execution, flow = run.execution, run.execution.flow
    state = dict(kernel["execution"])
    execution._trade_seq = state.pop("trade_seq")
    for key, value in state.items():
        setattr(execution, key, value)
    f = kernel["flow"]
    flow.orders.clear()
    flow.orders.update(f["orders"])
    flow.counts.clear()
    flow.counts.update(f["counts"])
    flow.client_seq, flow._fill_ids, flow._reports = f["client_seq"], f["fill_ids"], f["reports"]
    execution.order_counts = flow.counts
    vars(run.ledger).update(kernel["ledger"])
    if "reconcile" in kernel:
        run.reconciler.restore(kernel["reconcile"])
    vars(run.guard_chain).update(kernel["guard_chain"])
    for port in execution._ports.values():
        port.cooldowns = run.guard_chain.cooldowns
    _restore_market(run, kernel["market"], kernel["audit"])
    if "health" in kernel:  # (snapshots from before the venue health monitor have none)
        run.venue_health.restore_state(kernel["health"])
    if run.sessions is not None and "session" in kernel:
        run.sessions.taken = kernel["session"]["taken"]
        run.sessions.failed = kernel["session"]["failed"]
    skip = {f"venue:{name}" for name in external}
    for name, component in _components(run):
        if name in kernel["components"] and name not in skip:
            restore_component(component, kernel["components"][name])


def _restore_market(run: Run, market: dict[str, Any], audit: dict[str, Any]) -> None:
    run.market.fx.clear()
    run.market.fx.update(market["fx"])
    run.market.fx_exact.clear()
    run.market.fx_exact.update(market["fx_exact"])
    for key, (bids, asks, ts) in market["books"].items():
        venue, _, symbol = key.partition(":")
        book = run.market.book(venue, symbol)
        book.bids, book.asks, book.ts = bids, asks, ts
    audit = dict(audit)
    for key, entries in audit.pop("history").items():
        history = run.audit.history.setdefault(key, type(entries)(maxlen=entries.maxlen))
        history.clear()
        history.extend(entries)
    vars(run.audit).update(audit)


def _fault_log(run: Run) -> dict[str, Any]:
    """The fault timeline, each fault's random generator (drills replay exactly) and the
    faults watching the venues' reports."""
    return {
        "records": run.fault_log.records,
        "counts": run.fault_log.counts,
        "random": [f.ctx.random.getstate() for f in run.faults],
        "watchers": list(run._report_watchers),
        "findings": list(run._finding_watchers),
    }


def _restore_faults(run: Run, log: dict[str, Any], links: dict[str, Any]) -> None:
    run.fault_log.records = log["records"]
    run.fault_log.counts = log["counts"]
    for fault, state in zip(run.faults, log["random"], strict=True):
        fault.ctx.random.setstate(state)
    run._report_watchers[:] = log["watchers"]  # in place: the faults' contexts hold it
    run._finding_watchers[:] = log.get("findings", [])
    run.links = links


def _keep_heap(clock: Any, keep: Callable[[tuple[Any, ...]], bool]) -> None:
    clock._heap = [e for e in clock._heap if keep(e)]
    heapq.heapify(clock._heap)
    clock.next_due = clock._heap[0][0] if clock._heap else NEVER


def _from_outside(entry: tuple[Any, ...], outside: set[int], external: set[str]) -> bool:
    """A scheduled call of an external venue, or one of its reports on the way to us."""
    fn, args = entry[2], entry[3]
    owner = getattr(fn, "__self__", None)
    if id(owner) in outside:
        return True
    return bool(args) and getattr(args[0], "venue", None) in external


# ---- the world, across an in-process engine kill -------------------------------------------------


def world_state(run: Run) -> dict[str, Any]:
    """What outlives a killed engine inside a simulated run: the venues (their orders,
    balances and pending work), the fault injectors, the market data published so far and
    the run's counters. The engine's own state comes back from its snapshots instead."""
    owners = {id(v) for v in run.venues.values()} | {id(f) for f in run.faults}
    kernel = _kernel_state(run)
    return {
        "heap": [e for e in run.clock._heap if id(getattr(e[2], "__self__", None)) in owners],
        "seq": run.clock._seq,
        "now": run.clock.now,
        "components": {
            name: state
            for name, state in kernel["components"].items()
            if name.startswith(("venue:", "fault:"))
        },
        "market": kernel["market"],
        "audit": kernel["audit"],
        "stats": kernel["stats"],
        "fault_log": kernel["fault_log"],
        "links": kernel["links"],
    }


def restore_world(run: Run, world: dict[str, Any]) -> None:
    """After :func:`restore_kernel` (every venue external): the world as it was at the kill."""
    clock = run.clock
    owners = {id(v) for v in run.venues.values()} | {id(f) for f in run.faults}
    _keep_heap(clock, lambda e: id(getattr(e[2], "__self__", None)) not in owners)
    clock._heap.extend(world["heap"])
    _keep_heap(clock, lambda e: True)
    clock._seq = max(clock._seq, world["seq"])
    clock.now = world["now"]
    for name, component in _components(run):
        if name in world["components"]:
            restore_component(component, world["components"][name])
    _restore_market(run, world["market"], world["audit"])
    vars(run.stats).update(world["stats"])
    _restore_faults(run, world["fault_log"], world["links"])


# What the kernel's own history is made of, and when each is final.
for _report in (Accepted, FillReport, Closed, CancelRejected, OrderStatus, OrderNotFound,
                BalanceChange, Fill):  # fmt: skip
    historic(_report, lambda obj: True)  # immutable
historic(Trade, lambda t: (len(t.fills), t.closed_at) if t.state is TradeState.CLOSED else None)
historic(
    Order,
    lambda o: (
        (o.state, o.filled, o.venue_filled, o.queries, o.reason, len(o.fees)) if o.settled else None
    ),
)
