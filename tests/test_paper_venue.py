"""The paper venue: book walking, partial fills, limit orders, fees, rejects, latency."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from conftest import two_venue_scenario

from arbframe.model import BUY, LIMIT, SELL, Order
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario

T0 = 1_000_000_000


@pytest.fixture
def venue(tmp_path):
    """Venue `a` of a wired (not running) scenario: taker 10 bp, maker 2 bp, 10 ms latency."""
    scenario = two_venue_scenario([{"at": "0s", "venue": "a", "symbol": "BTC", "bid": 1, "ask": 2}])
    scenario["venues"]["a"]["fees"] = {"taker_bps": 10, "maker_bps": 2}
    scenario["venues"]["a"]["markets"]["default"]["min_notional"] = 10
    path = tmp_path / "s.yaml"
    import json

    path.write_text(json.dumps(scenario))
    pm = get_plugin_manager()
    registry = build_registry(pm)
    run = Run(load_scenario(path, registry), registry, pm)
    run.engine.strategy = None  # drive the venue by hand
    a = run.venues["a"]
    a.on_book(T0, "BTC", [(99.9, 1.0), (99.8, 2.0)], [(100.0, 0.3), (100.1, 0.2), (100.5, 5.0)])
    return a


def place(venue, side, amount, **kw):
    engine = venue.run.engine
    engine.now = T0
    order = engine.submit(Order(f"o{len(engine.orders)}", "a", "BTC", side, D(amount), **kw))
    engine.run_due(T0 + 10_000_000)
    return order


def fills(venue):
    return [(f.price, f.amount, f.fee, f.liquidity) for f in venue.run.engine.ledger.fills]


def test_market_buy_walks_the_book(venue):
    order = place(venue, BUY, "0.6", reference_price=100.0)
    assert order.status.value == "filled"
    assert fills(venue) == [
        (D("100.00"), D("0.300"), D("0.03000000"), "taker"),
        (D("100.10"), D("0.200"), D("0.02002000"), "taker"),
        (D("100.50"), D("0.100"), D("0.01005000"), "taker"),
    ]
    assert order.cost == D("60.07")
    # slippage versus the 100.00 seen at decision time: 0.2*0.10 + 0.1*0.50
    assert sum(f.slippage for f in venue.run.engine.ledger.fills) == D("0.07")
    assert venue.balances["USDT"] == D("10000") - D("60.07") - D("0.06007")
    assert venue.balances["BTC"] == D("1.6")


def test_market_order_short_of_depth_fills_partly_and_cancels_the_rest(venue):
    order = place(venue, BUY, "6")  # 5.5 on the book
    assert order.status.value == "canceled" and order.reason == "insufficient depth"
    assert order.filled == D("5.500")
    assert venue.balances["BTC"] == D("6.5")
    assert venue.balances["USDT"] == D("10000") - order.cost - order.fee


def test_rejects(venue):
    assert place(venue, SELL, "1.5").reason == "insufficient BTC: need 1.500, have 1"
    limit = place(venue, BUY, "200", type=LIMIT, price=D("100.50"))
    assert limit.reason.startswith("insufficient USDT")  # 20,100 > 10,000
    assert place(venue, BUY, "0.0005").status.value == "rejected"  # below the 0.001 step
    assert "notional below minimum" in place(venue, BUY, "0.05").reason  # 5 USDT < 10
    assert fills(venue) == []
    assert venue.balances["USDT"] == D("10000") and venue.balances["BTC"] == D("1")
    assert venue.run.engine.order_counts["rejected"] == 4


def test_latency_executes_against_the_book_at_arrival(venue):
    engine = venue.run.engine
    engine.now = T0
    order = engine.submit(Order("late", "a", "BTC", BUY, D("0.1")))
    venue.on_book(T0 + 5_000_000, "BTC", [(100.9, 1.0)], [(101.0, 1.0)])  # book moves first
    engine.run_due(T0 + 9_000_000)
    assert order.status.value == "new"  # not arrived yet
    engine.run_due(T0 + 10_000_000)
    assert fills(venue) == [(D("101.00"), D("0.100"), D("0.01010000"), "taker")]


def test_limit_order_rests_then_fills_as_maker(venue):
    order = place(venue, BUY, "0.5", type=LIMIT, price=D("99.50"))
    assert order.status.value == "open" and fills(venue) == []
    assert venue.available("USDT") == D("10000") - D("49.75") - D("0.00995")  # locked + maker fee
    venue.on_book(T0 + 20_000_000, "BTC", [(99.3, 1.0)], [(99.4, 0.2), (99.5, 1.0)])
    assert order.status.value == "filled"
    assert fills(venue) == [
        (D("99.50"), D("0.200"), D("0.00398000"), "maker"),
        (D("99.50"), D("0.300"), D("0.00597000"), "maker"),
    ]
    assert (
        venue.available("USDT") == venue.balances["USDT"] == D("10000") - D("49.75") - D("0.00995")
    )
