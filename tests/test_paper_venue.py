"""The paper venue on its own: what it fills, charges and reports, message by message.

The venue is built with a context whose ``report`` collects what it sends, so these tests
see exactly what a kernel would receive, in order, without one.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from arbframe_plugins.exchanges.paper import PaperExchange
from jsonschema import Draft202012Validator

from arbframe.clock import SimClock
from arbframe.components import ExchangeContext, RunInfo
from arbframe.model import (
    BUY,
    LIMIT,
    SELL,
    Accepted,
    BalanceChange,
    Book,
    CancelRejected,
    Closed,
    FillReport,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
)
from arbframe.orders import OrderState

T0 = 1_000_000_000
MS = 1_000_000
ASKS = ((100.0, 0.3), (100.1, 0.2), (100.5, 5.0))
BIDS = ((99.9, 1.0), (99.8, 2.0))


class Venue:
    """A paper venue `a` with one instrument BTC/USDT and a clock, its reports collected."""

    def __init__(self, **config: Any) -> None:
        config = {
            "quote": "USDT",
            "fees": {"taker_bps": 10, "maker_bps": 2},
            "latency": "10ms",
            "markets": {"default": {"price_tick": "0.01", "amount_step": "0.001",
                                    "min_notional": 10}},
            **config,
        }  # fmt: skip
        Draft202012Validator(PaperExchange.config_schema).validate(config)
        self.clock = SimClock()
        self.reports: list[Any] = []
        ctx = ExchangeContext(
            info=RunInfo("t", 0, "paper", "simulated", "USDT", "t"),
            resolve_path=Path,
            error=lambda path, message: ValueError(message),
            clock=self.clock,
            report=self.reports.append,
        )
        self.paper = PaperExchange(config, name="a", ctx=ctx)
        self.book = Book()
        self.instrument = self.paper.add_instrument("BTC", self.book)
        self.paper.fund({"USDT": D(10000), "BTC": D(1), "BNB": D(1)})
        self.clock.now = T0
        self.paper.on_start(T0)
        self.paper.on_book(T0, "BTC", BIDS, ASKS)
        self.ids = 0

    def order(self, side: str, amount: str, **kw: Any) -> OrderRequest:
        self.ids += 1
        request = OrderRequest(f"o{self.ids}", "a", "BTC", side, D(amount), **kw)
        self.paper.submit(request)
        return request

    def run(self, until_ms: int = 10) -> list[Any]:
        self.clock.run_due(T0 + until_ms * MS)
        out, self.reports[:] = list(self.reports), []
        return out

    def fills(self, reports: list[Any]) -> list[tuple[Any, ...]]:
        return [
            (r.price, r.amount, r.fee, r.fee_asset, r.liquidity)
            for r in reports
            if isinstance(r, FillReport)
        ]


def kinds(reports: list[Any]) -> list[str]:
    return [type(r).__name__ for r in reports]


def test_market_buy_walks_the_book_and_reports_in_order():
    v = Venue()
    v.order(BUY, "0.6")
    reports = v.run()
    assert kinds(reports) == ["Accepted", "FillReport", "FillReport", "FillReport", "Closed"]
    assert v.fills(reports) == [
        (D("100.00"), D("0.300"), D("0.03000000"), "USDT", "taker"),
        (D("100.10"), D("0.200"), D("0.02002000"), "USDT", "taker"),
        (D("100.50"), D("0.100"), D("0.01005000"), "USDT", "taker"),
    ]
    closed = reports[-1]
    assert (closed.state, closed.filled) == (OrderState.FILLED, D("0.6"))
    assert all(r.ts == T0 + 10 * MS for r in reports)  # executed after the latency
    account = v.paper.balances()
    assert account["USDT"] == D("10000") - D("60.07") - D("0.06007")
    assert account["BTC"] == D("1.6")


def test_market_order_short_of_depth_fills_partly_and_cancels_the_rest():
    v = Venue()
    v.order(BUY, "6")  # 5.5 on the book
    reports = v.run()
    closed = reports[-1]
    assert closed == Closed("a", "o1", OrderState.CANCELED, D("5.500"), T0 + 10 * MS,
                            "insufficient depth", closed.exchange_id)  # fmt: skip
    assert v.paper.balances()["BTC"] == D("6.5")


def test_rejects_move_no_money():
    v = Venue()
    v.order(SELL, "1.5")
    v.order(BUY, "200", type=LIMIT, price=D("100.50"))  # 20,100 > 10,000
    v.order(BUY, "0.0005")  # below the 0.001 step
    v.order(BUY, "0.05")  # 5 USDT < min notional 10
    reasons = [(r.state, r.reason) for r in v.run()]
    assert reasons[0] == (OrderState.REJECTED, "insufficient BTC: need 1.500, have 1")
    assert reasons[1][1].startswith("insufficient USDT")
    assert reasons[2][1] == "amount 0.0005 below minimum or off step"
    assert reasons[3][1].startswith("notional below minimum")
    assert v.paper.balances() == {"USDT": D(10000), "BTC": D(1), "BNB": D(1)}


def test_latency_executes_against_the_book_at_arrival():
    v = Venue()
    v.order(BUY, "0.1")
    v.clock.run_due(T0 + 5 * MS)
    v.paper.on_book(T0 + 5 * MS, "BTC", ((100.9, 1.0),), ((101.0, 1.0),))  # moves first
    assert v.run(9) == []  # not arrived yet
    assert v.fills(v.run(10)) == [(D("101.00"), D("0.100"), D("0.01010000"), "USDT", "taker")]


def test_own_fills_consume_the_book_until_the_next_one():
    v = Venue()
    v.order(BUY, "0.3")  # takes the whole best level
    v.order(BUY, "0.3")  # same instant: must not take 100.00 again
    fills = v.fills(v.run())
    assert [(p, a) for p, a, *_ in fills] == [
        (D("100.00"), D("0.300")),
        (D("100.10"), D("0.200")),
        (D("100.50"), D("0.100")),
    ]
    assert v.book.asks[0] == (100.5, pytest.approx(4.9))  # what is left, until replaced
    v.paper.on_book(T0 + 20 * MS, "BTC", BIDS, ASKS)  # the feed's next book: depth is back
    v.order(BUY, "0.3")
    assert [(p, a) for p, a, *_ in v.fills(v.run(40))] == [(D("100.00"), D("0.300"))]


def test_limit_order_rests_then_fills_as_maker_and_unlocks():
    v = Venue()
    v.order(BUY, "0.5", type=LIMIT, price=D("99.50"))
    assert kinds(v.run()) == ["Accepted"]
    assert v.paper.available("USDT") == D("10000") - D("49.75") - D("0.00995")  # + maker fee
    v.clock.now = T0 + 20 * MS
    v.paper.on_book(T0 + 20 * MS, "BTC", ((99.3, 1.0),), ((99.4, 0.2), (99.5, 1.0)))
    reports = v.run(20)
    assert v.fills(reports) == [
        (D("99.50"), D("0.200"), D("0.00398000"), "USDT", "maker"),
        (D("99.50"), D("0.300"), D("0.00597000"), "USDT", "maker"),
    ]
    assert reports[-1].state is OrderState.FILLED
    assert v.paper.available("USDT") == v.paper.balances()["USDT"]


def test_cancel_a_resting_order_and_a_cancel_that_lost_the_race():
    v = Venue()
    rest = v.order(BUY, "0.5", type=LIMIT, price=D("99.50"))
    taker = v.order(BUY, "0.1")
    v.run()
    v.paper.cancel(rest)
    v.paper.cancel(taker)  # already filled
    reports = v.run(30)
    assert (reports[0].state, reports[0].reason) == (OrderState.CANCELED, "canceled by request")
    assert reports[1] == CancelRejected("a", "o2", T0 + 20 * MS, "order is filled")
    assert v.paper.available("USDT") == v.paper.balances()["USDT"]  # nothing left locked


def test_query_returns_every_fill_or_not_found():
    v = Venue()
    request = v.order(BUY, "0.6")
    original = v.run()
    v.paper.fetch_order(request)
    v.paper.fetch_order(OrderRequest("never-sent", "a", "BTC", BUY, D(1)))
    status, missing = v.run(30)
    assert isinstance(status, OrderStatus) and status.state is OrderState.FILLED
    assert status.fills == tuple(r for r in original if isinstance(r, FillReport))
    assert missing == OrderNotFound("a", "never-sent", T0 + 20 * MS)


def test_fees_in_the_asset_received():
    v = Venue(fees={"taker_bps": 10, "asset": "received"})
    v.order(BUY, "0.3")
    v.order(SELL, "0.5")
    buy, sell = v.fills(v.run())
    assert buy == (D("100.00"), D("0.300"), D("0.00030000"), "BTC", "taker")  # 10 bp of 0.3
    assert sell == (D("99.90"), D("0.500"), D("0.04995000"), "USDT", "taker")
    account = v.paper.balances()
    assert account["BTC"] == D(1) + D("0.3") - D("0.0003") - D("0.5")
    assert account["USDT"] == D(10000) - D("30.00") + D("49.95") - D("0.04995")


def test_fees_in_a_third_asset_at_its_price():
    v = Venue(fees={"taker_bps": 10, "asset": "BNB", "asset_price": 300})
    v.order(BUY, "0.3")
    [fill] = [r for r in v.run() if isinstance(r, FillReport)]
    # 30.00 USDT * 10 bp = 0.03 USDT = 0.0001 BNB at 300 USDT
    assert (fill.fee, fill.fee_asset, fill.fee_price) == (D("0.0001"), "BNB", D(300))
    assert v.paper.balances()["BNB"] == D("0.9999")
    assert v.paper.balances()["USDT"] == D(10000) - D("30.00")


def test_a_third_asset_fee_needs_its_price():
    with pytest.raises(Exception, match="fees in BNB need asset_price"):
        Venue(fees={"taker_bps": 10, "asset": "BNB"})


def test_report_delays_reorder_what_the_kernel_receives():
    v = Venue(report_delays={"ack": "50ms", "fill": "30ms"})
    v.order(BUY, "0.6")
    assert kinds(v.run(10)) == ["Closed"]  # the final answer overtakes everything
    assert kinds(v.run(40)) == ["FillReport"] * 3
    assert kinds(v.run(60)) == ["Accepted"]


def test_duplicate_reports_repeat_every_message():
    v = Venue(duplicate_reports=True)
    v.order(BUY, "0.3")
    reports = v.run()
    assert kinds(reports) == ["Accepted"] * 2 + ["FillReport"] * 2 + ["Closed"] * 2
    assert reports[2] == reports[3]


def test_transfers_move_the_account_and_are_reported():
    v = Venue(
        transfers=[
            {"at": "1s", "asset": "USDT", "amount": 500},
            {"at": "2s", "asset": "BTC", "amount": "-0.25", "kind": "transfer_out"},
        ]
    )
    reports = v.run(3000)
    assert reports == [
        BalanceChange("a", "USDT", D(500), "deposit", T0 + 1000 * MS, "a-t1"),
        BalanceChange("a", "BTC", D("-0.25"), "transfer_out", T0 + 2000 * MS, "a-t2"),
    ]
    assert v.paper.balances()["USDT"] == D(10500) and v.paper.balances()["BTC"] == D("0.75")


def test_accepted_reports_carry_the_exchange_id():
    v = Venue()
    v.order(BUY, "0.1")
    accepted = v.run()[0]
    assert isinstance(accepted, Accepted) and accepted.exchange_id == "a-o1"
