"""The event path: every order, fill, trade, guard, alert and balance event passes here.

``publish`` hands an event to the journal subscribers at once (in the fill path: what a
write-ahead journal or a snapshot needs) and queues it for the plugins' event hooks, which
``drain`` delivers between instants, outside the fill path. Sinks and alert channels
therefore never run inside the execution layer, and a slow sink cannot reorder trading.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

Event = tuple[str, dict[str, Any]]  # (hook name without the arbframe_on_ prefix, payload)


class EventBus:
    def __init__(self) -> None:
        self.queue: deque[Event] = deque()
        """Events published and not yet delivered (the driver drains it when not empty)."""
        self._journal: dict[str | None, list[Callable[[str, dict[str, Any]], None]]] = {}
        self.silent: set[str] = set()
        """Events nobody listens to (no journal subscriber, no hook implementation): not
        queued, and publishers may skip building them."""

    def subscribe_journal(
        self, fn: Callable[[str, dict[str, Any]], None], name: str | None = None
    ) -> None:
        """``fn(name, payload)`` on every event (or every event called ``name``),
        synchronously, in publishing order."""
        self._journal.setdefault(name, []).append(fn)

    def publish(self, name: str, /, **payload: Any) -> None:
        if name in self.silent:
            return
        journal = self._journal
        if journal:
            for fn in (*journal.get(None, ()), *journal.get(name, ())):
                fn(name, payload)
        self.queue.append((name, payload))

    def silence(self, names: list[str], listened: Callable[[str], bool]) -> None:
        """Mark silent each of ``names`` with no journal subscriber and not ``listened``."""
        journal = self._journal
        self.silent = {
            name for name in names if not (journal.get(None) or journal.get(name) or listened(name))
        }

    def drain(self, deliver: Callable[[str, dict[str, Any]], None]) -> None:
        """Deliver every queued event, in order (events published meanwhile included)."""
        queue = self.queue
        while queue:
            name, payload = queue.popleft()
            deliver(name, payload)
