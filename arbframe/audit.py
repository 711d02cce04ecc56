"""Reconciliation against sources that could disagree with the ledger.

Three independent checks, each of which a broken venue or a broken kernel fails:

* **prices**: every fill against the book the venue *published* at that instant (kept here
  as the feeds delivered it, before any fill touched it). A taker fill must be at one of
  the book's level prices (rounded to the tick) and, together with every other fill
  against the same book, take no more at a level than the level held; a maker fill must
  be at a price the book crossed. A venue that publishes a markup (a dealer) fills a taker
  at a level moved by it against the taker (``FeeSchedule.markup_bps``). The paper fill
  model has no slippage beyond walking the levels, so there is no tolerance.
* **fees**: every fee recomputed from the venue's published fee schedule (rate by
  liquidity, flat fee, fee asset, the fee asset's price, rounding half-even to its unit).
* **balances**: the ledger's balances (built from the fills and balance changes the venue
  *reported*) against the balances the venue keeps in its own account, to the unit.

A fill older than the book history kept here cannot be priced; it is counted as
unverifiable, not as passed.
"""

from __future__ import annotations

from collections import defaultdict, deque
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from arbframe.model import BUY, ZERO, Fill, money

if TYPE_CHECKING:
    from arbframe.components import Exchange
    from arbframe.ledger import Ledger
    from arbframe.market import MarketView

BPS = Decimal(10_000)
HISTORY = 256  # books kept per instrument: covers fill reports delayed by that many updates
EXAMPLES = 10
PRUNE_AT = 4096  # levels taken from remembered before forgetting those of old books


