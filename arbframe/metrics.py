"""Prometheus metrics of a run: ``metrics:`` serves ``/metrics`` while ``arbframe run`` lasts,
``arbframe run --metrics FILE`` writes the same families in the text format at the end.

Nothing here runs per quote. Every figure is read at scrape time from what the kernel already
counts (the execution layer's counters and trades, the guard chain's counts, each venue's
``stats()``, the wall-clock driver's :class:`~arbframe.realtime.LoopHealth` histograms, the
session's snapshot counts) by one custom collector; the trades closed since the previous
scrape are folded into running totals, so a scrape costs what happened since the last one.

The HTTP server answers in its own thread while the kernel runs: the collector copies the
kernel's containers before walking them (a C-level copy holds the GIL throughout) and holds a
lock of its own, so concurrent scrapes fold each trade once.

Labels are bounded: at most ``max_label_values`` values per label (symbols, routes, guard
rules, venue stat names); the values after that are folded into ``other``. A value keeps its
series once given one, so counters stay monotonic.
"""

from __future__ import annotations

import signal
import sys
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from arbframe import __version__
from arbframe.errors import ArbframeError
from arbframe.model import Action
from arbframe.money import MONEY_CONTEXT
from arbframe.units import parse_duration

# The run it serves (arbframe.runner.Run), not imported: the runner wires this module, and
# only the entry points import the runner (tests/test_layers.py).
Run = Any

OTHER = "other"
"""The label value that stands for every value past the cap."""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_LABEL_VALUES = 50
LATENCY_BUCKETS_S = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_EDGES_NS = [b * 1e9 for b in LATENCY_BUCKETS_S]
_LE = [floatToGoString(b) for b in LATENCY_BUCKETS_S] + ["+Inf"]
SEVERITIES = ("P0", "P1", "P2", "P3")
ORDER_EVENTS = ("submitted", "filled", "canceled", "rejected", "expired", "unresolved", "queries")
"""Order events always exported (0 until they happen): the alert rules divide by them."""
REFUSALS = ("guard", "cooldown", "stale_book", "no_book", "size", "balance")
VENUE_KEYS = {
    "reconnects": "ws_reconnects",
    "disconnects": "ws_disconnects",
    "rate_limited": "rate_limited",
    "unknown_outcomes": "unknown_outcome",
    "duplicate_orders": "duplicate_orders",
}
"""Metric (``arbframe_venue_<key>_total``) -> the ``stats()`` key it reads (0 where a venue
has none: a paper venue never reconnects)."""


@dataclass(frozen=True)
class Settings:
    """The scenario's ``metrics:`` block."""

    port: int
    host: str = DEFAULT_HOST
    linger_s: float = 0.0
    max_label_values: int = DEFAULT_MAX_LABEL_VALUES

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> Settings:
        # The schema has checked the types and ranges.
        return cls(
            port=block["port"],
            host=block.get("host", DEFAULT_HOST),
            linger_s=parse_duration(block.get("linger", "0s")) / 1e9,
            max_label_values=block.get("max_label_values", DEFAULT_MAX_LABEL_VALUES),
        )


