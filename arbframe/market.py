"""The market-data view: books, instruments, FX and balances, whatever kind of venue
produced them.

The kernel creates one :class:`~arbframe.model.Book` per instrument at wiring and hands it
to whoever keeps it current (a simulated venue fed by the feeds, a real venue's
market-data task). Strategies and the execution layer read the same objects here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from arbframe.model import Book, Instrument

if TYPE_CHECKING:
    from arbframe.components import Exchange


class MarketView:
    """What a strategy reads (``ctx.market``): the books, instruments and FX rates the kernel
    keeps, and the venues' balances. Strategies only read it; wiring and ``set_fx`` are the
    kernel's."""

    def __init__(self, report_currency: str, fx: dict[str, Decimal]) -> None:
        self.report_currency = report_currency
        """The scenario's report currency (its rate is 1)."""
        self.fx_exact: dict[str, Decimal] = {**fx, report_currency: Decimal(1)}
        """Units of each currency per report-currency unit, exact (what fills are booked at)."""
        self.fx: dict[str, float] = {cur: float(rate) for cur, rate in self.fx_exact.items()}
        """The same rates as floats, for spread arithmetic on the per-quote path."""
        self.start_fx = dict(self.fx_exact)
        """The exact rates when the run started (the summary values the starting equity at them)."""
        self._books: dict[tuple[str, str], Book] = {}
        self._instruments: dict[tuple[str, str], Instrument] = {}
        self._venues: dict[str, Exchange] = {}
        self.volumes: dict[tuple[str, str], float] = {}
        """(venue, symbol) -> the 24h volume last reported, in the instrument's quote currency."""

    # ---- wiring ---------------------------------------------------------------------------

    def add_venue(self, name: str, venue: Exchange) -> None:
        """Wiring (the kernel's): a venue whose balances this view reads."""
        self._venues[name] = venue

    def add_instrument(self, instrument: Instrument, book: Book) -> None:
        """Wiring (the kernel's): an instrument and the book kept for it."""
        key = (instrument.venue, instrument.symbol)
        self._instruments[key] = instrument
        self._books[key] = book

    def has(self, venue: str, symbol: str) -> bool:
        """Whether ``venue`` has an instrument named ``symbol``."""
        return (venue, symbol) in self._instruments

    # ---- reading --------------------------------------------------------------------------

    @property
    def venues(self) -> list[str]:
        """Every venue's name, in scenario order."""
        return list(self._venues)

    def book(self, venue: str, symbol: str) -> Book:
        """The book of ``symbol`` on ``venue``: the same object for the whole run, its sides
        replaced on every update (KeyError when not quoted there)."""
        return self._books[(venue, symbol)]

    def instrument(self, venue: str, symbol: str) -> Instrument:
        """The instrument of ``symbol`` on ``venue``: precision, minimums and fees."""
        return self._instruments[(venue, symbol)]

    def instruments(self, venue: str | None = None) -> list[Instrument]:
        """Every instrument, or those of ``venue``."""
        return [i for (v, _), i in self._instruments.items() if venue is None or v == venue]

    def quoting(self, symbol: str) -> list[str]:
        """Venues with an instrument named ``symbol``, in scenario order."""
        return [v for v in self._venues if (v, symbol) in self._instruments]

    def symbols(self) -> list[str]:
        """Every symbol quoted on any venue, once each, in order of first appearance."""
        return list(dict.fromkeys(s for _, s in self._instruments))

    def available(self, venue: str, asset: str) -> Decimal:
        """Free balance the venue reports (not locked by open orders)."""
        return self._venues[venue].available(asset)

    def balance(self, venue: str, asset: str) -> Decimal:
        """Total balance of ``asset`` the venue reports (locked amounts included; 0 when it has
        none)."""
        return self._venues[venue].balances().get(asset, Decimal(0))

    def volume(self, venue: str, symbol: str) -> float | None:
        """24h volume of ``symbol`` on ``venue`` in the report currency (the last figure a feed
        reported, at the current FX rate), or None when none was reported."""
        value = self.volumes.get((venue, symbol))
        if value is None:
            return None
        return value / self.fx[self._instruments[(venue, symbol)].quote]

    def top(self, venue: str, symbol: str) -> tuple[float, float] | None:
        """Best bid and ask in the report currency, or None without a full book."""
        book = self._books[(venue, symbol)]
        if not book.bids or not book.asks:
            return None
        rate = self.fx[self._instruments[(venue, symbol)].quote]
        return book.bids[0][0] / rate, book.asks[0][0] / rate

    def mid(self, venue: str, symbol: str) -> float | None:
        """Mid price in the report currency, or None without both sides."""
        top = self.top(venue, symbol)
        return None if top is None else (top[0] + top[1]) / 2

    def age(self, venue: str, symbol: str, now: int) -> int:
        """How old the book is at ``now`` (ns)."""
        return now - self._books[(venue, symbol)].ts

    # ---- updates --------------------------------------------------------------------------

    def set_fx(self, currency: str, rate: float) -> None:
        """An FX update from a feed (the kernel's): units of ``currency`` per report-currency
        unit."""
        self.fx_exact[currency] = Decimal(repr(rate))
        self.fx[currency] = rate

    def set_volume(self, venue: str, symbol: str, value: float) -> None:
        """A feed's 24h volume figure (the kernel's, through ``FeedContext.report_volume``):
        in the instrument's quote currency. An instrument the run does not have is ignored."""
        if (venue, symbol) in self._instruments:
            self.volumes[(venue, symbol)] = float(value)
