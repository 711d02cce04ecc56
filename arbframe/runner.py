"""Wiring: a loaded scenario becomes components, the kernel's services and a driver; then a
summary. The only module that sees everything; components see their context only.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import suppress
from dataclasses import replace
from decimal import Decimal, localcontext
from operator import itemgetter
from pathlib import Path
from typing import Any

import pluggy

from arbframe import alerting, control, integrity, snapshot
from arbframe.audit import Audit
from arbframe.bus import EventBus
from arbframe.clock import NEVER, SimClock
from arbframe.components import (
    CONTEXTS,
    Component,
    Exchange,
    FeedEvent,
    RunInfo,
    SimulatedExchange,
    StoreUnavailable,
    Strategy,
)
from arbframe.driver import DriveStats, StopRequest, run_simulated
from arbframe.errors import ArbframeError, ConfigError
from arbframe.execution import ExecutionEngine, ExecutionSettings
from arbframe.faults import FaultLog, Link
from arbframe.health import VenueHealth
from arbframe.inventory import Inventory
from arbframe.ledger import Ledger
from arbframe.market import MarketView
from arbframe.model import Book
from arbframe.money import MONEY_CONTEXT
from arbframe.outputs import Outputs
from arbframe.plugins import Registry
from arbframe.realtime import LoopHealth, WallClock, run_wall
from arbframe.reconcile import Reconciler, ReconcileSettings, settings_problem
from arbframe.risk import GuardChain
from arbframe.scenario import LoadedScenario
from arbframe.sessions import ResumeError, SessionState
from arbframe.sessions import summary as session_summary
from arbframe.stores import store_blocks
from arbframe.summary import build_summary, judge
from arbframe.units import parse_duration
from arbframe.universe import KERNEL_KEYS as UNIVERSE_KEYS
from arbframe.universe import UniverseKernel
from arbframe.universe import config_problem as universe_problem

STATE_FAULTS = frozenset({"engine_kill", "state_outage", "snapshot_corruption"})
"""Fault types that need the run to keep state (snapshots and stores) to act on."""


class EngineKilled(Exception):  # noqa: N818 (a drill's event, not an error)
    """An ``engine_kill`` fault: the engine dies here, its state since the last snapshot
    with it; the run revives it from its snapshots while the venues carry on."""

    def __init__(self, now: int) -> None:
        super().__init__(f"engine killed at {now}")
        self.now = now


class Run:
    """One execution of a scenario."""

    def __init__(
        self,
        loaded: LoadedScenario,
        registry: Registry,
        pm: pluggy.PluginManager,
        seed: int | None = None,
        resume: bool = False,
        reset: bool = False,
        session: str | None = None,
        live: bool = False,
    ) -> None:
        self.loaded = loaded
        self.scenario: dict[str, Any] = loaded.data
        self.registry = registry
        self.pm = pm
        sc = self.scenario
        self.info = RunInfo(
            name=sc["name"],
            seed=sc.get("seed", 0) if seed is None else seed,
            mode=sc.get("mode", "paper"),
            clock=sc.get("clock", "simulated"),
            report_currency=sc.get("report_currency", "USDT"),
            session=session or sc.get("session", sc["name"]),
        )
        self.resume, self.reset = resume, reset
        self.live = live
        """The command line confirmed real orders (``--live``); ``mode: live`` needs it."""
        self._resume_at: tuple[int, int] | None = None
        self.resumed_from: Any = None
        self._kill_after_send = False
        self._outputs: Outputs | None = None
        self.revivals: list[dict[str, Any]] = []  # engine kills survived, in order
        self._killer = ""  # the name of the fault that killed the engine
        self._reviving = False
        wall = self.info.clock == "wall"
        self.clock: SimClock | WallClock = WallClock() if wall else SimClock()
        self.health = LoopHealth() if wall else None
        """How the wall-clock driver's loop keeps up (the summary's ``loop``); None if simulated."""
        self.bus = EventBus()
        self.fault_log = FaultLog(self.clock, self.bus)
        self.links: dict[str, Link] = {}  # venues whose books a fault put behind a link
        self._report_watchers: list[Callable[[Any], None]] = []
        self._finding_watchers: list[Callable[[Any], None]] = []
        self.stats = DriveStats()
        self.stop = StopRequest()
        """Set ``self.stop.requested`` to end the run between two instants (Ctrl-C does)."""
        self.interrupted = False
        with localcontext(MONEY_CONTEXT):
            self._wire()

    @property
    def name(self) -> str:
        return self.info.name

    # ---- building components ------------------------------------------------------------------

    def _build(self, kind: str, path: tuple[str | int, ...], name: str, **services: Any) -> Any:
        block: Any = self.scenario
        for part in path:
            block = block[part]
        kernel_keys = {
            "strategy": ("type", "name", "execution"),
            "fault": ("type", "name"),
            "state": ("type", "name"),
            "universe": UNIVERSE_KEYS,
        }
        config = {k: v for k, v in block.items() if k not in kernel_keys.get(kind, ("type",))}
        ctx = CONTEXTS[kind](
            info=self.info,
            resolve_path=self.resolve_path,
            error=self.loaded.error,
            **services,
        )
        try:
            component: Component = self.registry.get(kind, block["type"]).cls(
                config, name=name, ctx=ctx
            )
        except ConfigError as err:
            raise self.loaded.error((*path, *err.key), err.message) from None
        component.scenario_path = path
        return component

    def _context(self, kind: str, **services: Any) -> Any:
        return CONTEXTS[kind](
            info=self.info, resolve_path=self.resolve_path, error=self.loaded.error, **services
        )

    def resolve_path(self, path: str | Path) -> Path:
        """Relative paths in a scenario resolve against the scenario file's directory."""
        return self.loaded.path.parent / Path(path)

    def _error(self, path: tuple[str | int, ...], message: str) -> ArbframeError:
        return self.loaded.error(path, message)

    # ---- wiring ---------------------------------------------------------------------------------

    def _wire(self) -> None:
        sc = self.scenario
        mode = self.info.mode
        if mode in ("shadow", "live") and self.info.clock != "wall":
            raise self._error(("clock",), f"mode {mode} runs in real time: set clock: wall")
        if mode == "live" and not self.live:
            raise self._error(
                ("mode",),
                "mode live places real orders: confirm with `arbframe run --live` (or try "
                "mode: shadow first: real books, paper fills)",
            )
        fx = {cur: Decimal(str(rate)) for cur, rate in sc.get("fx", {}).items()}
        self.market = MarketView(self.info.report_currency, fx)
        self.venues: dict[str, Exchange] = {
            name: self._build(
                "exchange", ("venues", name), name, clock=self.clock, report=self._report
            )
            for name in sc["venues"]
        }
        for name, venue in self.venues.items():
            self.market.add_venue(name, venue)
        self._fund()
        self.feeds = [
            self._build(
                "feed",
                ("feeds", i),
                f"feeds[{i}]",
                fx_rate=self.fx_rate,
                venue_quote=self.venue_quote,
                venue=self.venues.__getitem__,
                report_volume=self.market.set_volume,
            )
            for i in range(len(sc["feeds"]))
        ]
        self._add_instruments()
        self.ledger = Ledger(
            self.info.report_currency, {n: v.balances() for n, v in self.venues.items()}
        )
        try:
            self.venue_health = VenueHealth(list(self.venues), sc.get("health"), self._now)
        except ConfigError as err:
            raise self._error(("health", *err.key), err.message) from None
        self.guards = [
            self._build(
                "guard",
                ("guards", i),
                b.get("name", b["type"]),
                clock=self.clock,
                alert=self._alert,
                market=self.market,
                open_trades=self._open_trades,
                health=self.venue_health,
            )
            for i, b in enumerate(sc.get("guards", []))
        ]
        self.guard_chain = GuardChain(self.guards, self.bus.publish)
        self.execution = ExecutionEngine(
            self.clock,
            self.bus,
            self.market,
            self.venues,
            self.ledger,
            self.guard_chain,
            self.info.session,
            self._nonce(),
        )
        self.settings = self._settings(("execution",), sc.get("execution", {}))
        self.execution.defaults = self.settings
        self.execution.routes.health = self.venue_health.score  # route scores see venue health
        self.reconciler = self._reconciler()
        self.strategies = self._build_strategies()
        # Built now (config errors surface here); they receive events only while running.
        self.listeners = [
            self._build(kind, (slot, i), f"{slot}[{i}]")
            for slot, kind in (("sinks", "sink"), ("alerts", "alert"))
            for i in range(len(sc.get(slot, [])))
        ]
        self.faults = [self._build_fault(i) for i in range(len(sc.get("faults", [])))]
        self._fault_named = {f.name: f for f in self.faults}
        self.universe, self.inventory = self._build_universe(), self._build_inventory()
        self.audit = Audit(self.market)
        self.audit.unpriceable = {n for n, v in self.venues.items() if not v.fills_priceable}
        self.execution.flow.health = self.health
        self.execution.flow.venue_health = self.venue_health
        self.bus.subscribe_journal(self.audit.on_event, "fill")
        self.sessions = self._session_state()
        # Alerting and operator control (arbframe.alerting, arbframe.control): their own
        # modules; a revived engine keeps them.
        self.alerting = alerting.wire(self)
        self.operator = control.wire(self)

    def _now(self) -> int:
        return self.clock.now

    def _open_trades(self) -> Any:
        return (job.trade for job in self.execution.jobs.values())

    # ---- universe: and inventory: (arbframe.universe, arbframe.inventory) ----------------------

    def _build_universe(self) -> UniverseKernel | None:
        block = self.scenario.get("universe")
        if block is None:  # every symbol quoted is traded, as before there were universes
            return None
        problem = universe_problem(block, self.market)
        if problem is not None:
            raise self._error(("universe", *problem[0]), problem[1])
        component = self._build(
            "universe", ("universe",), block["type"], clock=self.clock, market=self.market
        )
        kernel = UniverseKernel(component, block, self.market, self.execution, self.bus)
        # A tier of the guard chain (not of the scenario's guards): no entry off the universe.
        self.guard_chain.add(kernel)
        return kernel

    def _build_inventory(self) -> Inventory | None:
        config = self.scenario.get("inventory")
        if config is None:
            return None
        return Inventory(config, self.execution, self.venues, self._error)

    def _reconciler(self) -> Reconciler:
        """Continuous reconciliation with the venues (``reconcile:``; venues that outlive the
        process are reconciled without it)."""
        settings = ReconcileSettings.from_config(self.scenario.get("reconcile"))
        problem = settings_problem(settings)
        if problem is not None:
            raise self._error(("reconcile", problem[0]), problem[1])
        reconciler = Reconciler(self.execution, settings, self.settings)
        self.execution.flow.watchers = self._finding_watchers
        return reconciler

    def _nonce(self) -> str:
        """A wall-clock process trading on venues that outlive it stamps its client ids with
        its start (ms, hex): such venues refuse or confuse a reused id. Other runs keep the
        ids they always had (a simulated run stays reproducible)."""
        outliving = any(v.outlives_process for v in self.venues.values())
        if self.info.clock != "wall" or not outliving:
            return ""
        return format(time.time_ns() // 1_000_000 % 16**8, "08x")

    def _session_state(self) -> SessionState | None:
        """Snapshots are taken when the scenario keeps state (``state:`` or ``snapshots:``),
        a fault acts on state (kills the engine, cuts or damages a store), or the command
        line resumes or resets a session; otherwise a run pays nothing for them."""
        sc = self.scenario
        drill = any(b["type"] in STATE_FAULTS for b in sc.get("faults", []))
        if not (sc.get("state") or "snapshots" in sc or drill or self.resume or self.reset):
            return None
        # Without `state:`, ARBFRAME_REDIS_URL / ARBFRAME_DATABASE_URL choose the stores;
        # failing a durable one, the embedded file when snapshots are asked for (or a
        # resume), memory for a drill that only kills the engine in-process.
        on_disk = self.resume or self.reset or "snapshots" in sc
        default = {"type": "sqlite" if on_disk else "memory"}
        stores = []
        for path, block in store_blocks(self.loaded, (default,)):
            name = block.get("name", block["type"])
            if path is not None:
                stores.append(self._build("state", path, name))
            else:
                config = {k: v for k, v in block.items() if k != "type"}
                cls = self.registry.get("state", block["type"]).cls
                stores.append(cls(config, name=name, ctx=self._context("state")))
        policy = sc.get("snapshots", {})
        state = SessionState(
            self.info.session,
            stores,
            parse_duration(policy.get("every", "30s")),
            policy.get("on_trade", True),
            policy.get("keep", 20),
            self._store_event,
        )
        self._wired = snapshot.wiring(self)
        self._refs = {id(obj): name for name, obj in self._wired.items()}
        self.execution.before_send = self._write_ahead
        for event in ("trade_opened", "trade_closed"):
            self.bus.subscribe_journal(self._mark_dirty, event)
        return state

    def _fund(self) -> None:
        capital = self.scenario.get("capital", {})
        for venue in capital:
            if venue not in self.venues:
                raise self._error(
                    ("capital", venue),
                    f"unknown venue {venue!r} (venues: {', '.join(self.venues)})",
                )
        for name, venue in self.venues.items():
            if not isinstance(venue, SimulatedExchange):
                continue
            if name not in capital:
                raise self._error(
                    ("venues", name),
                    f"venue {name!r} has no capital, so it could not trade: add "
                    f"capital: {{{name}: {{<asset>: <amount>}}}} (an empty mapping if it "
                    "really starts empty)",
                )
            venue.fund({a: Decimal(str(v)) for a, v in capital[name].items()})

    def _add_instruments(self) -> None:
        for i, feed in enumerate(self.feeds):
            for venue in feed.venues():
                if venue not in self.venues:
                    raise self._error(
                        ("feeds", i),
                        f"feed quotes unknown venue {venue!r} (venues: {', '.join(self.venues)})",
                    )
                target = self.venues[venue]
                if not isinstance(target, SimulatedExchange):
                    raise self._error(
                        ("feeds", i), f"venue {venue!r} is not simulated: feeds cannot drive it"
                    )
                for symbol in feed.symbols():
                    if not self.market.has(venue, symbol):
                        book = Book()
                        self.market.add_instrument(target.add_instrument(symbol, book), book)
        for instrument in self.market.instruments():
            if instrument.quote not in self.market.fx_exact:
                raise self._error(
                    ("venues", instrument.venue),
                    f"no FX rate for {instrument.quote}: add fx: {{{instrument.quote}: "
                    f"<units per {self.info.report_currency}>}}",
                )

    def _build_strategies(self) -> list[Strategy]:
        sc = self.scenario
        slots = [("strategy",)] if "strategy" in sc else [
            ("strategies", i) for i in range(len(sc["strategies"]))
        ]  # fmt: skip
        strategies: list[Strategy] = []
        names: set[str] = set()
        for path in slots:
            block: Any = sc
            for part in path:
                block = block[part]
            name = block.get("name", block["type"])
            if name in names:
                where = "name" if "name" in block else "type"
                raise self._error(
                    (*path, where),
                    f"two strategies are named {name!r}: give each its own `name:`",
                )
            names.add(name)
            settings = self._settings((*path, "execution"), block.get("execution", {}))
            holder: list[Strategy] = []
            port = self.execution.port(name, settings, lambda t, h=holder: h[0].on_trade(t))
            strategy = self._build(
                "strategy",
                path,
                name,
                clock=self.clock,
                market=self.market,
                execution=port,
                set_timer=self._timer_setter(name),
                alert=self._alert,
            )
            holder.append(strategy)
            strategies.append(strategy)
        self._strategy_named = {s.name: s for s in strategies}
        return strategies

    def _build_fault(self, i: int) -> Component:
        block = self.scenario["faults"][i]
        name = block.get("name", f"faults[{i}]")
        log = self.fault_log
        if self._reviving:  # a revived engine's faults go on with their records
            record = log.records[name]
        elif name in log.records:
            raise self._error(("faults", i, "name"), f"two faults are named {name!r}")
        else:
            record = log.add(name, block["type"], block.get("venue") or block.get("store"))
        fault = self._build(
            "fault",
            ("faults", i),
            name,
            clock=self.clock,
            venues=self.venues,
            # By name: a revived engine's restored log holds new record objects.
            fired=lambda *a, **d: log.fired(log.records[name], *a, **d),
            order=self.execution.orders.get,
            detected=lambda **d: log.detected(log.records[name], **d),
            recovered=lambda **d: log.recovered(log.records[name], **d),
            random=random.Random(f"{self.info.seed}/faults[{i}]"),
            link=self._link,
            watch_reports=self._report_watchers.append,
            watch_reconciliation=self._finding_watchers.append,
            kill_engine=lambda wait: self._kill_engine(wait, log.records[name]),
            stores=self._stores,
            corrupt_snapshot=self._corrupt_snapshot,
        )
        record.stats = fault.stats
        return fault

    def _link(self, venue: str) -> Link:
        if venue not in self.links:
            if self.stats.start and not self._reviving:  # books already wired to the driver
                raise ArbframeError(f"ctx.link({venue!r}) asked after arm(): too late to gate")
            self.links[venue] = Link(venue, self.clock)
        return self.links[venue]

    def _settings(self, path: tuple[str | int, ...], config: dict[str, Any]) -> ExecutionSettings:
        base = getattr(self, "settings", None)
        settings = ExecutionSettings.from_config(config, base)
        if settings.order_timeout <= 0:  # every order would be queried before it could answer
            raise self._error((*path, "order_timeout"), "must be longer than 0")
        return settings

    # ---- services -------------------------------------------------------------------------------

    def _report(self, report: Any) -> None:
        for watch in self._report_watchers:  # only faults watch, and only when configured
            watch(report)
        self.execution.flow.on_report(report)

    def _alert(self, severity: str, title: str, detail: str = "") -> None:
        self.execution.alert(severity, title, detail)

    def _timer_setter(self, name: str) -> Callable[[int, Any], None]:
        def set_timer(delay: int, payload: Any) -> None:
            # A bound method and plain arguments: a pending timer survives in a snapshot.
            self.clock.call_later(max(0, delay), self._fire_timer, name, payload)

        return set_timer

    def _fire_timer(self, name: str, payload: Any) -> None:
        if not self.execution.closing:
            self._strategy_named[name].on_timer(self.clock.now, payload)

    def fx_rate(self, currency: str) -> float:
        return self.market.fx[currency]

    def venue_quote(self, venue: str) -> str:
        return self.venues[venue].quote  # type: ignore[attr-defined]

    # ---- running --------------------------------------------------------------------------------

    def _events(self) -> Iterator[FeedEvent] | AsyncIterator[FeedEvent]:
        streams = [feed.events() for feed in self.feeds]
        if len(streams) == 1:
            return streams[0]
        for i, stream in enumerate(streams):
            if hasattr(stream, "__aiter__"):  # pushed: arrival order, nothing to merge by time
                raise self._error(("feeds", i), "a pushed feed must be the scenario's only feed")
        return heapq.merge(*streams, key=itemgetter(0))  # type: ignore[arg-type]

    def _deliver(self, name: str, payload: dict[str, Any]) -> None:
        hook = self._hooks.get(name)
        if hook is None:  # resolved once a run (silent events never get here)
            hook = self._hooks[name] = getattr(self.pm.hook, f"arbframe_on_{name}")
        hook(run=self.info, **payload)

    def _drive(self, progress: Callable[[int, int], None] | None) -> None:
        targets: dict[str, dict[str, Any]] = {}
        for instrument in self.market.instruments():
            simulated: Any = self.venues[instrument.venue]
            link = self.links.get(instrument.venue)
            per_venue = targets.setdefault(instrument.venue, link.targets() if link else {})
            record = self.audit.recorder(instrument, per_venue, simulated.on_book)
            per_venue[instrument.symbol] = (record, simulated.on_book)
        starters = [v.on_start for v in self.venues.values() if isinstance(v, SimulatedExchange)]
        starters.append(self.reconciler.start)  # once the venues are up (accounts open)
        starters += [fault.on_start for fault in self.faults]
        starters += [k.start for k in (self.universe, self.inventory) if k is not None]
        deciders = [s.on_market for s in self.strategies]
        if self.universe is not None:
            deciders = [self.universe.filter(deciders)]

        def on_first(ts: int) -> None:
            for start in starters:
                start(ts)

        bus, deliver = self.bus, self._deliver
        args = (
            self._events(),
            parse_duration(self.scenario["duration"]),
            targets,
            self.market.set_fx,
            deciders,
            (bus.queue, lambda: bus.drain(deliver)),
            on_first,
            progress,
            self.stats,
            self.stop,
        )
        options = {
            "between": self._between if self.sessions is not None else None,
            "resume": self._resume_at,
        }
        self._wound_down = False
        try:
            if isinstance(self.clock, WallClock):
                asyncio.run(self._drive_wall(args, options))
            else:
                run_simulated(self.clock, *args, **options)
        except EngineKilled as kill:
            self._revive(kill)
            return self._drive(progress)
        if self.stats.stopped:  # a partial run: what happened is kept, nothing is invented
            self.interrupted = True
            bus.drain(deliver)
            self._snapshot("shutdown", self.stats.end, self.stats.next_ts)
            return
        if not self._wound_down:
            self._wind_down()
        self.clock.drain()
        bus.drain(deliver)
        self._snapshot("shutdown", self.clock.now, NEVER)

    def _wind_down(self) -> None:
        """Strategies have their say, open trades close (their orders go out now)."""
        self._wound_down = True
        for fault in self.faults:
            fault.on_end()
        for strategy in self.strategies:
            strategy.on_end()
        self.execution.wind_down()

    async def _drive_wall(self, args: tuple[Any, ...], options: dict[str, Any]) -> None:
        """The wall-clock run. With venues that talk over the network (``aclose``), the
        wind-down happens in the loop too, in real time, until what was sent is answered;
        then their connections close."""
        clock = self.clock
        assert isinstance(clock, WallClock)
        networked = [v for v in self.venues.values() if hasattr(v, "aclose")]
        speed = float(self.scenario.get("speed", 1))
        try:
            async with control.serving(self):  # the operator's endpoint, alerting's ticks
                await run_wall(clock, *args, speed=speed, health=self.health, **options)
            if networked:
                if not self.stats.stopped:
                    self._wind_down()
                await self._settle(clock, networked)
        finally:
            for venue in networked:
                await venue.aclose()  # type: ignore[attr-defined]

    async def _settle(self, clock: WallClock, venues: list[Any]) -> None:
        """Time goes on (scheduled calls fire, reports arrive) until no order sent is
        waiting for its answer, or the kernel's own timeouts have had their say."""
        loop = asyncio.get_running_loop()
        bus = self.bus
        clock.attach(loop, clock.now, 1.0, lambda: bus.drain(self._deliver) if bus.queue else None)
        settings = self.settings
        deadline = loop.time() + settings.order_timeout * (settings.max_queries + 1) / 1e9
        try:
            while loop.time() < deadline:
                waiting = any(not o.settled for o in self.execution.orders.values())
                if not waiting and not any(v.busy() for v in venues):
                    break
                await asyncio.sleep(0.02)
                if clock.failure is not None:
                    raise clock.failure
        finally:
            clock.detach()

    # ---- an in-process engine kill (the engine_kill fault) ------------------------------------

    def _kill_engine(self, wait_for_orders: bool, record: Any) -> None:
        """The fault's order: die now, or right after the next orders leave."""
        self._killer = record.name
        if wait_for_orders:
            self._kill_after_send = True
        else:
            self.clock.call_later(0, self._die)

    def _stores(self) -> list[Any]:
        return [] if self.sessions is None else list(self.sessions.stores)

    def _corrupt_snapshot(self) -> list[tuple[str, int]]:
        damaged = []
        for store in self._stores():
            try:
                newest = next((r for r in store.snapshots(self.info.session)
                               if r.reason != "orders"), None)  # fmt: skip
                record = newest and store.load(self.info.session, newest.seq)
                if record:
                    flipped = bytes(b ^ 0xFF for b in record.payload[-16:])
                    store.save(replace(record, payload=record.payload[:-16] + flipped))
                    damaged.append((store.name, record.seq))
            except StoreUnavailable:
                continue
        return damaged

    def _die(self) -> None:
        raise EngineKilled(self.clock.now)

    def _revive(self, kill: EngineKilled) -> None:
        """A new engine from the latest valid snapshot and the orders written ahead since,
        facing the venues as they are now: every open order is asked about before anything
        new is sent."""
        log = self.fault_log
        log.counts["engine_killed"] += 1
        log.detected(
            log.records[self._killer], why="the engine process died"
        )  # a supervisor sees it at once
        revivals = self.revivals
        world = snapshot.dumps(snapshot.world_state(self), self._refs)
        listeners, outputs = self.listeners, self._outputs
        if self.sessions is not None:
            self.sessions.close()
        self.clock, self.bus = SimClock(), EventBus()
        log.clock, log.bus = self.clock, self.bus
        self._reviving = True
        with localcontext(MONEY_CONTEXT):
            self._wire()
            self._reviving = False
            self.listeners = listeners
            self._silence()
            assert self.sessions is not None
            self.sessions.open()
            self._restore(external=set(self.venues), world=world)
        if outputs is not None:
            outputs.execution = self.execution
        self._resume_at = (kill.now, kill.now + 1)  # the killed instant's books were applied
        self.revivals = revivals
        revivals.append(
            {"killed_ns": kill.now, "resumed_from": self.resumed_from.seq, "recovered_ns": None}
        )
        if self.execution.flow.awaiting:
            self.execution.flow.reconciled = self._revived
        else:
            self._revived()

    def _revived(self) -> None:
        revival = self.revivals[-1]
        revival["recovered_ns"] = self.clock.now
        self.fault_log.counts["engine_recovered"] += 1
        self.fault_log.recovered(self.fault_log.records[self._killer], answered=True)

    # ---- snapshots ----------------------------------------------------------------------------

    def _between(self, now: int, next_ts: int) -> None:
        reason = self.sessions.due(now)  # type: ignore[union-attr]
        if reason is not None:
            self._snapshot(reason, now, next_ts)

    def _snapshot(self, reason: str, now: int, next_ts: int) -> None:
        sessions = self.sessions
        if sessions is None:
            return
        record = snapshot.make_record(
            self, sessions.next_seq(), reason, now, next_ts, self._refs, sessions.chain()
        )
        failed = sessions.failed
        sessions.save(record)
        if sessions.failed > failed and failed == 0:  # once: the first snapshot kept nowhere
            self._alert("P0", "snapshot kept by no state store", "a crash now loses the session")
        self.bus.drain(self._deliver)

    def _write_ahead(self, trade: Any, orders: list[Any]) -> None:
        sessions = self.sessions
        assert sessions is not None
        job = self.execution.jobs[trade.trade_id]
        sessions.save(snapshot.orders_record(self, sessions.next_seq(), job, orders, self._refs))
        sessions.dirty = True
        if self._kill_after_send:  # dies as soon as these orders are out
            self._kill_after_send = False
            self.clock.call_later(0, self._die)

    def _mark_dirty(self, name: str, payload: dict[str, Any]) -> None:
        self.sessions.dirty = True  # type: ignore[union-attr]

    def _store_event(self, phase: str, **detail: Any) -> None:
        log = self.fault_log
        log.counts[f"state_store_{phase}"] += 1
        if phase == "detected":  # an operator must know: the session's memory is at stake
            self._alert("P1", f"state store {detail['store']} unreachable", detail.get("why", ""))
        for record in log.records.values():  # an outage drill on that store notes it too
            fault = self._fault_named.get(record.name)
            if (
                record.type == "state_outage"
                and getattr(fault, "store_name", None) == detail["store"]
            ):
                getattr(log, phase)(record, **detail)

    def _restore(self, external: set[str] | None = None, world: bytes | None = None) -> None:
        """Resume: the latest valid snapshot, the orders written ahead since, then the
        venues asked about every order still open before anything new is sent."""
        sessions = self.sessions
        assert sessions is not None
        found = sessions.find()
        modules = {type(c).__module__.partition(".")[0] for _, c in snapshot._components(self)}
        taken = found.snapshot.manifest
        for key, ours in (("scenario", self.info.name), ("seed", self.info.seed)):
            if key in taken and taken[key] != ours:
                raise ResumeError(
                    f"session {self.info.session!r} was run with {key} {taken[key]!r}, not "
                    f"{ours!r}: resume it with the scenario it ran, or start it with --reset"
                )
        try:
            state = snapshot.loads_chain([r.payload for r in found.chain], self._wired, modules)
        except snapshot.SnapshotError as err:
            raise ResumeError(
                f"session {self.info.session!r}: snapshot #{found.snapshot.seq} cannot be "
                f"resumed by this scenario ({err}); start it again with --reset"
            ) from None
        if state.get("version") != snapshot.FORMAT_VERSION:
            raise ResumeError(f"snapshot #{found.snapshot.seq} has another format version")
        if external is None:
            external = {n for n, v in self.venues.items() if v.outlives_process}
        snapshot.restore_kernel(self, state["kernel"], external)
        if world is not None:
            snapshot.restore_world(self, snapshot.loads(world, self._wired, modules))
        now, next_ts = state["position"]
        sessions.last_ts = now  # the next periodic snapshot falls where it would have
        for store, seq in found.corrupt:  # after the restore, which brings its own counts
            self._alert("P1", "damaged snapshot skipped", f"{store} #{seq}: checksum mismatch")
        for name in external if world is None else ():  # (a revived engine's venues live on)
            venue = self.venues[name]
            if isinstance(venue, SimulatedExchange):
                venue.on_resume()
        if external:  # venues restored with the snapshot forgot what followed it, as we did
            pending = [snapshot.loads(r.payload, self._wired, modules) for r in found.pending]
            self.execution.adopt(pending)
            self.execution.reconcile(external)
            self.reconciler.startup(external)  # open orders and balances, before any entry
        self._resume_at = (now, next_ts)
        self.resumed_from = found.snapshot

    def execute(
        self,
        progress: Callable[[int, int], None] | None = None,
        out_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Run the scenario; return the summary. Ctrl-C ends the run early: the summary
        is then marked ``complete: false`` and ``self.interrupted`` is set."""
        listeners = list(self.listeners)
        for listener in listeners:
            self.pm.register(listener, name=f"{listener.name}:{id(listener)}")
        complete = False
        outputs = None
        self._hooks: dict[str, Any] = {}
        try:
            with localcontext(MONEY_CONTEXT):
                self._open_session()
                if out_dir is not None:  # once the session is open: a refusal leaves DIR alone
                    resuming = self.info.session if self.resume else None
                    outputs = self._outputs = Outputs(out_dir, self.execution, resuming)
                    self.pm.register(outputs, name=f"{outputs.name}:{id(outputs)}")
                    listeners.append(outputs)
                self._silence()
                if self._resume_at is None:  # a resumed run's timers and faults are restored
                    for strategy in self.strategies:
                        strategy.on_start()
                    for fault in self.faults:
                        fault.arm()
                self.pm.hook.arbframe_on_run_start(run=self.info)
                try:
                    self._drive(progress)
                    complete = not self.interrupted
                except KeyboardInterrupt:  # a second Ctrl-C: stop wherever it lands
                    self.interrupted = True
                    self.bus.drain(self._deliver)
                summary = self.summary(complete)
                self.pm.hook.arbframe_on_run_end(run=self.info, summary=summary)
        finally:
            if not complete and not self.interrupted and outputs is not None:
                with suppress(Exception):  # best effort: the crash itself is what matters
                    outputs.crashed(self.summary(False))
            for listener in listeners:
                listener.close()
                self.pm.unregister(listener)
            if self.sessions is not None:
                self.sessions.close()
        return summary

    def _silence(self) -> None:
        hook = self.pm.hook
        self.bus.silence(  # events no listener wants are not even built
            [n.removeprefix("arbframe_on_") for n in dir(hook) if n.startswith("arbframe_on_")],
            lambda name: bool(getattr(hook, f"arbframe_on_{name}").get_hookimpls()),
        )

    def _open_session(self) -> None:
        sessions = self.sessions
        if sessions is None:
            return
        sessions.open()
        if self.resume:
            return self._restore()
        held = sessions.held()
        if held and not self.reset and self.info.clock == "wall":
            raise ResumeError(
                f"session {self.info.session!r} already has state (snapshot #{held}): pass "
                "--resume to continue it or --reset to start it clean"
            )
        sessions.start_fresh()

    def summary(self, complete: bool = True) -> dict[str, Any]:
        summary = self._summary(complete)
        summary["reconciliation"].update(self.reconciler.summary(self.stats.start))
        checked = summary["integrity"] = integrity.check(
            self.venues,
            self.ledger,
            self.execution.trades.values(),
            self.market.instruments(),
            self.execution.orders.values(),
        )
        self._trading_after_faults(summary["faults"]["timeline"])
        summary["faults"]["position_loss"] = checked["position_loss"]
        summary["faults"]["state_integrity"] = checked["state_integrity"]
        if self.sessions is not None:
            state = session_summary(self.sessions)
            state["resumed_from"] = getattr(self.resumed_from, "seq", None)
            state["resume_queries"] = self.execution.order_counts["resume_queries"]
            state["revivals"] = [self._revival(r) for r in self.revivals]
            summary["state"] = state
        if self.alerting is not None:
            summary["alerting"] = self.alerting.summary()
        return judge(summary, self.scenario)

    def _trading_after_faults(self, timeline: dict[str, Any]) -> None:
        """Did trading go on after each fault? Entries (filled) and exits after it recovered."""
        for name, entry in timeline.items():
            record = self.fault_log.records[name]
            after = record.recovered_at if record.recovered_at is not None else NEVER
            trades = self.execution.trades.values()
            entry["entries_after"] = sum(t.opened_at > after and bool(t.fills) for t in trades)
            entry["exits_after"] = sum(t.exited and (t.closed_at or 0) > after for t in trades)

    def _revival(self, revival: dict[str, Any]) -> dict[str, Any]:
        """A revival in the summary: when, from which snapshot, how long until the venues
        had answered, and whether trading went on after it."""
        start, killed, recovered = self.stats.start, revival["killed_ns"], revival["recovered_ns"]
        after = recovered if recovered is not None else NEVER
        trades = self.execution.trades.values()
        return {
            "killed_at_s": round((killed - start) / 1e9, 3),
            "resumed_from": revival["resumed_from"],
            "recovered_at_s": None if recovered is None else round((recovered - start) / 1e9, 3),
            "mttr_s": None if recovered is None else round((recovered - killed) / 1e9, 3),
            "entries_after": sum(t.opened_at > after and bool(t.fills) for t in trades),
            "exits_after": sum(t.exited and (t.closed_at or 0) > after for t in trades),
        }

    def _summary(self, complete: bool) -> dict[str, Any]:
        return build_summary(
            info=self.info,
            scenario=self.scenario,
            stats=self.stats,
            execution=self.execution,
            guards=self.guard_chain,
            market=self.market,
            audit=self.audit,
            venues=self.venues,
            faults=self.fault_log.summary(self.stats.start),
            complete=complete,
            loop=None if self.health is None else self.health.summary(),
            universe=self.universe,
            inventory=self.inventory,
        )
