"""`universe:`: which symbols the strategies trade, evaluated at start and every refresh.

Two paper venues quote BTC, ETH and SOL every 10 s; venue b shows a 1 % premium on a symbol
during chosen windows, which `spread_arb` enters (buy a, sell b) and exits when it reverts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from arbframe_plugins.state.memory import MemoryStore

from arbframe.errors import ScenarioError
from arbframe.runner import Run

PRICES = {"BTC": 60000, "ETH": 3000, "SOL": 100}
START = 1704067200 * 10**9  # the scripted feed's default start, 2024-01-01
S = 10**9


def scenario(
    universe: dict[str, Any] | None = None,
    premiums: dict[str, list[tuple[int, int]]] | None = None,
    volumes: list[tuple[int, str, str, float]] = (),  # (s, venue, symbol, 24h volume)
    symbols: tuple[str, ...] = ("BTC", "ETH", "SOL"),
    quotes: dict[str, str] | None = None,
) -> dict[str, Any]:
    premiums = premiums or {}
    pending = sorted(volumes)
    events: list[dict[str, Any]] = []
    for t in range(0, 181, 10):
        while pending and pending[0][0] <= t:
            at, venue, symbol, value = pending.pop(0)
            events.append({"at": f"{at}s", "venue": venue, "symbol": symbol, "volume": value})
        for symbol in symbols:
            p = PRICES[symbol]
            q = p * 1.01 if any(lo <= t < hi for lo, hi in premiums.get(symbol, ())) else p
            for venue, mid in (("a", p), ("b", q)):  # 2 bp wide
                bid, ask = round(mid * 0.9999, 4), round(mid * 1.0001, 4)
                events.append(
                    {"at": f"{t}s", "venue": venue, "symbol": symbol, "bid": bid, "ask": ask}
                )
    quotes = quotes or {}
    sc: dict[str, Any] = {
        "name": "universe_test",
        "duration": "3m",
        "venues": {v: {"type": "paper", "quote": quotes.get(v, "USDT")} for v in ("a", "b")},
        "capital": {
            v: {quotes.get(v, "USDT"): 100000, "BTC": 1, "ETH": 10, "SOL": 100} for v in ("a", "b")
        },
        "feeds": [{"type": "scripted", "events": events}],
        "strategy": {
            "type": "spread_arb",
            "entry_bps": 20,
            "exit_bps": 10,
            "size": {"quote": 1000},
        },
    }
    if quotes:
        sc["fx"] = {q: 1 for q in quotes.values() if q != "USDT"}
    if universe is not None:
        sc["universe"] = universe
    return sc


def opened(result: Any, symbol: str) -> list[int]:
    """Seconds from the start at which trades on ``symbol`` opened (with fills)."""
    return [(t.opened_at - START) // S for t in result.trades if t.symbol == symbol and t.fills]


def changes(summary: dict[str, Any]) -> list[tuple[int, list[str], list[str]]]:
    return [
        ((c["ts"] - START) // S, c["added"], c["removed"]) for c in summary["universe"]["changes"]
    ]


# ---- each type and filter ----------------------------------------------------------------------

EVERY_PREMIUM = {s: [(20, 30)] for s in PRICES}


@pytest.mark.parametrize(
    ("universe", "traded"),
    [
        (None, ["BTC", "ETH", "SOL"]),
        ({"type": "single", "symbol": "ETH"}, ["ETH"]),
        ({"type": "fixed_list", "symbols": ["BTC", "SOL"]}, ["BTC", "SOL"]),
        ({"type": "fixed_list", "symbols": ["BTC", "SOL"], "blacklist": ["SOL"]}, ["BTC"]),
        ({"type": "full_market"}, ["BTC", "ETH", "SOL"]),
        ({"type": "full_market", "blacklist": ["ETH"]}, ["BTC", "SOL"]),
        ({"type": "top_n", "n": 2}, ["ETH", "SOL"]),  # by volume: SOL 9e6, ETH 5e6, BTC 1e6
        ({"type": "full_market", "min_volume": 4e6}, ["ETH", "SOL"]),
        ({"type": "top_n", "n": 1, "min_volume": 2e7}, []),  # none passes
    ],
)
def test_each_type_and_filter_trades_exactly_its_symbols(run_scenario, universe, traded):
    volumes = [(0, v, s, x / 2) for v in ("a", "b") for s, x in
               (("BTC", 1e6), ("ETH", 5e6), ("SOL", 9e6))]  # fmt: skip
    result = run_scenario(scenario(universe, EVERY_PREMIUM, volumes))
    assert sorted({t.symbol for t in result.trades if t.fills}) == traded
    summary = result.summary
    assert summary["reconciliation"]["passed"]
    if universe is None:
        assert "universe" not in summary
    else:
        assert summary["universe"]["active"] == traded
        assert summary["universe"]["type"] == universe["type"]


def test_quote_filter_counts_only_venues_quoted_in_those_currencies(run_scenario):
    # Venue b quotes in KRW (at 1:1, so the premium is the same): with quote [USDT] each
    # symbol has one eligible venue and none can be spread-traded.
    quotes = {"b": "KRW"}
    both = run_scenario(scenario({"type": "full_market"}, EVERY_PREMIUM, quotes=quotes))
    assert both.summary["universe"]["active"] == ["BTC", "ETH", "SOL"]
    assert opened(both, "BTC") == [20]
    only = run_scenario(
        scenario({"type": "full_market", "quote": ["USDT"]}, EVERY_PREMIUM, quotes=quotes)
    )
    assert only.summary["universe"]["active"] == []
    assert only.trades == []


def test_a_symbol_on_one_venue_is_never_eligible(run_scenario):
    # A feed gives each of its venues an instrument of each of its symbols: SOL's own feed
    # quotes it on venue a only.
    sc = scenario({"type": "full_market"}, EVERY_PREMIUM)
    events = sc["feeds"][0]["events"]
    sc["feeds"] = [
        {"type": "scripted", "events": [e for e in events if e["symbol"] != "SOL"]},
        {
            "type": "scripted",
            "events": [e for e in events if e["symbol"] == "SOL" and e["venue"] == "a"],
        },
    ]
    result = run_scenario(sc)
    assert result.run.market.quoting("SOL") == ["a"]
    assert result.summary["universe"]["active"] == ["BTC", "ETH"]


# ---- changes during the run ----------------------------------------------------------------------

TOP1 = {"type": "top_n", "n": 1, "refresh": "30s"}
# BTC leads until ETH's volume jumps at 60 s; evaluations at 0, 30, 60... s.
SWITCH = [(0, "a", "BTC", 5e6), (0, "a", "ETH", 1e6), (60, "a", "ETH", 9e6)]


def test_top_n_follows_the_volumes_reported_during_the_run(run_scenario):
    result = run_scenario(scenario(TOP1, {}, SWITCH))
    summary = result.summary["universe"]
    assert changes(result.summary) == [(0, ["BTC"], []), (60, ["ETH"], ["BTC"])]
    assert summary["change_count"] == 2
    assert summary["evaluations"] == 7  # 0, 30, ..., 180 s
    assert summary["changes"][1]["at"] == "2024-01-01T00:01:00.000+00:00"
    assert summary["active"] == ["ETH"]


def test_a_symbol_added_mid_run_trades_only_after_its_addition(run_scenario):
    premiums = {"ETH": [(20, 30), (90, 100)]}
    everything = run_scenario(scenario(None, premiums, SWITCH))
    assert opened(everything, "ETH") == [20, 90]  # both windows are tradable without a universe
    result = run_scenario(scenario(TOP1, premiums, SWITCH))
    assert opened(result, "ETH") == [90]  # ETH joined at 60 s
    assert result.summary["reconciliation"]["passed"]


def test_a_removed_symbol_with_close_exits_at_the_change(run_scenario):
    premiums = {"BTC": [(40, 120)]}  # opened at 40 s, would revert at 120 s
    result = run_scenario(scenario(TOP1, premiums, SWITCH))
    [trade] = [t for t in result.trades if t.symbol == "BTC"]
    assert (trade.opened_at - START) // S == 40
    assert trade.exit_reason == "universe_removed"
    assert (trade.closed_at - START) // S == 60
    assert result.summary["universe"]["removal_exits"] == 1
    assert result.summary["portfolio"]["exit_reasons"] == {"universe_removed": 1}
    assert result.summary["reconciliation"]["passed"]


def test_a_removed_symbol_with_keep_runs_to_its_normal_exit_and_never_reenters(run_scenario):
    premiums = {"BTC": [(40, 120), (150, 160)]}
    everything = run_scenario(scenario(None, premiums, SWITCH))
    assert opened(everything, "BTC") == [40, 150]  # the second window is tradable
    result = run_scenario(scenario({**TOP1, "on_remove": "keep"}, premiums, SWITCH))
    [trade] = [t for t in result.trades if t.symbol == "BTC"]
    assert trade.exit_reason == "reversion"
    assert (trade.closed_at - START) // S == 120
    assert result.summary["universe"]["removal_exits"] == 0
    assert result.summary["reconciliation"]["passed"]


def markets_heard(monkeypatch) -> list[tuple[int, str]]:
    """(seconds from the start, symbol) of every on_market spread_arb hears."""
    from arbframe_plugins.strategies.spread_arb import SpreadArb

    heard: list[tuple[int, str]] = []
    on_market = SpreadArb.on_market

    def record(self, ts: int, symbol: str) -> None:
        heard.append(((ts - START) // S, symbol))
        on_market(self, ts, symbol)

    monkeypatch.setattr(SpreadArb, "on_market", record)
    return heard


def test_keep_stops_on_market_at_removal_for_a_symbol_without_open_trades(
    run_scenario, monkeypatch
):
    heard = markets_heard(monkeypatch)
    result = run_scenario(scenario({**TOP1, "on_remove": "keep"}, {}, SWITCH))
    assert changes(result.summary) == [(0, ["BTC"], []), (60, ["ETH"], ["BTC"])]
    assert result.trades == []  # nothing open on BTC when it goes
    btc = sorted({t for t, symbol in heard if symbol == "BTC"})
    assert btc == [0, 10, 20, 30, 40, 50]  # none from the removal at 60 s on
    assert "BTC" not in result.run.universe.admitted


def test_keep_stops_on_market_once_the_removed_symbols_last_trade_closes(run_scenario, monkeypatch):
    heard = markets_heard(monkeypatch)
    premiums = {"BTC": [(40, 120)]}  # opened at 40 s, kept past the removal at 60 s
    result = run_scenario(scenario({**TOP1, "on_remove": "keep"}, premiums, SWITCH))
    [trade] = [t for t in result.trades if t.symbol == "BTC"]
    assert (trade.closed_at - START) // S == 120 and trade.exit_reason == "reversion"
    btc = sorted({t for t, symbol in heard if symbol == "BTC"})
    assert btc == list(range(0, 121, 10))  # on to the close at 120 s, none after it
    assert "BTC" not in result.run.universe.admitted


def test_min_volume_admits_a_symbol_whose_volume_equals_it(run_scenario):
    volumes = [(0, v, s, x / 2) for v in ("a", "b") for s, x in
               (("BTC", 1e6), ("ETH", 5e6), ("SOL", 9e6))]  # fmt: skip
    result = run_scenario(scenario({"type": "full_market", "min_volume": 5e6},
                                   EVERY_PREMIUM, volumes))  # fmt: skip
    assert result.run.universe.candidates() == {"ETH": 5e6, "SOL": 9e6}  # ETH: exactly 5e6
    assert result.summary["universe"]["active"] == ["ETH", "SOL"]
    assert sorted({t.symbol for t in result.trades if t.fills}) == ["ETH", "SOL"]


def test_the_gate_refuses_an_entry_a_strategy_asks_for_off_the_universe(run_scenario):
    from arbframe.model import Route

    sc = scenario({"type": "single", "symbol": "ETH"}, EVERY_PREMIUM)
    result = run_scenario(sc)
    run = result.run
    # spread_arb never saw BTC, so it never asked: the gate was asked about ETH only
    assert result.summary["guards"]["by_guard"]["universe"].get("block", 0) == 0
    port = run.execution._ports["spread_arb"]
    run.execution.closing = False  # (the run is over: as if it were still going)
    assert port.enter(Route.spread("BTC", buy="a", sell="b"), quote=1000) is None
    assert run.execution.refusals["guard"] == 1
    assert run.guard_chain.summary()["by_guard"]["universe"]["block"] == 1


def test_universe_change_reaches_the_hook(run_scenario):
    from arbframe.hookspecs import hookimpl

    seen = []

    class Listener:
        @hookimpl
        def arbframe_on_universe_change(self, run, change):
            seen.append((change.added, change.removed, change.active))

    run_scenario(scenario(TOP1, {}, SWITCH), plugins=(Listener(),))
    assert seen == [(("BTC",), (), ("BTC",)), (("ETH",), ("BTC",), ("ETH",))]


# ---- resume ------------------------------------------------------------------------------------


class Crash(Exception):
    pass


def test_a_run_resumed_after_a_change_ends_as_if_never_interrupted(run_scenario, monkeypatch):
    sc = scenario(TOP1, {"BTC": [(40, 120)], "ETH": [(90, 100)]}, SWITCH)
    sc |= {"state": [{"type": "memory"}], "snapshots": {"every": "15s"}}
    MemoryStore.records.clear()
    whole = run_scenario(copy.deepcopy(sc)).summary
    MemoryStore.records.clear()
    between = Run._between

    def dying(self, now, next_ts):
        between(self, now, next_ts)
        if (now - START) // S == 100:
            raise Crash

    monkeypatch.setattr(Run, "_between", dying)
    with pytest.raises(Crash):
        run_scenario(copy.deepcopy(sc))
    monkeypatch.undo()
    resumed = run_scenario(copy.deepcopy(sc), resume=True)
    assert resumed.run.resumed_from is not None
    assert (resumed.run.resumed_from.ts - START) // S > 60  # after the change
    for key in ("universe", "portfolio", "reconciliation"):
        assert resumed.summary[key] == whole[key]
    assert resumed.summary["universe"]["evaluations"] == 7  # the timer went on, once
    MemoryStore.records.clear()


# ---- bad config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("universe", "where", "message"),
    [
        ({"type": "top_five"}, "universe.type", "unknown universe type 'top_five'"),
        ({"type": "top_n", "n": 0}, "universe.n", "less than the minimum of 1"),
        (
            {"type": "full_market", "blacklist": ["DOGE"]},
            "universe.blacklist[0]",
            "no feed quotes 'DOGE'",
        ),
        ({"type": "single", "symbol": "XRP"}, "universe.symbol", "no feed quotes 'XRP'"),
        ({"type": "fixed_list", "symbols": ["BTC", "ADA"]}, "universe.symbols[1]", "'ADA'"),
        ({"type": "full_market", "quote": ["EUR"]}, "universe.quote[0]", "quoted in EUR"),
        ({"type": "full_market", "on_remove": "sell"}, "universe.on_remove", "'sell'"),
    ],
)
def test_bad_config_names_the_key(run_scenario, universe, where, message):
    with pytest.raises(ScenarioError) as info:
        run_scenario(scenario(universe))
    assert f": {where}: " in str(info.value)
    assert message in str(info.value)


def test_the_quote_filter_keeps_other_currencies_venues_out_of_trading(run_scenario):
    """routes_three_venues: BTC on binance and okx (USDT) and upbit (KRW); every one of its
    four dislocations is won by a route through upbit. With the universe limited to USDT
    instruments, BTC stays eligible (two USDT venues) but no route through upbit trades:
    the dislocations on binance and okx are then traded between those two."""
    path = Path(__file__).parent.parent / "scenarios" / "routes_three_venues.yaml"
    text = path.read_text().split("expect:")[0]
    result = run_scenario(text + "universe: {type: full_market, quote: [USDT]}\n")
    routes = {t.route for t in result.trades if t.fills}
    assert routes and not any("upbit" in r for r in routes), routes
    assert result.summary["guards"]["by_guard"]["universe"]["block"] >= 1
    assert result.summary["reconciliation"]["passed"]
