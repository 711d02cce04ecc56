"""Routes: which venue to buy a symbol on and which to sell it on, and how much (a kernel
service; strategies reach it as ``ctx.routes``).

A route is buy venue x sell venue x symbol: with n venues quoting a symbol, n (n - 1)
routes. A :class:`RouteScanner`, built once per symbol at wiring, evaluates them all at
each instant, in two steps so that the per-quote path stays cheap.

1. Every route, on floats (report-currency prices: quote price / FX rate)::

       gross_edge_bps = (best bid(sell) - best ask(buy)) / best ask(buy) * 1e4
       fees_bps       = taker_bps(buy) + taker_bps(sell)

   A route clears when ``gross_edge_bps - fees_bps >= entry_bps``.

2. Only routes that clear:

   * ``max_base``: the depth the visible books support at the threshold. Walk the buy
     venue's asks and the sell venue's bids level by level (the classic two-book walk),
     adding the smaller remaining amount of the two current levels while that pair's own
     edge, ``(bid - ask) / ask * 1e4 - fees_bps``, is still >= ``entry_bps`` (and no further
     than the wanted size: only min(wanted, depth) is used).
   * ``base = min(wanted, max_base)``, ``wanted`` being the strategy's size (a ``quote``
     notional converts at the best ask of the buy venue, as ``enter`` does).
   * ``expected_slippage_bps = ((vwap_buy - ask) + (bid - vwap_sell)) / ask * 1e4``: the
     VWAPs of ``base`` on both books against their tops, in bps of the best ask, the same
     cost per unit the fills' ``slippage`` books (a fill versus the top when it was sent).
   * ``net_edge_bps = gross_edge_bps - fees_bps - expected_slippage_bps``.
   * ``health = min(health(buy venue), health(sell venue))``, clamped to [0, 1] (the
     injected health callable; 1 without one). Health only ranks: refusing a sick venue
     is a guard's (the ``exchange`` tier's circuit breaker).
   * ``usage``: the largest share of a free balance the entry would take, ``max(base *
     best ask * headroom / free quote on the buy venue, base / free base on the sell
     venue)`` (``headroom``: the execution layer's margin for a buy). Above 1 the route
     cannot be funded and is ineligible.

   ``score = w_edge * net_edge_bps - w_health * (1 - health) - w_inventory * usage``; the
   highest score wins (ties: the route listed first). With a healthy market and balances
   to spare the score is the net edge less a small usage penalty.

The walk, the VWAPs and the usage assume the books as they are now; a venue's own fills
deplete them until its next book, so the next instant sees what is left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from arbframe.errors import ConfigError
from arbframe.model import Levels, Route

if TYPE_CHECKING:
    from arbframe.market import MarketView

Health = Callable[[str], float]
EPSILON = 1e-12  # amounts below this are float noise (book sizes carry <= 8 decimals)

ROUTING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "How routes are scored (arbframe.routing): "
    "score = edge * net_edge_bps - health * (1 - health score) - inventory * usage.",
    "properties": {
        "weights": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "edge": {"type": "number", "minimum": 0, "default": 1.0},
                "health": {"type": "number", "minimum": 0, "default": 10.0},
                "inventory": {"type": "number", "minimum": 0, "default": 5.0},
            },
        }
    },
}


def _healthy(venue: str) -> float:
    return 1.0


def _ignore(reason: str) -> None:
    pass


@dataclass(frozen=True)
class Weights:
    """The score's weights: bps of score per bps of net edge, per unit of lost health and per
    unit of balance usage."""

    edge: float = 1.0
    health: float = 10.0
    inventory: float = 5.0

    @classmethod
    def from_config(cls, routing: dict[str, Any], path: tuple[str | int, ...] = ()) -> Weights:
        """From a ``routing:`` block; ConfigError naming the key for a bad weight."""
        weights = routing.get("weights", {})
        if not isinstance(weights, dict):
            raise ConfigError("must be a mapping of weights", (*path, "weights"))
        for key, value in weights.items():
            where = (*path, "weights", key)
            if key not in ("edge", "health", "inventory"):
                raise ConfigError("unknown weight (edge, health, inventory)", where)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"must be a number >= 0, got {value!r}", where)
        return cls(**{k: float(v) for k, v in weights.items()})


@dataclass(slots=True)  # not frozen: built on the entry path, where __setattr__ calls cost
class Opportunity:
    """A route that clears the threshold, priced on the visible books (see the module)."""

    route: Route
    gross_edge_bps: float
    fees_bps: float
    expected_slippage_bps: float
    net_edge_bps: float
    max_base: float
    """Depth at the threshold (base), rounded to 1e-12; the walk stops once it holds the wanted
    size, so this is exact only when it is smaller (``depth_limited``)."""
    base: float
    """What to trade: min(wanted, max_base)."""
    wanted_base: float
    """The strategy's size in base."""
    score: float
    components: dict[str, float]
    """``edge`` (net_edge_bps), ``health`` (0..1), ``inventory`` (usage, 0..1)."""

    @property
    def depth_limited(self) -> bool:
        """The books support less than the strategy wanted."""
        return self.base < self.wanted_base


