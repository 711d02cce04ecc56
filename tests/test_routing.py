"""The routing service (arbframe.routing) on a hand-checked three-venue book.

Venues (report currency USDT; c quotes in KRW at 1000 KRW per USDT), entry_bps 10:

    a  fee 10 bp  bids 99.90 x 1               asks 100.00 x 0.4, 100.10 x 0.6
    b  fee 20 bp  bids 100.50 x 0.3, 100.35 x 1   asks 100.60 x 1
    c  fee  5 bp  bids 100.70 x 0.2, 100.50 x 0.5, 100.30 x 1 (KRW / 1000)   asks 100.80 x 1

Top-of-book edge after fees, (bid_sell - ask_buy) / ask_buy * 1e4 - fees:
    a_to_b: 50 - 30 = 20 (clears)     a_to_c: 70 - 15 = 55 (clears)
    b_to_a, b_to_c (9.94 - 25), c_to_a, c_to_b: below 10.
a_to_b is listed first (venue order), a_to_c is better.

Depth at the threshold, a_to_c (each matched pair's own edge after 15 bp of fees):
    100.00 / 100.70: 55     -> 0.2 (c's first bid gone)
    100.00 / 100.50: 35     -> 0.2 (a's first ask gone), 0.4 so far
    100.10 / 100.50: 24.98  -> 0.3 (c's second bid gone), 0.7 so far
    100.10 / 100.30: 4.98 < 10: stop.                    max_base = 0.7
a_to_b: 100.00 / 100.50: 20 -> 0.3; 100.00 / 100.35: 5 < 10: stop. max_base = 0.3

Wanting 1 BTC, a_to_c trades 0.7: buying costs 0.4 x 100 + 0.3 x 100.10 = 70.03 (0.03
over the top), selling brings 0.2 x 100.70 + 0.5 x 100.50 = 70.39 (0.10 under the top):
expected slippage = 0.13 / 0.7 per BTC = 18.5714 bp of 100; net edge = 70 - 15 - 18.5714
= 36.4286 bp. a_to_b trades 0.3, within the top levels: no slippage, net edge 20 bp.

Balance usage (default weights edge 1, health 10, inventory 5; capital 1000 USDT and 1 BTC
everywhere): a_to_c takes 0.7 of c's BTC (a's USDT: 0.7 x 100 x 1.01 / 1000 = 0.0707),
score = 36.4286 - 5 x 0.7 = 32.9286; a_to_b takes 0.3 of b's BTC: score = 20 - 1.5 = 18.5.
"""

from __future__ import annotations

import copy
from decimal import Decimal as D
from typing import Any

import pytest

from arbframe.errors import ConfigError
from arbframe.market import MarketView
from arbframe.model import Book, FeeSchedule, Instrument
from arbframe.routing import Router, Weights, depth

BOOKS = {
    "a": ([(99.90, 1.0)], [(100.00, 0.4), (100.10, 0.6)]),
    "b": ([(100.50, 0.3), (100.35, 1.0)], [(100.60, 1.0)]),
    "c": ([(100700.0, 0.2), (100500.0, 0.5), (100300.0, 1.0)], [(100800.0, 1.0)]),
}
FEES = {"a": 10, "b": 20, "c": 5}
QUOTE = {"a": "USDT", "b": "USDT", "c": "KRW"}

# Independently of the code: the hand arithmetic of the docstring.
A_TO_C_SIZE = 0.4 + 0.3
A_TO_C_SLIPPAGE = ((0.4 * 100.00 + 0.3 * 100.10 - 0.7 * 100.00) + (0.7 * 100.70 - 70.39)) / 0.7
A_TO_C_SLIPPAGE_BPS = A_TO_C_SLIPPAGE / 100.00 * 1e4  # 18.5714...
A_TO_C_NET = (100.70 - 100.00) / 100.00 * 1e4 - 15 - A_TO_C_SLIPPAGE_BPS  # 36.4286...
A_TO_B_NET = (100.50 - 100.00) / 100.00 * 1e4 - 30  # 20