class Audit:
    def __init__(self, market: MarketView) -> None:
        self.market = market
        self.history: dict[tuple[str, str], deque[tuple[int, Any, Any]]] = {}
        self.first_mid: dict[tuple[str, str], float] = {}
        self.checked = 0
        self.unverifiable = 0
        self.price_violations = 0
        self.fee_violations = 0
        self.violations: list[str] = []
        self._taken: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
        self.unpriceable: set[str] = set()
        """Venues whose fills cannot be priced against the delivered books
        (``Exchange.fills_priceable`` false): counted unverifiable, fees still checked."""

    # ---- the published books (per quote) ------------------------------------------------------

    def recorder(self, instrument: Any, targets: dict[str, Any], on_book: Any) -> Any:
        """The function that records one instrument's published books, (ts, bids, asks).

        The first full book also notes its mid (it values the starting equity), then puts
        the bare ``deque.append`` in ``targets[symbol]`` for the per-quote path.
        """
        key = (instrument.venue, instrument.symbol)
        history = self.history.setdefault(key, deque(maxlen=HISTORY))
        if key in self.first_mid:  # a resumed run: its first book was seen before
            return history.append

        def first(entry: tuple[int, Any, Any]) -> None:
            history.append(entry)
            _, bids, asks = entry
            if bids and asks:
                self.first_mid[key] = (bids[0][0] + asks[0][0]) / 2
                targets[instrument.symbol] = (history.append, on_book)

        return first

    # ---- fills (on the event path) --------------------------------------------------------------

    def on_event(self, name: str, payload: dict[str, Any]) -> None:
        """The journal subscription (to ``fill`` events)."""
        self.check_fill(payload["fill"])

    def check_fill(self, fill: Fill) -> None:
        self.checked += 1
        if len(self._taken) > PRUNE_AT:
            self._prune()
        instrument = self.market.instrument(fill.venue, fill.symbol)
        self._check_fee(fill, instrument)
        if fill.venue in self.unpriceable:  # a real exchange's fill: its book, not ours
            self.unverifiable += 1
            return
        books = self._books_at(fill.venue, fill.symbol, fill.ts)
        if not books:
            self.unverifiable += 1
            return
        problems = [self._price_problem(fill, book, instrument) for book in books]
        if all(problems):
            self.price_violations += 1
            self._violation(f"{_name(fill)}: {problems[-1]}")

    def _prune(self) -> None:
        """Forget what fills took from books no longer in the history (bounded memory)."""
        oldest = {key: history[0][0] for key, history in self.history.items() if history}
        self._taken = defaultdict(
            Decimal,
            {k: v for k, v in self._taken.items() if k[2] >= oldest.get((k[0], k[1]), 0)},
        )

    def _books_at(self, venue: str, symbol: str, ts: int) -> list[tuple[int, Any, Any]]:
        """The books in force at ``ts``: those published at ``ts`` itself and the last one
        before (an order executed at that instant may have met either). Empty when ``ts``
        is older than the history kept."""
        history = self.history.get((venue, symbol))
        if not history or history[0][0] > ts:
            return []
        out = []
        for entry in reversed(history):
            if entry[0] <= ts:
                out.append(entry)
                if entry[0] < ts:
                    break
        return out

    def _price_problem(self, fill: Fill, book: tuple[int, Any, Any], instrument: Any) -> str:
        version, bids, asks = book
        levels = asks if fill.side == BUY else bids
        tick, step = instrument.price_tick, instrument.amount_step
        if fill.liquidity == "maker":  # a resting order: the book must have crossed it
            buy = fill.side == BUY
            crossing = [(p, s) for p, s in levels if (p <= fill.price if buy else p >= fill.price)]
            depth = sum((Decimal(repr(s)) for _, s in crossing), ZERO)
            key = (fill.venue, fill.symbol, version, fill.side, "maker", fill.price)
            if not crossing or self._taken[key] + fill.amount > depth:
                return f"maker fill at {fill.price} not crossed by the book of {version}"
            self._taken[key] += fill.amount
            return ""
        markup = instrument.fees.markup_bps
        for price, size in levels:
            level = Decimal(repr(price)).quantize(tick, ROUND_HALF_EVEN)
            if markup:  # a dealer's price: the level moved against the taker
                level = _marked_up(level, fill.side, markup, tick)
            if level != fill.price:
                continue
            depth = Decimal(repr(size)).quantize(step, ROUND_DOWN)
            key = (fill.venue, fill.symbol, version, fill.side, fill.price)
            if self._taken[key] + fill.amount > depth:
                return (
                    f"{money(self._taken[key] + fill.amount)} taken at {fill.price}, "
                    f"the book of {version} held {money(depth)}"
                )
            self._taken[key] += fill.amount
            return ""
        return f"price {fill.price} is not a level of the book of {version}"

    def _check_fee(self, fill: Fill, instrument: Any) -> None:
        schedule = instrument.fees
        bps = schedule.maker_bps if fill.liquidity == "maker" else schedule.taker_bps
        asset = schedule.fee_asset(fill.side, instrument.base, instrument.quote)
        if asset == instrument.quote:
            price = Decimal(1)
        elif asset == instrument.base:
            price = fill.price
        else:
            price = schedule.asset_price
        unit = schedule.quote_unit if asset == instrument.quote else schedule.unit
        charged = fill.price * fill.amount * bps / BPS / price + schedule.flat_fee
        expected = charged.quantize(unit, ROUND_HALF_EVEN)
        if (fill.fee, fill.fee_asset, fill.fee_price) != (expected, asset, price):
            self.fee_violations += 1
            self._violation(
                f"{_name(fill)}: fee {money(fill.fee)} {fill.fee_asset} at "
                f"{money(fill.fee_price)}, the schedule says {money(expected)} {asset} at "
                f"{money(price)}"
            )

    def _violation(self, text: str) -> None:
        if len(self.violations) < EXAMPLES:
            self.violations.append(text)

    # ---- balances (at the end) ------------------------------------------------------------------

    def balances(self, ledger: Ledger, venues: dict[str, Exchange]) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        mismatches = 0
        for name, venue in venues.items():
            reported = venue.balances()
            mine = ledger.balances[name]
            rows[name] = {}
            for asset in sorted(set(reported) | set(mine)):
                theirs, ours = reported.get(asset, ZERO), mine.get(asset, ZERO)
                rows[name][asset] = {
                    "start": money(ledger.start_balances[name].get(asset, ZERO)),
                    "ledger": money(ours),
                    "venue": money(theirs),
                    "fees": money(ledger.fees[name].get(asset, ZERO)),
                    "difference": money(theirs - ours),
                }
                if theirs != ours:
                    mismatches += 1
                    self._violation(f"{name} {asset}: venue {theirs}, ledger {ours}")
        return {"mismatches": mismatches, "venues": rows}

    def report(self, ledger: Ledger, venues: dict[str, Exchange]) -> dict[str, Any]:
        balances = self.balances(ledger, venues)
        return {
            "passed": not (self.price_violations or self.fee_violations or balances["mismatches"]),
            "fills": {
                "checked": self.checked,
                "price_violations": self.price_violations,
                "fee_violations": self.fee_violations,
                "unverifiable": self.unverifiable,
            },
            "balances": balances,
            "violations": list(self.violations),
        }


def _marked_up(level: Decimal, side: str, markup: Decimal, tick: Decimal) -> Decimal:
    """A dealer's price at ``level``: ``markup`` bps against the taker, rounded against it."""
    if side == BUY:
        return (level * (BPS + markup) / BPS).quantize(tick, ROUND_CEILING)
    return (level * (BPS - markup) / BPS).quantize(tick, ROUND_FLOOR)


def _name(fill: Fill) -> str:
    return f"fill {fill.fill_id} ({fill.venue} {fill.side} {money(fill.amount)} {fill.symbol})"
