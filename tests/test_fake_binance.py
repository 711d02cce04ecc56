"""The real ccxt client (``ccxt.async_support`` and ``ccxt.pro``) against the fake Binance of
``tests/fakevenues``: what it loads, fetches, watches and trades is checked against the engine,
to the last unit."""

# ruff: noqa: F811 - the tests take the imported ``fake_venues`` fixture as an argument

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal as D
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

ccxt = pytest.importorskip("ccxt")
import ccxt.async_support as ccxt_async  # noqa: E402
import ccxt.pro as ccxt_pro  # noqa: E402
from fakevenues.binance import ccxt_urls  # noqa: E402
from fakevenues.fixture import fake_venues  # noqa: E402, F401 - the fixture
from fakevenues.server import FakeVenues  # noqa: E402

SYMBOL = "BTC/USDT"
BIDS = [("59990.00", "0.5"), ("59980.00", "1.0"), ("59970.00", "2.0")]
ASKS = [("60000.00", "0.3"), ("60010.00", "0.4"), ("60020.00", "2.0")]


def client(fv: FakeVenues, module: Any = ccxt_async, **config: Any) -> Any:
    """A ccxt binance on the fake (rate limiting off: the tests' timing is their own)."""
    options = {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "fetchOpenOrders": {"warnWithoutSymbol": False},
        **config.pop("options", {}),
    }
    exchange = module.binance(
        {
            "apiKey": fv.binance_key,
            "secret": fv.binance_secret,
            "enableRateLimit": False,
            "timeout": 5000,
            "options": options,
            **config,
        }
    )
    exchange.urls["api"] = ccxt_urls(fv.binance_url)
    return exchange


def run(fv: FakeVenues, body: Callable[..., Awaitable[Any]], module: Any = ccxt_async, **config):
    """``body(exchange)`` with a fresh client, closed afterwards."""

    async def main() -> Any:
        exchange = client(fv, module, **config)
        try:
            await exchange.load_markets()
            return await body(exchange)
        finally:
            await exchange.close()

    return asyncio.run(main())


def exact_book(fv: FakeVenues, bids=BIDS, asks=ASKS) -> None:
    fv.market.set_books("binance", SYMBOL, bids, asks)  # freezes the synthetic market


def balances(fv: FakeVenues) -> dict[str, D]:
    return fv.call(
        lambda: {a: fv.binance.accounts[fv.binance_key].total(a) for a in ("BTC", "USDT")}
    )


def spy_reports(exchange: Any) -> list[dict]:
    """The executionReports that reach ccxt's handler, in order (its order cache keeps only the
    latest state of each order)."""
    seen: list[dict] = []
    handle = exchange.handle_order_update

    def spy(client: Any, message: dict) -> Any:
        seen.append(dict(message))
        return handle(client, message)

    exchange.handle_order_update = spy
    return seen


def requests_to(fv: FakeVenues, path: str) -> int:
    return sum(1 for _, p in list(fv.binance.requests) if p.endswith(path))


# ---- markets and books ----------------------------------------------------------------------


def test_load_markets_precision_limits_in_one_request(fake_venues: FakeVenues) -> None:
    fv = fake_venues

    async def body(ex: Any) -> None:
        market = ex.market(SYMBOL)
        assert market["id"] == "BTCUSDT" and market["spot"] and market["active"]
        assert market["precision"]["amount"] == pytest.approx(1e-5)
        assert market["precision"]["price"] == pytest.approx(0.01)
        assert market["limits"]["amount"]["min"] == pytest.approx(1e-5)
        assert market["limits"]["cost"]["min"] == pytest.approx(5)
        assert ex.amount_to_precision(SYMBOL, 0.123456789) == "0.12345"
        assert ex.price_to_precision(SYMBOL, 60000.12345) == "60000.12"
        assert set(ex.markets) == {"BTC/USDT", "ETH/USDT"}

    run(fv, body)
    assert list(fv.binance.requests) == [("GET", "/binance/api/v3/exchangeInfo")]


