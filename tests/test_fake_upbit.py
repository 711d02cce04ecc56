"""The fake Upbit (tests/fakevenues/upbit.py) driven by the real ccxt client, REST
(``ccxt.async_support.upbit``) and websockets (``ccxt.pro.upbit``), on ``FakeVenues``.

Books are set by hand (no synthetic market), so every fill, fee and balance is computed here
independently and compared to the last unit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest
from fakevenues.server import FakeVenues
from fakevenues.upbit import ccxt_urls

D = Decimal
FEE = D("0.0005")  # the fake's Upbit taker and maker rate (5 bp), charged in KRW
BTC_BIDS = [("100000000", "0.5"), ("99999000", "1")]
BTC_ASKS = [("100001000", "0.3"), ("100002000", "1")]
USDT_BIDS = [("1350", "1000")]
USDT_ASKS = [("1351", "1000")]


def fee_of(cost: Decimal) -> Decimal:
    return (cost * FEE).quantize(D("1e-8"), ROUND_HALF_EVEN)


@contextlib.contextmanager
def venues() -> Iterator[FakeVenues]:
    with FakeVenues(market=False) as fv:
        fv.call(fv.upbit.set_book, "BTC/KRW", BTC_BIDS, BTC_ASKS)
        fv.call(fv.upbit.set_book, "USDT/KRW", USDT_BIDS, USDT_ASKS)
        yield fv


def client(fv: FakeVenues, pro: bool = False, **config: Any) -> Any:
    options = {"apiKey": fv.upbit_key, "secret": fv.upbit_secret, "enableRateLimit": False}
    options.update(config)
    exchange = (ccxt_pro if pro else ccxt_async).upbit(options)
    exchange.urls["api"] = ccxt_urls(fv.upbit_url)
    return exchange


def run(fv: FakeVenues, scenario: Any, pro: bool = False, **config: Any) -> Any:
    """asyncio.run(scenario(exchange)) with a client that is always closed."""

    async def main() -> Any:
        exchange = client(fv, pro, **config)
        try:
            return await scenario(exchange)
        finally:
            await exchange.close()

    return asyncio.run(main())


async def balances(exchange: Any) -> dict[str, Decimal]:
    """Exact totals (balance + locked) from the raw /v1/accounts rows."""
    rows = (await exchange.fetch_balance())["info"]
    return {r["currency"]: D(r["balance"]) + D(r["locked"]) for r in rows}


async def until(check: Any, timeout: float = 5.0) -> None:
    """Wait for ``check()`` to be true (polling), else fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


def private_subscriptions(fv: FakeVenues) -> list[tuple[bool, bool]]:
    """(myOrder, myAsset) of each private socket, read on the server's loop."""
    conns = fv.upbit_server.conns
    return fv.call(lambda: [(c.my_order, c.my_asset) for c in conns if c.private])


