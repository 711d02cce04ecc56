"""The four guard tiers rule by rule: each fires at its limit and not just before, cooldowns
expire, state is kept apart per symbol and per route, the most restrictive verdict wins,
and every decision is counted per tier and per rule."""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

import pytest
from arbframe_plugins.guards.basic import GlobalGuard, SymbolGuard
from arbframe_plugins.guards.exchange import ExchangeGuard
from arbframe_plugins.guards.route import RouteGuard
from conftest import book, two_venue_scenario

from arbframe.health import VenueHealth
from arbframe.model import Action, Intent, Leg, Route, Trade, TradeState
from arbframe.risk import GuardChain

S = 1_000_000_000
AB = Route.spread("BTC", "a", "b")
BA = Route.spread("BTC", "b", "a")
ETH = Route.spread("ETH", "a", "b")
AC = Route.spread("BTC", "a", "c")


class Market:
    venues = ["a", "b", "c"]

    def __init__(self) -> None:
        self.mids: dict[tuple[str, str], float] = {}
        self.ts: dict[tuple[str, str], int] = {}

    def mid(self, venue: str, symbol: str) -> float | None:
        return self.mids.get((venue, symbol), 100.0)

    def book(self, venue: str, symbol: str) -> Any:
        return SimpleNamespace(ts=self.ts.get((venue, symbol), 10 * S))


def make(cls: type, now: list[int] | None = None, **config: Any) -> Any:
    clock = now if now is not None else [0]
    ctx = SimpleNamespace(
        market=Market(),
        open_trades=lambda: list(ctx.trades),
        trades=[],
        health=VenueHealth(["a", "b", "c"], config.pop("health", None), lambda: clock[0]),
    )
    return cls(config, name=config.pop("name", cls.type_name), ctx=ctx)


def intent(route: Route = AB, notional: str = "100", ts: int = 10 * S) -> Intent:
    return Intent(ts, "s", route.label, route, D(notional))


def trade(route: Route = AB, pnl: str = "-1", closed: int = 5 * S, **kw: Any) -> Trade:
    legs = [Leg(leg.venue, leg.symbol, "BTC", leg.ratio) for leg in route.legs]
    t = Trade(f"{route.label}-1", "s", route.label, route.name, legs, 0, 100.0, **kw)
    t.fills = [object()]  # type: ignore[list-item]  # a trade that traded
    t.net_pnl, t.closed_at = D(pnl), closed
    return t


def holding(route: Route, base: str) -> Trade:
    legs = [Leg(leg.venue, leg.symbol, "BTC", leg.ratio) for leg in route.legs]
    for leg in legs:
        leg.target = leg.ratio * D(base)
    return Trade(f"{route.label}-open", "s", route.label, route.name, legs, 0, 100.0)


# ---- symbol ---------------------------------------------------------------------------------


def test_symbol_max_notional_degrades_above_the_cap_only():
    guard = make(SymbolGuard, max_notional=100)
    assert guard.check(intent(notional="100")) is None
    d = guard.check(intent(notional="125"))
    assert (d.action, d.rule, d.scale) == (Action.DEGRADE, "max_notional", 0.8)


def test_symbol_max_exposure_counts_open_legs_of_that_symbol_only():
    guard = make(SymbolGuard, max_exposure=400)
    guard.ctx.trades = [holding(AB, "1"), holding(ETH, "5")]  # BTC legs: 2 x 100
    assert guard.check(intent(notional="100")) is None  # 200 + 2 x 100 = 400: at the limit
    d = guard.check(intent(notional="150"))  # 200 + 300 > 400: 200 of 300 fit
    assert (d.action, d.rule) == (Action.DEGRADE, "max_exposure")
    assert d.scale == pytest.approx(2 / 3)
    guard.ctx.trades.append(holding(BA, "1"))  # 400 held: nothing fits
    assert guard.check(intent(notional="1")).action is Action.BLOCK