@dataclass(frozen=True, slots=True)
class _Candidate:
    buy: int  # index of the buy venue's book in the scanner
    sell: int
    route: Route
    fees: float
    quote_asset: str  # what the buy venue spends
    base_asset: str  # what the sell venue delivers


class Router:
    """The routing service (``ctx.routes``). ``health`` is a callable venue -> [0, 1] (1
    healthy); the integrator wires a venue health monitor into it, by default every venue
    is healthy. ``refused(reason)`` hears of each clearing route left out: ``balance``
    (cannot be funded, the reason the execution layer would give)."""

    def __init__(
        self,
        market: MarketView,
        *,
        headroom: Decimal,
        health: Health | None = None,
        refused: Callable[[str], None] | None = None,
    ) -> None:
        self.market = market
        self.headroom = float(headroom)
        self.health: Health = health or _healthy
        """Venue -> health in [0, 1]; read at every evaluation, so it may be replaced later."""
        self.refused = refused or _ignore

    def scanner(
        self,
        symbol: str,
        *,
        entry_bps: float,
        venues: Sequence[str] | None = None,
        weights: Weights | None = None,
    ) -> RouteScanner:
        """Every route of ``symbol`` between ``venues`` (default: every venue quoting it), in
        venue order: (v0 -> v1), (v0 -> v2), ..., (v1 -> v0), ... ValueError with fewer
        than two venues quoting it."""
        market = self.market
        names = [v for v in market.quoting(symbol) if venues is None or v in venues]
        if len(names) < 2:
            raise ValueError(f"{symbol} is quoted on {len(names)} of the venues")
        return RouteScanner(self, symbol, names, entry_bps, weights or Weights())