def test_fetch_order_book_is_the_engine_book(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> tuple[Any, Any]:
        return await ex.fetch_order_book(SYMBOL, 5), await ex.fetch_ticker(SYMBOL)

    book, ticker = run(fv, body)
    assert (ticker["bid"], ticker["ask"], ticker["last"]) == (59990, 60000, 59995)
    assert book["bids"] == [[float(p), float(q)] for p, q in BIDS]
    assert book["asks"] == [[float(p), float(q)] for p, q in ASKS]
    assert book["nonce"] == fv.binance.book(SYMBOL).update_id


def test_watch_order_book_follows_diffs_and_taker_depth(fake_venues: FakeVenues) -> None:
    fv = fake_venues

    async def body(ex: Any) -> None:
        nonces = []
        for _ in range(4):  # the live synthetic market
            ob = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 3)
            nonces.append(ob["nonce"])
        assert nonces == sorted(set(nonces)), nonces
        fv.market.freeze()
        await asyncio.sleep(0.2)

        async def after(change: Callable[[], Any]) -> Any:
            watch = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
            await asyncio.sleep(0.1)
            change()
            return await asyncio.wait_for(watch, 3)

        ob = await after(lambda: fv.call(fv.binance.set_book, SYMBOL, BIDS, ASKS))
        engine = fv.call(fv.binance.book, SYMBOL)
        assert ob["nonce"] == engine.update_id
        assert ob["bids"] == [[float(p), float(q)] for p, q in engine.bids]
        assert ob["asks"] == [[float(p), float(q)] for p, q in engine.asks]
        # a market buy of 0.5 takes the first ask (0.3) and 0.2 of the second
        rest = client(fv)
        try:
            watch = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
            await asyncio.sleep(0.1)
            await rest.create_order(SYMBOL, "market", "buy", 0.5)
            ob = await asyncio.wait_for(watch, 3)
        finally:
            await rest.close()
        assert ob["asks"][:2] == [[60010.0, 0.2], [60020.0, 2.0]]
        assert ob["nonce"] == fv.call(fv.binance.book, SYMBOL).update_id

    run(fv, body, ccxt_pro)


@pytest.mark.parametrize("code", [1006, 1000])
def test_dropped_stream_raises_network_error_then_resnapshots(
    fake_venues: FakeVenues, code: int
) -> None:
    fv = fake_venues

    async def body(ex: Any) -> None:
        await asyncio.wait_for(ex.watch_order_book(SYMBOL), 3)
        assert requests_to(fv, "/api/v3/depth") == 1
        fv.market.freeze()  # nothing but the drop can end the next watch
        await asyncio.sleep(0.2)
        watch = asyncio.ensure_future(ex.watch_order_book(SYMBOL))
        await asyncio.sleep(0.05)
        fv.binance.faults.drop_streams("book", code=code)
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(watch, 3)
        ob = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 5)
        assert requests_to(fv, "/api/v3/depth") == 2  # a fresh snapshot
        fv.market.unfreeze()
        for _ in range(3):
            ob = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 3)
        engine_ids = [d.last_id for d in fv.call(lambda: list(fv.binance.book(SYMBOL).diffs))]
        assert ob["nonce"] in engine_ids

    run(fv, body, ccxt_pro)
    assert fv.binance.faults.counts["drop_streams"] == 1


def test_plain_ws_path_works_too(fake_venues: FakeVenues) -> None:
    fv = fake_venues

    async def body(ex: Any) -> None:
        ws = fv.binance_url.replace("http", "ws") + "/ws"
        ex.urls["api"]["ws"]["spot"] = ws
        ob = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 3)
        ob = await asyncio.wait_for(ex.watch_order_book(SYMBOL), 3)
        assert ob["nonce"] > 1001 and ob["bids"][0][0] < ob["asks"][0][0]

    run(fv, body, ccxt_pro)


# ---- account and orders ---------------------------------------------------------------------