def test_symbol_max_open_trades_is_per_symbol():
    guard = make(SymbolGuard, max_open_trades=2)
    guard.on_trade_opened(holding(AB, "1"))
    assert guard.check(intent()) is None
    guard.on_trade_opened(holding(BA, "1"))
    assert guard.check(intent()).rule == "max_open_trades"
    assert guard.check(intent(ETH)) is None  # another symbol
    guard.on_trade_closed(trade(AB, pnl="1"))
    assert guard.check(intent()) is None


def test_symbol_loss_streak_cools_the_symbol_down_until_it_expires():
    guard = make(SymbolGuard, max_consecutive_losses=2, cooldown="30s")
    guard.on_trade_opened(holding(AB, "1"))
    guard.on_trade_closed(trade(closed=5 * S))
    assert guard.check(intent(ts=6 * S)) is None  # one loss: not yet
    guard.on_trade_opened(holding(AB, "1"))
    guard.on_trade_closed(trade(closed=6 * S))
    d = guard.check(intent(ts=7 * S))
    assert (d.action, d.rule, d.until, d.scope) == (
        Action.COOLDOWN, "max_consecutive_losses", 36 * S, ""
    )  # fmt: skip
    assert guard.check(intent(ETH, ts=7 * S)) is None  # the other symbol is not affected
    assert guard.check(intent(ts=36 * S - 1)).action is Action.COOLDOWN
    assert guard.check(intent(ts=36 * S)) is None  # expired


def test_symbol_daily_loss_limit_per_symbol_and_per_day():
    guard = make(SymbolGuard, daily_loss_limit=10)
    for pnl in ("-4", "-5.99"):
        guard.on_trade_opened(holding(AB, "1"))
        guard.on_trade_closed(trade(pnl=pnl))
    assert guard.check(intent()) is None  # 9.99 lost
    guard.on_trade_opened(holding(AB, "1"))
    guard.on_trade_closed(trade(pnl="-0.01"))
    assert guard.check(intent()).rule == "daily_loss_limit"
    assert guard.check(intent(ETH)) is None
    assert guard.check(intent(ts=86_400 * S + 1)) is None  # the next day starts afresh


def test_stale_book_blocks_past_the_age_only():
    guard = make(SymbolGuard, stale_book="2s")
    guard.ctx.market.ts[("b", "BTC")] = 8 * S
    assert guard.check(intent(ts=10 * S)) is None  # exactly 2 s old
    d = guard.check(intent(ts=10 * S + 1))
    assert (d.action, d.rule) == (Action.BLOCK, "stale_book")
    guard.ctx.market.ts[("b", "BTC")] = 0  # never published
    assert guard.check(intent()).rule == "stale_book"


# ---- exchange -------------------------------------------------------------------------------


def test_exchange_max_exposure_per_venue():
    guard = make(ExchangeGuard, max_exposure={"a": 300})
    guard.ctx.trades = [holding(AB, "1"), holding(ETH, "1")]  # a: 200, b: 200
    assert guard.check(intent(notional="100")) is None  # a: 300, at the limit; b unlimited
    d = guard.check(intent(notional="200"))
    assert (d.rule, d.action, d.scale) == ("max_exposure", Action.DEGRADE, 0.5)
    guard.ctx.trades.append(holding(AC, "1"))  # a: 300
    assert guard.check(intent(notional="1")).action is Action.BLOCK


def test_exchange_max_exposure_refuses_unknown_venues():
    from arbframe.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        make(ExchangeGuard, max_exposure={"nowhere": 1})
    assert err.value.key == ("max_exposure", "nowhere")


