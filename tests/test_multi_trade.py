"""spread_arb with several trades open per symbol (`max_open_per_symbol`), each managed and
exited on its own; with 1 (the default) the old one-at-a-time behaviour."""

from __future__ import annotations

from types import SimpleNamespace

from conftest import book, two_venue_scenario
from test_routing import books, three_venue_scenario

S = 1_000_000_000
T0 = 1_704_067_200 * S  # the scripted feed's default start
MS = S // 1000
EVENTS = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),  # 60 - 30 bp of fees = 30 >= 10: enter
    book("2s", "b", 100.65, 100.75),  # still clears: a second trade if there is room
    book("6500ms", "b", 99.80, 99.85),  # reverted: (99.85 - 99.90) / 99.90 < 5 bp
]


def run(run_scenario, **strategy):
    return run_scenario(two_venue_scenario(EVENTS, max_hold="5s", **strategy))


def test_two_trades_open_at_once_and_close_independently(run_scenario):
    result = run(run_scenario, max_open_per_symbol=2)
    first, second = sorted(result.trades, key=lambda t: t.opened_at)
    assert (first.opened_at - T0, second.opened_at - T0) == (1 * S, 2 * S)
    assert first.route == second.route == "a_to_b"
    # the first hits its own max_hold timer at 6 s while the second stays open ...
    assert first.exit_reason == "max_hold" and 6 * S <= first.closed_at - T0 < 6500 * MS
    assert second.opened_at < first.closed_at
    # ... and the second exits on the reversion at 6.5 s, before its own timer (7 s)
    assert second.exit_reason == "reversion" and 6500 * MS <= second.closed_at - T0 < 7 * S
    assert result.summary["routes"]["BTC"]["a_to_b"]["entries"] == 2
    assert result.summary["reconciliation"]["passed"] is True


def test_one_at_a_time_by_default(run_scenario):
    result = run(run_scenario)
    [trade] = result.trades  # 2 s finds the slot taken; 6.5 s no longer clears
    assert trade.opened_at == T0 + 1 * S and trade.exit_reason == "max_hold"
    assert run(run_scenario, max_open_per_symbol=1).fills == result.fills


def test_a_second_trade_may_take_another_route(run_scenario):
    """Three venues (tests/test_routing.py): the first trade, a_to_c for 0.6 BTC, leaves c
    0.4 BTC; with the same books again a second a_to_c cannot be funded, so the next best
    route, a_to_b, opens while the first is still open (0.3 BTC: its depth at 10 bp)."""
    scenario = three_venue_scenario(
        books("0s") + books("1s"), size={"base": 0.6}, max_open_per_symbol=2
    )
    result = run_scenario(scenario)
    trades = sorted(result.trades, key=lambda t: t.opened_at)
    assert [(t.route, t.opened_at - T0) for t in trades] == [("a_to_c", 0), ("a_to_b", 1 * S)]
    assert [t.exit_reason for t in trades] == ["end_of_run", "end_of_run"]  # both still open
    sold = [sum(f.amount for f in t.fills if f.side == "sell" and f.role == "entering")
            for t in trades]  # fmt: skip
    assert [str(x) for x in sold] == ["0.600", "0.300"]
    # the second a_to_c, left out by the router, counts as the execution layer's refusal would
    assert result.summary["execution"]["refused"] == {"balance": 1}
    assert result.summary["reconciliation"]["passed"] is True


def test_a_snapshot_keeps_every_open_trade(run_scenario):
    """What a session's snapshot keeps of spread_arb: each symbol's open trades (routes are
    wiring, rebuilt at construction). A snapshot of the one-trade spread_arb (its whole
    ``states``) restores too."""
    scenario = three_venue_scenario(
        books("0s") + books("1s"), size={"base": 0.6}, max_open_per_symbol=2
    )
    scenario["execution"] = {"close_at_end": False}
    strategy = run_scenario(scenario).run.strategies[0]
    kept = strategy.snapshot_state()
    open_trades = strategy.states["BTC"].trades
    assert [t.route for t in kept["trades"]["BTC"]] == ["a_to_c", "a_to_b"]
    strategy.states["BTC"].trades = []
    strategy.restore_state(kept)
    assert strategy.states["BTC"].trades == open_trades
    first = open_trades[0]
    assert "states" not in kept and kept["max_open"] == 2  # the other attributes, as they are
    old = {"states": {"BTC": SimpleNamespace(trade=first, partial_done=True)}, "_timed": {"x"}}
    strategy.restore_state(old)
    assert strategy.states["BTC"].trades == [first] and strategy._partial == {first.trade_id}
    assert strategy._timed == {"x"}
