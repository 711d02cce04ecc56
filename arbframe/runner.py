"""Wiring: a loaded scenario becomes components, the kernel's services and a driver; then a
summary. The only module that sees everything; components see their context only.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from decimal import Decimal, localcontext
from operator import itemgetter
from pathlib import Path
from typing import Any

import pluggy

from arbframe.audit import Audit
from arbframe.bus import EventBus
from arbframe.clock import SimClock
from arbframe.components import (
    CONTEXTS,
    Component,
    Exchange,
    FeedEvent,
    RunInfo,
    SimulatedExchange,
    Strategy,
)
from arbframe.driver import DriveStats, StopRequest, run_simulated
from arbframe.errors import ArbframeError, ConfigError
from arbframe.execution import ExecutionEngine, ExecutionSettings
from arbframe.ledger import Ledger
from arbframe.market import MarketView
from arbframe.model import Book
from arbframe.money import MONEY_CONTEXT
from arbframe.outputs import Outputs
from arbframe.plugins import Registry
from arbframe.realtime import LoopHealth, WallClock, run_wall
from arbframe.risk import GuardChain
from arbframe.scenario import LoadedScenario
from arbframe.summary import build_summary
from arbframe.units import parse_duration


class Run:
    """One execution of a scenario."""

    def __init__(
        self,
        loaded: LoadedScenario,
        registry: Registry,
        pm: pluggy.PluginManager,
        seed: int | None = None,
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
            session=sc.get("session", sc["name"]),
        )
        wall = self.info.clock == "wall"
        self.clock: SimClock | WallClock = WallClock() if wall else SimClock()
        self.health = LoopHealth() if wall else None
        """How the wall-clock driver's loop keeps up (the summary's ``loop``); None if simulated."""
        self.bus = EventBus()
        self.fault_counts: Counter[str] = Counter()
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
        kernel_keys = ("type", "name", "execution") if kind == "strategy" else ("type",)
        config = {k: v for k, v in block.items() if k not in kernel_keys}
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

    def resolve_path(self, path: str | Path) -> Path:
        """Relative paths in a scenario resolve against the scenario file's directory."""
        return self.loaded.path.parent / Path(path)

    def _error(self, path: tuple[str | int, ...], message: str) -> ArbframeError:
        return self.loaded.error(path, message)

    # ---- wiring ---------------------------------------------------------------------------------

    def _wire(self) -> None:
        sc = self.scenario
        if self.info.mode in ("shadow", "live"):
            raise self._error(
                ("mode",),
                f"mode {self.info.mode} needs real venues, which are not available yet; "
                "use backtest or paper",
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
            )
            for i in range(len(sc["feeds"]))
        ]
        self._add_instruments()
        self.ledger = Ledger(
            self.info.report_currency, {n: v.balances() for n, v in self.venues.items()}
        )
        self.guards = [
            self._build(
                "guard",
                ("guards", i),
                b.get("name", b["type"]),
                clock=self.clock,
                alert=self._alert,
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
        )
        self.settings = self._settings(("execution",), sc.get("execution", {}))
        self.strategies = self._build_strategies()
        # Built now (config errors surface here); they receive events only while running.
        self.listeners = [
            self._build(kind, (slot, i), f"{slot}[{i}]")
            for slot, kind in (("sinks", "sink"), ("alerts", "alert"))
            for i in range(len(sc.get(slot, [])))
        ]
        self.faults = [
            self._build(
                "fault",
                ("faults", i),
                f"faults[{i}]",
                clock=self.clock,
                venues=self.venues,
                fired=self._fault,
                order=self.execution.orders.get,
            )
            for i in range(len(sc.get("faults", [])))
        ]
        self.audit = Audit(self.market)
        self.execution.flow.health = self.health
        self.bus.subscribe_journal(self.audit.on_event, "fill")

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
                set_timer=self._timer_setter(holder),
                alert=self._alert,
            )
            holder.append(strategy)
            strategies.append(strategy)
        return strategies

    def _settings(self, path: tuple[str | int, ...], config: dict[str, Any]) -> ExecutionSettings:
        base = getattr(self, "settings", None)
        settings = ExecutionSettings.from_config(config, base)
        if settings.order_timeout <= 0:  # every order would be queried before it could answer
            raise self._error((*path, "order_timeout"), "must be longer than 0")
        return settings

    # ---- services -------------------------------------------------------------------------------

    def _report(self, report: Any) -> None:
        self.execution.flow.on_report(report)

    def _alert(self, severity: str, title: str, detail: str = "") -> None:
        self.execution.alert(severity, title, detail)

    def _fault(self, name: str, **detail: Any) -> None:
        self.fault_counts[name] += 1
        self.bus.publish("fault", name=name, detail=detail)

    def _timer_setter(self, holder: list[Strategy]) -> Callable[[int, Any], None]:
        def fire(payload: Any) -> None:
            if not self.execution.closing:
                holder[0].on_timer(self.clock.now, payload)

        def set_timer(delay: int, payload: Any) -> None:
            self.clock.call_later(max(0, delay), fire, payload)

        return set_timer

    def fx_rate(self, currency: str) -> float:
        return self.market.fx[currency]

    def venue_quote(self, venue: str) -> str:
        return self.venues[venue].quote  # type: ignore[attr-defined]

    # ---- running --------------------------------------------------------------------------------

    def _events(self) -> Iterator[FeedEvent]:
        streams = [feed.events() for feed in self.feeds]
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=itemgetter(0))

    def _deliver(self, name: str, payload: dict[str, Any]) -> None:
        hook = self._hooks.get(name)
        if hook is None:  # resolved once a run (silent events never get here)
            hook = self._hooks[name] = getattr(self.pm.hook, f"arbframe_on_{name}")
        hook(run=self.info, **payload)

    def _drive(self, progress: Callable[[int, int], None] | None) -> None:
        targets: dict[str, dict[str, Any]] = {}
        for instrument in self.market.instruments():
            simulated: Any = self.venues[instrument.venue]
            per_venue = targets.setdefault(instrument.venue, {})
            record = self.audit.recorder(instrument, per_venue, simulated.on_book)
            per_venue[instrument.symbol] = (record, simulated.on_book)
        starters = [v.on_start for v in self.venues.values() if isinstance(v, SimulatedExchange)]

        def on_first(ts: int) -> None:
            for start in starters:
                start(ts)

        bus, deliver = self.bus, self._deliver
        args = (
            self._events(),
            parse_duration(self.scenario["duration"]),
            targets,
            self.market.set_fx,
            [s.on_market for s in self.strategies],
            (bus.queue, lambda: bus.drain(deliver)),
            on_first,
            progress,
            self.stats,
            self.stop,
        )
        if isinstance(self.clock, WallClock):
            speed = float(self.scenario.get("speed", 1))
            asyncio.run(run_wall(self.clock, *args, speed=speed, health=self.health))
        else:
            run_simulated(self.clock, *args)
        if self.stats.stopped:  # a partial run: what happened is kept, nothing is invented
            self.interrupted = True
            bus.drain(deliver)
            return
        # Wind down: strategies have their say, open trades close, in-flight orders settle.
        for strategy in self.strategies:
            strategy.on_end()
        self.execution.wind_down()
        self.clock.drain()
        bus.drain(deliver)

    def execute(
        self,
        progress: Callable[[int, int], None] | None = None,
        out_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Run the scenario; return the summary. Ctrl-C ends the run early: the summary
        is then marked ``complete: false`` and ``self.interrupted`` is set."""
        outputs = Outputs(out_dir, self.execution) if out_dir is not None else None
        listeners = [*self.listeners, *([outputs] if outputs else [])]
        for listener in listeners:
            self.pm.register(listener, name=f"{listener.name}:{id(listener)}")
        complete = False
        self._hooks: dict[str, Any] = {}
        hook = self.pm.hook
        self.bus.silence(  # events no listener wants are not even built
            [n.removeprefix("arbframe_on_") for n in dir(hook) if n.startswith("arbframe_on_")],
            lambda name: bool(getattr(hook, f"arbframe_on_{name}").get_hookimpls()),
        )
        try:
            with localcontext(MONEY_CONTEXT):
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
        return summary

    def summary(self, complete: bool = True) -> dict[str, Any]:
        return build_summary(
            info=self.info,
            scenario=self.scenario,
            stats=self.stats,
            execution=self.execution,
            guards=self.guard_chain,
            market=self.market,
            audit=self.audit,
            venues=self.venues,
            faults=self.fault_counts,
            complete=complete,
            loop=None if self.health is None else self.health.summary(),
        )