def jwt(key: str, secret: str, query: str | None = None, nonce: str | None = None) -> str:
    """An Upbit token made by hand (what ccxt sends), to tamper with."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    payload: dict[str, Any] = {"access_key": key, "nonce": nonce or str(uuid.uuid4())}
    if query is not None:
        payload["query_hash"] = hashlib.sha512(query.encode()).hexdigest()
        payload["query_hash_alg"] = "SHA512"
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"Bearer {head}.{body}.{sig}"


# ---- market data -------------------------------------------------------------------------------


def test_markets_order_book_ticker_and_fees() -> None:
    async def scenario(ex: Any) -> None:
        markets = await ex.load_markets()
        assert sorted(markets) == ["BTC/KRW", "USDT/KRW"]
        assert markets["BTC/KRW"]["id"] == "KRW-BTC" and markets["USDT/KRW"]["id"] == "KRW-USDT"
        book = await ex.fetch_order_book("BTC/KRW")
        assert book["bids"] == [[100000000.0, 0.5], [99999000.0, 1.0]]
        assert book["asks"] == [[100001000.0, 0.3], [100002000.0, 1.0]]
        usdt = await ex.fetch_order_book("USDT/KRW")
        assert usdt["bids"] == [[1350.0, 1000.0]] and usdt["asks"] == [[1351.0, 1000.0]]
        ticker = await ex.fetch_ticker("USDT/KRW")
        assert ticker["last"] == 1350.5  # no trade yet: the mid
        tickers = await ex.fetch_tickers()  # /v1/ticker/all
        assert {s: t["last"] for s, t in tickers.items()} == {
            "BTC/KRW": 100000500.0,
            "USDT/KRW": 1350.5,
        }
        fee = await ex.fetch_trading_fee("BTC/KRW")
        assert (fee["taker"], fee["maker"]) == (0.0005, 0.0005)

    with venues() as fv:
        run(fv, scenario)


def test_one_sided_rest_book_is_padded_with_empty_levels() -> None:
    async def scenario(ex: Any) -> Any:
        return await ex.fetch_order_book("BTC/KRW")

    with venues() as fv:
        fv.call(fv.upbit.set_book, "BTC/KRW", [("100000000", "0.5"), ("99999000", "1")], [])
        book = run(fv, scenario)
    assert book["bids"] == [[100000000.0, 0.5], [99999000.0, 1.0]]
    assert [size for _, size in book["asks"]] == [0.0, 0.0]


def test_stream_starts_with_a_snapshot_per_code_in_binary_frames() -> None:
    async def scenario(fv: FakeVenues) -> list[dict[str, Any]]:
        url = ccxt_urls(fv.upbit_url)["ws"]
        got: list[dict[str, Any]] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            request = [{"ticket": "t"}, {"type": "orderbook", "codes": ["KRW-BTC", "KRW-USDT"]}]
            await ws.send_str(json.dumps(request))
            for _ in range(2):
                msg = await asyncio.wait_for(ws.receive(), 5)
                assert msg.type == aiohttp.WSMsgType.BINARY
                got.append(json.loads(msg.data))
            fv.call(fv.upbit.set_book, "KRW-BTC", [("99000000", "2")], [("101000000", "3")])
            msg = await asyncio.wait_for(ws.receive(), 5)
            got.append(json.loads(msg.data))
        return got

    with venues() as fv:
        got = asyncio.run(scenario(fv))
    assert [(m["code"], m["stream_type"]) for m in got] == [
        ("KRW-BTC", "SNAPSHOT"),
        ("KRW-USDT", "SNAPSHOT"),
        ("KRW-BTC", "REALTIME"),
    ]
    assert got[2]["orderbook_units"] == [
        {"ask_price": 101000000.0, "ask_size": 3.0, "bid_price": 99000000.0, "bid_size": 2.0}
    ]


def test_watch_order_book_snapshot_realtime_and_reconnect() -> None:
    import ccxt

    async def scenario(ex: Any) -> None:
        first = await asyncio.wait_for(ex.watch_order_book("BTC/KRW"), 5)
        assert first["bids"][:2] == [[100000000.0, 0.5], [99999000.0, 1.0]]
        assert first["asks"][:2] == [[100001000.0, 0.3], [100002000.0, 1.0]]

        async def later(bids: Any, asks: Any) -> None:
            await asyncio.sleep(0.2)
            fv.call(fv.upbit.set_book, "BTC/KRW", bids, asks)

        move = asyncio.ensure_future(later([("100003000", "0.7")], [("100004000", "0.2")]))
        book = await asyncio.wait_for(ex.watch_order_book("BTC/KRW"), 5)
        await move
        # REALTIME replaces the whole book: the old levels are gone
        assert book["bids"] == [[100003000.0, 0.7]] and book["asks"] == [[100004000.0, 0.2]]

        async def drop() -> None:
            await asyncio.sleep(0.2)
            fv.upbit.faults.drop_streams("book", 1006)

        dropper = asyncio.ensure_future(drop())
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(ex.watch_order_book("BTC/KRW"), 5)
        await dropper
        assert fv.upbit.faults.counts["drop_streams"] == 1
        fv.call(fv.upbit.set_book, "BTC/KRW", [("100005000", "0.1")], [("100006000", "0.4")])
        again = await asyncio.wait_for(ex.watch_order_book("BTC/KRW"), 5)  # a new snapshot
        assert again["bids"] == [[100005000.0, 0.1]] and again["asks"] == [[100006000.0, 0.4]]

    with venues() as fv:
        run(fv, scenario, pro=True)


# ---- orders ------------------------------------------------------------------------------------


def test_limit_ioc_answers_wait_then_fetch_shows_fills_fees_and_balances() -> None:
    async def scenario(ex: Any) -> None:
        before = await balances(ex)
        assert before["KRW"] == D("150000000") and before["BTC"] == D("1")
        params = {"timeInForce": "IOC", "clientOrderId": "ioc-1"}
        ack = await ex.create_order("BTC/KRW", "limit", "buy", 0.4, 100002000, params)
        assert ack["info"]["state"] == "wait" and ack["status"] == "open"
        assert ack["filled"] == 0 and ack["info"]["trades_count"] == 0
        assert ack["clientOrderId"] == "ioc-1" and ack["timeInForce"] == "IOC"

        order = await ex.fetch_order(ack["id"])
        assert order["status"] == "closed" and order["info"]["state"] == "done"
        fills = [(D("100001000"), D("0.3")), (D("100002000"), D("0.1"))]
        cost = sum(p * q for p, q in fills)
        fee = sum(fee_of(p * q) for p, q in fills)
        assert D(order["info"]["executed_volume"]) == D("0.4")
        assert D(order["info"]["executed_funds"]) == cost
        assert D(order["info"]["paid_fee"]) == fee
        assert order["fee"]["currency"] == "KRW" and D(str(order["fee"]["cost"])) == fee
        assert [(D(t["info"]["price"]), D(t["info"]["volume"])) for t in order["trades"]] == fills
        assert order["average"] == pytest.approx(float(cost / D("0.4")))

        after = await balances(ex)
        assert after["KRW"] == before["KRW"] - cost - fee
        assert after["BTC"] == before["BTC"] + D("0.4")

    with venues() as fv:
        run(fv, scenario)


def test_partial_fills_ioc_cancels_rest_gtc_rests_with_its_funds_locked() -> None:
    async def scenario(ex: Any) -> None:
        # IOC for 0.5 at the best ask: only 0.3 there, the rest is canceled
        ack = await ex.create_order(
            "BTC/KRW", "limit", "buy", 0.5, 100001000, {"timeInForce": "IOC"}
        )
        assert "identifier" not in ack["info"]  # none given, none shown
        ioc = await ex.fetch_order(ack["id"])
        assert ioc["status"] == "canceled" and ioc["filled"] == 0.3 and ioc["remaining"] == 0.2

        # GTC sell capped to a 0.1 fill: the remaining 0.2 rests, its BTC locked
        fv.upbit.faults.cap_next_fill(amount="0.1")
        gtc = await ex.create_order("BTC/KRW", "limit", "sell", 0.3, 99999000)
        open_orders = await ex.fetch_open_orders("BTC/KRW")
        assert [o["id"] for o in open_orders] == [gtc["id"]]
        assert open_orders[0]["filled"] == 0.1 and open_orders[0]["remaining"] == 0.2
        assert D(open_orders[0]["info"]["locked"]) == D("0.2")
        rows = {r["currency"]: r for r in (await ex.fetch_balance())["info"]}
        assert D(rows["BTC"]["locked"]) == D("0.2")
        assert D(rows["BTC"]["balance"]) == D("1") + D("0.3") - D("0.1") - D("0.2")

    with venues() as fv:
        run(fv, scenario)


def test_market_buy_by_cost_ends_cancel_with_krw_dust_and_market_sell_done() -> None:
    spend = D("10000000")
    price = D("100001000")
    filled = (spend / price).quantize(D("1e-8"), ROUND_DOWN)
    cost = filled * price

    async def scenario(ex: Any) -> None:
        before = await balances(ex)
        ack = await ex.create_order("BTC/KRW", "market", "buy", None, None, {"cost": int(spend)})
        assert ack["info"]["ord_type"] == "price" and ack["info"]["state"] == "wait"
        assert D(ack["info"]["price"]) == spend and ack["info"]["volume"] is None
        buy = await ex.fetch_order(ack["id"])
        # it filled, but KRW was left over: Upbit ends such an order 'cancel'
        assert buy["info"]["state"] == "cancel" and buy["status"] == "canceled"
        assert D(buy["info"]["executed_volume"]) == filled
        assert D(buy["info"]["paid_fee"]) == fee_of(cost)
        assert buy["cost"] == pytest.approx(float(cost))

        # ccxt's default: amount x price is the KRW to spend
        ack2 = await ex.create_order("BTC/KRW", "market", "buy", 0.001, 100001000)
        assert D(ack2["info"]["price"]) == D("100001")
        # and the helper for it
        ack3 = await ex.create_market_buy_order_with_cost("BTC/KRW", 50000)
        assert D(ack3["info"]["price"]) == D("50000")
        small = [await ex.fetch_order(a["id"]) for a in (ack2, ack3)]

        sell = await ex.create_order("BTC/KRW", "market", "sell", 0.2)
        assert sell["info"]["ord_type"] == "market" and sell["info"]["price"] is None
        sold = await ex.fetch_order(sell["id"])
        assert sold["info"]["state"] == "done" and sold["filled"] == 0.2
        proceeds = D("100000000") * D("0.2")
        assert D(sold["info"]["paid_fee"]) == fee_of(proceeds)

        after = await balances(ex)
        bought = filled + sum(D(o["info"]["executed_volume"]) for o in small)
        spent = cost + sum(D(o["info"]["executed_funds"]) for o in small)
        fees = fee_of(cost) + sum(D(o["info"]["paid_fee"]) for o in small) + fee_of(proceeds)
        assert after["BTC"] == before["BTC"] + bought - D("0.2")
        assert after["KRW"] == before["KRW"] - spent + proceeds - fees

    with venues() as fv:
        run(fv, scenario)


def test_fetch_and_cancel_by_identifier_open_orders_include_an_orphan() -> None:
    import ccxt

    async def scenario(ex: Any) -> None:
        await ex.load_markets()
        rest = await ex.create_order(
            "BTC/KRW", "limit", "buy", 0.01, 90000000, {"clientOrderId": "rest-1"}
        )
        # by identifier: ccxt's fetch_order always sends uuid, so call the endpoint itself
        found = ex.parse_order(await ex.private_get_order({"identifier": "rest-1"}))
        assert found["id"] == rest["id"] and found["status"] == "open"
        orphan = fv.upbit.faults.orphan(
            fv.upbit_key, "BTC/KRW", "sell", "0.05", "110000000", "old-7"
        )
        open_orders = await ex.fetch_open_orders()
        by_client = {o["clientOrderId"]: o for o in open_orders}
        assert set(by_client) == {"rest-1", "old-7"}
        assert by_client["old-7"]["side"] == "sell" and by_client["old-7"]["amount"] == 0.05
        assert orphan.client_id == "old-7"

        canceled = await ex.cancel_order(rest["id"])
        assert canceled["info"]["state"] == "wait"  # Upbit answers before the cancel is done
        after = await ex.fetch_order(rest["id"])
        assert after["status"] == "canceled" and after["filled"] == 0
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(rest["id"])
        # cancel the orphan by its identifier
        raw = await ex.private_delete_order({"identifier": "old-7"})
        assert raw["identifier"] == "old-7"
        assert await ex.fetch_open_orders("BTC/KRW") == []
        closed = await ex.fetch_canceled_orders("BTC/KRW")
        assert {o["clientOrderId"] for o in closed} == {"rest-1", "old-7"}
        rows = {r["currency"]: r for r in (await ex.fetch_balance())["info"]}
        assert D(rows["KRW"]["locked"]) == 0 and D(rows["BTC"]["locked"]) == 0
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order(str(uuid.uuid4()))

    with venues() as fv:
        run(fv, scenario)


def test_refusals_duplicate_identifier_funds_and_minimum() -> None:
    import ccxt

    async def scenario(ex: Any) -> None:
        await ex.create_order("BTC/KRW", "limit", "buy", 0.01, 90000000, {"clientOrderId": "x"})
        before = await balances(ex)
        with pytest.raises(ccxt.ExchangeError, match="duplicate_identifier"):
            await ex.create_order(
                "BTC/KRW", "limit", "buy", 0.01, 100002000, {"clientOrderId": "x"}
            )
        with pytest.raises(ccxt.InsufficientFunds, match="insufficient_funds_bid"):
            await ex.create_order("BTC/KRW", "limit", "buy", 2, 100002000)
        with pytest.raises(ccxt.InsufficientFunds, match="insufficient_funds_ask"):
            await ex.create_order("BTC/KRW", "market", "sell", 1.5)
        with pytest.raises(ccxt.ExchangeError, match="under_min_total_bid"):
            await ex.create_order("BTC/KRW", "limit", "buy", 0.00001, 100002000)
        with pytest.raises(ccxt.ExchangeError, match="invalid_price_bid"):
            await ex.create_order("BTC/KRW", "limit", "buy", 0.01, 100002500)
        assert await balances(ex) == before
        assert len(await ex.fetch_open_orders()) == 1

    with venues() as fv:
        run(fv, scenario)
        assert fv.upbit.duplicates == 1


# ---- auth and transport faults -----------------------------------------------------------------


def test_wrong_secret_unknown_key_bad_hash_and_reused_nonce() -> None:
    import ccxt

    async def wrong(ex: Any) -> None:
        with pytest.raises(ccxt.AuthenticationError, match="jwt_verification"):
            await ex.fetch_balance()

    async def unknown(ex: Any) -> None:
        with pytest.raises(ccxt.AuthenticationError, match="invalid_access_key"):
            await ex.fetch_balance()

    async def by_hand(fv: FakeVenues) -> list[tuple[int, str]]:
        base = fv.upbit_url + "/v1"
        out = []
        async with aiohttp.ClientSession() as session:
            query = "market=KRW-BTC"
            good = jwt(fv.upbit_key, fv.upbit_secret, query, nonce="n-1")
            tampered = jwt(fv.upbit_key, fv.upbit_secret, "market=KRW-USDT")
            for token in (good, good, tampered):
                async with session.get(
                    f"{base}/orders/open?{query}", headers={"Authorization": token}
                ) as resp:
                    body = await resp.json()
                    ok = resp.status == 200
                    out.append(
                        (resp.status, body[0]["identifier"] if ok else body["error"]["name"])
                    )
        return out

    with venues() as fv:
        run(fv, wrong, secret="not-the-secret")
        run(fv, unknown, apiKey="nobody")
        fv.call(fv.upbit.faults.orphan, fv.upbit_key, "BTC/KRW", "buy", "0.01", "90000000", "o1")
        results = asyncio.run(by_hand(fv))
    assert results == [(200, "o1"), (401, "nonce_used"), (401, "invalid_query_payload")]


def test_rate_limit_and_unavailable_map_to_ccxt_errors() -> None:
    import ccxt

    async def scenario(ex: Any) -> None:
        await ex.load_markets()
        fv.upbit.faults.fail_next(1, 429)
        with pytest.raises(ccxt.RateLimitExceeded):
            await ex.fetch_order_book("BTC/KRW")
        fv.upbit.faults.fail_next(2, 503, path="/v1/accounts")
        await ex.fetch_order_book("BTC/KRW")  # another path: not failed
        for _ in range(2):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.fetch_balance()
        assert (await balances(ex))["KRW"] == D("150000000")
        fv.upbit.faults.fail_next(1, 500, path="/v1/orders")
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.create_order("BTC/KRW", "limit", "buy", 0.01, 90000000)
        assert await ex.fetch_open_orders() == []  # a failed request placed nothing

    with venues() as fv:
        run(fv, scenario)
        assert fv.upbit.faults.counts["fail_next"] == 4


def test_lost_ack_is_a_timeout_and_the_order_is_found_by_identifier() -> None:
    import ccxt

    async def scenario(ex: Any) -> None:
        await ex.load_markets()
        fv.upbit.faults.lose_ack(1)
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(
                "BTC/KRW", "limit", "buy", 0.2, 100001000, {"clientOrderId": "lost-1"}
            )
        found = ex.parse_order(await ex.private_get_order({"identifier": "lost-1"}))
        assert found["status"] == "closed" and found["filled"] == 0.2  # it executed
        with pytest.raises(ccxt.ExchangeError, match="duplicate_identifier"):
            await ex.create_order(
                "BTC/KRW", "limit", "buy", 0.2, 100001000, {"clientOrderId": "lost-1"}
            )
        fv.upbit.faults.delay_ack(0.3)
        started = asyncio.get_running_loop().time()
        late = await ex.create_order("BTC/KRW", "limit", "buy", 0.01, 90000000)
        assert asyncio.get_running_loop().time() - started >= 0.3
        assert late["info"]["state"] == "wait"
        assert len(fv.upbit.orders) == 2

    with venues() as fv:
        run(fv, scenario, timeout=1000)
        assert fv.upbit.faults.counts["lose_ack"] == 1


# ---- private stream ----------------------------------------------------------------------------


def test_my_order_events_wait_trade_done_and_my_asset() -> None:
    async def scenario(fv: FakeVenues) -> list[dict[str, Any]]:
        url = ccxt_urls(fv.upbit_url)["ws"] + "/private"
        got: list[dict[str, Any]] = []
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url, headers={"Authorization": jwt("ak", "wrong")})
            assert refused.value.status == 401
            token = jwt(fv.upbit_key, fv.upbit_secret)
            async with session.ws_connect(url, headers={"Authorization": token}) as ws:
                request = [{"ticket": "t"}, {"type": "myOrder"}, {"type": "myAsset"}]
                await ws.send_str(json.dumps(request))
                await until(lambda: private_subscriptions(fv) == [(True, True)])
                fv.upbit.faults.mute_private(1)  # the 'wait' of the first order is lost
                fv.call(
                    fv.upbit.place,
                    fv.upbit_key,
                    "BTC/KRW",
                    "buy",
                    "limit",
                    amount="0.4",
                    price="100002000",
                    client_id="w-1",
                    tif="ioc",
                )
                while not got or got[-1]["type"] != "myAsset":
                    msg = await asyncio.wait_for(ws.receive(), 5)
                    got.append(json.loads(msg.data))
        return got

    with venues() as fv:
        got = asyncio.run(scenario(fv))
    orders = [m for m in got if m["type"] == "myOrder"]
    assert [m["state"] for m in orders] == ["trade", "trade", "done"]
    assert [(m["price"], m["volume"]) for m in orders[:2]] == [
        (100001000.0, 0.3),
        (100002000.0, 0.1),
    ]
    assert orders[0]["trade_fee"] == float(fee_of(D("30000300")))
    assert orders[0]["is_maker"] is False and orders[-1]["identifier"] == "w-1"
    assert orders[-1]["executed_volume"] == 0.4 and orders[-1]["remaining_volume"] == 0.0
    asset = {a["currency"]: a for a in got[-1]["assets"]}
    assert asset["BTC"]["balance"] == 1.4
    assert asset["KRW"]["balance"] == float(D("150000000") - D("40000500") - D("20000.25"))


def test_watch_orders_my_trades_and_balance_with_ccxt_pro() -> None:
    import ccxt

    async def scenario(ex: Any) -> None:
        await ex.load_markets()
        watching = asyncio.ensure_future(ex.watch_orders("BTC/KRW"))
        await until(lambda: private_subscriptions(fv) == [(True, False)])
        ack = await ex.create_order(
            "BTC/KRW", "limit", "sell", 0.6, 99999000, {"clientOrderId": "p-1"}
        )
        first = await asyncio.wait_for(watching, 5)
        assert first[0]["id"] == ack["id"]
        # the trades and 'done' came in the same burst: they are in ccxt's cache
        await until(lambda: ex.orders.hashmap["BTC/KRW"][ack["id"]]["status"] == "closed")
        cached = ex.orders.hashmap["BTC/KRW"][ack["id"]]
        assert cached["filled"] == 0.6
        assert cached["clientOrderId"] == "p-1"
        proceeds = D("100000000") * D("0.5") + D("99999000") * D("0.1")
        fee = fee_of(D("100000000") * D("0.5")) + fee_of(D("99999000") * D("0.1"))
        assert cached["fee"]["currency"] == "KRW"
        assert D(str(cached["fee"]["cost"])) == D(str(float(fee)))
        assert cached["cost"] == float(proceeds)

        trades_task = asyncio.ensure_future(ex.watch_my_trades("BTC/KRW"))
        balance_task = asyncio.ensure_future(ex.watch_balance())
        await until(lambda: private_subscriptions(fv) == [(True, True)])
        await ex.create_order("BTC/KRW", "market", "sell", 0.1)
        trades = await asyncio.wait_for(trades_task, 5)
        assert trades[-1]["side"] == "sell" and trades[-1]["fee"]["currency"] == "KRW"
        balance = await asyncio.wait_for(balance_task, 5)
        assert balance["BTC"]["free"] == pytest.approx(1 - 0.6 - 0.1)

        # the private socket dropped: the pending watch fails, the next one reconnects
        pending = asyncio.ensure_future(ex.watch_orders())
        await asyncio.sleep(0.05)
        fv.upbit.faults.drop_streams("private", 1000)
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(pending, 5)
        again = asyncio.ensure_future(ex.watch_orders())
        await until(lambda: [o for o, _ in private_subscriptions(fv)] == [True])
        late = await ex.create_order("BTC/KRW", "limit", "buy", 0.01, 90000000)
        seen = await asyncio.wait_for(again, 5)
        assert seen[-1]["id"] == late["id"] and seen[-1]["status"] == "open"

    with venues() as fv:
        run(fv, scenario, pro=True)
