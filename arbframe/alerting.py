"""The alert engine: rules that turn what the kernel sees into alerts, and the throttle that
stands between those alerts and every messaging channel (Telegram, webhooks).

On when the scenario has an ``alerting:`` block or a channel that sends messages
(:class:`MessageChannel`); otherwise alerts flow exactly as before it existed.

* **Rules.** Each alert has a rule and a severity. The kernel's own alerts are named by
  their title (``naked leg on ...`` is ``naked_leg``); the engine raises others from run
  events: a revived engine (``engine_crash``), a fault detected and recovered, a guard's
  BLOCK (and first ``daily_loss`` when a daily loss limit is what blocks), orders answered
  slower than a bound (``latency``), venue errors and market-data reconnections piling up
  (``venue_errors``, ``reconnect_storm``). ``alerting.rules`` sets a rule's severity, its
  parameters, or turns it ``off``. Every fired alert is counted (``summary.alerting``),
  published (sinks keep the history) and offered to the channels.
* **Throttle, per channel.** The same key again within ``dedupe`` is dropped; alerts within
  ``group`` of the first of a group go out as one message; at most ``rate_limit`` messages
  per minute, and what the limit holds back is counted and reported in ONE message as soon
  as the limit allows (or when the run ends).

Times are scenario time (wall time in a real-time session), so a drill is reproducible.
Everything runs between instants, on the engine's thread; channels send from their own
thread (:class:`Courier`), so a slow network never holds trading.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from arbframe.components import AlertChannel
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import Action, Alert
from arbframe.units import parse_duration

# The run it serves (arbframe.runner.Run), not imported: the runner wires this module, and
# only the entry points import the runner (tests/test_layers.py).
Run = Any

SEVERITIES = ("P0", "P1", "P2", "P3")
S = 1_000_000_000
MINUTE = 60 * S

# The kernel's alerts, named by their title: (pattern, rule, default severity or None to
# keep the kernel's own).
KERNEL_RULES: list[tuple[re.Pattern[str], str, str | None]] = [
    (re.compile(p), rule, sev)
    for p, rule, sev in (
        (r"^naked leg on ", "naked_leg", "P0"),
        (r"^leg mismatch on ", "leg_mismatch", "P2"),
        (r"^order \S+ unresolved", "order_unresolved", "P0"),
        (r" did not answer .* at start-up", "order_unresolved", "P0"),
        (r"^orphan order ", "orphan_order", "P1"),
        (r"^balance mismatch on ", "balance_drift", "P1"),
        (r"^snapshot kept by no state store", "snapshot_failed", "P0"),
        (r"^damaged snapshot skipped", "snapshot_corrupt", "P1"),
        (r"^state store \S+ unreachable", "state_store_lost", "P2"),
        (r"^(unexpected fill|late fill|report for unknown|fill for unknown|illegal order)",
         "order_anomaly", "P1"),
    )
]  # fmt: skip

RULES: dict[str, dict[str, Any]] = {
    # rule: its default severity, parameters, and what it is (schemas/scenario.schema.json
    # repeats them for validation; a test keeps the two in step)
    "engine_crash": {"severity": "P0", "about": "the engine died (revived from its snapshots, "
                     "or the run crashed)"},
    "naked_leg": {"severity": "P0", "about": "a trade halted with a leg the unwind could not "
                  "hedge"},
    "order_unresolved": {"severity": "P0", "about": "an order or a start-up check left "
                         "unanswered after every query"},
    "snapshot_failed": {"severity": "P0", "about": "a snapshot kept by no state store"},
    "daily_loss": {"severity": "P1", "about": "a daily loss limit reached (then guard_block)"},
    "latency": {"severity": "P1", "bound": "500ms", "about": "an order answered later than "
                "`bound` after it was sent (once per venue until the dedupe window passes)"},
    "venue_errors": {"severity": "P1", "count": 3, "within": "1m", "about": "`count` orders "
                     "rejected with a venue error (429, 5xx) or lost within `within`"},
    "reconnect_storm": {"severity": "P1", "count": 3, "within": "1m", "about": "`count` "
                        "market-data reconnection attempts to a venue within `within`"},
    "orphan_order": {"severity": "P1", "about": "an open order the kernel did not place"},
    "balance_drift": {"severity": "P1", "about": "a venue balance that moved without a fill"},
    "snapshot_corrupt": {"severity": "P1", "about": "a damaged snapshot skipped on resume"},
    "order_anomaly": {"severity": "P1", "about": "unexpected, late or unknown fills and "
                      "reports, illegal order transitions"},
    "guard_block": {"severity": "P2", "about": "a guard started blocking entries"},
    "leg_mismatch": {"severity": "P2", "about": "a trade's legs filled unevenly (unwinding)"},
    "state_store_lost": {"severity": "P2", "about": "a state store became unreachable"},
    "fault_detected": {"severity": "P2", "about": "a drill's fault was detected"},
    "fault_recovered": {"severity": "P3", "about": "a drill's fault was recovered from"},
    "kernel": {"severity": None, "about": "any other alert (its own severity)"},
}  # fmt: skip

RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|m|min|h|hour)\s*$")
PER = {"s": S, "sec": S, "m": MINUTE, "min": MINUTE, "h": 60 * MINUTE, "hour": 60 * MINUTE}


@dataclass
class Rule:
    name: str
    severity: str | None  # None: the kernel alert's own
    on: bool = True
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Settings:
    rate: int = 10
    per: int = MINUTE
    dedupe: int = 5 * MINUTE
    group: int = 2 * S
    rules: dict[str, Rule] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Settings:
        config = config or {}
        match = RATE.match(str(config.get("rate_limit", "10/min")))
        if match is None or int(match.group(1)) < 1:
            raise ConfigError("a rate is N/min (or /s, /h) with N >= 1", ("rate_limit",))
        settings = cls(
            rate=int(match.group(1)),
            per=PER[match.group(2)],
            dedupe=parse_duration(config.get("dedupe", "5m")),
            group=parse_duration(config.get("group", "2s")),
        )
        given = config.get("rules", {})
        for name, spec in RULES.items():
            rule = Rule(name, spec["severity"])
            rule.params = {k: v for k, v in spec.items() if k not in ("severity", "about")}
            value = given.get(name)
            if value == "off":
                rule.on = False
            elif isinstance(value, str):
                rule.severity = value
            elif isinstance(value, dict):
                rule.severity = value.get("severity", rule.severity)
                rule.params.update({k: v for k, v in value.items() if k != "severity"})
            for key, param in rule.params.items():
                if isinstance(param, str):
                    rule.params[key] = parse_duration(param)
            settings.rules[name] = rule
        return settings


# ---- messages and channels --------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """What a channel sends: one alert, a group of them, or the count the rate limit held."""

    ts: int
    """When it is sent, in scenario time (ns)."""
    severity: str
    """The most urgent of its alerts."""
    title: str
    """One line."""
    session: str
    """The session it is about."""
    alerts: tuple[Alert, ...] = ()
    """What it carries (several when grouped; none for a suppression report)."""
    kind: str = "alert"
    """``alert`` (one), ``group`` (several) or ``suppressed`` (what the rate limit held)."""
    suppressed: dict[str, int] = field(default_factory=dict)
    """``suppressed`` messages: alerts held back by severity."""

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.ts / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "session": self.session,
            "ts": self.ts,
            "time": self.time,
            "alerts": [
                {
                    "ts": a.ts,
                    "severity": a.severity,
                    "rule": a.rule,
                    "title": a.title,
                    "detail": a.detail,
                }
                for a in self.alerts
            ],  # fmt: skip
            "suppressed": dict(self.suppressed),
        }


class Courier:
    """A thread with its own asyncio loop: a network channel sends from it, so the engine
    never waits on a network. ``submit`` is thread-safe; ``close`` waits for what was
    submitted (up to a timeout), then stops the loop."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.pending: set[Future[Any]] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def submit(self, work: Awaitable[Any]) -> Future[Any]:
        future = asyncio.run_coroutine_threadsafe(work, self.loop)  # type: ignore[arg-type]
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        return future

    def call(self, work: Awaitable[Any], timeout: float) -> Any:
        """Run ``work`` on the courier's loop and wait for its result."""
        return self.submit(work).result(timeout)

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for what was submitted; cancel what is left."""
        for future in list(self.pending):
            try:
                future.result(timeout)
            except (FutureTimeout, Exception):  # counted by the channel; the run ends anyway
                future.cancel()

    def stop(self, timeout: float) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()


class MessageChannel(AlertChannel):
    """A channel that sends messages through the engine's throttle. Subclasses implement
    ``async transmit(message)`` (on the courier's thread; raise to count a failure) and
    may override ``async open()`` / ``async aclose()``; ``config['min_severity']``
    (default P2) filters what they are offered."""

    send_timeout = 10.0
    """Seconds the run waits for messages still being sent when it ends."""

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.max_rank = SEVERITIES.index(config.get("min_severity", "P2"))
        self.courier: Courier | None = None
        self.failed = 0
        self.delivered = 0
        self._order: asyncio.Lock | None = None
        self.secrets: list[str] = []
        """Values never to print (a token in an error message is scrubbed)."""

    def wants(self, alert: Alert) -> bool:
        return SEVERITIES.index(alert.severity) <= self.max_rank

    def start(self) -> None:
        """The run starts: the courier's thread, then ``open()`` (whose error stops the run)."""
        self.courier = Courier(f"arbframe-{self.name}")
        try:
            self.courier.call(self.open(), self.send_timeout)
        except BaseException:
            self.dead = True  # nothing more is tried through it
            raise

    dead = False

    def send(self, message: Message) -> None:
        if self.dead:
            return
        if self.courier is None:
            self.start()
        assert self.courier is not None
        self.courier.submit(self._transmit(message))

    async def _transmit(self, message: Message) -> None:
        if self._order is None:  # on the courier's loop: messages leave in the order given
            self._order = asyncio.Lock()
        try:
            async with self._order:
                await self.transmit(message)
            self.delivered += 1
        except Exception as err:  # a lost message must not end the run; it is counted and said
            self.failed += 1
            self.warn(f"message not sent: {type(err).__name__}: {err}")

    def warn(self, text: str) -> None:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        print(f"warning: {self.name} ({self.type_name}): {text}", file=sys.stderr)

    async def open(self) -> None:
        pass

    async def transmit(self, message: Message) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        courier, self.courier = self.courier, None
        if courier is None:
            return
        courier.drain(self.send_timeout)
        with suppress(Exception):  # closing connections: nothing left worth a traceback
            courier.call(self.aclose(), self.send_timeout)
        courier.stop(self.send_timeout)


# ---- the throttle of one channel --------------------------------------------------------------


class Lane:
    """One channel's dedupe, grouping and rate limit."""

    def __init__(self, channel: MessageChannel, settings: Settings, session: str) -> None:
        self.channel = channel
        self.settings = settings
        self.session = session
        self.seen: dict[str, int] = {}  # dedupe key -> when last let through
        self.group: list[Alert] = []
        self.group_due = 0
        self.sent_at: deque[int] = deque()
        self.held: Counter[str] = Counter()  # alerts the rate limit held, by severity
        self.held_last = 0  # when the last of them came
        self.counts: Counter[str] = Counter()

    def offer(self, alert: Alert, key: str) -> None:
        self.tick(alert.ts)
        if not self.channel.wants(alert):
            return
        last = self.seen.get(key)
        if last is not None and alert.ts - last < self.settings.dedupe:
            self.counts["deduped"] += 1
            return
        self.seen[key] = alert.ts
        if not self.group:
            self.group_due = alert.ts + self.settings.group
        else:
            self.counts["grouped"] += 1
        self.group.append(alert)
        if self.settings.group <= 0:
            self.tick(alert.ts)

    def tick(self, now: int, final: bool = False) -> None:
        """Send what is due by ``now``: the open group once its window has passed, the
        suppression report once the limit allows (everything, when ``final``)."""
        if self.group and (final or self.group_due <= now):
            at = min(self.group_due, now)
            self._report_held(at)
            group, self.group = self.group, []
            self._emit(self._message(group, at), len(group))
        self._report_held(now, final)

    def _free(self, at: int) -> bool:
        sent = self.sent_at
        while sent and sent[0] <= at - self.settings.per:
            sent.popleft()
        return len(sent) < self.settings.rate

    def _emit(self, message: Message, alerts: int) -> None:
        if not self._free(message.ts):
            self.counts["suppressed"] += alerts
            for a in message.alerts:
                self.held[a.severity] += 1
            self.held_last = message.ts
            return
        self.sent_at.append(message.ts)
        self.counts["sent"] += 1
        self.channel.send(message)

    def _report_held(self, now: int, final: bool = False) -> None:
        """ONE message for what the limit held, at the first moment it has room again (at
        the end of the run in any case)."""
        if not self.held:
            return
        at = self.held_last
        if not self._free(at):
            at = self.sent_at[0] + self.settings.per
        if at > now:
            if not final:
                return
            at = now
        held, self.held = self.held, Counter()
        total = sum(held.values())
        message = Message(
            at,
            min(held, key=SEVERITIES.index),
            f"{total} alert{'s' if total != 1 else ''} suppressed by the rate limit "
            f"({self.settings.rate} messages per {self.settings.per // S}s)",
            self.session,
            kind="suppressed",
            suppressed=dict(sorted(held.items())),
        )
        self._free(at)
        self.sent_at.append(at)
        self.counts["summaries"] += 1
        self.channel.send(message)

    def _message(self, group: list[Alert], at: int) -> Message:
        worst = min((a.severity for a in group), key=SEVERITIES.index)
        if len(group) == 1:
            return Message(at, worst, group[0].title, self.session, (group[0],))
        return Message(at, worst, f"{len(group)} alerts", self.session, tuple(group), "group")


# ---- the engine ---------------------------------------------------------------------------------


class AlertEngine:
    """Rules and throttles of one run (kept across an engine revival)."""

    name = "alerting"

    def __init__(self, run: Run, settings: Settings, channels: list[MessageChannel]) -> None:
        self.run = run
        self.settings = settings
        self.channels = channels
        self.lanes = [Lane(c, settings, run.info.session) for c in channels]
        self.fired: Counter[tuple[str, str]] = Counter()  # (rule, severity) -> count
        self.sent_ns: dict[str, int] = {}  # client id -> when submitted (latency rule)
        self.errors: dict[str, deque[int]] = {}  # venue -> recent venue errors
        self.attempts_seen: dict[str, int] = {}  # venue -> link attempts counted
        self.revivals_seen = 0
        self.faults_seen: set[tuple[str, str]] = set()  # (fault, phase) alerted
        self.details: dict[tuple[str, str], dict[str, Any]] = {}  # what the events said
        self.ended = False
        self.started = False
        self.bind()

    def bind(self) -> None:
        """Attach to the run's (possibly new, after a revival) execution engine."""
        self.execution = self.run.execution
        self.execution.classify = self.classify

    # ---- rules -----------------------------------------------------------------------------

    def classify(self, alert: Alert) -> Alert | None:
        """The kernel's alert with its rule and severity (None when the rule is off)."""
        name = alert.rule
        severity: str | None = alert.severity
        if not name:
            name, severity = "kernel", None
            for pattern, rule, _ in KERNEL_RULES:
                if pattern.search(alert.title):
                    name = rule
                    break
        rule = self.settings.rules[name]
        if not rule.on:
            return None
        if alert.rule and rule.severity is None:
            severity = alert.severity
        severity = rule.severity or severity or alert.severity
        alert = replace(alert, rule=name, severity=severity)
        self.fired[(name, severity)] += 1
        return alert

    def raise_(self, rule: str, title: str, detail: str = "") -> None:
        default = self.settings.rules[rule].severity or "P2"
        self.execution.alert(default, title, detail, rule=rule)

    def _param(self, rule: str, key: str) -> Any:
        return self.settings.rules[rule].params[key]

    @hookimpl
    def arbframe_on_run_start(self, run: Any) -> None:
        self.started = True
        for channel in self.channels:
            channel.start()

    @hookimpl
    def arbframe_on_fault(
        self, run: Any, name: str, detail: dict[str, Any], fault: str, phase: str
    ) -> None:
        if phase in ("detected", "recovered"):
            self.details[(fault, phase)] = detail
        self._poll()

    def _poll(self) -> None:
        """What the kernel's own records say happened: engine revivals and each fault's
        detection and recovery (read from the records, not only from events: the moment an
        engine dies, the events it had not delivered die with it)."""
        revivals = len(self.run.revivals)
        if revivals > self.revivals_seen:
            self.revivals_seen = revivals
            killer = self.run._killer
            self.raise_("engine_crash", "engine killed",
                        f"{killer}: revived from its snapshots")  # fmt: skip
        for record in list(self.run.fault_log.records.values()):
            for phase, at in (("detected", record.detected_at), ("recovered", record.recovered_at)):
                if at is None or (record.name, phase) in self.faults_seen:
                    continue
                if (record.name, phase) not in self.details and self._coming(record.name, phase):
                    continue  # its event is queued: it brings the particulars
                self.faults_seen.add((record.name, phase))
                detail = self.details.get((record.name, phase), {})
                what = ", ".join(f"{k}={v}" for k, v in detail.items() if k != "why")
                why = detail.get("why", "")
                self.raise_(
                    f"fault_{phase}",
                    f"fault {record.name} ({record.type}) {phase}",
                    "; ".join(p for p in (why, what) if p),
                )
        self._reconnects()

    def _coming(self, fault: str, phase: str) -> bool:
        return any(
            name == "fault" and payload["fault"] == fault and payload["phase"] == phase
            for name, payload in self.run.bus.queue
        )

    @hookimpl
    def arbframe_on_guard_decision(self, run: Any, decision: Any) -> None:
        self._poll()
        if decision.action is not Action.BLOCK:
            return
        if decision.reason.startswith("daily loss"):
            self.raise_("daily_loss", f"daily loss limit hit ({decision.guard})", decision.reason)
        self.raise_(
            "guard_block",
            f"guard {decision.guard} blocks entries on {decision.symbol}",
            decision.reason,
        )

    @hookimpl
    def arbframe_on_order_update(self, run: Any, update: Any) -> None:
        sent = None
        if update.event == "submit":
            self.sent_ns[update.client_id] = update.ts
        elif update.previous.value == "submitted":  # the venue's first answer
            sent = self.sent_ns.pop(update.client_id, None)
        if sent is not None and update.ts - sent > self._param("latency", "bound"):
            ms = (update.ts - sent) / 1e6
            self.raise_(
                "latency",
                f"{update.venue} answers slowly",
                f"order {update.client_id} answered in {ms:.0f} ms (bound "
                f"{self._param('latency', 'bound') / 1e6:.0f} ms)",
            )
        if update.state.value == "rejected" and _venue_error(update.reason):
            recent = self.errors.setdefault(update.venue, deque())
            recent.append(update.ts)
            while recent and recent[0] <= update.ts - self._param("venue_errors", "within"):
                recent.popleft()
            if len(recent) >= self._param("venue_errors", "count"):
                recent.clear()
                self.raise_(
                    "venue_errors",
                    f"{update.venue} answers with errors",
                    f"{self._param('venue_errors', 'count')} orders rejected or lost within "
                    f"{self._param('venue_errors', 'within') // S}s; last: {update.reason}",
                )
        self._poll()

    def _reconnects(self) -> None:
        count, within = (
            self._param("reconnect_storm", "count"),
            self._param("reconnect_storm", "within"),
        )
        for venue, link in self.run.links.items():
            seen = self.attempts_seen.get(venue, 0)
            if len(link.attempts) < seen + count:
                continue
            recent = link.attempts[seen:]
            for i in range(len(recent) - count + 1):
                if recent[i + count - 1] - recent[i] <= within:
                    self.attempts_seen[venue] = len(link.attempts)
                    self.raise_(
                        "reconnect_storm",
                        f"market data of {venue} keeps reconnecting",
                        f"{len(recent)} attempts, {count} within {within // S}s",
                    )
                    break

    # ---- delivery --------------------------------------------------------------------------

    @hookimpl
    def arbframe_on_alert(self, run: Any, alert: Alert) -> None:
        self._poll()
        key = f"{alert.rule}:{alert.title}"
        for lane in self.lanes:
            lane.offer(alert, key)

    def tick(self, now: int | None = None) -> None:
        """Send what is due (a wall-clock session calls this every fraction of a second)."""
        now = self.run.clock.now if now is None else now
        self._poll()
        for lane in self.lanes:
            lane.tick(now)

    @hookimpl
    def arbframe_on_run_end(self, run: Any, summary: dict[str, Any]) -> None:
        self.ended = True

    def crashed(self, error: BaseException) -> None:
        """The run is ending on an exception: P0, sent at once, whatever the throttle."""
        alert = Alert(self.run.clock.now, "P0", "engine crashed", _one_line(error), "")
        alert = self.classify(replace(alert, rule="engine_crash"))
        if alert is None:
            return
        for lane in self.lanes:
            if lane.channel.wants(alert):
                lane.counts["sent"] += 1
                lane.channel.send(Message(alert.ts, alert.severity, alert.title,
                                          self.run.info.session, (alert,)))  # fmt: skip

    def close(self) -> None:
        error = sys.exc_info()[1]
        if self.started and not self.ended and isinstance(error, Exception):
            self.crashed(error)
        now = self.run.clock.now
        for lane in self.lanes:
            lane.tick(now, final=True)

    def _deliver(self, name: str, payload: dict[str, Any]) -> None:
        getattr(self.run.pm.hook, f"arbframe_on_{name}")(run=self.run.info, **payload)

    # ---- the summary -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """``summary.alerting`` (what is still grouped or held is sent first: the counts are
        final)."""
        self._poll()
        self.run.bus.drain(self._deliver)  # what _poll raised reaches the sinks and channels
        now = self.run.clock.now
        for lane in self.lanes:
            lane.tick(now, final=True)
        by_rule: dict[str, dict[str, int]] = {}
        by_severity: Counter[str] = Counter()
        for (rule, severity), n in sorted(self.fired.items()):
            by_rule.setdefault(rule, {})[severity] = n
            by_severity[severity] += n
        channels = {}
        for lane in self.lanes:
            counts = {k: lane.counts[k] for k in ("sent", "deduped", "grouped", "suppressed",
                                                  "summaries")}  # fmt: skip
            counts["failed"] = lane.channel.failed
            channels[lane.channel.name] = counts
        return {
            "fired": sum(self.fired.values()),
            "by_rule": by_rule,
            "by_severity": dict(sorted(by_severity.items())),
            "channels": channels,
        }


def _venue_error(reason: str) -> bool:
    return bool(re.search(r"\b(429|5\d\d)\b|not found|lost|timed? ?out", reason, re.I))


def _one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text.splitlines()[0] if text else type(error).__name__


def wire(run: Run) -> AlertEngine | None:
    """The run's alert engine (the same one again for a revived engine); None when off."""
    existing: AlertEngine | None = getattr(run, "alerting", None)
    if existing is not None:
        existing.bind()
        return existing
    channels = [c for c in run.listeners if isinstance(c, MessageChannel)]
    config = run.scenario.get("alerting")
    if config is None and not channels:
        return None
    try:
        settings = Settings.from_config(config)
    except ConfigError as err:
        raise run.loaded.error(("alerting", *err.key), err.message) from None
    engine = AlertEngine(run, settings, channels)
    run.listeners.insert(0, engine)  # closed first: it flushes into channels still open
    return engine


def ticker(engine: AlertEngine | None, every: float = 0.25) -> Callable[[], None]:
    """A wall-clock session's periodic ``tick`` on the engine's loop; returns its stop."""
    if engine is None:
        return lambda: None
    loop = asyncio.get_running_loop()
    handle: list[asyncio.TimerHandle] = []

    def beat() -> None:
        engine.tick(engine.run.clock.present())  # type: ignore[union-attr]
        handle[:] = [loop.call_later(every, beat)]

    handle.append(loop.call_later(every, beat))
    return lambda: handle[0].cancel()