def test_circuit_breaker_needs_the_sample_and_the_rate():
    guard = make(ExchangeGuard, circuit_breaker={"max_error_rate": 0.51, "min_orders": 4})
    health = guard.ctx.health
    for error in (True, True, True):
        health.answered("b", 1_000_000, error)
    health.answered("a", 1_000_000, True)  # venue a: one answer, an error
    assert guard.check(intent()) is None  # 3 of 3 on b, but too few answers to judge
    health.answered("b", 1_000_000, False)
    health.answered("b", 1_000_000, False)
    health.answered("b", 1_000_000, False)
    assert guard.check(intent()) is None  # 3 of 6 = 0.5: just below 0.51
    health.answered("b", 1_000_000, True)
    assert guard.check(intent()).rule == "circuit_breaker"  # 4 of 7


def test_circuit_breaker_fires_at_the_threshold_and_expires():
    now = [10 * S]
    guard = make(
        ExchangeGuard,
        now,
        circuit_breaker={"max_error_rate": 0.5, "min_orders": 4, "cooldown": "1m"},
    )
    for error in (True, False, True, False):
        guard.ctx.health.answered("b", 1_000_000, error)
    d = guard.check(intent(ts=10 * S))
    assert (d.action, d.rule, d.scope, d.until) == (
        Action.COOLDOWN, "circuit_breaker", "venue:b", 70 * S
    )  # fmt: skip
    now[0] = 71 * S  # the errors aged out of the 1 m window, the cooldown is over
    assert guard.check(intent(ts=71 * S)) is None


def test_rate_limit_degrades_past_soft_and_blocks_past_hard():
    now = [10 * S]
    guard = make(
        ExchangeGuard, now, rate_limit={"scale": 0.25},
        health={"rate_limits": {"a": {"soft": 2, "hard": 4}}},
    )  # fmt: skip
    health = guard.ctx.health
    health.sent("a")
    assert guard.check(intent()) is None  # 1 order this second: within the soft limit
    health.sent("a")
    d = guard.check(intent())
    assert (d.action, d.rule, d.scale) == (Action.DEGRADE, "rate_limit", 0.25)
    health.sent("a")
    assert guard.check(intent()).action is Action.DEGRADE  # 3 of hard 4
    health.sent("a")
    assert guard.check(intent()).action is Action.BLOCK
    assert health.summary()["a"]["rate_limited"] == 2  # orders 3 and 4 were past soft
    now[0] += S // 4  # a quarter second refills 1 hard token, half a soft one
    assert guard.check(intent()).action is Action.DEGRADE
    now[0] += S
    assert guard.check(intent()) is None


# ---- route ----------------------------------------------------------------------------------


def test_route_open_trades_and_losses_are_per_route():
    guard = make(RouteGuard, max_open_trades=1, max_consecutive_losses=1, cooldown="10s")
    guard.on_trade_opened(holding(AB, "1"))
    assert guard.check(intent(AB)).rule == "max_open_trades"
    assert guard.check(intent(BA)) is None  # the reverse route is another route
    guard.on_trade_closed(trade(AB, closed=5 * S))
    d = guard.check(intent(AB, ts=6 * S))
    assert (d.action, d.rule, d.scope, d.until) == (
        Action.COOLDOWN, "max_consecutive_losses", "route", 15 * S
    )  # fmt: skip
    assert guard.check(intent(BA, ts=6 * S)) is None
    assert guard.check(intent(AB, ts=15 * S)) is None


def slipped(bps: str, expected: float | None = None) -> Trade:
    t = trade(AB, pnl="1")
    t.notional, t.slippage = D("1000"), D(bps) / 10  # bps of 1000
    if expected is not None:
        t.expected_slippage_bps = expected  # type: ignore[attr-defined]
    return t


def test_slippage_excess_over_expected_cools_the_route():
    guard = make(RouteGuard, slippage={"max_excess_bps": 20, "cooldown": "30s"})
    guard.on_trade_closed(slipped("20"))
    assert guard.check(intent(ts=6 * S)) is None  # 20 bp over 0 expected: at the bound
    guard.on_trade_closed(slipped("45", expected=25.0))
    assert guard.check(intent(ts=6 * S)) is None  # 20 over what was expected
    guard.on_trade_closed(slipped("20.1"))
    d = guard.check(intent(ts=6 * S))
    assert (d.action, d.rule, d.scope, d.until) == (Action.COOLDOWN, "slippage", "route", 35 * S)
    assert guard.check(intent(BA, ts=6 * S)) is None


