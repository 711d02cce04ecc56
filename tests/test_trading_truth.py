"""Biases that would flatter a backtest: decisions on books of different instants, stale
books, and a paper venue that could fill the same depth twice."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from arbframe_plugins.exchanges.paper import PaperExchange
from conftest import book, two_venue_scenario

S = 1_000_000_000
T0 = 1_704_067_200 * S


# ---- books of the same instant ---------------------------------------------------------


@pytest.mark.parametrize("first", ["a", "b"])
def test_a_decision_sees_every_book_of_its_instant(run_scenario, first):
    """At 1 s both venues move up together: no edge. Seen one at a time, b's new bid
    against a's old ask looks like 60 bp (or a's new bid against b's old ask like 65 bp),
    a trade on a pair of books that never existed at once."""
    moves = {"a": book("1s", "a", 100.70, 100.80), "b": book("1s", "b", 100.60, 100.70)}
    events = [
        book("0s", "a", 99.90, 100.00),
        book("0s", "b", 99.95, 100.05),
        moves[first],
        moves["b" if first == "a" else "a"],
    ]
    result = run_scenario(two_venue_scenario(events))
    assert result.fills == [] and result.summary["events"]["instants"] == 2
    # the same book of b arriving a second later than a's is a real dislocation: it trades
    late = events[:2] + [moves["a"], {**moves["b"], "at": "2s"}]
    assert len(run_scenario(two_venue_scenario(late)).trades) == 1


# ---- book age, per decision ---------------------------------------------------------------

STALE = {"max_book_age": "500ms"}


def test_no_entry_against_a_stalled_venue(run_scenario):
    events = [
        book("0s", "a", 99.90, 100.00),
        book("0s", "b", 99.95, 100.05),  # b publishes nothing after this
        book("1s", "a", 99.60, 99.70),
        book("2s", "a", 99.40, 99.50),  # 45 bp under b's last bid: 15 bp after fees
    ]
    stale = run_scenario(two_venue_scenario(events, execution=STALE))
    assert stale.fills == [] and stale.summary["execution"]["refused"]["stale_book"] == 1
    fresh = run_scenario(two_venue_scenario(events))
    assert len(fresh.trades) == 1  # the refusal above was the age check


ENTRY = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),  # enter at 1 s on books of the same instant
]


def test_a_reversion_exit_waits_for_fresh_books(run_scenario):
    events = ENTRY + [
        book("2s", "a", 100.66, 100.76),  # vs b's 1 s ask: 4 bp to pay back, a reversion
        book("3s", "a", 100.66, 100.76),
        book("6s", "a", 100.66, 100.76),
        book("6s", "b", 100.60, 100.70),  # b is back: the same reversion, on fresh books
    ]
    result = run_scenario(two_venue_scenario(events, execution=STALE))
    [trade] = result.trades
    assert trade.exit_reason == "reversion"
    assert result.summary["execution"]["refused"]["stale_book_exit"] == 2  # at 2 s and 3 s
    assert trade.exit_book_age_ns == 0
    assert [f.ts - T0 for f in trade.fills if f.role == "exiting"] == [6 * S + 10**7] * 2
    # without the limit it exits at 2 s, on a pair of books one second apart
    loose = run_scenario(two_venue_scenario(events)).trades[0]
    assert loose.exit_book_age_ns == S and loose.closed_at == T0 + 2 * S + 10**7


def test_a_stop_loss_acts_on_stale_books_and_says_how_stale(run_scenario):
    events = ENTRY + [book("2s", "a", 99.00, 99.10)]  # a falls: the estimate is far under -50
    result = run_scenario(two_venue_scenario(events, execution=STALE, stop_loss_bps=50))
    [trade] = result.trades
    assert trade.exit_reason == "stop_loss" and trade.closed_at == T0 + 2 * S + 10**7
    assert trade.exit_book_age_ns == S  # b's book was a second old
    assert "stale_book_exit" not in result.summary["execution"]["refused"]


# ---- a paper venue that feels its own orders ------------------------------------------------

THIN = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70, bid_size=0.2),  # only 0.2 BTC to sell into on b
    book("3s", "b", 99.80, 99.85),
]


def rebalance(latency: str = "0s") -> dict:
    scenario = two_venue_scenario(
        THIN,
        execution={"leg_risk": {"policy": "rebalance", "max_retries": 2}},
        routing={"size_to_depth": False},  # enter 0.5 BTC into b's 0.2: the retries' case
    )
    for venue in scenario["venues"].values():
        venue["latency"] = latency
    return scenario


def test_a_retry_cannot_refill_from_the_depth_it_took(run_scenario):
    """b's 0.2 BTC bid is taken by the entry; the retries in the same instant find it gone
    (until b publishes again) instead of selling the same 0.2 twice."""
    result = run_scenario(rebalance())
    b = [o for o in result.run.execution.orders.values() if o.venue == "b"]
    assert [(o.role, o.state.value, o.filled, o.reason) for o in b[:3]] == [
        ("entering", "canceled", D("0.200"), "insufficient depth"),
        ("entering", "rejected", D(0), "no liquidity"),
        ("entering", "rejected", D(0), "no liquidity"),
    ]
    [trade] = result.trades
    assert [(f.venue, f.side, f.amount, f.role) for f in trade.fills][:3] == [
        ("a", "buy", D("0.500"), "entering"),
        ("b", "sell", D("0.200"), "entering"),
        ("a", "sell", D("0.300"), "unwinding"),
    ]
    assert result.summary["reconciliation"]["passed"] is True


def test_the_audit_catches_a_venue_that_refills_the_same_depth(run_scenario, monkeypatch):
    monkeypatch.setattr(PaperExchange, "_deplete", lambda *args: None)
    result = run_scenario(rebalance())
    rec = result.summary["reconciliation"]
    assert rec["passed"] is False and rec["fills"]["price_violations"] == 2  # both retries
    assert "0.4 taken at 100.60, the book of" in rec["violations"][0]
    assert "held 0.2" in rec["violations"][0]


def test_a_trade_is_as_big_as_what_filled(run_scenario):
    events = [
        book("0s", "a", 99.90, 100.00, ask_size=0.2),
        book("1s", "b", 100.60, 100.70, bid_size=0.2),
        book("3s", "b", 99.80, 99.85),
    ]
    result = run_scenario(two_venue_scenario(events))  # asks for 0.5 on each leg
    [trade] = result.trades
    entering = [(f.venue, f.amount) for f in trade.fills if f.role == "entering"]
    assert entering == [("a", D("0.200")), ("b", D("0.200"))]
    assert trade.notional == D("0.200") * D("100.60")  # the larger leg filled, not 50
    assert trade.risk == (trade.notional / 100).quantize(D("1e-8"))  # 100 bp without a stop


def test_the_audit_catches_a_fill_at_a_price_from_an_older_book(run_scenario, monkeypatch):
    """A venue that fills against the book it had before the latest one (a real price, but
    stale) fails the price check: the fill is judged against the book of its instant."""
    on_book = PaperExchange.on_book

    def remember(self, ts, symbol, bids, asks):
        book = self.books[symbol]
        self.previous = (book.bids, book.asks)
        on_book(self, ts, symbol, bids, asks)

    def stale(self, request, book):
        bids, asks = getattr(self, "previous", (book.bids, book.asks))
        levels = asks if request.side == "buy" else bids
        return levels or (book.asks if request.side == "buy" else book.bids)

    monkeypatch.setattr(PaperExchange, "on_book", remember)
    monkeypatch.setattr(PaperExchange, "_takeable", stale)
    events = [
        book("0s", "a", 99.80, 99.90),
        book("1s", "a", 99.90, 100.00),
        book("1s", "b", 100.60, 100.70),
        book("3s", "b", 99.80, 99.85),
    ]
    result = run_scenario(two_venue_scenario(events))
    rec = result.summary["reconciliation"]
    assert rec["passed"] is False and rec["fills"]["price_violations"] >= 1
    assert "price 99.90 is not a level of the book of" in " ".join(rec["violations"])


def test_an_entry_the_balances_cannot_cover_is_refused(run_scenario):
    scenario = two_venue_scenario(ENTRY)
    scenario["capital"]["a"]["USDT"] = 40  # 0.5 BTC at 100 needs 50 USDT (and headroom)
    result = run_scenario(scenario)
    assert result.fills == [] and result.summary["alerts"] == {}
    assert result.summary["execution"]["refused"]["balance"] >= 1


def test_a_resize_waits_for_fresh_books(run_scenario):
    events = ENTRY + [book("2s", "a", 100.20, 100.30)]  # only a: b's book is a second old
    partial = {"at_bps": -100, "fraction": 0.5}
    stale = run_scenario(two_venue_scenario(events, execution=STALE, partial_close=partial))
    assert [f.role for f in stale.fills].count("resizing") == 0
    assert stale.summary["execution"]["refused"]["stale_book"] >= 1
    fresh = run_scenario(two_venue_scenario(events, partial_close=partial))
    assert [f.role for f in fresh.fills].count("resizing") == 2  # the refusal was the age


def test_the_kernel_refuses_entries_during_a_cooldown(run_scenario):
    """Whether or not a strategy checks cooldowns itself, the kernel does."""
    from decimal import Decimal

    from arbframe.model import Route

    run = run_scenario(two_venue_scenario(ENTRY)).run
    run.execution.closing = False  # the run is over: reopen it for intents sent by hand
    port = run.execution._ports["spread_arb"]
    run.guard_chain.cooldowns["BTC"] = run.clock.now + S
    assert port.enter(Route.spread("BTC", "a", "b"), base=Decimal("0.1")) is None
    assert run.execution.refusals["cooldown"] == 1
    del run.guard_chain.cooldowns["BTC"]
    trade = port.enter(Route.spread("BTC", "a", "b"), base=Decimal("0.1"))
    assert trade is not None and trade.size == Decimal("0.100")
