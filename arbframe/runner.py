"""Wiring: a loaded scenario becomes components, an engine and a driver; then a summary."""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

import pluggy

from arbframe.components import FeedEvent
from arbframe.driver import DriveStats, run_simulated
from arbframe.engine import Engine
from arbframe.errors import ArbframeError, ConfigError
from arbframe.plugins import Registry
from arbframe.scenario import LoadedScenario
from arbframe.summary import build_summary
from arbframe.units import parse_duration


class Run:
    """One execution of a scenario. Components reach the engine and helpers through it."""

    def __init__(
        self,
        loaded: LoadedScenario,
        registry: Registry,
        pm: pluggy.PluginManager,
        seed: int | None = None,
    ) -> None:
        self.loaded = loaded
        self.scenario: dict[str, Any] = loaded.data
        self.name: str = self.scenario["name"]
        self.seed: int = self.scenario.get("seed", 0) if seed is None else seed
        self.report_currency: str = self.scenario.get("report_currency", "USDT")
        self.registry = registry
        self.pm = pm
        self.hook = pm.hook
        self.fault_counts: Counter[str] = Counter()
        self._wire()

    # ---- helpers for components ---------------------------------------------------------

    def resolve_path(self, path: str | Path) -> Path:
        """Relative paths in a scenario resolve against the scenario file's directory."""
        return self.loaded.path.parent / Path(path)

    def venue_quote(self, venue: str) -> str:
        return self.venues[venue].quote

    def fx_rate(self, currency: str) -> float:
        return float(self.fx[currency])

    def fault(self, name: str, **detail: Any) -> None:
        """Fault injectors call this when they fire."""
        self.fault_counts[name] += 1
        self.hook.arbframe_on_fault(run=self, name=name, detail=detail)

    def error(self, path: tuple[str | int, ...], message: str) -> ArbframeError:
        return self.loaded.error(path, message)

    # ---- wiring -------------------------------------------------------------------------

    def _build(self, kind: str, path: tuple[str | int, ...], name: str) -> Any:
        block: Any = self.scenario
        for part in path:
            block = block[part]
        config = {k: v for k, v in block.items() if k != "type"}
        try:
            component = self.registry.get(kind, block["type"]).cls(config, name=name, run=self)
        except ConfigError as err:
            raise self.error((*path, *err.key), err.message) from None
        component.scenario_path = path
        return component

    def _wire(self) -> None:
        sc = self.scenario
        if sc.get("clock", "simulated") != "simulated":
            raise self.error(
                ("clock",), "the wall-clock driver is not available yet; use clock: simulated"
            )
        if sc.get("mode", "paper") in ("shadow", "live"):
            raise self.error(
                ("mode",),
                f"mode {sc['mode']} needs real venues, which are not "
                "available yet; use backtest or paper",
            )
        self.venues = {
            name: self._build("exchange", ("venues", name), name) for name in sc["venues"]
        }
        self.fx = {cur: Decimal(str(rate)) for cur, rate in sc.get("fx", {}).items()}
        self.fx[self.report_currency] = Decimal(1)
        for name, venue in self.venues.items():
            if venue.quote not in self.fx:
                raise self.error(
                    ("venues", name),
                    f"no FX rate for {venue.quote}: add "
                    f"fx: {{{venue.quote}: <units per {self.report_currency}>}}",
                )
        for venue, assets in sc.get("capital", {}).items():
            if venue not in self.venues:
                raise self.error(
                    ("capital", venue),
                    f"unknown venue {venue!r} (venues: {', '.join(self.venues)})",
                )
            for asset, amount in assets.items():
                self.venues[venue].balances[asset] = Decimal(str(amount))
        self.feeds = [
            self._build("feed", ("feeds", i), f"feeds[{i}]") for i in range(len(sc["feeds"]))
        ]
        for i, feed in enumerate(self.feeds):
            for venue in feed.venues():
                if venue not in self.venues:
                    raise self.error(
                        ("feeds", i),
                        f"feed quotes unknown venue {venue!r} (venues: {', '.join(self.venues)})",
                    )
                for symbol in feed.symbols():
                    if symbol not in self.venues[venue].markets:
                        self.venues[venue].add_market(symbol)
        self.engine = Engine(self, self.venues, self.fx)
        self.strategy = self._build("strategy", ("strategy",), "strategy")
        self.engine.strategy = self.strategy
        self.guards = [
            self._build("guard", ("guards", i), b.get("name", b["type"]))
            for i, b in enumerate(sc.get("guards", []))
        ]
        self.engine.guards = self.guards
        # Built now (config errors surface here); they receive events only while running.
        self.listeners = [
            self._build(kind, (slot, i), f"{slot}[{i}]")
            for slot, kind in (("sinks", "sink"), ("alerts", "alert"))
            for i in range(len(sc.get(slot, [])))
        ]
        self.faults = [
            self._build("fault", ("faults", i), f"faults[{i}]")
            for i in range(len(sc.get("faults", [])))
        ]

    def _events(self) -> Iterator[FeedEvent]:
        streams = [feed.events() for feed in self.feeds]
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=itemgetter(0))

    # ---- running ------------------------------------------------------------------------

    def execute(self, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        duration = parse_duration(self.scenario["duration"])
        for listener in self.listeners:
            self.pm.register(listener, name=f"{listener.name}:{id(listener)}")
        try:
            self.strategy.on_start()
            for fault in self.faults:
                fault.arm()
            self.hook.arbframe_on_run_start(run=self)
            self.stats: DriveStats = run_simulated(self.engine, self._events(), duration, progress)
            summary = build_summary(self, self.stats)
            self.hook.arbframe_on_run_end(run=self, summary=summary)
        finally:
            for listener in self.listeners:
                listener.close()
                self.pm.unregister(listener)
        return summary

    def write_outputs(self, out_dir: Path, summary: dict[str, Any]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "summary.json").write_text(dumps(summary) + "\n")
        ledger = self.engine.ledger
        _write_jsonl(out_dir / "fills.jsonl", (f.as_dict() for f in ledger.fills))
        _write_jsonl(out_dir / "trades.jsonl", (t.as_dict() for t in ledger.closed if t.fills))
        _write_jsonl(out_dir / "orders.jsonl", (o.as_dict() for o in self.engine.orders.values()))


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> None:
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")
