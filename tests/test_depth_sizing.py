"""spread_arb sizes an entry to the depth the books support at its threshold.

The books are tests/test_routing.py's (its docstring has the walk): spread_arb wants 1 BTC,
a_to_c supports 0.7 at entry_bps 10. By hand: buy 0.4 at 100.00 and 0.3 at 100.10 on a,
sell 0.2 at 100,700 KRW and 0.5 at 100,500 KRW on c.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from test_routing import books, three_venue_scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"

ENTRY = [
    ("a", "buy", D("100.00"), D("0.400")),
    ("a", "buy", D("100.10"), D("0.300")),
    ("c", "sell", D("100700"), D("0.200")),
    ("c", "sell", D("100500"), D("0.500")),
]
# Entry slippage against the tops, in USDT: 0.3 x 0.10 on a, 0.5 x 200 KRW / 1000 on c.
SLIPPAGE = D("0.3") * D("0.10") + D("0.5") * D("200") / 1000  # 0.13
# Largest entry leg in USDT: c's, (0.2 x 100,700 + 0.5 x 100,500) / 1000 = 70.39
NOTIONAL = (D("0.2") * 100700 + D("0.5") * 100500) / 1000


def entered(trade):
    return sorted((f.venue, f.side, f.price, f.amount) for f in trade.fills if f.role == "entering")


def test_the_size_is_the_depth_at_the_threshold(run_scenario):
    result = run_scenario(three_venue_scenario(books("0s")))
    [trade] = result.trades
    assert trade.route == "a_to_c"
    assert entered(trade) == sorted(ENTRY)  # 0.7 on each leg, at the levels walked
    # expected: 0.13 USDT over 0.7 BTC, in bps of a's best ask (100)
    assert trade.expected_slippage_bps == pytest.approx(0.13 / 0.7 / 100 * 1e4, abs=1e-9)
    # realised: the entry's 0.13 (the exit at the end takes a's bid and c's ask, each 1 BTC
    # deep, so it slips nothing) over the largest entry leg
    assert trade.slippage == SLIPPAGE and trade.notional == NOTIONAL
    assert trade.slippage_bps == pytest.approx(float(SLIPPAGE / NOTIONAL * 10_000))
    route = result.summary["routes"]["BTC"]["a_to_c"]
    assert route["expected_slippage_bps"] == round(trade.expected_slippage_bps, 4)
    assert route["slippage_bps"] == round(trade.slippage_bps, 4)
    assert result.summary["reconciliation"]["passed"] is True


def test_a_quote_size_is_capped_too(run_scenario):
    # 150 USDT is 1.5 BTC at a's ask: the books hold 0.7 at the threshold
    result = run_scenario(three_venue_scenario(books("0s"), size={"quote": 150}))
    assert entered(result.trades[0]) == sorted(ENTRY)


def test_a_higher_threshold_walks_less(run_scenario):
    # entry_bps 30: 100.10 / 100.50 (24.98 bp after fees) no longer clears; 0.4 BTC
    result = run_scenario(three_venue_scenario(books("0s"), entry_bps=30))
    assert entered(result.trades[0]) == sorted(
        [("a", "buy", D("100.00"), D("0.400")), *ENTRY[2:3],
         ("c", "sell", D("100500"), D("0.200"))]
    )  # fmt: skip
    assert result.trades[0].expected_slippage_bps == pytest.approx(
        0.2 * 0.2 / 0.4 / 100 * 1e4  # 0.2 BTC 0.20 USDT under c's top, over 0.4 BTC
    )


def test_a_guard_cap_does_not_shrink_a_depth_capped_entry_again(run_scenario):
    """routes_three_venues' first entry is capped by upbit's depth: 0.015 BTC, about 897
    USDT, of the 1200 USDT the strategy asks for. A symbol guard capping a trade at 1000
    USDT degrades the 1200 asked to 1000 (scale 5/6); the capped entry is already below
    that, so it must trade the full 0.015, not 0.015 x 5/6 = 0.0125."""
    text = (SCENARIOS / "routes_three_venues.yaml").read_text()
    guarded = text.replace("expect:", "guards: [{type: symbol, max_notional: 1000}]\nexpect:", 1)
    result = run_scenario(guarded)
    first = min(result.trades, key=lambda t: t.opened_at)
    assert first.route == "upbit_to_okx"
    assert {amount for *_, amount in entered(first)} == {D("0.015")}  # both legs, in full
    # asked once per route that clears (two per dislocation, four dislocations): degraded
    assert result.summary["guards"]["triggers"] == {"max_notional": 8}