def three_venue_scenario(events: list[dict[str, Any]], **strategy: Any) -> dict[str, Any]:
    """Paper venues a, b (USDT) and c (KRW at 1000 per USDT) with the fees above, 10 ms
    latency, 1000 USDT (1,000,000 KRW) and 1 BTC each; spread_arb at entry_bps 10."""

    def venue(quote: str, fee: int, tick: str) -> dict[str, Any]:
        market = {"default": {"price_tick": tick, "amount_step": "0.001"}}
        return {"type": "paper", "quote": quote, "fees": {"taker_bps": fee}, "latency": "10ms",
                "markets": market}  # fmt: skip

    return {
        "name": "three_venues",
        "duration": "1h",
        "fx": {"KRW": 1000},
        "venues": {
            "a": venue("USDT", 10, "0.01"),
            "b": venue("USDT", 20, "0.01"),
            "c": venue("KRW", 5, "100"),
        },  # fmt: skip
        "capital": {
            "a": {"USDT": 1000, "BTC": 1},
            "b": {"USDT": 1000, "BTC": 1},
            "c": {"KRW": 1000000, "BTC": 1},
        },  # fmt: skip
        "feeds": [{"type": "scripted", "events": copy.deepcopy(events)}],
        "strategy": {
            "type": "spread_arb",
            "entry_bps": 10,
            "exit_bps": 5,
            "size": {"base": 1.0},
            **strategy,
        },  # fmt: skip
    }


def books(at: str, which=BOOKS) -> list[dict[str, Any]]:
    """The docstring's books (or others) as scripted level events at ``at``."""
    return [
        {"at": at, "venue": v, "symbol": "BTC", "bids": [list(x) for x in bids],
         "asks": [list(x) for x in asks]}
        for v, (bids, asks) in which.items()
    ]  # fmt: skip


class Account:
    """A venue as the market view sees it: free balances only."""

    def __init__(self, free: dict[str, str]) -> None:
        self.free = {asset: D(v) for asset, v in free.items()}

    def available(self, asset: str) -> D:
        return self.free.get(asset, D(0))


def market(btc: dict[str, str] | None = None) -> MarketView:
    view = MarketView("USDT", {"KRW": D(1000)})
    for venue, (bids, asks) in BOOKS.items():
        quote = QUOTE[venue]
        cash = "1000000" if quote == "KRW" else "1000"
        view.add_venue(venue, Account({quote: cash, "BTC": (btc or {}).get(venue, "1")}))
        fees = FeeSchedule(taker_bps=D(FEES[venue]), maker_bps=D(0))
        step = D("0.001")
        instrument = Instrument(venue, "BTC", "BTC", quote, D("0.01"), step, step, D(0), fees)
        book = Book()
        book.bids, book.asks, book.ts = bids, asks, 1
        view.add_instrument(instrument, book)
    return view


def scanner(view: MarketView, venue_health=None, **weights):
    router = Router(view, headroom=D("1.01"), health=venue_health)
    return router.scanner("BTC", entry_bps=10, weights=Weights(**weights))


def test_every_ordered_pair_is_a_route():
    routes = [r.name for r in scanner(market()).routes]
    assert routes == ["a_to_b", "a_to_c", "b_to_a", "b_to_c", "c_to_a", "c_to_b"]


def test_the_hand_checked_winner():
    found = scanner(market()).opportunities(base=1.0)
    assert [o.route.name for o in found] == ["a_to_c", "a_to_b"]  # best first, not listed
    best, other = found
    assert best.max_base == pytest.approx(A_TO_C_SIZE, abs=1e-12)
    assert best.base == best.max_base and best.depth_limited
    assert best.expected_slippage_bps == pytest.approx(A_TO_C_SLIPPAGE_BPS, abs=1e-9)
    assert best.net_edge_bps == pytest.approx(A_TO_C_NET, abs=1e-9)
    assert best.gross_edge_bps == pytest.approx(70.0, abs=1e-9) and best.fees_bps == 15
    assert best.score == pytest.approx(A_TO_C_NET - 5 * 0.7, abs=1e-9)
    assert best.components["inventory"] == pytest.approx(0.7)
    assert other.max_base == pytest.approx(0.3, abs=1e-12)
    assert other.expected_slippage_bps == 0
    assert other.net_edge_bps == pytest.approx(A_TO_B_NET, abs=1e-9)


def test_a_size_under_the_depth_is_kept_and_slips_nothing():
    best = scanner(market()).best(base=0.1)
    assert best.route.name == "a_to_c" and best.base == 0.1 and not best.depth_limited
    assert best.expected_slippage_bps == 0
    # a quote size converts at a's best ask, as enter() does: 15 USDT = 0.15 BTC
    assert scanner(market()).best(quote=15.0).wanted_base == pytest.approx(0.15)


def test_the_depth_walk_includes_a_level_pair_whose_edge_equals_the_threshold():
    # Exact in binary: buying at 128 and selling at 130 is 2/128 = 156.25 bp, at 129 78.125
    # bp, at 128.5 39.0625 bp (no fees, no FX).
    asks = [(128.0, 1.0), (128.0, 2.0)]
    bids = [(130.0, 1.0), (129.0, 0.5), (128.5, 5.0)]
    assert depth(asks, 1.0, bids, 1.0, 0.0, 78.125) == 1.5  # 1 at 156.25 bp, 0.5 at 78.125
    assert depth(asks, 1.0, bids, 1.0, 0.0, 78.125 + 1e-9) == 1.0  # just above: stops there


