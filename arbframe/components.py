"""Base classes, one per component kind, and the context each kind receives.

A plugin provides a component type by subclassing one of these, setting ``type_name``
(what ``type:`` selects in a scenario), ``config_schema`` (the JSON Schema of its config
block, ``type`` excluded) and ``interface_version = 2``, and registering the class from the
matching registration hook in :mod:`arbframe.hookspecs`.

Components are built once per run as ``cls(config, name=..., ctx=...)``: ``config`` is the
validated block with ``type`` removed, ``name`` the component's name in the scenario (the
venue's key, ``feeds[i]``, the strategy's or guard's ``name:``), and ``ctx`` the services
of its kind (see the ``*Context`` classes): what it uses, not the whole run.

Interface version 2 is the contract described in docs/plugins.md. Promise: within version
2, the kernel only adds (optional methods with defaults, context fields, model fields,
hooks); a plugin declaring 2 keeps working. Anything that would break one raises the
version, and the registry refuses older plugins with a message saying what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from arbframe.clock import Clock
    from arbframe.errors import ScenarioError
    from arbframe.model import (
        Book,
        Finding,
        GuardDecision,
        Instrument,
        Intent,
        Order,
        OrderRequest,
        Report,
        Route,
        Trade,
    )

INTERFACE_VERSION = 2

# A feed event. Book update: (ts_ns, venue, symbol, bids, asks), sides best first as
# (price, size) float pairs. FX update: (ts_ns, None, currency, rate, None), where rate is
# units of `currency` per one unit of the report currency.
FeedEvent = tuple[int, Any, str, Any, Any]


# ---- what strategies use ------------------------------------------------------------------


class MarketData(Protocol):
    """``ctx.market``: books, instruments, FX and balances, whatever kind of venue
    produced them (the kernel's implementation is arbframe.market.MarketView)."""

    fx: dict[str, float]
    """Units of each currency per report-currency unit, as floats (spread arithmetic)."""
    fx_exact: dict[str, Decimal]
    """The same rates, exact (what fills are booked at)."""
    venues: list[str]
    """Venue names, in scenario order."""

    def book(self, venue: str, symbol: str) -> Book:
        """The live book of an instrument: the same object for the whole run."""
        ...

    def instrument(self, venue: str, symbol: str) -> Instrument:
        """A venue's market: precision, minimums, fee schedule."""
        ...

    def instruments(self, venue: str | None = None) -> list[Instrument]:
        """Every instrument, or one venue's."""
        ...

    def quoting(self, symbol: str) -> list[str]:
        """Venues with an instrument named ``symbol``, in scenario order."""
        ...

    def symbols(self) -> list[str]:
        """Every instrument symbol, first seen first."""
        ...

    def top(self, venue: str, symbol: str) -> tuple[float, float] | None:
        """Best bid and ask converted to the report currency, or None without both."""
        ...

    def mid(self, venue: str, symbol: str) -> float | None:
        """Mid price converted to the report currency, or None without both sides."""
        ...

    def age(self, venue: str, symbol: str, now: int) -> int:
        """How old the book is at ``now`` (ns)."""
        ...

    def available(self, venue: str, asset: str) -> Decimal:
        """Free balance the venue reports (not locked by open orders)."""
        ...

    def balance(self, venue: str, asset: str) -> Decimal:
        """Total balance the venue reports."""
        ...

    def volume(self, venue: str, symbol: str) -> float | None:
        """24h traded volume of the instrument in the report currency, as a feed last
        reported it (``FeedContext.report_volume``, converted at the current FX rate); None
        when none was reported."""
        ...


class Execution(Protocol):
    """``ctx.execution``: how a strategy acts. Every call returns at once; orders work in
    the background and ``Strategy.on_trade`` hears how it went (the kernel's
    implementation is arbframe.execution.StrategyPort)."""

    cooldowns: Mapping[str, int]
    """Symbol -> when entries on it may resume after a guard's cooldown (ns). ``enter``
    refuses them anyway; a strategy may skip computing a signal it cannot act on."""

    routes: Any
    """The routing service, an ``arbframe.routing.Router`` (the contract does not import the
    kernel): ``routes.scanner(symbol, entry_bps=...)`` at wiring, then ``scanner.best(quote,
    base, gate)`` per instant (``gate``: usually ``vet`` with the strategy's size): the
    best-scoring route (edge after fees and expected slippage, venue health, balance usage)
    and the size the visible depth supports at the threshold. Also ``ctx.routes``."""

    def enter(
        self,
        route: Route,
        *,
        quote: Decimal | None = None,
        base: Decimal | None = None,
        risk_bps: float = 100.0,
        expected_slippage_bps: float | None = None,
    ) -> Trade | None:
        """Open a trade on ``route``, sized by ``quote`` (report-currency notional,
        converted at the best price of the route's first leg) or ``base`` (base amount per
        unit of leg ratio), rounded down to the venues' steps. ``risk_bps``: the
        strategy's stop distance, R = net PnL / (notional x risk_bps / 1e4).
        ``expected_slippage_bps``: what the strategy expects the entry to cost in slippage
        (``Opportunity.expected_slippage_bps``), recorded on the trade. Returns the
        trade, or None when refused (guards, stale books, size, balances)."""
        ...

    def vet(
        self, route: Route, *, quote: Decimal | None = None, base: Decimal | None = None
    ) -> bool:
        """Whether ``enter(route, ...)`` with this size would get past pauses, cooldowns,
        book age and the guards now, without pricing anything in depth. Ask it before costly
        pricing (``scanner.best(..., gate)`` does); ``enter`` on the same route at the same
        instant reuses the answer, so the guards decide once."""
        ...

    def resize(self, trade: Trade, size: Decimal) -> bool:
        """Reduce an open trade to ``size`` (base per unit of ratio, rounded down to the
        venues' steps). False when the trade is not OPEN, a book is stale, or ``size`` is 0
        or not smaller than the trade (to add exposure, enter another trade: guards and
        balances are asked then)."""
        ...

    def exit(self, trade: Trade, reason: str, *, urgent: bool = False) -> bool:
        """Close an open trade; ``reason`` is the strategy's own word. ``urgent`` exits
        (stop-loss, time) act on stale books; others wait for fresh ones. False when the
        trade is not OPEN or the exit must wait."""
        ...

    def trades(self) -> list[Trade]:
        """This strategy's trades that are not closed."""
        ...


# ---- contexts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """What a run is: passed to every event hook as ``run``."""

    name: str
    """The scenario's name."""
    seed: int
    """The seed (after ``--seed``)."""
    mode: str
    """``backtest``, ``paper``, ``shadow`` or ``live``."""
    clock: str
    """``simulated`` or ``wall``."""
    report_currency: str
    """The currency PnL, notionals and the summary are in (the scenario's ``report_currency``)."""
    session: str
    """The session id: client order ids derive from it."""


@dataclass(frozen=True)
class Context:
    """What every component receives."""

    info: RunInfo
    """The run: name, seed, mode, clock, report currency, session."""
    resolve_path: Callable[[str | Path], Path]
    """A path from the config, resolved against the scenario file's directory."""
    error: Callable[[tuple[str | int, ...], str], ScenarioError]
    """A positioned error for a problem found after construction: ``raise
    ctx.error((*self.scenario_path, "key"), "message")``."""


def _no_volumes(venue: str, symbol: str, value: float) -> None:
    """A feed context built outside a run: volumes go nowhere."""


@dataclass(frozen=True)
class FeedContext(Context):
    """What a feed receives: the scenario's FX rates and the venues' quote currencies."""

    fx_rate: Callable[[str], float]
    """A currency's scenario FX rate (units per report-currency unit)."""
    venue_quote: Callable[[str], str]
    """A venue's quote currency."""
    venue: Callable[[str], Exchange] | None = None
    """A venue component by name: what a feed of a real venue's own market data streams
    from (``venue_books``)."""
    report_volume: Callable[[str, str, float], None] = _no_volumes
    """``report_volume(venue, symbol, value)``: the instrument's 24h traded volume, in its
    quote currency (what exchanges publish as quote volume), whenever the feed has a figure.
    The latest figure counts (``ctx.market.volume`` reads it in the report currency); a
    ``universe:`` ranks and filters symbols by it. Cheap: call it as often as figures come."""


@dataclass(frozen=True)
class ExchangeContext(Context):
    """What a venue receives: the clock, and where to send its reports."""

    clock: Clock
    """The run's clock: ``now``, and ``call_later`` / ``call_at`` to model latency and delayed
    reports."""
    report: Callable[[Report], None]
    """Where the venue sends every report (acks, fills, final states, query answers,
    balance changes), in the order it wants them delivered."""


@dataclass(frozen=True)
class StrategyContext(Context):
    """What a strategy receives: the market to read, the execution port to act through,
    timers and alerts."""

    clock: Clock
    """The run's clock: ``now`` (ns)."""
    market: MarketData
    """Books, instruments, FX and balances (read only)."""
    execution: Execution
    """enter / resize / exit, and this strategy's trades."""
    set_timer: Callable[[int, Any], None]
    """``set_timer(delay_ns, payload)``: ``on_timer(ts, payload)`` later (not while the
    run winds down)."""
    alert: Callable[..., None]
    """``alert(severity, title, detail="")``, severity ``P0``..``P3``."""

    @property
    def routes(self) -> Any:
        """The routing service, ``execution.routes``: which route of a symbol to trade, and
        how much the books support (arbframe.routing)."""
        return self.execution.routes


@dataclass(frozen=True)
class GuardContext(Context):
    """What a guard receives: the clock, alerts, the market, the open trades and the venues'
    health."""

    clock: Clock
    """The run's clock: ``now`` (ns); an intent carries its own ``ts``."""
    alert: Callable[..., None]
    """``alert(severity, title, detail="")``, severity ``P0``..``P3``."""
    market: MarketData | None = None
    """Books (their age), instruments, FX: what exposure and stale-book rules read."""
    open_trades: Callable[[], Iterable[Trade]] | None = None
    """``open_trades()``: every trade not closed yet, whatever strategy opened it."""
    health: Any = None
    """The venues' health (``arbframe.health.VenueHealth``): ``error_rate(venue)``,
    ``degraded(venue)``, ``score(venue)``, ``rate_level(venue)``."""


@dataclass(frozen=True)
class FaultContext(Context):
    """What a fault injector receives: the clock, the venues to act on, and the kernel's
    orders to pick targets by role."""

    clock: Clock
    """The run's clock: ``now``, ``start`` (the first feed event's time) and scheduled calls."""
    venues: dict[str, Exchange]
    """Every venue of the run by name: the components themselves, for a fault to act on (e.g.
    install the filters a simulated venue offers)."""
    fired: Callable[..., None]
    """``fired(name, **detail)``: count it in ``summary.faults``, mark the fault injected (its
    first firing) and tell the hooks."""
    order: Callable[[str], Order | None]
    """The kernel's order of a client id (read only): drills target roles with it."""
    detected: Callable[..., None]
    """``detected(**detail)``: the kernel or a venue noticed this fault (the first call counts).
    Call it from what was noticed (a report, a slow answer, a closed link), not from the
    fault's own schedule."""
    recovered: Callable[..., None]
    """``recovered(**detail)``: the fault's effect is over as the kernel sees it (the first call
    after ``detected`` counts; ``summary.faults.timeline`` gives the time to repair)."""
    random: Random
    """A generator of its own, seeded by the run's seed and the fault's index: draws that
    replay identically for the same seed."""
    link: Callable[[str], Any]
    """``link(venue)``: the kernel's market-data link to a simulated venue
    (``arbframe.faults.Link``). Asking for it (in ``arm()`` at the latest) puts the venue's
    books behind it for the run; ``cut`` and ``heal`` it to simulate a feed outage."""
    watch_reports: Callable[[Callable[[Report], None]], None]
    """``watch_reports(fn)``: ``fn(report)`` for every venue report the kernel receives, as it
    arrives and before it is applied (the order is still in its previous state): what a
    fault detects its effect from."""
    watch_reconciliation: Callable[[Callable[[Finding], None]], None]
    """``watch_reconciliation(fn)``: ``fn(finding)`` for everything the kernel's reconciliation
    with the venues notices (an orphan order, a balance mismatch, a silent order queried): what
    a fault detects and recovers from when its effect is silent by design."""
    kill_engine: Callable[[bool], None]
    """``kill_engine(wait_for_orders)``: the engine dies now (or right after its next orders
    leave) and is revived from its snapshots while the venues carry on."""
    stores: Callable[[], list[StateStore]]
    """The run's state stores (none when it keeps no state), for outage drills."""
    corrupt_snapshot: Callable[[], list[tuple[str, int]]]
    """Damage the newest full snapshot in every reachable store (the payload changes, its
    recorded checksum does not); returns (store, seq) of each damaged."""


@dataclass(frozen=True)
class UniverseContext(Context):
    """What a universe receives: the market to rank symbols by (instruments, quoting venues,
    volumes) and the clock."""

    clock: Clock
    """The run's clock: ``now`` (ns)."""
    market: MarketData
    """Books, instruments, FX and volumes (read only)."""


# ---- base classes ----------------------------------------------------------------------------


class Component:
    """What every component is: the class attributes a plugin sets, and what the kernel
    stores on each instance. Subclass the base class of a kind, not this."""

    kind: ClassVar[str] = ""
    """The component kind (``exchange``, ``feed``, ...): set by each base class, never by a
    plugin."""
    type_name: ClassVar[str] = ""
    """What ``type:`` selects in a scenario; unique within its kind. Required."""
    description: ClassVar[str] = ""
    """One line, shown by ``arbframe plugins``."""
    config_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    """JSON Schema of the config block (``type`` excluded), checked before construction; the default
    accepts only an empty block."""
    interface_version: ClassVar[int | None] = None  # a plugin declares the version it targets
    """The plugin interface version the class targets: set ``2``. Undeclared (None) or ``1`` is
    refused, with a message saying what changed."""

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        self.config = config
        """The validated config block, ``type`` removed (and a strategy's ``name`` and
        ``execution``, and a fault's ``name``, which the kernel reads)."""
        self.name = name
        """Its name in the scenario: the venue's key, ``feeds[i]``, the strategy's or guard's
        ``name:`` (default: its type), ``sinks[i]``, ``alerts[i]``, a fault's ``name:`` (default:
        ``faults[i]``)."""
        self.ctx = ctx
        """The services of its kind (see ``CONTEXTS``)."""
        self.scenario_path: tuple[str | int, ...] = ()  # where its block sits (set at wiring)
        """Where its block sits in the scenario, e.g. ``("feeds", 0)``, for ``ctx.error``; set at
        wiring, after construction (empty in ``__init__``)."""


class Exchange(Component):
    """The trading interface every venue implements, simulated or real.

    Every answer goes through ``ctx.report`` (an :class:`ExchangeContext`), never as a
    return value, so a venue may answer late, out of order or twice.
    """

    kind = "exchange"
    outlives_process: bool = True
    """Whether the venue keeps its orders and balances when our process dies (a real
    exchange does). On resume the kernel asks such a venue about every open order; a venue
    that does not outlive the process is restored from the snapshot with the rest."""
    fills_priceable: bool = True
    """Whether each fill can be priced against the books the feeds delivered (the audit's
    price check): true of a simulated venue, which fills against exactly those; a real
    exchange fills against its own book, of which a feed sees samples."""

    def instruments(self) -> dict[str, Instrument]:
        """Symbol -> instrument: precision, minimums and fee schedule."""
        raise NotImplementedError

    def balances(self) -> dict[str, Decimal]:
        """Total balance per asset, as the venue's own account says."""
        raise NotImplementedError

    def available(self, asset: str) -> Decimal:
        """Balance not locked by open orders."""
        raise NotImplementedError

    def submit(self, order: OrderRequest) -> None:
        """Send an order. Answer with Accepted, FillReport(s) and a Closed report."""
        raise NotImplementedError

    def cancel(self, order: OrderRequest) -> None:
        """Ask to cancel. Answer with Closed (canceled) or CancelRejected."""
        raise NotImplementedError

    def fetch_order(self, order: OrderRequest) -> None:
        """Ask about an order. Answer with OrderStatus (every fill included) or
        OrderNotFound."""
        raise NotImplementedError

    def fetch_open_orders(self) -> None:
        """Ask for every order open at the venue, whoever placed it. Answer with OpenOrders.
        A venue that does not override it is not checked for orphan orders: the kernel never
        calls the default (which answers nothing)."""
        return None

    def fetch_balances(self) -> None:
        """Ask for the account's total balance per asset. Answer with Balances. A venue that
        does not override it is not compared with the ledger during the run: the kernel never
        calls the default (which answers nothing)."""
        return None

    def stats(self) -> dict[str, Any]:
        """Counters the venue keeps about the run on its own (e.g. orders refused as
        duplicates): ``summary.venues.<name>``."""
        return {}


class SimulatedExchange(Exchange):
    """The interface of venues whose books feeds push: simulated ones (books and a fill
    model), and real ones whose market data arrives as a feed (``ccxt``: ``on_book`` keeps
    the kernel's book, ``fund`` checks the capital is there)."""

    outlives_process = False  # in-process: its state is part of the snapshot
    quote: str
    """Quote currency of the symbols feeds name without one (``BTC`` -> ``BTC`` in it)."""

    def add_instrument(self, symbol: str, book: Book) -> Instrument:
        """Called at wiring for every symbol a feed quotes on this venue; ``book`` is the
        kernel's book of it, which the venue keeps current in ``on_book``."""
        raise NotImplementedError

    def fund(self, balances: dict[str, Decimal]) -> None:
        """The scenario's ``capital`` for this venue, before the run."""
        raise NotImplementedError

    def on_start(self, ts: int) -> None:
        """The first feed event arrived at ``ts``: the run's time starts."""

    def on_resume(self) -> None:
        """A resumed session starts (instead of ``on_start``), for a venue that outlives the
        process: reopen what it keeps (its account file)."""

    def on_book(self, ts: int, symbol: str, bids: Any, asks: Any) -> None:
        """A feed published a new book (the per-quote path: keep it cheap)."""
        raise NotImplementedError


class Feed(Component):
    """A source of books (and optionally FX rates), in time order."""

    kind = "feed"

    def venues(self) -> list[str]:
        """The venues it quotes (keys of the scenario's ``venues:``); asked once, at wiring."""
        raise NotImplementedError

    def symbols(self) -> list[str]:
        """The symbols it quotes; each of its venues gets an instrument for each
        (``SimulatedExchange.add_instrument``)."""
        raise NotImplementedError

    def events(self) -> Iterator[FeedEvent]:
        """Yield events in non-decreasing time order; stream, do not materialise."""
        raise NotImplementedError


class Strategy(Component):
    """Signal logic: reads the market, expresses intents through ``ctx.execution``."""

    kind = "strategy"

    def on_start(self) -> None:
        """The run is wired (``ctx.market`` has every instrument); before the first event."""

    def on_market(self, ts: int, symbol: str) -> None:
        """The books of ``symbol`` changed at ``ts`` on one venue or more. Called once per
        symbol per instant, after every update of that instant is applied."""

    def on_trade(self, trade: Trade) -> None:
        """One of this strategy's trades changed phase: it opened (its entry completed,
        possibly smaller than asked), was resized, closed or halted. This includes the
        ``<trade_id>-late<n>`` trades the kernel opens, in the strategy's name, to unwind a
        fill that arrived after its trade closed."""

    def on_timer(self, ts: int, payload: Any) -> None:
        """A timer set with ``ctx.set_timer`` fired."""

    def on_end(self) -> None:
        """The data ended or the duration elapsed; open trades are closed after this
        unless ``execution.close_at_end`` is false."""


class Guard(Component):
    """A risk tier, asked about every entry intent. Exits are never blocked."""

    kind = "guard"

    def check(self, intent: Intent) -> GuardDecision | None:
        """Return a decision, or None to allow."""
        raise NotImplementedError

    def on_trade_opened(self, trade: Trade) -> None:
        """A trade was accepted and its entry orders are about to be sent."""

    def on_trade_closed(self, trade: Trade) -> None:
        """A trade closed; its PnL is final."""

    def state(self) -> dict[str, Any]:
        """Guard state for the summary and for persistence."""
        return {}


class Sink(Component):
    """Persists run events; implements the ``arbframe_on_*`` hooks it cares about."""

    kind = "sink"

    def close(self) -> None:
        """The run ended (completed, interrupted or crashed): flush and release files or
        connections. Called once."""
        pass


class AlertChannel(Component):
    """Delivers alerts; implements ``arbframe_on_alert``."""

    kind = "alert"

    def close(self) -> None:
        """The run ended (completed, interrupted or crashed): release connections. Called once."""
        pass


@dataclass(frozen=True)
class SnapshotRecord:
    """One stored snapshot of a session. Stores keep it as given; the kernel checks it."""

    session: str
    """The session it belongs to (``session:`` in the scenario, else its name)."""
    seq: int
    """1, 2, 3... within the session: the latest valid one is resumed from."""
    ts: int
    """Scenario time it was taken at (ns)."""
    taken_at: float
    """Wall time it was taken at (Unix seconds)."""
    reason: str
    """Why it was taken: ``periodic``, ``trade``, ``orders`` (before sending), ``shutdown``,
    ``resume``."""
    version: int
    """The snapshot format version (a resumed session refuses another)."""
    checksum: str
    """SHA-256 (hex) of ``payload`` as the kernel wrote it: a store never recomputes it, so
    a payload damaged in storage no longer matches."""
    payload: bytes
    """The state itself, opaque to stores."""
    manifest: dict[str, Any]
    """What the state holds, in plain JSON types, for people and tools (``arbframe
    sessions``, hot keys): open trades and their legs, open orders with client and exchange
    ids, balances, guard state, KPI totals, the feed position."""


class StoreUnavailable(Exception):
    """A state store cannot be reached (connection refused, timed out, lost). The kernel
    keeps going on the other stores and retries this one later."""


class Cuttable(Protocol):
    """A connection a drill cuts for real and restores: what
    ``StateStore.route_through_proxy`` returns (an ``arbframe.tcpproxy.TcpProxy``)."""

    def cut(self) -> None:
        """Close every connection and refuse new ones."""

    def restore(self) -> None:
        """Accept connections again."""


class StateStore(Component):
    """Keeps a session's snapshots so a crashed or stopped session can resume.

    Every method may raise :class:`StoreUnavailable` when the backend cannot be reached;
    any other exception is a bug. Methods are called from the kernel's thread, between
    instants, never concurrently.
    """

    kind = "state"
    durable: ClassVar[bool] = True
    """False for a store that may lose what it holds (a cache, hot state): a session
    needs at least one durable store to resume after a crash."""

    def open(self) -> None:
        """Connect and create or migrate the schema. Called once before the first use."""

    def save(self, record: SnapshotRecord) -> None:
        """Keep ``record`` (replacing one of the same session and seq)."""
        raise NotImplementedError

    def load(self, session: str, seq: int) -> SnapshotRecord | None:
        """The snapshot ``seq`` of ``session`` as stored, or None."""
        raise NotImplementedError

    def snapshots(self, session: str) -> list[SnapshotRecord]:
        """The session's snapshots, newest (highest seq) first, with empty payloads
        (cheap: metadata and manifest only)."""
        raise NotImplementedError

    def sessions(self) -> list[dict[str, Any]]:
        """Every session held: ``{"session", "snapshots", "last_seq", "last_ts",
        "last_taken_at"}``."""
        raise NotImplementedError

    def reset(self, session: str) -> int:
        """Forget everything of ``session``; returns how many snapshots went."""
        raise NotImplementedError

    def prune(self, session: str, keep: int) -> None:
        """Keep only the ``keep`` newest snapshots of ``session``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections. Called once."""

    def route_through_proxy(self) -> Cuttable | None:
        """For the `state_outage` fault: reconnect through a local proxy in front of the
        server (``arbframe.tcpproxy.TcpProxy``) and return it; the fault cuts and restores
        it, ``close()`` closes it. None (the default): no network connection to cut, so the
        fault makes every call fail for its window instead."""
        return None


class Fault(Component):
    """Injects a failure into a run (rejects, lost reports, disconnects...)."""

    kind = "fault"

    def arm(self) -> None:
        """Called once after wiring; install filters on venues or set timers here."""
        raise NotImplementedError

    def on_start(self, ts: int) -> None:
        """The first feed event arrived at ``ts``: schedule what happens at a time after the
        start here (``ctx.clock.call_at(ts + offset, ...)``)."""

    def on_end(self) -> None:
        """The data ended or the duration elapsed, before the wind-down: what it scheduled
        for later must not happen now (orders still settle, and its filters still see them)."""

    def stats(self) -> dict[str, Any]:
        """Counters of its own: ``summary.faults.timeline.<name>.stats`` (e.g. reconnection
        attempts), read when the summary is built."""
        return {}


class Universe(Component):
    """Which symbols the strategies trade: asked at the first feed event and every
    ``refresh`` of scenario time (``universe:``). The kernel applies the filters every type
    shares (``quote``, ``min_volume``, ``blacklist``, a symbol quoted on at least two venues)
    and hands the survivors to ``select``; strategies hear ``on_market`` only for the symbols
    selected."""

    kind = "universe"

    def select(self, candidates: Mapping[str, float | None]) -> Iterable[str]:
        """The symbols to trade now, among ``candidates``: eligible symbol -> its 24h volume
        in the report currency summed over its eligible venues (None: no venue reported
        one). Called at each evaluation; a symbol not returned is removed."""
        raise NotImplementedError


KINDS: dict[str, type[Component]] = {
    "exchange": Exchange,
    "feed": Feed,
    "strategy": Strategy,
    "guard": Guard,
    "sink": Sink,
    "alert": AlertChannel,
    "fault": Fault,
    "state": StateStore,
    "universe": Universe,
}

CONTEXTS: dict[str, type[Context]] = {
    "exchange": ExchangeContext,
    "feed": FeedContext,
    "strategy": StrategyContext,
    "guard": GuardContext,
    "sink": Context,
    "alert": Context,
    "fault": FaultContext,
    "state": Context,
    "universe": UniverseContext,
}


# ---- versions -----------------------------------------------------------------------------

V1_CHANGES = (
    "version 2 builds components as cls(config, name=..., ctx=...) with a per-kind context "
    "instead of run=...; strategies implement on_market(ts, symbol) and act through "
    "ctx.execution (enter/resize/exit) instead of on_quote, on_order_update and "
    "engine.submit; exchanges answer through ctx.report and split the trading interface "
    "(Exchange) from the simulation one (SimulatedExchange); event hooks receive "
    "run: RunInfo. See docs/plugins.md, 'Migrating from version 1'"
)


def interface_problem(cls: type[Component]) -> str | None:
    """Why the kernel cannot use ``cls``, or None. A plugin targets a version explicitly."""
    version = cls.interface_version
    if version == INTERFACE_VERSION:
        return None
    if version is None:
        return (
            f"declares no interface_version (set interface_version = {INTERFACE_VERSION}; "
            f"a plugin written for version 1 did not need to: {V1_CHANGES})"
        )
    if version == 1:
        return (
            f"targets interface version 1, this arbframe speaks {INTERFACE_VERSION}: {V1_CHANGES}"
        )
    return f"targets interface version {version}, this arbframe speaks {INTERFACE_VERSION}"
