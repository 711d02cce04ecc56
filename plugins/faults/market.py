"""Market stress for the D69 drills, each from `at` for `duration` after the first feed event.

* `slippage_stress`: the venue's taker fills are `bps` worse than the book (each level
  moved against the taker, then rounded to the tick against it). The venue's fee schedule
  carries it as ``markup_bps``, so the audit checks every fill against the moved levels.
* `fee_surge`: the venue's taker fee becomes `taker_bps`; fills are charged at it and the
  audit checks them against the surged schedule.
  Both change the venue's published schedule in the window, and restore it at the first
  moment after the window with none of the venue's fills in flight (a fill made under the
  surge is checked under it). *Detected* at the first stressed fill the kernel receives;
  *recovered* at the first fill after the restore.
* `flash_move`: the books of `symbol` on `venue` (every venue without one) move by `pct`
  (-5: a crash, +5: a spike) linearly over `over`, hold, and from `duration` after the start
  move back over `over`. *Detected* at the first book delivered at the full move;
  *recovered* at the first book delivered back at the original prices.
* `quote_noise`: every book of `venue` in the window is moved by a random premium, uniform in
  +-`bps` (the fault's own seeded generator: the same seed gives the same noise). *Detected*
  at the first noisy book delivered; *recovered* at the first clean one after the window.
The book faults rewrite the books before anyone sees them (the audit's record, the venue,
the strategies), through the venue's market-data link.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from arbframe.audit import _marked_up
from arbframe.components import Fault, SimulatedExchange
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import FillReport
from arbframe.schema import DURATION
from arbframe.units import parse_duration

from .window import NEVER, REQUIRED, WINDOW, WindowFault

BPS = 10_000


def _paper(fault: Any) -> Any:
    venue = fault.venue
    if not isinstance(venue, SimulatedExchange) or not hasattr(venue, "report_filters"):
        raise ConfigError(
            f"venue {venue.name!r} ({venue.type_name}) does not support {fault.type_name}",
            ("venue",),
        )
    return venue


class _ScheduleStress(WindowFault):
    """A venue's fee schedule changed in the window (see the module docstring)."""

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        _paper(self)
        self.inflight: set[str] = set()
        self.saved: dict[str, Any] = {}  # symbol -> its schedule before the surge
        self.closing = False
        self.stressed_fills = 0

    def stressed(self, schedule: Any) -> Any:
        raise NotImplementedError

    def arm(self) -> None:
        self.venue.report_filters.append(self._sent)
        self.ctx.watch_reports(self._received)

    def begin(self) -> None:
        for instrument in self.venue.instruments().values():
            self.saved[instrument.symbol] = instrument.fees
            # Instruments are shared by the venue, the kernel and the audit: one change, seen
            # by all three.
            object.__setattr__(instrument, "fees", self.stressed(instrument.fees))
        self.ctx.fired(self.type_name, venue=self.venue.name, **self.detail())

    def detail(self) -> dict[str, Any]:
        return {}

    def end(self) -> None:
        self.closing = True
        self._restore()

    def _restore(self) -> None:
        if not self.closing or self.inflight or not self.saved:
            return
        for instrument in self.venue.instruments().values():
            if instrument.symbol in self.saved:
                object.__setattr__(instrument, "fees", self.saved[instrument.symbol])
        self.saved = {}

    def _sent(self, report: Any) -> bool:
        if isinstance(report, FillReport) and self.saved:
            self.inflight.add(report.fill_id)
        return False  # watched, never lost

    def _received(self, report: Any) -> None:
        if report.venue != self.venue.name or not isinstance(report, FillReport):
            return
        if report.fill_id in self.inflight:
            self.inflight.discard(report.fill_id)
            self.stressed_fills += 1
            self.ctx.detected(venue=self.venue.name, fill_id=report.fill_id)
            if self.closing and not self.inflight:
                # After this fill is booked (and audited under the surge), not before.
                self.ctx.clock.call_later(0, self._restore)
        elif not self.saved and self.closing:
            self.ctx.recovered(venue=self.venue.name, fill_id=report.fill_id)

    def stats(self) -> dict[str, Any]:
        return {"stressed_fills": self.stressed_fills}


class SlippageStress(_ScheduleStress):
    type_name = "slippage_stress"
    description = "Taker fills `bps` worse than the book in the window."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": [*REQUIRED, "bps"],
        "properties": {**WINDOW, "bps": {"type": "number", "exclusiveMinimum": 0}},
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.bps = Decimal(str(config["bps"]))

    def arm(self) -> None:
        super().arm()
        self.venue._check = self._marked_check

    def stressed(self, schedule: Any) -> Any:
        return replace(schedule, markup_bps=schedule.markup_bps + self.bps)

    def detail(self) -> dict[str, Any]:
        return {"bps": float(self.bps)}

    def _marked_check(self, request: Any, cap: Decimal) -> tuple[str, list[Any]]:
        venue = self.venue
        problem, plan = type(venue)._check(venue, request, cap)  # its own pricing, then ours
        instrument = self.venue.instruments().get(request.symbol)
        if problem or not plan or instrument is None or not instrument.fees.markup_bps:
            return problem, plan
        markup, tick = instrument.fees.markup_bps, instrument.price_tick
        plan = [(_marked_up(p, request.side, markup, tick), a, i) for p, a, i in plan]
        return self.venue._shortfall(request, plan, instrument), plan