class RouteScanner:
    """The routes of one symbol, precomputed at wiring: live books, quote currencies, the
    two taker fees of each route."""

    def __init__(
        self, router: Router, symbol: str, venues: list[str], entry_bps: float, weights: Weights
    ) -> None:
        market = router.market
        self.router = router
        self.symbol = symbol
        self.venues = venues
        self.entry_bps = float(entry_bps)
        self.weights = weights
        instruments = [market.instrument(v, symbol) for v in venues]
        self._books = [(market.book(i.venue, symbol), i.quote) for i in instruments]
        fee = [float(i.fees.taker_bps) for i in instruments]
        self._candidates = [
            _Candidate(i, j, Route.spread(symbol, buy, sell), fee[i] + fee[j],
                       instruments[i].quote, instruments[j].base)
            for i, buy in enumerate(venues)
            for j, sell in enumerate(venues)
            if i != j
        ]  # fmt: skip
        # The per-quote step's working set: flat tuples, the market's FX table (updated in
        # place), the best prices of each book in the report currency.
        self._fast = [(c.buy, c.sell, c.fees, c) for c in self._candidates]
        self._fx = market.fx
        self._bids: list[float | None] = [None] * len(venues)
        self._asks: list[float | None] = [None] * len(venues)
        self.fees = {c.route.name: c.fees for c in self._candidates}
        """Route name -> the route's two taker fees (bps)."""

    @property
    def routes(self) -> list[Route]:
        """Every route, in evaluation order."""
        return [c.route for c in self._candidates]

    def best(
        self,
        quote: float | None = None,
        base: float | None = None,
        gate: Callable[[Route], bool] | None = None,
    ) -> Opportunity | None:
        """The eligible route with the highest score, or None; size as ``enter`` takes it
        (``quote`` in the report currency, or ``base``). ``gate(route)``, asked of each route
        that clears before it is priced in depth, may leave it out (the execution layer's
        ``vet``: guards and cooldowns first, as ``enter`` asks them). The per-quote path:
        ``_clearing`` inlined, nothing allocated unless a route clears."""
        fx, bids, asks = self._fx, self._bids, self._asks
        for i, (book, currency) in enumerate(self._books):
            b, a = book.bids, book.asks
            if b and a:
                rate = fx[currency]
                bids[i], asks[i] = b[0][0] / rate, a[0][0] / rate
            else:
                bids[i] = asks[i] = None
        best, threshold = None, self.entry_bps
        for buy, sell, fees, c in self._fast:
            ask, bid = asks[buy], bids[sell]
            if ask is not None and bid is not None and (bid - ask) / ask * 1e4 - fees >= threshold:
                if gate is not None and not gate(c.route):
                    continue
                opp = self._evaluate(c, ask, bid, quote, base)
                if opp is not None and (best is None or opp.score > best.score):
                    best = opp
        return best

    def opportunities(
        self, *, quote: float | None = None, base: float | None = None
    ) -> list[Opportunity]:
        """Every eligible route that clears, best score first."""
        found = [self._evaluate(c, ask, bid, quote, base) for c, ask, bid in self._clearing()]
        return sorted((o for o in found if o is not None), key=lambda o: -o.score)

    def _clearing(self) -> list[tuple[_Candidate, float, float]]:
        """The per-quote step: routes whose top-of-book edge after fees clears, with the
        buy venue's best ask and the sell venue's best bid (report currency). Usually []."""
        fx, bids, asks = self._fx, self._bids, self._asks
        for i, (book, currency) in enumerate(self._books):
            b, a = book.bids, book.asks
            if b and a:
                rate = fx[currency]
                bids[i], asks[i] = b[0][0] / rate, a[0][0] / rate
            else:
                bids[i] = asks[i] = None
        threshold, found = self.entry_bps, []
        for buy, sell, fees, c in self._fast:
            ask, bid = asks[buy], bids[sell]
            if ask is not None and bid is not None and (bid - ask) / ask * 1e4 - fees >= threshold:
                found.append((c, ask, bid))
        return found

    def _evaluate(
        self, c: _Candidate, ask: float, bid: float, quote: float | None, base: float | None
    ) -> Opportunity | None:
        router, market = self.router, self.router.market
        buy_book, buy_ccy = self._books[c.buy]
        sell_book, sell_ccy = self._books[c.sell]
        buy_rate, sell_rate = market.fx[buy_ccy], market.fx[sell_ccy]
        asks, bids = buy_book.asks, sell_book.bids
        wanted = float(base) if base is not None else float(quote or 0) / ask
        max_base = depth(asks, buy_rate, bids, sell_rate, c.fees, self.entry_bps, wanted)
        size = min(wanted, max_base)
        if size <= 0:
            return None
        buy_venue, sell_venue = self.venues[c.buy], self.venues[c.sell]
        # Ranked, never refused here: refusing a sick venue is the circuit breaker's (a guard).
        health = max(0.0, min(1.0, router.health(buy_venue), router.health(sell_venue)))
        usage = max(
            _share(size * asks[0][0] * router.headroom, market.available(buy_venue, c.quote_asset)),
            _share(size, market.available(sell_venue, c.base_asset)),
        )
        if usage > 1:
            router.refused("balance")
            return None
        gross = (bid - ask) / ask * 1e4
        slippage = (vwap(asks, size) / buy_rate - ask) + (bid - vwap(bids, size) / sell_rate)
        slippage_bps = max(0.0, slippage / ask * 1e4)  # >= 0 but for float noise
        net = gross - c.fees - slippage_bps
        w = self.weights
        score = w.edge * net - w.health * (1 - health) - w.inventory * usage
        return Opportunity(
            route=c.route,
            gross_edge_bps=gross,
            fees_bps=c.fees,
            expected_slippage_bps=slippage_bps,
            net_edge_bps=net,
            max_base=max_base,
            base=size,
            wanted_base=wanted,
            score=score,
            components={"edge": net, "health": health, "inventory": usage},
        )


def depth(
    asks: Levels,
    ask_rate: float,
    bids: Levels,
    bid_rate: float,
    fees: float,
    threshold: float,
    enough: float = float("inf"),
) -> float:
    """Base amount the two books support while each matched level pair's net edge (bps of
    report-currency prices, after ``fees``) stays >= ``threshold``, rounded to 1e-12; the walk
    stops once it holds ``enough`` (what is wanted: the usual case costs one pair)."""
    i = j = 0
    total = 0.0
    left_a = asks[0][1] if asks else 0.0
    left_b = bids[0][1] if bids else 0.0
    while i < len(asks) and j < len(bids) and total < enough:
        ask = asks[i][0] / ask_rate
        if (bids[j][0] / bid_rate - ask) / ask * 1e4 - fees < threshold:
            break
        take = min(left_a, left_b)
        total += take
        left_a -= take
        left_b -= take
        if left_a <= EPSILON:
            i += 1
            left_a = asks[i][1] if i < len(asks) else 0.0
        if left_b <= EPSILON:
            j += 1
            left_b = bids[j][1] if j < len(bids) else 0.0
    return round(total, 12)


def vwap(levels: Levels, amount: float) -> float:
    """Average price of taking ``amount`` from ``levels`` (best first); past the last level
    the rest is priced at it (the caller never asks for more than the walk found)."""
    price, size = levels[0]
    if size >= amount:  # exactly the top, not p * q / q in floats
        return price
    left, cost = amount, 0.0
    for price, size in levels:
        take = size if size < left else left
        cost += take * price
        left -= take
        if left <= EPSILON:
            return cost / amount
    return (cost + left * price) / amount


def _share(need: float, available: Decimal) -> float:
    """The fraction of ``available`` that ``need`` takes (inf when nothing is available)."""
    have = float(available)
    return need / have if have > 0 else float("inf")
