"""Base classes, one per component kind.

A plugin provides a component type by subclassing one of these, setting ``type_name``
(what ``type:`` selects in a scenario) and ``config_schema`` (the JSON Schema of its
config block, ``type`` excluded), and registering the class from the matching
registration hook in :mod:`arbframe.hookspecs`.

Components are built once per run as ``cls(config, name=..., run=...)``: ``config`` is the
validated block with ``type`` removed, ``name`` is the component's name in the scenario
(the venue's key, or ``<kind>[i]``), and ``run`` is the :class:`arbframe.runner.Run` that
gives access to the clock, the engine, the venues and the alert path.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from arbframe.model import Book, GuardDecision, Intent, Market, Order, Trade
    from arbframe.runner import Run

INTERFACE_VERSION = 1

# A feed event. Book update: (ts_ns, venue, symbol, bids, asks), sides best first as
# (price, size) float pairs. FX update: (ts_ns, None, currency, rate, None), where rate is
# units of `currency` per one unit of the report currency.
FeedEvent = tuple[int, Any, str, Any, Any]


class Component:
    kind: ClassVar[str] = ""
    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    interface_version: ClassVar[int] = INTERFACE_VERSION

    def __init__(self, config: dict[str, Any], *, name: str, run: Run) -> None:
        self.config = config
        self.name = name
        self.run = run
        self.scenario_path: tuple[str | int, ...] = ()  # where its block sits (set by Run)


class Exchange(Component):
    """A venue: markets, balances, books, orders.

    The engine and strategies read these attributes directly; a venue keeps them current.
    """

    kind = "exchange"
    quote: str  # the quote currency of every market on this venue
    taker_bps: Decimal
    markets: dict[str, Market]  # symbol -> market, filled by add_market()
    books: dict[str, Book]  # symbol -> live book; the same object for the whole run
    first_mid: dict[str, float]  # symbol -> mid of its first book (for equity_start)
    balances: dict[str, Decimal]  # asset -> total balance

    def add_market(self, symbol: str) -> None:
        """Called at wiring for every symbol a feed quotes on this venue."""
        raise NotImplementedError

    def on_book(self, ts: int, symbol: str, bids: Any, asks: Any) -> None:
        """A new book for `symbol` arrived from a feed (per quote: keep it cheap)."""
        raise NotImplementedError

    def submit(self, order: Order) -> None:
        """Accept an order; report updates and fills through ``run.engine``."""
        raise NotImplementedError

    def cancel(self, client_id: str) -> None:
        raise NotImplementedError

    def available(self, asset: str) -> Decimal:
        """Balance not locked by open orders."""
        raise NotImplementedError


class Feed(Component):
    """A source of books (and optionally FX rates), in time order."""

    kind = "feed"

    def venues(self) -> list[str]:
        raise NotImplementedError

    def symbols(self) -> list[str]:
        raise NotImplementedError

    def events(self) -> Iterator[FeedEvent]:
        """Yield events in non-decreasing time order; stream, do not materialise."""
        raise NotImplementedError


class Strategy(Component):
    kind = "strategy"

    def on_start(self) -> None:
        pass

    def on_quote(self, ts: int, venue: str, symbol: str) -> None:
        """Called on every book update (the hot path)."""

    def on_order_update(self, order: Order) -> None:
        pass

    def on_timer(self, ts: int, payload: Any) -> None:
        pass

    def on_end(self) -> None:
        """Called when the feed is exhausted or the duration elapsed."""


class Guard(Component):
    """A risk tier, asked about every entry intent. Exits are never blocked."""

    kind = "guard"

    def check(self, intent: Intent) -> GuardDecision | None:
        """Return a decision, or None to allow."""
        raise NotImplementedError

    def on_trade_closed(self, trade: Trade) -> None:
        pass

    def state(self) -> dict[str, Any]:
        """Guard state for the summary and for persistence."""
        return {}


class Sink(Component):
    """Persists run events; implements the ``arbframe_on_*`` hooks it cares about."""

    kind = "sink"

    def close(self) -> None:
        pass


class AlertChannel(Component):
    """Delivers alerts; implements ``arbframe_on_alert``."""

    kind = "alert"

    def close(self) -> None:
        pass


class Fault(Component):
    """Injects a failure into a run (rejects, disconnects, crashes...)."""

    kind = "fault"

    def arm(self) -> None:
        """Called once after wiring; schedule timers or wrap venues here."""
        raise NotImplementedError


KINDS: dict[str, type[Component]] = {
    "exchange": Exchange,
    "feed": Feed,
    "strategy": Strategy,
    "guard": Guard,
    "sink": Sink,
    "alert": AlertChannel,
    "fault": Fault,
}