def test_leg_imbalance_cools_the_route_after_a_leg_failure():
    guard = make(RouteGuard, leg_imbalance={"cooldown": "20s"})
    guard.on_trade_closed(trade(AB, exit_reason="stop_loss"))
    assert guard.check(intent()) is None
    guard.on_trade_closed(trade(AB, exit_reason="leg_failure"))
    assert guard.check(intent()).rule == "leg_imbalance"
    guard.on_trade_closed(trade(BA, state=TradeState.HALTED))
    assert guard.check(intent(BA)).rule == "leg_imbalance"


# ---- global ---------------------------------------------------------------------------------


def test_global_limits():
    guard = make(GlobalGuard, max_drawdown=10, max_exposure=400, max_open_trades=3)
    for pnl in ("5", "-9.99"):
        guard.on_trade_opened(holding(AB, "1"))
        guard.on_trade_closed(trade(pnl=pnl))
    assert guard.check(intent()) is None  # 9.99 below the peak
    guard.on_trade_opened(holding(AB, "1"))
    guard.on_trade_closed(trade(pnl="-0.01"))
    assert guard.check(intent()).rule == "max_drawdown"
    guard = make(GlobalGuard, max_exposure=400)
    guard.ctx.trades = [holding(AB, "1")]
    assert guard.check(intent(ETH, notional="100")) is None
    assert guard.check(intent(ETH, notional="200")).scale == 0.5


def test_global_max_open_trades_blocks_at_the_limit_not_one_late():
    guard = make(GlobalGuard, max_open_trades=3)
    for _ in range(2):
        guard.on_trade_opened(holding(AB, "1"))
    assert guard.check(intent()) is None  # 2 of 3 open: the third may enter
    guard.on_trade_opened(holding(ETH, "1"))  # any symbol counts
    d = guard.check(intent())
    assert (d.action, d.rule) == (Action.BLOCK, "max_open_trades")
    guard.on_trade_closed(trade(pnl="1"))
    assert guard.check(intent()) is None  # back to 2


def test_global_daily_loss_limit_blocks_once_the_loss_reaches_it_exactly():
    guard = make(GlobalGuard, daily_loss_limit=10)
    for pnl in ("-4", "-5.99"):
        guard.on_trade_opened(holding(AB, "1"))
        guard.on_trade_closed(trade(pnl=pnl))
    assert guard.check(intent()) is None  # 9.99 lost: just above -10
    guard.on_trade_opened(holding(AB, "1"))
    guard.on_trade_closed(trade(pnl="-0.01"))  # day PnL exactly -10: reached
    d = guard.check(intent())
    assert (d.action, d.rule) == (Action.BLOCK, "daily_loss_limit")
    assert guard.check(intent(ts=86_400 * S + 1)) is None  # the next UTC day starts afresh


# ---- the chain ------------------------------------------------------------------------------


class Fixed:
    def __init__(self, name: str, type_name: str, *decisions: Any) -> None:
        self.name, self.type_name, self.decisions = name, type_name, decisions

    def check(self, it: Intent) -> Any:
        from arbframe.model import GuardDecision

        for action, rule, kw in self.decisions:
            return GuardDecision(it.ts, self.name, action, rule, rule=rule, **kw)
        return None