def test_fetch_balance(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    balance = run(fv, lambda ex: ex.fetch_balance())
    assert balance["total"]["USDT"] == 100000 and balance["total"]["BTC"] == 1
    assert balance["free"]["USDT"] == 100000 and balance["used"]["BTC"] == 0


def test_market_orders_fill_with_fees_in_the_asset_received(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)
    before = balances(fv)

    async def body(ex: Any) -> tuple[Any, Any, Any]:
        buy = await ex.create_order(SYMBOL, "market", "buy", 0.5, params={"clientOrderId": "b-1"})
        sell = await ex.create_order(SYMBOL, "market", "sell", 0.2, params={"clientOrderId": "s-1"})
        return buy, sell, await ex.fetch_balance()

    buy, sell, balance = run(fv, body)
    assert buy["clientOrderId"] == "b-1" and buy["status"] == "closed"
    fills = buy["info"]["fills"]
    assert [(f["price"], f["qty"]) for f in fills] == [
        ("60000.00000000", "0.30000000"),
        ("60010.00000000", "0.20000000"),
    ]
    assert [(f["commission"], f["commissionAsset"]) for f in fills] == [
        ("0.00030000", "BTC"),
        ("0.00020000", "BTC"),
    ]
    assert D(buy["info"]["cummulativeQuoteQty"]) == D("30002")
    assert buy["fee"] == {"currency": "BTC", "cost": pytest.approx(0.0005)}
    assert sell["status"] == "closed" and sell["info"]["fills"][0]["commissionAsset"] == "USDT"
    assert sell["info"]["fills"][0]["commission"] == "11.99800000"  # 0.2 x 59990 x 0.1%
    # exactly: the account moved by the fills and fees, nothing else
    after = balances(fv)
    assert after["BTC"] - before["BTC"] == D("0.5") - D("0.0005") - D("0.2")
    assert after["USDT"] - before["USDT"] == -D("30002") + D("11998") - D("11.998")
    assert D(str(balance["total"]["USDT"])) == after["USDT"]


def test_market_buy_by_cost(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)
    order = run(fv, lambda ex: ex.create_market_buy_order_with_cost(SYMBOL, 1000))
    assert D(order["info"]["origQuoteOrderQty"]) == 1000
    assert D(order["info"]["executedQty"]) == D("0.01666")  # 1000 / 60000, down to the step
    assert D(order["info"]["cummulativeQuoteQty"]) == D("999.6")


def test_limit_order_rests_locks_funds_then_fills_as_maker(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> None:
        order = await ex.create_order(
            SYMBOL, "limit", "buy", 0.1, 59950, params={"clientOrderId": "lim-1"}
        )
        assert order["status"] == "open" and order["filled"] == 0
        balance = await ex.fetch_balance()
        assert D(str(balance["used"]["USDT"])) == D("5995")
        assert [o["id"] for o in await ex.fetch_open_orders(SYMBOL)] == [order["id"]]
        # the book moves through the order: it fills at its own price, as maker
        fv.call(fv.binance.set_book, SYMBOL, [("59900", "1")], [("59940", "1")])
        done = await ex.fetch_order(order["id"], SYMBOL)
        assert done["status"] == "closed" and done["average"] == 59950
        (trade,) = await ex.fetch_my_trades(SYMBOL)
        assert trade["takerOrMaker"] == "maker" and trade["price"] == 59950
        assert trade["fee"]["currency"] == "BTC" and trade["fee"]["cost"] == pytest.approx(1e-4)
        assert await ex.fetch_open_orders(SYMBOL) == []
        balance = await ex.fetch_balance()
        assert balance["used"]["USDT"] == 0

    run(fv, body)
    assert balances(fv) == {"BTC": D("1.0999"), "USDT": D("100000") - D("5995")}


def test_fetch_order_by_id_and_client_id_and_cancel(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> None:
        order = await ex.create_order(
            SYMBOL, "limit", "sell", 0.1, 61000, params={"clientOrderId": "c-7"}
        )
        by_id = await ex.fetch_order(order["id"], SYMBOL)
        by_cid = await ex.fetch_order(None, SYMBOL, params={"origClientOrderId": "c-7"})
        assert by_id["id"] == by_cid["id"] == order["id"] and by_cid["clientOrderId"] == "c-7"
        assert by_id["status"] == "open" and by_id["price"] == 61000
        canceled = await ex.cancel_order(order["id"], SYMBOL)
        assert canceled["status"] == "canceled"
        assert canceled["info"]["origClientOrderId"] == "c-7"
        assert (await ex.fetch_order(order["id"], SYMBOL))["status"] == "canceled"
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(order["id"], SYMBOL)
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order("999", SYMBOL)
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order(None, SYMBOL, params={"origClientOrderId": "never"})
        assert (await ex.fetch_balance())["used"]["BTC"] == 0

    run(fv, body)


def test_partial_fills(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> None:
        fv.binance.faults.cap_next_fill(fraction="0.5")
        ioc = await ex.create_order(
            SYMBOL, "limit", "buy", 0.2, 60000, params={"timeInForce": "IOC"}
        )
        assert ioc["status"] == "expired" and ioc["filled"] == pytest.approx(0.1)
        fv.binance.faults.cap_next_fill(amount="0.05")
        gtc = await ex.create_order(SYMBOL, "limit", "buy", 0.2, 60000)
        assert gtc["status"] == "open" and gtc["filled"] == pytest.approx(0.05)
        assert gtc["info"]["status"] == "PARTIALLY_FILLED"
        # a market order larger than the book: what is there fills, the rest expires
        fv.binance.faults.deposit(fv.binance_key, "BTC", 10)
        big = await ex.create_order(SYMBOL, "market", "sell", 5)
        assert big["status"] == "expired" and big["filled"] == pytest.approx(3.5)
        canceled = await ex.cancel_order(gtc["id"], SYMBOL)
        assert canceled["status"] == "canceled" and canceled["filled"] == pytest.approx(0.05)

    run(fv, body)
    assert fv.binance.faults.counts["cap_next_fill"] == 2


def test_watch_orders_sees_new_trade_filled_and_cancel(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> None:
        seen = spy_reports(ex)
        first = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await asyncio.sleep(0.3)  # subscribed
        rest = client(fv)
        try:
            placed = await rest.create_order(
                SYMBOL, "market", "buy", 0.5, params={"clientOrderId": "w-1"}
            )
            await asyncio.wait_for(first, 3)
            await asyncio.sleep(0.1)  # ccxt caches one entry per order: the reports tell
            assert [(e["x"], e["X"]) for e in seen] == [
                ("NEW", "NEW"),
                ("TRADE", "PARTIALLY_FILLED"),
                ("TRADE", "FILLED"),
            ]
            assert [e["l"] for e in seen] == ["0.00000000", "0.30000000", "0.20000000"]
            assert seen[-1]["n"] == "0.00020000" and seen[-1]["N"] == "BTC"
            assert {e["i"] for e in seen} == {int(placed["id"])}
            order = ex.orders[-1]
            assert order["clientOrderId"] == "w-1" and order["status"] == "closed"
            assert order["filled"] == 0.5
            # a resting order, canceled: the event names the original client id
            limit = await rest.create_order(
                SYMBOL, "limit", "buy", 0.1, 59000, params={"clientOrderId": "w-2"}
            )
            await asyncio.wait_for(ex.watch_orders(SYMBOL), 3)
            watch = asyncio.ensure_future(ex.watch_orders(SYMBOL))
            await asyncio.sleep(0.05)
            await rest.cancel_order(limit["id"], SYMBOL)
            (update,) = await asyncio.wait_for(watch, 3)
            assert update["status"] == "canceled" and update["clientOrderId"] == "w-2"
        finally:
            await rest.close()

    run(fv, body, ccxt_pro)


def test_watch_balance_sees_fills_and_deposits(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> None:
        watch = asyncio.ensure_future(ex.watch_balance())
        await asyncio.sleep(0.3)
        fv.binance.faults.deposit(fv.binance_key, "USDT", "250.5")
        balance = await asyncio.wait_for(watch, 3)
        assert balance["info"]["e"] == "balanceUpdate"  # the delta, on the REST snapshot
        assert D(str(balance["USDT"]["free"])) == D("100250.5")
        await asyncio.sleep(0.1)  # the outboundAccountPosition that follows it
        watch = asyncio.ensure_future(ex.watch_balance())
        await asyncio.sleep(0.05)
        await ex.create_order(SYMBOL, "market", "buy", 0.3)
        balance = await asyncio.wait_for(watch, 3)
        assert D(str(balance["BTC"]["free"])) == D("1.2997")
        assert D(str(balance["USDT"]["free"])) == D("100250.5") - D("18000")

    run(fv, body, ccxt_pro, options={"watchBalance": {"fetchBalanceSnapshot": True}})
    assert fv.binance.faults.counts["deposit"] == 1


def test_mute_private_loses_events(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> None:
        seen = spy_reports(ex)
        first = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await asyncio.sleep(0.3)
        fv.binance.faults.mute_private(2)  # NEW and the first TRADE
        await ex.create_order(SYMBOL, "market", "buy", 0.5)
        await asyncio.wait_for(first, 3)
        await asyncio.sleep(0.1)
        assert [(e["x"], e["X"]) for e in seen] == [("TRADE", "FILLED")]

    run(fv, body, ccxt_pro)
    assert fv.binance.faults.counts["mute_private"] == 2


# ---- errors and faults ----------------------------------------------------------------------


def test_bad_credentials_are_authentication_errors(fake_venues: FakeVenues) -> None:
    fv = fake_venues

    async def wrong_secret(ex: Any) -> None:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await ex.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await ex.create_order(SYMBOL, "market", "buy", 0.01)

    run(fv, wrong_secret, secret="x" * 64)

    async def unknown_key(ex: Any) -> None:
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await ex.fetch_balance()

    run(fv, unknown_key, apiKey="k" * 64)

    async def ws_wrong_secret(ex: Any) -> None:
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(ex.watch_orders(SYMBOL), 3)
        # ccxt 4.5.90 raises AuthenticationError, then trips over its own cleanup (a KeyError
        # while handling it): the answer to the bad signature is in the chain either way
        chain = [info.value, info.value.__context__]
        assert any(isinstance(e, ccxt.AuthenticationError) and "-1022" in str(e) for e in chain)

    run(fv, ws_wrong_secret, ccxt_pro, secret="x" * 64)
    assert fv.binance.orders == {}


def test_signature_covers_the_raw_query_and_time(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    url = fv.binance_url + "/api/v3/account"

    def signed(query: str) -> str:
        sig = hmac.new(fv.binance_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return f"{query}&signature={sig}"

    async def main() -> list[tuple[int, Any]]:
        now = int(time.time() * 1000)
        good = urlencode({"timestamp": now, "recvWindow": 5000})
        cases = [
            signed(good),
            signed(good).replace("recvWindow=5000", "recvWindow=6000"),  # tampered after signing
            signed(urlencode({"timestamp": now - 20000})),  # outside the default 5 s window
            good,  # not signed
        ]
        out = []
        async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": fv.binance_key}) as session:
            for query in cases:
                async with session.get(f"{url}?{query}") as resp:
                    out.append((resp.status, await resp.json()))
            async with session.get(f"{url}?{signed(good)}", headers={"X-MBX-APIKEY": ""}) as resp:
                out.append((resp.status, await resp.json()))
        return out

    ok, tampered, late, unsigned, no_key = asyncio.run(main())
    assert (
        ok[0] == 200
        and {"asset": "BTC", "free": "1.00000000", "locked": "0.00000000"} in ok[1]["balances"]
    )
    assert tampered == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    assert late[0] == 400 and late[1]["code"] == -1021
    assert unsigned[0] == 400 and unsigned[1]["code"] == -1102
    assert no_key == (401, {"code": -2014, "msg": "API-key format invalid."})


def test_fail_next_maps_to_ccxt_errors(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    faults = fv.binance.faults

    async def body(ex: Any) -> None:
        faults.fail_next(1, status=429)
        with pytest.raises(ccxt.DDoSProtection):  # ccxt's rate-limit family for Binance
            await ex.fetch_balance()
        faults.fail_next(1, status=503)
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.fetch_order_book(SYMBOL)
        faults.fail_next(1, status=500, path="/api/v3/order")
        assert (await ex.fetch_balance())["total"]["BTC"] == 1  # another path: not failed
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.create_order(SYMBOL, "market", "buy", 0.01)
        assert await ex.fetch_open_orders(SYMBOL) == []

    run(fv, body)
    assert faults.counts["fail_next"] == 3
    assert fv.binance.orders == {}  # a failed request placed nothing


def test_lost_ack_times_out_and_the_order_is_found_by_client_id(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)
    fv.binance.faults.lose_ack(1)

    async def body(ex: Any) -> Any:
        started = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "lost-1"})
        assert 1.4 < time.monotonic() - started < 4
        return await ex.fetch_order(None, SYMBOL, params={"origClientOrderId": "lost-1"})

    order = run(fv, body, timeout=1500)
    assert order["status"] == "closed" and order["filled"] == pytest.approx(0.1)
    assert fv.binance.faults.counts["lose_ack"] == 1
    assert balances(fv)["BTC"] == D("1.0999")


def test_delay_ack(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)
    fv.binance.faults.delay_ack(0.6)

    async def body(ex: Any) -> float:
        started = time.monotonic()
        await ex.create_order(SYMBOL, "market", "buy", 0.01)
        return time.monotonic() - started

    assert run(fv, body) >= 0.6
    assert fv.binance.faults.counts["delay_ack"] == 1


def test_orphan_order_shows_in_open_orders(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    fv.binance.faults.orphan(fv.binance_key, SYMBOL, "sell", "0.25", "75000", "prev-run-9")

    async def body(ex: Any) -> None:
        (orphan,) = await ex.fetch_open_orders()
        assert orphan["clientOrderId"] == "prev-run-9" and orphan["amount"] == 0.25
        assert orphan["symbol"] == SYMBOL and orphan["side"] == "sell" and orphan["price"] == 75000
        assert (await ex.fetch_balance())["used"]["BTC"] == 0.25
        await ex.cancel_order(orphan["id"], SYMBOL)
        assert (await ex.fetch_balance())["used"]["BTC"] == 0

    run(fv, body)
    assert fv.binance.faults.counts["orphan"] == 1


def test_refused_orders(fake_venues: FakeVenues) -> None:
    fv = fake_venues
    exact_book(fv)

    async def body(ex: Any) -> None:
        await ex.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "dup-1"})
        with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
            await ex.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "dup-1"})
        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order(SYMBOL, "limit", "buy", 2, 60000)
        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order(SYMBOL, "market", "sell", 1.5)
        with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
            await ex.create_order(SYMBOL, "limit", "buy", 0.00001, 59000)

    run(fv, body)
    assert fv.binance.duplicates == 1
    assert fv.binance.rejections == {
        "duplicate_client_id": 1,
        "insufficient_balance": 2,
        "min_notional": 1,
    }
    assert len(fv.binance.orders) == 1


def test_balances_move_by_exactly_the_fills_and_fees(fake_venues: FakeVenues) -> None:
    """Several orders on the live market; myTrades summed up equals the balance change."""
    fv = fake_venues
    before = balances(fv)

    async def body(ex: Any) -> list[dict]:
        await ex.create_order(SYMBOL, "market", "buy", 0.31)
        await ex.create_order(SYMBOL, "market", "sell", 0.123)
        await ex.create_market_buy_order_with_cost(SYMBOL, 777.77)
        best = (await ex.fetch_order_book(SYMBOL, 1))["asks"][0][0]
        await ex.create_order(SYMBOL, "limit", "buy", 0.05, best + 50)  # crosses: taker fills
        return await ex.fetch_my_trades(SYMBOL)

    trades = run(fv, body)
    assert len(trades) >= 4
    moved = {"BTC": D(0), "USDT": D(0)}
    for trade in trades:
        info = trade["info"]
        qty, quote = D(info["qty"]), D(info["quoteQty"])
        sign = 1 if info["isBuyer"] else -1
        moved["BTC"] += sign * qty
        moved["USDT"] -= sign * quote
        moved[info["commissionAsset"]] -= D(info["commission"])
        assert D(info["price"]) * qty == quote
    after = balances(fv)
    assert {a: after[a] - before[a] for a in moved} == moved
