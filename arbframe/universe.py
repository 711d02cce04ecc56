"""The kernel side of ``universe:``: which symbols the strategies trade, and when that changes.

A :class:`~arbframe.components.Universe` plugin picks symbols; this module does the rest.
At the first feed event and every ``refresh`` of scenario time (a clock call, so simulated
and wall-clock runs alike, re-armed on resume from the snapshot's heap) it:

1. lists the candidates: every symbol quoted on at least two venues whose instrument's quote
   currency passes ``quote`` (a spread needs two venues), not blacklisted, with a 24h volume
   (report currency, summed over those venues) of at least ``min_volume`` when one is set;
2. asks the plugin's ``select(candidates)``;
3. records the change (``summary.universe.changes``, the ``universe_change`` event). A removed
   symbol gets no new entry (the gate below refuses it, whatever a strategy asks); its open
   trades exit at once, urgently, for ``universe_removed`` (``on_remove: close``), or run to
   their normal exit (``keep``): their symbol's ``on_market`` goes on until they close.

Strategies hear ``on_market`` only for admitted symbols: one set lookup per symbol per
instant, the whole cost on the per-quote path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbframe.model import Action, GuardDecision, Intent, Trade, TradeState
from arbframe.units import parse_duration

if TYPE_CHECKING:
    from arbframe.bus import EventBus
    from arbframe.components import Universe
    from arbframe.execution import ExecutionEngine
    from arbframe.market import MarketView

KERNEL_KEYS = ("type", "refresh", "on_remove", "quote", "min_volume", "blacklist")
"""The keys of a ``universe:`` block the kernel reads (arbframe.schema.UNIVERSE_KEYS)."""
EXIT_REASON = "universe_removed"
RETRY_NS = 1_000_000_000  # a removed symbol's trade still entering is asked again this often


@dataclass(frozen=True)
class UniverseChange:
    """An evaluation that changed the active symbols (``arbframe_on_universe_change``)."""

    ts: int
    """When (ns)."""
    added: tuple[str, ...]
    """Symbols that start trading now, sorted."""
    removed: tuple[str, ...]
    """Symbols that get no new entries from now, sorted."""
    active: tuple[str, ...]
    """Every active symbol after the change, sorted."""


@dataclass(frozen=True)
class Filters:
    """The filters every universe type shares (the block's kernel keys)."""

    quote: frozenset[str] | None
    min_volume: float | None
    blacklist: frozenset[str]

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> Filters:
        quote = block.get("quote")
        return cls(
            frozenset(quote) if quote else None,
            block.get("min_volume"),
            frozenset(block.get("blacklist", ())),
        )


def config_problem(
    block: dict[str, Any], market: MarketView
) -> tuple[tuple[str | int, ...], str] | None:
    """(key path inside the block, message) for a filter naming what no feed quotes."""
    symbols = set(market.symbols())
    for i, symbol in enumerate(block.get("blacklist", ())):
        if symbol not in symbols:
            return (
                "blacklist",
                i,
            ), f"no feed quotes {symbol!r} (symbols: {', '.join(sorted(symbols))})"
    quotes = {i.quote for i in market.instruments()}
    for i, currency in enumerate(block.get("quote", ())):
        if currency not in quotes:
            return (
                "quote",
                i,
            ), f"no instrument is quoted in {currency} (quoted in: {', '.join(sorted(quotes))})"
    return None


class UniverseKernel:
    """Evaluates the universe, keeps the admitted symbols and closes removed ones' trades."""

    name = type_name = "universe"  # as a tier of the guard chain (summary.guards...universe)

    def __init__(
        self,
        component: Universe,
        block: dict[str, Any],
        market: MarketView,
        execution: ExecutionEngine,
        bus: EventBus,
    ) -> None:
        self.component = component
        self.type = block["type"]
        self.refresh = parse_duration(block["refresh"]) if "refresh" in block else None
        self.on_remove = block.get("on_remove", "close")
        self.filters = Filters.from_config(block)
        self.market, self.execution, self.bus = market, execution, bus
        self.clock = execution.clock
        self.active: set[str] = set()
        """Symbols open to new entries."""
        self.admitted: set[str] = set()
        """Symbols whose ``on_market`` reaches the strategies: the active ones, and removed
        ones kept (``keep``) while a trade on them is open. Changed in place only: the
        driver's filter holds it."""
        self.kept: set[str] = set()
        self.pending: list[str] = []  # trade ids to exit once they can (still entering)
        self.changes: list[UniverseChange] = []
        self.evaluations = 0
        self.removal_exits = 0
        """Exits the kernel asked for with reason ``universe_removed``."""
        self.retrying = False  # a retry of the pending exits is scheduled

    # ---- the strategies' side (per quote) ---------------------------------------------------

    def filter(self, deciders: list[Callable[[int, str], None]]) -> Callable[[int, str], None]:
        """One ``on_market`` for the driver: the strategies', for admitted symbols only."""
        admitted = self.admitted

        def on_market(ts: int, symbol: str) -> None:
            if symbol in admitted:
                for decide in deciders:
                    decide(ts, symbol)

        return on_market

    # ---- as a guard tier: no entry on a symbol not active -----------------------------------

    def check(self, intent: Intent) -> GuardDecision | None:
        quote = self.filters.quote
        for leg in intent.route.legs:
            if leg.symbol not in self.active:
                why = f"{leg.symbol} is not in the universe"
            elif (
                quote is not None
                and (currency := self.market.instrument(leg.venue, leg.symbol).quote) not in quote
            ):  # a symbol is in, but not its instruments in other currencies
                why = f"{leg.venue} quotes {leg.symbol} in {currency}, not in the universe's quote"
            else:
                continue
            return GuardDecision(intent.ts, self.name, Action.BLOCK, why, symbol=intent.symbol)
        return None

    def on_trade_opened(self, trade: Trade) -> None:
        pass

    def on_trade_closed(self, trade: Trade) -> None:
        if not self.kept:
            return
        for symbol in {leg.symbol for leg in trade.legs} & self.kept:
            if not self._open_on(symbol):
                self.kept.discard(symbol)
                if symbol not in self.active:
                    self.admitted.discard(symbol)

    def state(self) -> dict[str, Any]:
        return {"active": len(self.active), "kept": sorted(self.kept)}

    # ---- evaluations --------------------------------------------------------------------------

    def start(self, ts: int) -> None:
        """The first feed event: the first evaluation at ``ts`` (before its books reach a
        strategy; the clock is not at ``ts`` yet), then every ``refresh``."""
        self.clock.call_at(ts, self._tick)

    def _tick(self) -> None:
        if self.execution.closing:  # the run winds down: nothing changes any more
            return
        self.evaluate(self.clock.now)
        if self.refresh:
            self.clock.call_later(self.refresh, self._tick)

    def candidates(self) -> dict[str, float | None]:
        """Eligible symbol -> its 24h volume in the report currency (None: unreported)."""
        market, f = self.market, self.filters
        out: dict[str, float | None] = {}
        for symbol in market.symbols():
            if symbol in f.blacklist:
                continue
            venues = [
                v for v in market.quoting(symbol)
                if f.quote is None or market.instrument(v, symbol).quote in f.quote
            ]  # fmt: skip
            if len(venues) < 2:
                continue
            known = [x for x in (market.volume(v, symbol) for v in venues) if x is not None]
            volume = sum(known) if known else None
            if f.min_volume is not None and (volume is None or volume < f.min_volume):
                continue
            out[symbol] = volume
        return out

    def evaluate(self, ts: int) -> UniverseChange | None:
        candidates = self.candidates()
        chosen = {s for s in self.component.select(candidates) if s in candidates}
        self.evaluations += 1
        added = tuple(sorted(chosen - self.active))
        removed = tuple(sorted(self.active - chosen))
        if not added and not removed:
            return None
        self.active.clear()
        self.active.update(chosen)
        self.admitted.update(added)
        for symbol in removed:
            self._remove(symbol)
        change = UniverseChange(ts, added, removed, tuple(sorted(self.active)))
        self.changes.append(change)
        self.bus.publish("universe_change", change=change)
        if self.pending and not self.retrying:
            self._exit_pending()
        return change

    def _remove(self, symbol: str) -> None:
        trades = self._open_on(symbol)
        if self.on_remove == "keep" and trades:
            self.kept.add(symbol)
            return
        self.admitted.discard(symbol)
        if self.on_remove == "close":
            self.pending.extend(t.trade_id for t in trades if t.trade_id not in self.pending)

    def _open_on(self, symbol: str) -> list[Trade]:
        return [
            job.trade for job in self.execution.jobs.values()
            if any(leg.symbol == symbol for leg in job.trade.legs)
        ]  # fmt: skip

    def _exit_pending(self) -> None:
        """Exit every pending trade that is open now; ask again later for the others."""
        waiting = []
        for trade_id in self.pending:
            job = self.execution.jobs.get(trade_id)
            if job is None:  # closed meanwhile
                continue
            if job.trade.state is TradeState.OPEN and job.port.exit(
                job.trade, EXIT_REASON, urgent=True
            ):
                self.removal_exits += 1
            elif job.trade.state is not TradeState.EXITING:  # entering, resizing, reconciling
                waiting.append(trade_id)
        self.pending[:] = waiting
        if waiting and not self.execution.closing:
            self.retrying = True
            self.clock.call_later(RETRY_NS, self._retry)

    def _retry(self) -> None:
        self.retrying = False
        self._exit_pending()

    # ---- snapshots and the summary --------------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        keys = ("active", "admitted", "kept", "pending", "changes", "evaluations", "removal_exits",
                "retrying")  # fmt: skip
        return {k: getattr(self, k) for k in keys} | {"volumes": dict(self.market.volumes)}

    def restore_state(self, state: dict[str, Any]) -> None:
        for key in ("active", "admitted", "kept"):  # in place: the driver's filter holds them
            getattr(self, key).clear()
            getattr(self, key).update(state[key])
        self.pending[:] = state["pending"]
        self.changes, self.evaluations = state["changes"], state["evaluations"]
        self.removal_exits, self.retrying = state["removal_exits"], state["retrying"]
        self.market.volumes.clear()
        self.market.volumes.update(state["volumes"])

    def summary(self, iso: Callable[[int], str | None]) -> dict[str, Any]:
        return {
            "type": self.type,
            "on_remove": self.on_remove,
            "active": sorted(self.active),
            "evaluations": self.evaluations,
            "change_count": len(self.changes),
            "changes": [
                {"ts": c.ts, "at": iso(c.ts), "added": list(c.added), "removed": list(c.removed)}
                for c in self.changes
            ],
            "removal_exits": self.removal_exits,
        }


def symbols_problem(symbols: Iterable[str], market: MarketView) -> tuple[int, str] | None:
    """(index, message) for the first of ``symbols`` no feed quotes: for plugins' lists."""
    known = set(market.symbols())
    for i, symbol in enumerate(symbols):
        if symbol not in known:
            return i, f"no feed quotes {symbol!r} (symbols: {', '.join(sorted(known))})"
    return None