def test_the_most_restrictive_verdict_wins_and_each_is_counted():
    events: list[Any] = []
    d1 = Fixed("x", "exchange", (Action.DEGRADE, "rate_limit", {"scale": 0.5}))
    d2 = Fixed("y", "symbol", (Action.DEGRADE, "max_notional", {"scale": 0.25}))
    allow = Fixed("z", "global")
    chain = GuardChain([d1, d2, allow], lambda *a, **k: events.append(k))  # type: ignore[list-item]
    verdict = chain.check(intent())
    assert verdict.scale == 0.25
    cool = Fixed("c", "route", (Action.COOLDOWN, "slippage", {"until": 20 * S, "scope": "route"}))
    block = Fixed("b", "global", (Action.BLOCK, "max_drawdown", {}))
    chain = GuardChain([d1, cool, block, d2], lambda *a, **k: events.append(k))  # type: ignore[list-item]
    assert chain.check(intent()).action is Action.BLOCK
    chain.guards.pop(2)
    chain._slots.pop(2)
    assert chain.check(intent()).action is Action.COOLDOWN
    s = chain.summary()
    assert s["decisions"]["global"] == {"allow": 0, "degrade": 0, "cooldown": 0, "block": 1}
    assert s["decisions"]["route"]["cooldown"] == 2
    assert s["triggers"] == {"max_drawdown": 1, "max_notional": 2, "rate_limit": 2, "slippage": 2}
    # the route's cooldown: this route only, under its own key
    assert chain.cooling(AB, 19 * S) == 20 * S
    assert chain.cooling(BA, 19 * S) is None
    assert chain.cooling(AB, 20 * S) is None


def test_scoped_cooldowns_apply_to_every_route_through_a_venue():
    chain = GuardChain([], lambda *a, **k: None)
    chain.cooldowns["venue:c"] = 30 * S
    assert chain.cooling(AC, 10 * S) == 30 * S
    assert chain.cooling(AB, 10 * S) is None
    chain.cooldowns["BTC"] = 40 * S  # a symbol's cooldown, as strategies read it
    assert chain.cooling(AB, 10 * S) == 40 * S and chain.cooling(ETH, 10 * S) is None
    chain.cooldowns["global"] = 50 * S
    assert chain.cooling(ETH, 10 * S) == 50 * S


def test_allow_is_counted_for_every_intent_asked():
    chain = GuardChain([Fixed("z", "global")], lambda *a, **k: None)  # type: ignore[list-item]
    for _ in range(3):
        assert chain.check(intent()) is None
    assert chain.summary()["decisions"] == {
        "global": {"allow": 3, "degrade": 0, "cooldown": 0, "block": 0}
    }


# ---- end to end -------------------------------------------------------------------------------


def test_a_route_cooldown_refuses_that_route_in_a_run(run_scenario):
    losing = [
        book("0s", "a", 99.90, 100.00),
        book("1s", "b", 100.60, 100.70),
        book("2s", "b", 101.60, 101.70),  # widens: stop loss
        book("3s", "b", 100.05, 100.10),
        book("4s", "b", 100.60, 100.70),  # the same route again, inside the cooldown
    ]
    scenario = two_venue_scenario(losing, stop_loss_bps=50)
    scenario["guards"] = [
        {"type": "route", "max_consecutive_losses": 1, "cooldown": "1m"},
        {"type": "exchange", "max_exposure": 1000},
    ]
    result = run_scenario(scenario)
    assert [t.exit_reason for t in result.trades] == ["stop_loss"]
    guards = result.summary["guards"]
    assert guards["triggers"] == {"max_consecutive_losses": 1}
    # both intents asked every guard in order; the route guard refused the second
    assert guards["decisions"]["exchange"]["allow"] == 2
    assert guards["decisions"]["route"] == {"allow": 1, "degrade": 0, "cooldown": 1, "block": 0}
    assert result.summary["execution"]["refused"] == {"guard": 1}
    first = result.summary["guard_first"]["route"]["cooldown"]
    assert first["rule"] == "max_consecutive_losses"
    del scenario["guards"]
    assert len(run_scenario(scenario).trades) == 2  # without it the second entry is taken
