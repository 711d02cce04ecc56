"""A trade's whole lifecycle on scripted books, checked against hand-computed money."""

from __future__ import annotations

from decimal import Decimal as D

from conftest import book, two_venue_scenario

# a is cheap at t=1s (ask 100.00) while b is rich (bid 100.60): 60 bp gross, 30 bp of
# entry fees, so the edge of 30 bp clears entry_bps=10. At t=4s b's ask drops to 99.95:
# the premium still to pay back is (99.95 - 100.00) / 100.00 = -5 bp <= exit_bps=5.
EVENTS = [
    book("0s", "a", 99.90, 100.00),
    book("0s", "b", 99.95, 100.05),
    book("1s", "b", 100.60, 100.70),
    book("2s", "b", 100.00, 100.08),
    book("3s", "a", 100.00, 100.10),
    book("4s", "b", 99.90, 99.95),
]


def test_hand_computed_round_trip(run_scenario):
    result = run_scenario(two_venue_scenario(EVENTS))
    [trade] = result.trades
    fills = [(f.venue, f.side, f.price, f.amount, f.fee, f.role) for f in result.fills]
    assert fills == [
        ("a", "buy", D("100.00"), D("0.500"), D("0.05000000"), "entering"),  # 50.00 * 10 bp
        ("b", "sell", D("100.60"), D("0.500"), D("0.10060000"), "entering"),  # 50.30 * 20 bp
        ("a", "sell", D("100.00"), D("0.500"), D("0.05000000"), "exiting"),  # 50.00 * 10 bp
        ("b", "buy", D("99.95"), D("0.500"), D("0.09995000"), "exiting"),  # 49.975 * 20 bp
    ]
    # gross: a: -50.00 + 50.00; b: +50.30 - 49.975  => 0.325
    assert trade.gross_pnl == D("0.325")
    assert trade.fees == D("0.30055")
    assert trade.net_pnl == D("0.02445")
    assert trade.exit_reason == "reversion"
    assert trade.opened_at == 1_000_000_000 + 1_704_067_200_000_000_000
    assert (
        trade.closed_at - trade.opened_at == 3_010_000_000
    )  # exit decided at 4s, filled 10 ms later

    venues = result.run.venues
    assert venues["a"].balances()["USDT"] == D("9999.90")  # -50.00 -0.05 +50.00 -0.05
    assert venues["b"].balances()["USDT"] == D("10000.12445")  # +50.30 -0.1006 -49.975 -0.09995
    assert venues["a"].balances()["BTC"] == venues["b"].balances()["BTC"] == D("1")

    p = result.summary["portfolio"]
    assert (p["entries"], p["exits"], p["trades_closed"], p["wins"]) == (1, 1, 1, 1)
    assert D(p["pnl"]) == D("0.02445") and D(p["fees"]) == D("0.30055")
    assert p["winrate"] == 1.0
    assert result.summary["reconciliation"]["passed"] is True


def krw_scenario(events):
    """Venue `k` (taker 10 bp) quotes in KRW at 1000 KRW per USDT; `b` as usual."""
    scenario = two_venue_scenario(events)
    scenario["venues"]["k"] = scenario["venues"].pop("a")
    scenario["venues"]["k"].update(
        quote="KRW", markets={"default": {"price_tick": 100, "amount_step": "0.001"}}
    )
    scenario["capital"] = {"k": {"KRW": 10_000_000, "BTC": 1}, "b": {"USDT": 10000, "BTC": 1}}
    scenario["fx"] = {"KRW": 1000}
    return scenario


def test_fx_normalised_round_trip(run_scenario):
    """Venue k quotes KRW at 1000 KRW per USDT: PnL converts each KRW flow exactly."""
    scenario = krw_scenario(
        [
            book("0s", "k", 100_000, 100_100),  # 100.00 / 100.10 USDT
            book("0s", "b", 100.05, 100.15),
            book("1s", "b", 100.80, 100.90),  # sell b at 100.80 vs buy k at 100.10
            book("2s", "k", 100_700, 100_800),  # to pay back: (100.90-100.70)/100.70 ~ 19.9 bp
            book("3s", "b", 100.60, 100.70),  # (100.70-100.70)/100.70 = 0 bp <= 5: exit
        ]
    )
    result = run_scenario(scenario)
    [trade] = result.trades
    # k: buy 0.5 @ 100,100 = -50,050 KRW, fee 50.05; sell 0.5 @ 100,700 = +50,350, fee 50.35
    # b: sell 0.5 @ 100.80 = +50.40, fee 0.1008; buy 0.5 @ 100.70 = -50.35, fee 0.1007
    assert trade.gross_pnl == D("300") / 1000 + D("0.05")
    assert trade.fees == D("100.40") / 1000 + D("0.2015")
    assert trade.net_pnl == D("0.35") - D("0.3019")
    assert result.run.venues["k"].balances()["KRW"] == D("10000000") + 300 - D("100.40")


