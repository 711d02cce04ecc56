"""An order-level fee (Upbit's paid_fee) shared over the order's fills by the `ccxt` venue:
the shares add up to what the exchange charged, each in the fee's own asset."""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace

from arbframe_plugins.exchanges.ccxt_orders import LiveOrders, _Live

from arbframe.model import FeeSchedule, Instrument, OrderRequest

INSTRUMENT = Instrument(
    venue="upbit", symbol="BTC", base="BTC", quote="KRW", price_tick=D("1000"),
    amount_step=D("1e-8"), min_amount=D("1e-8"), min_notional=D("5000"),
    fees=FeeSchedule(taker_bps=D("5"), maker_bps=D("5")),
)  # fmt: skip
TRADES = [
    {"id": "t1", "price": "81150000", "amount": "0.00123457"},
    {"id": "t2", "price": "81151000", "amount": "0.00200001"},
    {"id": "t3", "price": "81152000", "amount": "0.00076542"},
]


def split(total: str, asset: str) -> list[D]:
    venue = SimpleNamespace(traded={"BTC": INSTRUMENT}, schedule=INSTRUMENT.fees)
    orders = LiveOrders(venue)  # type: ignore[arg-type]
    live = _Live(OrderRequest("c1", "upbit", "BTC", "buy", D("0.004")))
    return orders._split_fee(live, TRADES, D(total), asset)


def by_schedule(trade: dict[str, str]) -> D:
    return (D(trade["price"]) * D(trade["amount"]) * D("0.0005")).quantize(D("1e-8"))


def test_fee_as_the_schedule_says_goes_fill_by_fill():
    expected = [by_schedule(t) for t in TRADES]
    assert split(str(sum(expected)), "KRW") == expected


def test_a_discounted_fee_is_shared_by_notional_and_adds_up():
    total = D("1000.12345678")  # not what the schedule gives
    shares = split(str(total), "KRW")
    assert sum(shares) == total and all(s > 0 for s in shares)
    notional = [D(t["price"]) * D(t["amount"]) for t in TRADES]
    # each share within a unit of its notional's part of the total
    for share, n in zip(shares, notional, strict=True):
        assert abs(share - total * n / sum(notional)) < D("1e-7")


def test_a_zero_fee_books_zero_everywhere():
    assert split("0", "KRW") == [D(0), D(0), D(0)]


def test_a_fee_in_the_base_asset_stays_in_base_units():
    total = D("0.00000200")  # 0.000002 BTC: shares are BTC, not KRW-sized
    shares = split(str(total), "BTC")
    assert sum(shares) == total and all(D(0) <= s <= total for s in shares)