class Cap:
    """Label values of one label: the first ``limit`` seen keep their own, the rest are
    ``other``. Admission is for good (a series never moves to ``other``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: set[str] = set()

    def __call__(self, value: str) -> str:
        kept = self.kept
        if value in kept:
            return value
        if len(kept) < self.limit:
            kept.add(value)
            return value
        return OTHER


class _Totals:
    """Closed trades folded so far, in closing order (what ``summary.portfolio`` computes)."""

    def __init__(self) -> None:
        self.execution: Any = None
        self.seen = 0
        self.trades = self.wins = 0
        self.pnl = self.fees = self.cumulative = self.peak = self.max_drawdown = Decimal(0)
        self.symbols: dict[str, list[Any]] = {}  # symbol label -> [trades, wins, pnl]
        self.routes: dict[tuple[str, str], list[Any]] = {}  # (symbol, route) -> [trades, pnl]


class RunCollector(Collector):
    """Every ``arbframe_*`` family of one run, read from the run at each scrape."""

    def __init__(self, run: Run, max_label_values: int = DEFAULT_MAX_LABEL_VALUES) -> None:
        self.run = run
        self.finished = False
        """Set once the run has ended (``arbframe_running`` 0)."""
        self._lock = threading.Lock()
        self._totals = _Totals()
        cap = max_label_values
        self._symbols, self._routes, self._book_symbols = Cap(cap), Cap(cap), Cap(cap)
        self._rules, self._stats = Cap(cap), Cap(cap)

    def describe(self) -> Iterable[Metric]:
        return ()  # collected on demand only: registering must not read a run still wiring

    def collect(self) -> Iterator[Metric]:
        with self._lock, localcontext(MONEY_CONTEXT):
            # The kernel may add to a dict while it is walked here: a copy, and once more
            # if it changed size meanwhile.
            for attempt in range(3):
                try:
                    families = list(self._families())
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
        yield from families

    # ---- the families -------------------------------------------------------------------------

    def _families(self) -> Iterator[Metric]:
        run = self.run
        yield from self._identity(run)
        yield from self._feed(run)
        yield from self._trading(run)
        yield from self._orders(run)
        yield from self._guards(run)
        yield from self._venues(run)
        yield from self._state(run)

    def _identity(self, run: Run) -> Iterator[Metric]:
        info = run.info
        up = GaugeMetricFamily("arbframe_up", "1 while the exporter of an arbframe run answers.")
        up.add_metric([], 1)
        yield up
        labels = {
            "scenario": info.name,
            "session": info.session,
            "mode": info.mode,
            "clock": info.clock,
            "report_currency": info.report_currency,
            "version": __version__,
        }
        yield InfoMetricFamily("arbframe_run", "The run this process executes.", value=labels)
        running = GaugeMetricFamily(
            "arbframe_running", "1 while the run trades, 0 once it has ended."
        )
        running.add_metric([], 0 if self.finished else 1)
        yield running

    def _feed(self, run: Run) -> Iterator[Metric]:
        stats = run.stats
        for name, value, doc in (
            ("quotes", stats.quotes, "Book updates applied."),
            ("fx_updates", stats.fx_updates, "FX rate updates applied."),
            ("instants", stats.instants, "Instants processed (book updates sharing a time)."),
        ):
            yield _counter(f"arbframe_{name}", doc, value)
        now = _present(run.clock)
        ages: dict[tuple[str, str], float] = {}
        market = run.market
        for instrument in market.instruments():
            ts = market.book(instrument.venue, instrument.symbol).ts
            if ts:
                key = (instrument.venue, self._book_symbols(instrument.symbol))
                age = max(0.0, (now - ts) / 1e9)
                ages[key] = max(age, ages.get(key, 0.0))  # folded: the stalest
        family = GaugeMetricFamily(
            "arbframe_book_age_seconds",
            "Scenario time since each venue last published the symbol's book.",
            labels=["venue", "symbol"],
        )
        for (venue, symbol), age in sorted(ages.items()):
            family.add_metric([venue, symbol], age)
        yield family
        health = run.health
        for name, field, doc in (
            ("loop_lag", "lag", "How late each instant and scheduled call ran (wall clock)."),
            ("quote_to_decision", "quote_to_decision", "From an instant's books to decisions."),
            ("decision_to_order", "decision_to_order", "From deciding to each order sent."),
        ):
            histogram = HistogramMetricFamily(f"arbframe_{name}_seconds", doc, labels=[])
            buckets, total = _buckets(getattr(health, field, None))
            histogram.add_metric([], buckets, total)
            yield histogram

    def _fold_trades(self, run: Run) -> _Totals:
        totals = self._totals
        execution = run.execution
        closed = execution.closed
        if totals.execution is not execution or len(closed) < totals.seen:
            totals = self._totals = _Totals()  # a revived engine: count its trades anew
            totals.execution = execution
        new = closed[totals.seen :]  # a slice: one atomic copy
        totals.seen += len(new)
        for trade in new:
            if not trade.fills:  # an entry that never filled is not a trade
                continue
            pnl = trade.net_pnl
            won = 1 if trade.won else 0
            totals.trades += 1
            totals.wins += won
            totals.pnl += pnl
            totals.fees += trade.fees
            totals.cumulative += pnl
            totals.peak = max(totals.peak, totals.cumulative)
            totals.max_drawdown = max(totals.max_drawdown, totals.peak - totals.cumulative)
            symbol = self._symbols(trade.symbol)
            row = totals.symbols.setdefault(symbol, [0, 0, Decimal(0)])
            row[0] += 1
            row[1] += won
            row[2] += pnl
            key = (symbol, self._routes(trade.route))
            pair = totals.routes.setdefault(key, [0, Decimal(0)])
            pair[0] += 1
            pair[1] += pnl
        return totals

    def _trading(self, run: Run) -> Iterator[Metric]:
        totals = self._fold_trades(run)
        yield _counter("arbframe_trades", "Closed trades with fills.", totals.trades)
        yield _counter("arbframe_trades_won", "Closed trades with net PnL > 0.", totals.wins)
        for name, value, doc in (
            ("realized_pnl", totals.pnl, "Net PnL of closed trades, after fees (report currency)."),
            ("realized_fees", totals.fees, "Fees of the closed trades (report currency)."),
            ("drawdown", totals.peak - totals.cumulative, "Fall of realised PnL from its peak."),
            ("max_drawdown", totals.max_drawdown, "Largest fall of realised PnL from a peak."),
        ):  # fmt: skip
            yield _gauge(f"arbframe_{name}", doc, float(value))
        ratio = GaugeMetricFamily("arbframe_win_ratio", "Wins / closed trades (none: no sample).")
        if totals.trades:
            ratio.add_metric([], totals.wins / totals.trades)
        yield ratio
        trades = CounterMetricFamily(
            "arbframe_symbol_trades", "Closed trades by symbol.", labels=["symbol"]
        )
        wins = CounterMetricFamily(
            "arbframe_symbol_trades_won", "Winning closed trades by symbol.", labels=["symbol"]
        )
        pnl = GaugeMetricFamily(
            "arbframe_symbol_realized_pnl", "Net PnL of closed trades by symbol.", labels=["symbol"]
        )
        for symbol, (n, won, value) in sorted(totals.symbols.items()):
            trades.add_metric([symbol], n)
            wins.add_metric([symbol], won)
            pnl.add_metric([symbol], float(value))
        yield from (trades, wins, pnl)
        route_trades = CounterMetricFamily(
            "arbframe_route_trades", "Closed trades by symbol and route.", None, ["symbol", "route"]
        )
        route_pnl = GaugeMetricFamily(
            "arbframe_route_realized_pnl",
            "Net PnL of closed trades by symbol and route.",
            labels=["symbol", "route"],
        )
        for (symbol, route), (n, value) in sorted(totals.routes.items()):
            route_trades.add_metric([symbol, route], n)
            route_pnl.add_metric([symbol, route], float(value))
        yield from (route_trades, route_pnl)
        execution = run.execution
        jobs = list(execution.jobs)  # trade ids of the trades not closed
        trades_by_id = execution.trades
        opened = [trades_by_id[i].opened_at for i in jobs if i in trades_by_id]
        now = _present(run.clock)
        yield _gauge("arbframe_open_positions", "Trades open (not closed).", len(jobs))
        oldest = max(0.0, (now - min(opened)) / 1e9) if opened else 0.0
        yield _gauge(
            "arbframe_oldest_open_position_age_seconds",
            "Scenario time since the oldest open trade was opened (0: none open).",
            oldest,
        )
        yield _counter(
            "arbframe_halted_trades", "Trades halted for an operator (P0).", len(execution.halts)
        )

    def _orders(self, run: Run) -> Iterator[Metric]:
        execution = run.execution
        yield _labelled(
            CounterMetricFamily,
            "arbframe_order_events",
            "The order flow's counts: orders submitted, their final states, queries, ...",
            "event",
            {**dict.fromkeys(ORDER_EVENTS, 0), **dict(execution.order_counts)},
        )
        yield _labelled(
            CounterMetricFamily,
            "arbframe_entry_refusals",
            "Entry intents refused before any order, by reason.",
            "reason",
            {**dict.fromkeys(REFUSALS, 0), **dict(execution.refusals)},
        )
        yield _labelled(
            CounterMetricFamily,
            "arbframe_alerts",
            "Alerts raised, by severity.",
            "severity",
            {**dict.fromkeys(SEVERITIES, 0), **dict(execution.alert_counts)},
        )
        reconciler = run.reconciler
        yield _counter(
            "arbframe_reconciliation_mismatches",
            "Balances that moved without a fill (booked as reconciliation entries).",
            len(reconciler.adjustments),
        )
        orphans = dict(reconciler.orphans)
        yield _labelled(
            CounterMetricFamily,
            "arbframe_orphan_orders",
            "Open orders the kernel did not place: found, and what was done with them.",
            "outcome",
            {k: orphans.get(k, 0) for k in ("found", "canceled", "adopted", "alerted")},
        )
        yield _labelled(
            CounterMetricFamily,
            "arbframe_fault_events",
            "The fault log's counts (drills and real outages detected and recovered).",
            "event",
            dict(run.fault_log.counts),
        )

    def _guards(self, run: Run) -> Iterator[Metric]:
        chain = run.guard_chain
        guards = list(chain.guards)
        decisions: dict[tuple[str, str], int] = {
            (g.name, a.value): 0 for g in guards for a in Action
        }  # every guard and verdict: 0 until it happens
        triggers: dict[tuple[str, str], int] = {}
        for guard, decision, n in _guard_decisions(chain):
            decisions[(guard, decision)] = decisions.get((guard, decision), 0) + n
        for guard, rule, n in _guard_triggers(chain):
            key = (guard, self._rules(rule))
            triggers[key] = triggers.get(key, 0) + n
        family = CounterMetricFamily(
            "arbframe_guard_decisions",
            "Guard verdicts by guard and decision (allow is counted where the chain counts it).",
            labels=["guard", "decision"],
        )
        for (guard, decision), n in sorted(decisions.items()):
            family.add_metric([guard, decision], n)
        yield family
        family = CounterMetricFamily(
            "arbframe_guard_triggers",
            "Verdicts other than allow, by guard and rule.",
            labels=["guard", "rule"],
        )
        for (guard, rule), n in sorted(triggers.items()):
            family.add_metric([guard, rule], n)
        yield family
        state = GaugeMetricFamily(
            "arbframe_guard_state",
            "Each guard's numeric state (e.g. day_pnl, cumulative, peak, open_trades).",
            labels=["guard", "field"],
        )
        limits = GaugeMetricFamily(
            "arbframe_guard_limit",
            "Each guard's numeric settings (e.g. daily_loss_limit, max_drawdown).",
            labels=["guard", "limit"],
        )
        for guard in guards:
            for field, value in _numbers(guard.state()):
                state.add_metric([guard.name, field], value)
            for key, value in _numbers(getattr(guard, "config", {})):
                limits.add_metric([guard.name, key], value)
        yield from (state, limits)
        now = _present(run.clock)
        active = sum(1 for until in list(chain.cooldowns.values()) if until > now)
        yield _gauge("arbframe_guard_cooldowns_active", "Cooldowns in force now.", active)

    def _venues(self, run: Run) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "arbframe_venue_events",
            "Every count a venue's stats() reports, by venue and event.",
            labels=["venue", "event"],
        )
        errors = CounterMetricFamily(
            "arbframe_venue_errors",
            "The venue's errors (its stats() counts named *errors), by venue.",
            labels=["venue"],
        )
        named = {
            key: CounterMetricFamily(
                f"arbframe_venue_{key}",
                f"The venue's {stat} count (0: not reported).",
                labels=["venue"],
            )
            for key, stat in VENUE_KEYS.items()
        }
        latency = HistogramMetricFamily(
            "arbframe_venue_latency_seconds",
            "The venue's own latency histograms (a ccxt venue: quote_to_send, quote_to_ack).",
            labels=["venue", "stage"],
        )
        for name, venue in list(run.venues.items()):
            stats = venue.stats()
            counts = {k: v for k, v in stats.items() if _is_count(v)}
            for key, value in sorted(counts.items()):
                events.add_metric([name, self._stats(key)], value)
            errors.add_metric([name], sum(v for k, v in counts.items() if k.endswith("errors")))
            for key, stat in VENUE_KEYS.items():
                named[key].add_metric([name], counts.get(stat, 0))
            histograms = getattr(venue, "latency", None)
            if isinstance(histograms, dict):
                for stage, histogram in list(histograms.items()):
                    if hasattr(histogram, "counts"):
                        buckets, total = _buckets(histogram)
                        latency.add_metric([name, stage], buckets, total)
        yield from (events, errors, *named.values(), latency)

    def _state(self, run: Run) -> Iterator[Metric]:
        sessions = run.sessions
        taken = failed = 0
        stores: list[str] = []
        down: set[str] = set()
        if sessions is not None:
            taken, failed = sessions.taken, sessions.failed
            stores = [s.name for s in sessions.stores]
            down = set(sessions.down)
        yield _labelled(
            CounterMetricFamily,
            "arbframe_snapshots",
            "Session snapshots: taken (kept by a store) and failed (kept by none).",
            "result",
            {"taken": taken, "failed": failed},
        )
        yield _gauge("arbframe_state_stores", "State stores the session keeps.", len(stores))
        yield _labelled(
            GaugeMetricFamily,
            "arbframe_state_store_up",
            "1 while the state store is reachable, 0 while it is down.",
            "store",
            {store: 0 if store in down else 1 for store in stores},
        )


# ---- readers ----------------------------------------------------------------------------------


def _present(clock: Any) -> int:
    """Scenario time now (a wall clock's runs on between instants)."""
    present = getattr(clock, "present", None)
    return int(present()) if present is not None else int(clock.now)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(mapping: Any) -> Iterator[tuple[str, float]]:
    """The top-level numbers of a mapping (decimal strings included); nested values, whose
    keys could be symbols, are left out."""
    if not isinstance(mapping, dict):
        return
    for key, value in list(mapping.items()):
        if isinstance(value, bool) or key in ("type", "name"):
            continue
        if isinstance(value, int | float | Decimal):
            yield str(key), float(value)
        elif isinstance(value, str):
            try:
                number = Decimal(value)
            except InvalidOperation:
                continue
            if number.is_finite():
                yield str(key), float(number)


def _guard_decisions(chain: Any) -> Iterator[tuple[str, str, int]]:
    """(guard, decision, count), whichever way the chain keeps its counts: a ``summary()``
    with ``by_guard`` (guard -> decision -> n), else ``counts`` (guard -> action -> n)."""
    summary = getattr(chain, "summary", None)
    if callable(summary):
        for guard, entry in dict(summary().get("by_guard", {})).items():
            for decision, n in dict(entry).items():
                if _is_count(n):
                    yield guard, decision, n
        return
    for guard, counts in dict(chain.counts).items():
        for decision, n in dict(counts).items():
            yield guard, decision, n


def _guard_triggers(chain: Any) -> Iterator[tuple[str, str, int]]:
    """(guard, rule, count) of the verdicts other than allow. A chain that counts no rules
    names the guard's type as its rule."""
    summary = getattr(chain, "summary", None)
    if callable(summary):
        by_guard = dict(summary().get("by_guard", {}))
        for guard in list(chain.guards):
            rules = dict(dict(by_guard.get(guard.name, {})).get("rules", {}))
            # A guard that has not refused yet still has a series (its type as the rule),
            # so dashboards and rules see 0, not "no data".
            yield from (
                ((guard.name, r, n) for r, n in rules.items())
                if rules
                else [(guard.name, guard.type_name, 0)]
            )
        return
    counts = dict(chain.counts)
    for guard in chain.guards:  # every guard, 0 until it refuses
        held = dict(counts.get(guard.name, {}))
        yield guard.name, guard.type_name, sum(v for k, v in held.items() if k != "allow")


def _buckets(histogram: Any) -> tuple[list[tuple[str, float]], float]:
    """A :class:`~arbframe.realtime.Histogram` (ns, log buckets) as cumulative Prometheus
    buckets (s) and a sum. A log bucket counts under the first edge at or above its top, so
    a quantile is never understated; the sum takes each bucket's middle (within ~3 %)."""
    per = [0] * (len(_EDGES_NS) + 1)
    total_ns = 0.0
    counts = list(histogram.counts) if histogram is not None else []  # one atomic copy
    for index, n in enumerate(counts):
        if not n:
            continue
        if index < 32:
            low, high = index, index + 1
        else:
            shift = (index >> 4) - 1
            low = (index - (shift << 4)) << shift
            high = low + (1 << shift)
        per[bisect_left(_EDGES_NS, high - 1)] += n
        total_ns += n * (low + high - 1) / 2
    buckets, seen = [], 0
    for le, n in zip(_LE, per, strict=True):
        seen += n
        buckets.append((le, seen))
    return buckets, total_ns / 1e9


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _labelled(
    kind: Callable[..., Any], name: str, doc: str, label: str, values: dict[str, float]
) -> Any:
    family = kind(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


# ---- registries, the server, the file ---------------------------------------------------------


def registry(
    run: Run, max_label_values: int = DEFAULT_MAX_LABEL_VALUES
) -> tuple[CollectorRegistry, RunCollector]:
    """The run's families plus the process's (CPU, memory, file descriptors), the Python
    platform's and its garbage collector's; and the run's collector."""
    reg = CollectorRegistry()
    collector = RunCollector(run, max_label_values)
    reg.register(collector)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    GCCollector(registry=reg)
    return reg, collector


class Exporter:
    """``/metrics`` of one run, served from a thread of its own."""

    def __init__(self, run: Run, settings: Settings) -> None:
        self.run = run
        self.settings = settings
        self.registry, self.collector = registry(run, settings.max_label_values)
        try:
            self._server, self._thread = start_http_server(
                settings.port, settings.host, self.registry
            )
        except OSError as err:
            raise run.loaded.error(
                ("metrics", "port"),
                f"cannot serve metrics on {settings.host}:{settings.port}: {err.strerror or err}",
            ) from None
        self.port = self._server.server_address[1]
        self.url = f"http://{settings.host}:{self.port}/metrics"

    def finished(self) -> None:
        self.collector.finished = True

    def linger(self) -> None:
        """Serve the final figures ``linger`` more seconds (a scraper gets them), or until
        Ctrl-C / SIGTERM."""
        seconds = self.settings.linger_s
        if seconds <= 0:
            return
        done = threading.Event()
        main = threading.current_thread() is threading.main_thread()
        handlers = {}
        if main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.getsignal(sig)
                signal.signal(sig, lambda *_: done.set())
        try:
            done.wait(seconds)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(run: Run) -> Exporter | None:
    """Start the exporter of a run whose scenario has a ``metrics:`` block; say where."""
    block = run.scenario.get("metrics")
    if block is None:
        return None
    exporter = Exporter(run, Settings.from_config(block))
    print(f"metrics: serving {exporter.url}", file=sys.stderr, flush=True)
    return exporter


def check_path(path: Path | None) -> None:
    """``--metrics FILE`` is refused before the run, not after it, when it cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise ArbframeError(f"--metrics {path}: is a directory, not a file")
    if not path.parent.is_dir():
        raise ArbframeError(f"--metrics {path}: directory {path.parent} does not exist")


def write(run: Run, path: Path, exporter: Exporter | None = None) -> None:
    """The run's metrics in the text exposition format (``--metrics FILE``), written whole
    (a temporary file renamed)."""
    if exporter is not None:
        reg = exporter.registry
    else:
        block = run.scenario.get("metrics") or {}
        reg, collector = registry(run, block.get("max_label_values", DEFAULT_MAX_LABEL_VALUES))
        collector.finished = True
    try:
        write_to_textfile(str(path), reg)
    except OSError as err:
        raise ArbframeError(f"--metrics {path}: {err.strerror or err}") from None