def test_no_entry_when_fees_eat_the_spread(run_scenario):
    # 25 bp gross is below the 30 bp of entry fees: nothing may trade.
    events = [book("0s", "a", 99.90, 100.00), book("1s", "b", 100.25, 100.30)]
    result = run_scenario(two_venue_scenario(events))
    assert result.fills == [] and result.summary["portfolio"]["entries"] == 0
    # ...and the same spread with entry fees of 0 does trade: the check above is meaningful.
    free = two_venue_scenario(events)
    for venue in free["venues"].values():
        venue["fees"] = {"taker_bps": 0}
    assert run_scenario(free).summary["portfolio"]["entries"] == 1


def test_stop_loss_take_profit_max_hold(run_scenario):
    entry = [book("0s", "a", 99.90, 100.00), book("1s", "b", 100.60, 100.70)]
    widen = entry + [book("2s", "b", 101.50, 101.60)]  # premium widens: ~ -150 bp estimate
    result = run_scenario(two_venue_scenario(widen, stop_loss_bps=100))
    assert [t.exit_reason for t in result.trades] == ["stop_loss"]
    assert result.trades[0].net_pnl < 0

    narrow = entry + [book("2s", "b", 100.10, 100.12)]  # 12 bp to pay back: est 60-12-60 < 0
    result = run_scenario(two_venue_scenario(narrow, take_profit_bps=1))
    assert [t.exit_reason for t in result.trades] == ["end_of_run"]  # no TP, no reversion

    flip = entry + [book("2s", "a", 101.00, 101.05)]  # est = 60 + 29.7 - 60 bp >= 1: TP
    result = run_scenario(two_venue_scenario(flip, take_profit_bps=1, exit_bps=-100))
    assert [t.exit_reason for t in result.trades] == ["take_profit"]
    assert result.trades[0].net_pnl > 0

    quiet = entry + [book("40s", "a", 99.90, 100.00)]  # no quote between 1s and 40s
    result = run_scenario(two_venue_scenario(quiet, max_hold="30s"))
    # the spread is still there at 40s, so a second trade opens and is closed at the end
    assert [t.exit_reason for t in result.trades] == ["max_hold", "end_of_run"]
    trade = result.trades[0]
    # the timer fires at entry + 30 s, not at the next quote; the legs fill 10 ms later
    assert trade.closed_at - trade.opened_at == 30_010_000_000


def test_partial_close_then_exit(run_scenario):
    events = [
        book("0s", "a", 99.90, 100.00),
        book("1s", "b", 100.60, 100.70),
        book("2s", "a", 100.30, 100.40),  # est = 60 - (100.70-100.30)/100.30 bp - 60 > -40
        book("3s", "b", 100.20, 100.25),  # (100.25 - 100.30)/100.30 < 0: reversion
    ]
    result = run_scenario(
        two_venue_scenario(events, partial_close={"at_bps": -45, "fraction": 0.4})
    )
    [trade] = result.trades
    roles = [(f.venue, f.side, f.amount, f.role) for f in result.fills]
    assert roles == [
        ("a", "buy", D("0.500"), "entering"),
        ("b", "sell", D("0.500"), "entering"),
        ("a", "sell", D("0.200"), "resizing"),
        ("b", "buy", D("0.200"), "resizing"),
        ("a", "sell", D("0.300"), "exiting"),
        ("b", "buy", D("0.300"), "exiting"),
    ]
    assert trade.exit_reason == "reversion"
    flows = sum((f.price * f.amount * (1 if f.side == "sell" else -1) for f in result.fills), D(0))
    assert trade.gross_pnl == flows
    assert trade.net_pnl == flows - sum((f.fee for f in result.fills), D(0))


def test_fed_fx_rate_moves_the_normalised_spread(run_scenario):
    """At 1000 KRW/USDT venue k's ask is 100.10 USDT: no edge against b's bid of 100.20.
    A fed rate of 1010 makes it 99.11 USDT: 110 bp gross, and the strategy enters."""
    events = [
        {"at": "0s", "fx": {"KRW": 1000}},
        book("0s", "k", 100_000, 100_100),
        book("0s", "b", 100.20, 100.30),
        book("1s", "b", 100.20, 100.30),  # still no edge at 1000
        {"at": "2s", "fx": {"KRW": 1010}},
        book("3s", "b", 100.20, 100.30),
    ]
    result = run_scenario(krw_scenario(events))
    assert result.summary["events"]["fx_updates"] == 2
    [trade] = result.trades
    assert trade.opened_at == 1_704_067_200_000_000_000 + 3_000_000_000
    assert (trade.buy_venue, trade.sell_venue) == ("k", "b")
    assert round(trade.entry_spread_bps, 2) == round(
        (100.20 - 100_100 / 1010) / (100_100 / 1010) * 1e4, 2
    )
    # the KRW leg is converted at the rate in force when it filled
    assert {f.venue: f.fx for f in trade.fills if f.role == "entering"} == {"k": D(1010), "b": D(1)}
