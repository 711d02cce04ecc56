"""The guard chain: every guard asked about every entry intent, in the scenario's order; the
most restrictive verdict wins, every decision is counted, and plugins hear of a verdict
when it changes.

Exits are never asked: a guard may stop a position from growing, never from closing.

Cooldowns are scoped (``GuardDecision.scope``): a symbol (key: the symbol itself, so a
strategy reads ``cooldowns.get(symbol)``), a route on a symbol (``route:<symbol>:<route>``),
a venue (``venue:<name>``: every route through it) or everything (``global``). An intent is
refused while any scope that applies to it cools down; each route's keys are computed once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arbframe.model import ACTION_RANK, ACTIONS, Action, GuardDecision, Intent, Route, Trade

if TYPE_CHECKING:
    from arbframe.components import Guard

ALLOWED = Action.ALLOW
COOLDOWN = Action.COOLDOWN
DEGRADE = Action.DEGRADE
GLOBAL = "global"
ROUTE_KEYS_MAX = 4096  # a strategy building a Route per entry must not grow the cache forever


def route_key(symbol: str, route: str) -> str:
    return f"route:{symbol}:{route}"


def venue_key(venue: str) -> str:
    return f"venue:{venue}"


class _RouteKeys(dict):  # type: ignore[type-arg]
    """id(route) -> (route, its scope keys). Rebuilt after a resume (ids do not survive):
    it pickles empty."""

    def __reduce__(self) -> Any:
        return (_RouteKeys, ())


class GuardChain:
    def __init__(self, guards: list[Guard], publish: Callable[..., None]) -> None:
        self.guards = guards
        self._publish = publish
        self.counts: dict[str, list[int]] = {g.name: [0, 0, 0, 0] for g in guards}
        """guard name -> decisions by action rank (allow, degrade, cooldown, block)."""
        self.rules: dict[str, Counter[str]] = {g.name: Counter() for g in guards}
        """guard name -> rule -> non-ALLOW verdicts."""
        self.tiers: dict[str, str] = {g.name: g.type_name for g in guards}
        self.first: dict[str, dict[str, tuple[int, str, str]]] = {g.name: {} for g in guards}
        """guard name -> action -> (time, reason, rule) of its first such verdict."""
        self.cooldowns: dict[str, int] = {}
        """scope key -> when entries may resume (a symbol's key is the symbol)."""
        self._last: dict[tuple[str, str], tuple[Action, str]] = {}
        self._slots = [(g, self.counts[g.name]) for g in guards]
        self._keys = _RouteKeys()

    def add(self, guard: Any) -> None:
        """A kernel tier asked after the scenario's guards (the universe's entry gate): any
        object with ``name``, ``type_name``, ``check`` and the ``on_trade_*`` calls."""
        self.guards = [*self.guards, guard]
        self.counts[guard.name] = [0, 0, 0, 0]
        self.rules[guard.name] = Counter()
        self.tiers[guard.name] = guard.type_name
        self.first[guard.name] = {}
        self._slots.append((guard, self.counts[guard.name]))

    # ---- scopes --------------------------------------------------------------------------------

    def scope_keys(self, route: Route) -> tuple[str, ...]:
        """The cooldown keys that apply to ``route``: symbol, route, its venues, global."""
        hit = self._keys.get(id(route))
        if hit is not None and hit[0] is route:
            return hit[1]
        if len(self._keys) >= ROUTE_KEYS_MAX:
            self._keys.clear()
        venues = dict.fromkeys(leg.venue for leg in route.legs)
        keys = (
            route.label,
            route_key(route.label, route.name),
            *(venue_key(v) for v in venues),
            GLOBAL,
        )
        self._keys[id(route)] = (route, keys)  # the route is held: its id is not reused
        return keys

    def cooling(self, route: Route, now: int) -> int | None:
        """When entries on ``route`` may resume, or None if no scope of it cools down."""
        cooldowns = self.cooldowns
        if not cooldowns:
            return None
        latest = None
        for key in self.scope_keys(route):
            until = cooldowns.get(key)
            if until is not None and now < until and (latest is None or until > latest):
                latest = until
        return latest

    @staticmethod
    def _scope_key(decision: GuardDecision, keys: tuple[str, ...]) -> str:
        """The key of the scope ``decision`` is about: a symbol's (the default), a route's,
        a venue's or the global one."""
        scope = decision.scope
        if not scope or scope == "symbol":
            return keys[0]
        if scope == "route":
            return keys[1]
        return scope

    def _cool(self, decision: GuardDecision, keys: tuple[str, ...]) -> None:
        key = self._scope_key(decision, keys)
        until = decision.until
        if until is not None and until > self.cooldowns.get(key, 0):
            self.cooldowns[key] = until

    # ---- the verdict -----------------------------------------------------------------------------

    def check(self, intent: Intent) -> GuardDecision | None:
        """None to allow, else the most restrictive decision (DEGRADE: the smallest scale).
        The caller refuses intents in a cooling scope (``cooling``) before asking."""
        # Runs on every quote that shows an edge, blocked or not (all day once a daily loss
        # limit is hit): nothing is built that the answer does not need.
        verdict: GuardDecision | None = None
        keys: tuple[str, ...] | None = None
        last = self._last
        for guard, counts in self._slots:
            decision = guard.check(intent)
            if decision is None or decision.action is ALLOWED:
                counts[0] += 1
                if last:
                    if keys is None:
                        keys = self.scope_keys(intent.route)
                    last.pop((guard.name, keys[0]), None)
                    last.pop((guard.name, keys[1]), None)
                continue
            action = decision.action
            rank = ACTION_RANK[action]
            counts[rank] += 1
            name = guard.name
            rule = decision.rule or guard.type_name
            self.rules[name][rule] += 1
            if counts[rank] == 1:
                self.first[name][action.value] = (decision.ts, decision.reason, rule)
            if keys is None:
                keys = self.scope_keys(intent.route)
            # Refusals repeat on every quote that shows an edge: tell plugins of changes only.
            key = (name, self._scope_key(decision, keys))
            if last.get(key) != (action, decision.reason):
                last[key] = (action, decision.reason)
                self._publish("guard_decision", decision=decision)
            if action is COOLDOWN:
                self._cool(decision, keys)
            if (
                verdict is None
                or rank > ACTION_RANK[verdict.action]
                or (action is verdict.action is DEGRADE and decision.scale < verdict.scale)
            ):
                verdict = decision
        return verdict

    def trade_opened(self, trade: Trade) -> None:
        for guard in self.guards:
            guard.on_trade_opened(trade)

    def trade_closed(self, trade: Trade) -> None:
        for guard in self.guards:
            guard.on_trade_closed(trade)

    def state(self) -> dict[str, Any]:
        return {guard.name: guard.state() for guard in self.guards}

    # ---- the summary -----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """``summary.guards``: decisions per tier, triggers per rule, counts per guard."""
        decisions: dict[str, dict[str, int]] = {}
        triggers: Counter[str] = Counter()
        by_guard: dict[str, dict[str, Any]] = {}
        for name, counts in self.counts.items():
            tier = decisions.setdefault(self.tiers.get(name, name), dict.fromkeys(_NAMES, 0))
            for action, n in zip(_NAMES, counts, strict=True):
                tier[action] += n
            triggers.update(self.rules.get(name, {}))
            by_guard[name] = {
                **{a: n for a, n in zip(_NAMES, counts, strict=True) if n},
                "rules": dict(sorted(self.rules.get(name, Counter()).items())),
            }
        return {
            "decisions": dict(sorted(decisions.items())),
            "triggers": dict(sorted(triggers.items())),
            "by_guard": dict(sorted(by_guard.items())),
        }


_NAMES = tuple(a.value for a in ACTIONS)