def test_max_base_counts_the_level_pair_exactly_at_entry_bps():
    # a_to_c's third pair (100.10 on a, 100,500 KRW on c) edge after fees, as the walk
    # computes it: with entry_bps at exactly that, its 0.3 is part of the depth.
    at_third = (100500.0 / 1000.0 - 100.10) / 100.10 * 1e4 - 15.0  # 24.98...
    router = Router(market(), headroom=D("1.01"))
    best = router.scanner("BTC", entry_bps=at_third, weights=Weights()).best(base=1.0)
    assert best.route.name == "a_to_c"
    assert best.max_base == pytest.approx(A_TO_C_SIZE, abs=1e-12)  # 0.2 + 0.2 + 0.3


def test_health_changes_the_winner_when_weighted():
    def half_c(venue: str) -> float:
        return 0.5 if venue == "c" else 1.0

    # default health weight 10: a_to_c loses 5 points and still wins (27.9 vs 18.5)
    assert scanner(market(), half_c).best(base=1.0).route.name == "a_to_c"
    # weight 40: a_to_c scores 36.43 - 20 - 3.5 = 12.93 < 18.5
    best = scanner(market(), half_c, health=40.0).best(base=1.0)
    assert best.route.name == "a_to_b"
    assert best.score == pytest.approx(A_TO_B_NET - 5 * 0.3)


def test_a_venue_with_no_health_is_ranked_not_refused():
    # Refusing a sick venue is the circuit breaker's: routing only ranks it lower.
    dead_c = scanner(market(), lambda v: 0.0 if v == "c" else 1.0)
    found = dead_c.opportunities(base=1)
    assert [o.route.name for o in found] == ["a_to_c", "a_to_b"]  # 36.43 - 10 - 3.5 > 18.5
    assert found[0].components["health"] == 0.0
    assert found[0].score == pytest.approx(A_TO_C_NET - 10 - 5 * 0.7)


def test_inventory_changes_the_winner_when_weighted():
    scarce = market(btc={"c": "0.75"})  # a_to_c would take 0.7 / 0.75 of c's BTC
    assert scanner(scarce).best(base=1.0).route.name == "a_to_c"  # 36.43 - 4.67 vs 18.5
    best = scanner(scarce, inventory=30.0).best(base=1.0)  # 36.43 - 28 = 8.43 vs 20 - 9 = 11
    assert best.route.name == "a_to_b"
    assert best.components["inventory"] == pytest.approx(0.3)


def test_an_unfundable_route_is_skipped():
    refused: list[str] = []
    router = Router(market(btc={"c": "0.5"}), headroom=D("1.01"), refused=refused.append)
    found = router.scanner("BTC", entry_bps=10).opportunities(base=1.0)  # c can't sell 0.7
    assert [o.route.name for o in found] == ["a_to_b"] and refused == ["balance"]


def test_nothing_clears():
    view = market()
    view.book("c", "BTC").bids = [(100400.0, 1.0)]  # a_to_c: 40 - 15 = 25, a_to_b: 20
    router = Router(view, headroom=D("1.01"))
    assert router.scanner("BTC", entry_bps=60).best(base=1.0) is None


def test_a_route_with_an_empty_book_is_skipped_not_the_symbol():
    view = market()
    view.book("b", "BTC").bids = ()
    found = scanner(view).opportunities(base=1.0)
    assert [o.route.name for o in found] == ["a_to_c"]


@pytest.mark.parametrize(
    ("weights", "key"),
    [({"edge": -1}, "edge"), ({"depth": 1}, "depth"), ({"health": "x"}, "health")],
)
def test_bad_weights_name_the_key(weights, key):
    with pytest.raises(ConfigError) as err:
        Weights.from_config({"weights": weights}, ("routing",))
    assert err.value.key == ("routing", "weights", key)


def test_the_better_route_is_taken_not_the_first_listed(run_scenario):
    """End to end: a_to_b (listed first) clears, a_to_c is better and is traded."""
    result = run_scenario(three_venue_scenario(books("0s"), size={"base": 0.1}))
    [trade] = result.trades
    assert trade.route == "a_to_c" and trade.exit_reason == "end_of_run"
    entered = [(f.venue, f.side, f.amount) for f in trade.fills if f.role == "entering"]
    assert entered == [("a", "buy", D("0.1")), ("c", "sell", D("0.1"))]
    routes = result.summary["routes"]["BTC"]
    assert list(routes) == ["a_to_c"] and routes["a_to_c"]["entries"] == 1
    assert routes["a_to_c"]["expected_slippage_bps"] == 0  # 0.1 fits the top levels
    assert result.summary["reconciliation"]["passed"] is True