class FeeSurge(_ScheduleStress):
    type_name = "fee_surge"
    description = "The venue's taker fee becomes `taker_bps` in the window."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": [*REQUIRED, "taker_bps"],
        "properties": {**WINDOW, "taker_bps": {"type": "number", "minimum": 0}},
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.taker_bps = Decimal(str(config["taker_bps"]))

    def stressed(self, schedule: Any) -> Any:
        return replace(schedule, taker_bps=self.taker_bps)

    def detail(self) -> dict[str, Any]:
        return {"taker_bps": float(self.taker_bps)}


class _BookStress(Fault):
    """Books of one or every simulated venue rewritten in a window."""

    interface_version = 2

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.at = parse_duration(config["at"])
        self.duration = parse_duration(config["duration"])
        if self.duration <= 0:
            raise ConfigError("must be longer than 0", ("duration",))
        simulated = [n for n, v in ctx.venues.items() if isinstance(v, SimulatedExchange)]
        venue = config.get("venue")
        if venue is not None and venue not in simulated:
            known = ", ".join(simulated)
            raise ConfigError(f"unknown or not simulated venue {venue!r} ({known})", ("venue",))
        self.targets = [venue] if venue else simulated
        self.begins = self.ends = NEVER
        self.over = False
        self.moved_books = 0

    def arm(self) -> None:
        for venue in self.targets:
            self.ctx.link(venue).rewrites.append(self.rewrite)

    def on_start(self, ts: int) -> None:
        self.begins = ts + self.at
        self.ends = self.begins + self.duration
        self.ctx.clock.call_at(self.begins, self._fire)

    def on_end(self) -> None:
        self.over = True

    def _fire(self) -> None:
        if not self.over:
            self.ctx.fired(self.type_name, venues=self.targets, **self.detail())

    def detail(self) -> dict[str, Any]:
        return {}

    def rewrite(self, ts: int, symbol: str, bids: Any, asks: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        return {"moved_books": self.moved_books}


def _scaled(levels: Any, factor: float) -> tuple[Any, ...]:
    return tuple((price * factor, size) for price, size in levels)


class FlashMove(_BookStress):
    type_name = "flash_move"
    description = "A symbol's books move by `pct` over `over`, then back after `duration`."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["symbol", "at", "duration", "pct"],
        "properties": {
            "symbol": {"type": "string"},
            "venue": {"type": "string", "description": "One venue (default: every venue)."},
            "at": WINDOW["at"],
            "duration": WINDOW["duration"],
            "pct": {"type": "number", "minimum": -90, "maximum": 1000, "not": {"const": 0}},
            "over": {**DURATION, "description": "How long the move (and the return) takes."},
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.symbol = config["symbol"]
        self.pct = float(config["pct"]) / 100
        self.ramp = max(1, parse_duration(config.get("over", "10s")))

    def detail(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "pct": self.pct * 100}

    def factor(self, ts: int) -> float:
        if ts < self.begins or ts >= self.ends + self.ramp:
            return 1.0
        if ts < self.begins + self.ramp:
            return 1 + self.pct * (ts - self.begins) / self.ramp
        if ts < self.ends:
            return 1 + self.pct
        return 1 + self.pct * (1 - (ts - self.ends) / self.ramp)

    def rewrite(self, ts: int, symbol: str, bids: Any, asks: Any) -> tuple[Any, Any]:
        if symbol != self.symbol or self.over:
            return bids, asks
        factor = self.factor(ts)
        if factor == 1.0:
            if self.moved_books and ts >= self.ends:
                self.ctx.recovered(symbol=symbol)
            return bids, asks
        self.moved_books += 1
        if ts >= self.begins + self.ramp:
            self.ctx.detected(symbol=symbol, pct=self.pct * 100)
        return _scaled(bids, factor), _scaled(asks, factor)


class QuoteNoise(_BookStress):
    type_name = "quote_noise"
    description = "Random premium noise of +-`bps` on a venue's books in the window."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": [*REQUIRED, "bps"],
        "properties": {**WINDOW, "bps": {"type": "number", "exclusiveMinimum": 0}},
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.bps = float(config["bps"])

    def detail(self) -> dict[str, Any]:
        return {"bps": self.bps}

    def rewrite(self, ts: int, symbol: str, bids: Any, asks: Any) -> tuple[Any, Any]:
        if self.over or not self.begins <= ts < self.ends:
            if self.moved_books and ts >= self.ends:
                self.ctx.recovered(venue=self.targets[0])
            return bids, asks
        self.moved_books += 1
        self.ctx.detected(venue=self.targets[0])
        factor = 1 + self.ctx.random.uniform(-self.bps, self.bps) / BPS
        return _scaled(bids, factor), _scaled(asks, factor)


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(SlippageStress)
    register(FeeSurge)
    register(FlashMove)
    register(QuoteNoise)
