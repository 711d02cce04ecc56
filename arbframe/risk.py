"""The guard chain: every tier asked about every entry intent; the most restrictive verdict
wins, every refusal is counted, and plugins hear of a verdict when it changes.

Exits are never asked: a guard may stop a position from growing, never from closing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arbframe.model import ACTION_RANK, Action, GuardDecision, Intent, Trade

if TYPE_CHECKING:
    from arbframe.components import Guard

ALLOWED = Action.ALLOW


class GuardChain:
    def __init__(self, guards: list[Guard], publish: Callable[..., None]) -> None:
        self.guards = guards
        self._publish = publish
        self.counts: dict[str, Counter[str]] = {}
        """guard name -> action -> refusals counted."""
        self.first: dict[str, dict[str, tuple[int, str]]] = {}
        """guard name -> action -> (time, reason) of its first refusal."""
        self.cooldowns: dict[str, int] = {}
        """symbol -> when entries may resume, from a winning COOLDOWN verdict."""
        self._last: dict[tuple[str, str], tuple[Action, str]] = {}

    def check(self, intent: Intent) -> GuardDecision | None:
        """None to allow, else the most restrictive decision (DEGRADE: the smallest scale).
        The caller refuses symbols in ``cooldowns`` before asking."""
        # Runs on every quote that shows an edge, blocked or not (all day once a daily loss
        # limit is hit): nothing is built that the answer does not need.
        verdict: GuardDecision | None = None
        for guard in self.guards:
            decision = guard.check(intent)
            if decision is None or decision.action is ALLOWED:
                continue
            name, action = guard.name, decision.action
            counts = self.counts.get(name)
            if counts is None:
                counts = self.counts[name] = Counter()
                self.first[name] = {}
            if not counts[action.value]:
                self.first[name][action.value] = (decision.ts, decision.reason)
            counts[action.value] += 1
            # Refusals repeat on every quote that shows an edge: tell plugins of changes only.
            key = (name, intent.symbol)
            if self._last.get(key) != (action, decision.reason):
                self._last[key] = (action, decision.reason)
                self._publish("guard_decision", decision=decision)
            if (
                verdict is None
                or ACTION_RANK[action] > ACTION_RANK[verdict.action]
                or (action is verdict.action is Action.DEGRADE and decision.scale < verdict.scale)
            ):
                verdict = decision
        if verdict is None:
            if self._last:
                self._last = {k: v for k, v in self._last.items() if k[1] != intent.symbol}
            return None
        if verdict.action is Action.COOLDOWN and verdict.until is not None:
            self.cooldowns[intent.symbol] = verdict.until
        return verdict

    def trade_opened(self, trade: Trade) -> None:
        for guard in self.guards:
            guard.on_trade_opened(trade)

    def trade_closed(self, trade: Trade) -> None:
        for guard in self.guards:
            guard.on_trade_closed(trade)

    def state(self) -> dict[str, Any]:
        return {guard.name: guard.state() for guard in self.guards}
