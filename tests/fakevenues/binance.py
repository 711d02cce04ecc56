"""Binance spot on aiohttp: REST (``/api/v3``), market streams (``/ws/{n}``, ``/stream/{n}``) and
the WebSocket API (``/ws-api/v3``) with the user data stream, in Binance's wire formats, over a
``Venue`` of ``engine.py``.

``add_binance_routes(app, venue)`` mounts it as a sub-application (``/binance`` by default);
``ccxt_urls(base_url)`` gives the ``urls['api']`` dict that points a ccxt ``binance`` at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import string
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from .engine import Book, EngineOrder, Trade, Venue, VenueError

__all__ = ["BinanceServer", "add_binance_routes", "ccxt_urls"]

ZERO = Decimal(0)
SIDES = {"BUY": "buy", "SELL": "sell"}
TYPES = {"MARKET": "market", "LIMIT": "limit"}
STATES = {"filled": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED", "rejected": "REJECTED"}
MAX_RECV_WINDOW = 60000


def ccxt_urls(base_url: str) -> dict[str, Any]:
    """The complete ``exchange.urls['api']`` for a ccxt ``binance`` (REST and pro) served at
    ``base_url`` (e.g. ``http://127.0.0.1:8123/binance``). Replace the whole dict: ``urls`` given
    to the constructor are merged with the real hosts. APIs not served here (futures, options,
    portfolio margin) are left out, so ccxt fails fast with ``NotSupported`` instead of reaching
    the real exchange."""
    base = base_url.rstrip("/")
    ws = ("wss" if base.startswith("https") else "ws") + base[base.index(":") :]
    return {
        "public": f"{base}/api/v3",
        "private": f"{base}/api/v3",
        "v1": f"{base}/api/v1",
        "sapi": f"{base}/sapi/v1",
        "sapiV2": f"{base}/sapi/v2",
        "sapiV3": f"{base}/sapi/v3",
        "sapiV4": f"{base}/sapi/v4",
        "ws": {
            # '/stream' tells ccxt's depth handler that these are spot streams even when swap
            # markets with the same ids are loaded too
            "spot": f"{ws}/stream",
            "margin": f"{ws}/stream",
            "ws-api": {"spot": f"{ws}/ws-api/v3"},
        },
    }


def fmt(value: Decimal | None) -> str:
    """Binance's fixed 8-decimal strings ("60000.01000000")."""
    if value is None:
        value = ZERO
    text = f"{value:.8f}"
    if Decimal(text) != value:  # more than 8 decimals: keep them all rather than round
        text = format(value.normalize(), "f")
    return text


def _random_id(n: int = 22) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status, self.code, self.msg = status, code, msg

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "msg": self.msg}, status=self.status)


def _missing(name: str) -> BinanceError:
    return BinanceError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


ENGINE_ERRORS = {
    "insufficient_balance": (400, -2010, "Account has insufficient balance for requested action."),
    "duplicate_client_id": (400, -2010, "Duplicate order sent."),
    "invalid_amount": (400, -1013, "Filter failure: LOT_SIZE"),
    "invalid_price": (400, -1013, "Filter failure: PRICE_FILTER"),
    "min_notional": (400, -1013, "Filter failure: NOTIONAL"),
    "unknown_symbol": (400, -1121, "Invalid symbol."),
    "order_not_found": (400, -2013, "Order does not exist."),
    "not_cancelable": (400, -2011, "Unknown order sent."),
    "invalid_order": (400, -1013, "Invalid order."),
}


def _engine_error(err: VenueError) -> BinanceError:
    return BinanceError(*ENGINE_ERRORS.get(err.kind, (400, -1013, err.message)))


class _Socket:
    def __init__(self, kind: str, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.kind = kind  # 'book' | 'private'
        self.ws = ws
        self.request = request
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.streams: set[str] = set()  # market streams ("btcusdt@depth@100ms")
        self.wrap = False  # /stream: {"stream", "data"} envelopes
        self.subscriptions: dict[int, str] = {}  # private: subscriptionId -> api key

    def send(self, payload: Any) -> None:
        self.queue.put_nowait(json.dumps(payload))

    async def pump(self) -> None:
        while True:
            text = await self.queue.get()
            if text is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


class BinanceServer:
    """The routes of one fake Binance over ``venue``; ``sockets`` are the live websockets."""

    def __init__(self, venue: Venue, *, recv_window_default: int = 5000) -> None:
        self.venue = venue
        self.recv_window_default = recv_window_default
        self.sockets: set[_Socket] = set()
        self.held: set[asyncio.Future] = set()  # requests whose ack was lost
        self._subscription_ids = 0
        self._cancel_ids: dict[int, str] = {}
        venue.add_listener(self._on_event)
        venue.faults.add_dropper(self._drop)
        self.app = self._make_app()

    # ---- app ----
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        get, post, delete = web.get, web.post, web.delete
        app.add_routes(
            [
                get("/api/v3/ping", self.ping),
                get("/api/v3/time", self.time),
                get("/api/v3/exchangeInfo", self.exchange_info),
                get("/api/v3/depth", self.depth),
                get("/api/v3/ticker/bookTicker", self.book_ticker),
                get("/api/v3/ticker/24hr", self.ticker_24hr),
                get("/api/v3/account", self.account),
                post("/api/v3/order", self.new_order),
                get("/api/v3/order", self.get_order),
                delete("/api/v3/order", self.cancel_order),
                get("/api/v3/openOrders", self.open_orders),
                delete("/api/v3/openOrders", self.cancel_open_orders),
                get("/api/v3/allOrders", self.all_orders),
                get("/api/v3/myTrades", self.my_trades),
                get("/sapi/v1/asset/tradeFee", self.trade_fee),
                get("/ws", self.market_ws),
                get("/ws/{n}", self.market_ws),
                get("/stream", self.market_ws),
                get("/stream/{n}", self.market_ws),
                get("/ws-api/v3", self.api_ws),
            ]
        )
        app.on_shutdown.append(self._shutdown)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.venue.requests.append((request.method, request.path))
        if request.headers.get("Upgrade", "").lower() != "websocket":
            status = self.venue.faults.take_failure(request.path, request.method)
            if status is not None:
                return self._failure(status)
        try:
            return await handler(request)
        except BinanceError as err:
            return err.response()
        except VenueError as err:
            return _engine_error(err).response()

    def _failure(self, status: int) -> web.Response:
        if status in (418, 429):
            return web.json_response(
                {
                    "code": -1003,
                    "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per"
                    " minute. Please use WebSocket Streams for live updates to avoid polling the"
                    " API.",
                },
                status=status,
                headers={"Retry-After": "1"},
            )
        if status >= 500:  # what the front end answers: not JSON
            reasons = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            return web.Response(status=status, text=reasons.get(status, "Server Error"))
        return web.json_response(
            {"code": -1000, "msg": "An unknown error occurred."}, status=status
        )

    async def _shutdown(self, app: web.Application) -> None:
        for future in list(self.held):
            future.cancel()
        for sock in list(self.sockets):
            sock.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await sock.ws.close(code=1001, message=b"server shutdown")

    # ---- helpers ----
    def _params(self, request: web.Request, body: str = "") -> dict[str, str]:
        params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    async def _signed(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """Check the key, signature and timestamp as Binance does; the api key and params."""
        body = await request.text() if request.method in ("POST", "PUT") else ""
        key = request.headers.get("X-MBX-APIKEY")
        if not key or not key.isalnum():
            raise BinanceError(401, -2014, "API-key format invalid.")
        secret = self.venue.secret_of(key)
        if secret is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        raw = request.rel_url.raw_query_string + body
        parts = [p for p in raw.split("&") if p]
        signature = next((p[10:] for p in parts if p.startswith("signature=")), None)
        params = self._params(request, body)
        if "timestamp" not in params:
            raise _missing("timestamp")
        if not signature:
            raise _missing("signature")
        payload = "&".join(p for p in parts if not p.startswith("signature="))
        self._check_signature(secret, payload, signature)
        self._check_time(params)
        return key, params

    @staticmethod
    def _check_signature(secret: str, payload: str, signature: str) -> None:
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")

    def _check_time(self, params: dict[str, Any]) -> None:
        try:
            timestamp = int(params["timestamp"])
            window = int(params.get("recvWindow", self.recv_window_default))
        except (TypeError, ValueError):
            raise _missing("timestamp") from None
        if window > MAX_RECV_WINDOW:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000")
        now = self.venue.clock()
        if timestamp > now + 1000:
            raise BinanceError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - timestamp > window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )

    def _market(self, params: dict[str, str], required: bool = True):
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise _missing("symbol")
            return None
        market = self.venue.by_venue_symbol.get(symbol)
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    @staticmethod
    def _decimal(params: dict[str, str], name: str) -> Decimal | None:
        value = params.get(name)
        if value in (None, ""):
            return None
        try:
            number = Decimal(value)
        except ArithmeticError:
            raise BinanceError(
                400, -1100, f"Illegal characters found in parameter '{name}'."
            ) from None
        if not number.is_finite() or number <= 0:
            raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
        return number

    # ---- order formats ----
    @staticmethod
    def status(order: EngineOrder) -> str:
        if order.state == "open":
            return "PARTIALLY_FILLED" if order.filled > 0 else "NEW"
        return STATES[order.state]

    def order_json(self, order: EngineOrder, resp_type: str = "RESULT") -> dict[str, Any]:
        data: dict[str, Any] = {
            "symbol": order.market.venue_symbol,
            "orderId": order.id,
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "transactTime": order.created_ms,
        }
        if resp_type == "ACK":
            return data
        data.update(
            {
                "price": fmt(order.price),
                "origQty": fmt(order.amount),
                "executedQty": fmt(order.filled),
                "origQuoteOrderQty": fmt(order.quote_amount),
                "cummulativeQuoteQty": fmt(order.cost),
                "status": self.status(order),
                "timeInForce": _tif(order),
                "type": order.type.upper(),
                "side": order.side.upper(),
                "workingTime": order.created_ms,
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        )
        if resp_type == "FULL":
            data["fills"] = [
                {
                    "price": fmt(t.price),
                    "qty": fmt(t.amount),
                    "commission": fmt(t.fee),
                    "commissionAsset": t.fee_asset,
                    "tradeId": t.id,
                }
                for t in order.trades
            ]
        return data

    def query_json(self, order: EngineOrder) -> dict[str, Any]:
        """GET /api/v3/order, openOrders, allOrders."""
        data = self.order_json(order)
        del data["transactTime"]
        data.update(
            {
                "stopPrice": fmt(ZERO),
                "icebergQty": fmt(ZERO),
                "time": order.created_ms,
                "updateTime": order.updated_ms,
                "isWorking": True,
            }
        )
        return data

    @staticmethod
    def trade_json(trade: Trade, market_id: str) -> dict[str, Any]:
        return {
            "symbol": market_id,
            "id": trade.id,
            "orderId": trade.order_id,
            "orderListId": -1,
            "price": fmt(trade.price),
            "qty": fmt(trade.amount),
            "quoteQty": fmt(trade.cost),
            "commission": fmt(trade.fee),
            "commissionAsset": trade.fee_asset,
            "time": trade.ts_ms,
            "isBuyer": trade.side == "buy",
            "isMaker": trade.maker,
            "isBestMatch": True,
        }

    # ---- public REST ----
    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.venue.clock()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        params = self._params(request)
        wanted = None
        if params.get("symbol"):
            wanted = {params["symbol"]}
        elif params.get("symbols"):
            with contextlib.suppress(ValueError):
                wanted = set(json.loads(params["symbols"]))
        symbols = []
        for m in self.venue.markets.values():
            if wanted is not None and m.venue_symbol not in wanted:
                continue
            symbols.append(
                {
                    "symbol": m.venue_symbol,
                    "status": "TRADING",
                    "baseAsset": m.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": m.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "icebergAllowed": False,
                    "ocoAllowed": False,
                    "otoAllowed": False,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": False,
                    "cancelReplaceAllowed": False,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": fmt(m.tick),
                            "maxPrice": fmt(Decimal(1000000)),
                            "tickSize": fmt(m.tick),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": fmt(m.min_amount),
                            "maxQty": fmt(m.max_amount),
                            "stepSize": fmt(m.step),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": fmt(ZERO),
                            "maxQty": fmt(m.max_amount),
                            "stepSize": fmt(ZERO),
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": fmt(m.min_notional),
                            "applyMinToMarket": True,
                            "maxNotional": fmt(Decimal(9000000)),
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER"],
                }
            )
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.venue.clock(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": 100,
                    },
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    def depth_json(self, book: Book, limit: int) -> dict[str, Any]:
        return {
            "lastUpdateId": book.update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in book.bids[:limit]],
            "asks": [[fmt(p), fmt(q)] for p, q in book.asks[:limit]],
        }

    async def depth(self, request: web.Request) -> web.Response:
        params = self._params(request)
        market = self._market(params)
        try:
            limit = min(int(params.get("limit", 100)), 5000)
        except ValueError:
            raise _missing("limit") from None
        return web.json_response(self.depth_json(self.venue.book(market.symbol), limit))

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = self._params(request)
        markets = [self._market(params)] if params.get("symbol") else self.venue.markets.values()
        out = []
        for m in markets:
            book = self.venue.book(m.symbol)
            bid = book.bids[0] if book.bids else (ZERO, ZERO)
            ask = book.asks[0] if book.asks else (ZERO, ZERO)
            out.append(
                {
                    "symbol": m.venue_symbol,
                    "bidPrice": fmt(bid[0]),
                    "bidQty": fmt(bid[1]),
                    "askPrice": fmt(ask[0]),
                    "askQty": fmt(ask[1]),
                }
            )
        return web.json_response(out[0] if params.get("symbol") else out)

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """Only the book is known: last = mid, no volume or change."""
        params = self._params(request)
        single = bool(params.get("symbol"))
        markets = [self._market(params)] if single else self.venue.markets.values()
        now = self.venue.clock()
        out = []
        for m in markets:
            book = self.venue.book(m.symbol)
            bid = book.bids[0] if book.bids else (ZERO, ZERO)
            ask = book.asks[0] if book.asks else (ZERO, ZERO)
            last = book.mid() or ZERO
            out.append(
                {
                    "symbol": m.venue_symbol,
                    "priceChange": fmt(ZERO),
                    "priceChangePercent": "0.000",
                    "weightedAvgPrice": fmt(last),
                    "prevClosePrice": fmt(last),
                    "lastPrice": fmt(last),
                    "lastQty": fmt(ZERO),
                    "bidPrice": fmt(bid[0]),
                    "bidQty": fmt(bid[1]),
                    "askPrice": fmt(ask[0]),
                    "askQty": fmt(ask[1]),
                    "openPrice": fmt(last),
                    "highPrice": fmt(last),
                    "lowPrice": fmt(last),
                    "volume": fmt(ZERO),
                    "quoteVolume": fmt(ZERO),
                    "openTime": now - 86_400_000,
                    "closeTime": now,
                    "firstId": -1,
                    "lastId": -1,
                    "count": 0,
                }
            )
        return web.json_response(out[0] if single else out)

    # ---- signed REST ----
    async def account(self, request: web.Request) -> web.Response:
        key, params = await self._signed(request)
        acct = self.venue.accounts[key]
        omit_zero = params.get("omitZeroBalances") == "true"
        balances = [
            {"asset": a, "free": fmt(free), "locked": fmt(locked)}
            for a, (free, locked) in acct.snapshot().items()
            if not (omit_zero and free == 0 and locked == 0)
        ]
        maker = int(self.venue.maker_bps)
        taker = int(self.venue.taker_bps)
        return web.json_response(
            {
                "makerCommission": maker,
                "takerCommission": taker,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt(self.venue.maker_bps / 10000),
                    "taker": fmt(self.venue.taker_bps / 10000),
                    "buyer": fmt(ZERO),
                    "seller": fmt(ZERO),
                },
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.venue.clock(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": abs(hash(key)) % 10**9,
            }
        )

    async def trade_fee(self, request: web.Request) -> web.Response:
        key, params = await self._signed(request)
        markets = [self._market(params)] if params.get("symbol") else self.venue.markets.values()
        return web.json_response(
            [
                {
                    "symbol": m.venue_symbol,
                    "makerCommission": str(self.venue.maker_bps / 10000),
                    "takerCommission": str(self.venue.taker_bps / 10000),
                }
                for m in markets
            ]
        )

    async def new_order(self, request: web.Request) -> web.StreamResponse:
        key, p = await self._signed(request)
        market = self._market(p)
        side = SIDES.get(p.get("side", ""))
        if side is None:
            raise _missing("side")
        otype = TYPES.get(p.get("type", ""))
        if otype is None:
            if p.get("type"):
                raise BinanceError(400, -1116, "Invalid orderType.")
            raise _missing("type")
        quantity = self._decimal(p, "quantity")
        quote_qty = self._decimal(p, "quoteOrderQty")
        price = self._decimal(p, "price")
        tif = "gtc"
        if otype == "limit":
            if p.get("timeInForce") not in ("GTC", "IOC"):
                if p.get("timeInForce"):
                    raise BinanceError(400, -1115, "Invalid timeInForce.")
                raise _missing("timeInForce")
            tif = p["timeInForce"].lower()
            if price is None:
                raise _missing("price")
            if quantity is None:
                raise _missing("quantity")
            quote_qty = None
        else:
            if price is not None:
                raise BinanceError(400, -1106, "Parameter 'price' sent when not required.")
            if (quantity is None) == (quote_qty is None):
                raise BinanceError(
                    400,
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
        client_id = p.get("newClientOrderId") or None
        if client_id is not None and (len(client_id) > 36 or not _client_id_ok(client_id)):
            raise BinanceError(
                400, -1100, "Illegal characters found in parameter 'newClientOrderId'."
            )
        order = self.venue.place(
            key,
            market.symbol,
            side,
            otype,
            amount=quantity,
            price=price,
            quote_amount=quote_qty,
            client_id=client_id,
            tif=tif,
        )
        resp_type = p.get("newOrderRespType") or "FULL"
        body = self.order_json(
            order, resp_type if resp_type in ("ACK", "RESULT", "FULL") else "FULL"
        )
        faults = self.venue.faults
        if faults.take_lose_ack():
            await self._hold(request)
            raise web.HTTPServiceUnavailable()  # only reached at shutdown
        delay = faults.take_delay()
        if delay:
            await asyncio.sleep(delay)
        return web.json_response(body)

    async def _hold(self, request: web.Request, seconds: float = 300) -> None:
        """Never answer: wait until the client gives up (closes the connection), the server
        stops, or ``seconds``."""
        future = asyncio.get_running_loop().create_future()
        self.held.add(future)
        try:
            for _ in range(int(seconds / 0.05)):
                transport = request.transport
                if future.done() or transport is None or transport.is_closing():
                    return
                await asyncio.sleep(0.05)
        finally:
            self.held.discard(future)

    def _find(self, key: str, p: dict[str, str], error: tuple[int, int, str]) -> EngineOrder:
        market = self._market(p)
        order_id, client_id = p.get("orderId"), p.get("origClientOrderId")
        if not order_id and not client_id:
            raise BinanceError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        try:
            order = self.venue.get(key, order_id or None, None if order_id else client_id)
        except VenueError:
            raise BinanceError(*error) from None
        if order.market is not market:
            raise BinanceError(*error)
        return order

    async def get_order(self, request: web.Request) -> web.Response:
        key, p = await self._signed(request)
        order = self._find(key, p, ENGINE_ERRORS["order_not_found"])
        return web.json_response(self.query_json(order))

    def _cancel(self, key: str, order: EngineOrder, cancel_id: str | None) -> dict[str, Any]:
        cancel_id = cancel_id or _random_id()
        self._cancel_ids[order.id] = cancel_id
        try:
            self.venue.cancel(key, order.id)
        except VenueError:
            raise BinanceError(*ENGINE_ERRORS["not_cancelable"]) from None
        finally:
            self._cancel_ids.pop(order.id, None)
        data = self.order_json(order)
        data["origClientOrderId"] = order.client_id
        data["clientOrderId"] = cancel_id
        data["transactTime"] = order.updated_ms
        del data["workingTime"]
        return data

    async def cancel_order(self, request: web.Request) -> web.Response:
        key, p = await self._signed(request)
        order = self._find(key, p, ENGINE_ERRORS["not_cancelable"])
        return web.json_response(self._cancel(key, order, p.get("newClientOrderId")))

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        key, p = await self._signed(request)
        market = self._market(p)
        orders = self.venue.open_orders(key, market.symbol)
        if not orders:
            raise BinanceError(400, -2011, "Unknown order sent.")
        return web.json_response([self._cancel(key, o, None) for o in orders])

    async def open_orders(self, request: web.Request) -> web.Response:
        key, p = await self._signed(request)
        market = self._market(p, required=False)
        orders = self.venue.open_orders(key, market.symbol if market else None)
        return web.json_response([self.query_json(o) for o in orders])

    async def all_orders(self, request: web.Request) -> web.Response:
        key, p = await self._signed(request)
        market = self._market(p)
        orders = self.venue.all_orders(key, market.symbol)
        if p.get("orderId"):
            orders = [o for o in orders if o.id >= int(p["orderId"])]
        if p.get("startTime"):
            orders = [o for o in orders if o.created_ms >= int(p["startTime"])]
        limit = min(int(p.get("limit", 500)), 1000)
        return web.json_response([self.query_json(o) for o in orders[:limit]])

    async def my_trades(self, request: web.Request) -> web.Response:
        key, p = await self._signed(request)
        market = self._market(p)
        since = int(p["startTime"]) if p.get("startTime") else None
        trades = self.venue.trades(key, market.symbol, since)
        if p.get("endTime"):
            trades = [t for t in trades if t.ts_ms <= int(p["endTime"])]
        if p.get("orderId"):
            trades = [t for t in trades if t.order_id == int(p["orderId"])]
        if p.get("fromId"):
            trades = [t for t in trades if t.id >= int(p["fromId"])]
        limit = min(int(p.get("limit", 500)), 1000)
        return web.json_response([self.trade_json(t, market.venue_symbol) for t in trades[:limit]])

    # ---- websockets ----
    async def _serve_ws(
        self, request: web.Request, kind: str, on_text: Any
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(kind, ws, request)
        sock.wrap = (
            request.path.rstrip("/").split("/")[-1] == "stream" or "/stream/" in request.path
        )
        self.sockets.add(sock)
        pump = asyncio.ensure_future(sock.pump())
        try:
            if kind == "book" and request.query.get("streams"):
                sock.streams.update(s.lower() for s in request.query["streams"].split("/"))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        sock.send({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
                        continue
                    on_text(sock, data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.sockets.discard(sock)
            sock.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pump, 1)
            pump.cancel()
        return ws

    async def market_ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, "book", self._on_market_request)

    def _on_market_request(self, sock: _Socket, data: Any) -> None:
        req_id = data.get("id") if isinstance(data, dict) else None
        method = data.get("method") if isinstance(data, dict) else None
        params = data.get("params") or [] if isinstance(data, dict) else []
        if method == "SUBSCRIBE":
            bad = [s for s in params if not self._known_stream(s)]
            if bad:
                sock.send(
                    {"error": {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]}"}}
                )
                return
            sock.send({"result": None, "id": req_id})
            sock.streams.update(s.lower() for s in params)
        elif method == "UNSUBSCRIBE":
            sock.streams.difference_update(s.lower() for s in params)
            sock.send({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            sock.send({"result": sorted(sock.streams), "id": req_id})
        else:
            sock.send(
                {"error": {"code": 1, "msg": "Invalid request: unknown method"}, "id": req_id}
            )

    def _known_stream(self, stream: Any) -> bool:
        if not isinstance(stream, str) or "@" not in stream:
            return False
        symbol, _, channel = stream.partition("@")
        return symbol.upper() in self.venue.by_venue_symbol and channel in (
            "depth",
            "depth@100ms",
            "depth@1000ms",
        )

    async def api_ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, "private", self._on_api_request)

    def _on_api_request(self, sock: _Socket, data: Any) -> None:
        if not isinstance(data, dict):
            sock.send({"id": None, "status": 400, "error": {"code": -1000, "msg": "Bad request"}})
            return
        req_id, method, params = data.get("id"), data.get("method"), data.get("params") or {}

        def error(status: int, code: int, msg: str) -> None:
            sock.send({"id": req_id, "status": status, "error": {"code": code, "msg": msg}})

        if method == "ping":
            sock.send({"id": req_id, "status": 200, "result": {}})
        elif method == "time":
            sock.send({"id": req_id, "status": 200, "result": {"serverTime": self.venue.clock()}})
        elif method == "userDataStream.subscribe.signature":
            try:
                key = self._ws_signed(params)
            except BinanceError as err:
                error(err.status, err.code, err.msg)
                return
            sub_id = self._subscription_ids
            self._subscription_ids += 1
            sock.subscriptions[sub_id] = key
            sock.send({"id": req_id, "status": 200, "result": {"subscriptionId": sub_id}})
        elif method == "userDataStream.unsubscribe":
            sub_id = params.get("subscriptionId")
            if sub_id is None:
                sock.subscriptions.clear()
            else:
                sock.subscriptions.pop(int(sub_id), None)
            sock.send({"id": req_id, "status": 200, "result": {}})
        elif method == "session.subscriptions":
            result = [{"subscriptionId": s} for s in sorted(sock.subscriptions)]
            sock.send({"id": req_id, "status": 200, "result": result})
        else:
            error(400, -1100, f"Illegal characters found in parameter 'method'; {method!r}.")

    def _ws_signed(self, params: dict[str, Any]) -> str:
        key = params.get("apiKey")
        if not isinstance(key, str) or not key.isalnum():
            raise BinanceError(401, -2014, "API-key format invalid.")
        secret = self.venue.secret_of(key)
        if secret is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = params.get("signature")
        if "timestamp" not in params:
            raise _missing("timestamp")
        if not signature:
            raise _missing("signature")

        def text(v: Any) -> str:
            return ("true" if v else "false") if isinstance(v, bool) else str(v)

        payload = "&".join(f"{k}={text(params[k])}" for k in sorted(params) if k != "signature")
        self._check_signature(secret, payload, str(signature))
        self._check_time(params)
        return key

    def _drop(self, kind: str, code: int) -> int:
        dropped = 0
        for sock in list(self.sockets):
            if kind != "all" and sock.kind != kind:
                continue
            dropped += 1
            self.sockets.discard(sock)
            sock.queue.put_nowait(None)
            if code == 1006:  # abnormal closure: no close frame at all
                transport = sock.request.transport
                if transport is not None:
                    transport.abort()
            else:
                asyncio.ensure_future(sock.ws.close(code=code, message=b"dropped by fault"))
        return dropped

    # ---- engine events -> streams ----
    def _on_event(self, event: str, **payload: Any) -> None:
        if event == "book":
            self._on_book(payload["symbol"], payload["diff"])
        elif event == "order":
            self._private(payload["order"].key, lambda: self._execution_report(**payload))
        elif event == "balance":
            self._private(payload["key"], lambda: self._balance_events(**payload))

    def _on_book(self, symbol: str, diff: Any) -> None:
        market = self.venue.markets[symbol]
        prefix = market.venue_symbol.lower() + "@depth"
        message = None
        for sock in list(self.sockets):
            if sock.kind != "book":
                continue
            for stream in sock.streams:
                if stream == prefix or stream.startswith(prefix + "@"):
                    if message is None:
                        message = {
                            "e": "depthUpdate",
                            "E": diff.ts_ms,
                            "s": market.venue_symbol,
                            "U": diff.first_id,
                            "u": diff.last_id,
                            "b": [[fmt(p), fmt(q)] for p, q in diff.bids],
                            "a": [[fmt(p), fmt(q)] for p, q in diff.asks],
                        }
                    sock.send({"stream": stream, "data": message} if sock.wrap else message)
                    break

    def _private(self, key: str, build: Any) -> None:
        targets = [
            (sock, sub_id)
            for sock in list(self.sockets)
            if sock.kind == "private"
            for sub_id, sub_key in sock.subscriptions.items()
            if sub_key == key
        ]
        if not targets:
            return
        events = build()
        for event in events:
            if self.venue.faults.take_mute():
                continue
            for sock, sub_id in targets:
                sock.send({"subscriptionId": sub_id, "event": event})

    def _execution_report(self, order: EngineOrder, exec: str, trade: Trade | None = None):
        if order.orphan and exec == "NEW":
            return []
        now = self.venue.clock()
        cancel_id = self._cancel_ids.get(order.id) if exec == "CANCELED" else None
        report = {
            "e": "executionReport",
            "E": now,
            "s": order.market.venue_symbol,
            "c": cancel_id or order.client_id,
            "S": order.side.upper(),
            "o": order.type.upper(),
            "f": _tif(order),
            "q": fmt(order.amount),
            "p": fmt(order.price),
            "P": fmt(ZERO),
            "F": fmt(ZERO),
            "g": -1,
            "C": order.client_id if cancel_id else "",
            "x": exec,
            "X": self.status(order),
            "r": "NONE",
            "i": order.id,
            "l": fmt(trade.amount if trade else ZERO),
            "z": fmt(order.filled),
            "L": fmt(trade.price if trade else ZERO),
            "n": fmt(trade.fee if trade else ZERO),
            "N": trade.fee_asset if trade else None,
            "T": trade.ts_ms if trade else order.updated_ms,
            "t": trade.id if trade else -1,
            "v": 0,
            "I": 0,
            "w": order.is_open and order.type == "limit",
            "m": bool(trade and trade.maker),
            "M": False,
            "O": order.created_ms,
            "Z": fmt(order.cost),
            "Y": fmt(trade.cost if trade else ZERO),
            "Q": fmt(order.quote_amount),
            "W": order.created_ms,
            "V": "EXPIRE_MAKER",
        }
        return [report]

    def _balance_events(self, key: str, assets: list[str], delta: dict | None = None):
        account = self.venue.accounts[key]
        now = self.venue.clock()
        events: list[dict[str, Any]] = []
        for asset, amount in (delta or {}).items():
            events.append({"e": "balanceUpdate", "E": now, "a": asset, "d": fmt(amount), "T": now})
        events.append(
            {
                "e": "outboundAccountPosition",
                "E": now,
                "u": now,
                "B": [
                    {"a": a, "f": fmt(account.free(a)), "l": fmt(account.held(a))} for a in assets
                ],
            }
        )
        return events


_CLIENT_ID_CHARS = set(string.ascii_letters + string.digits + "-_.:/")


def _tif(order: EngineOrder) -> str:
    """Binance reports GTC for market orders."""
    return "GTC" if order.type == "market" else order.tif.upper()


def _client_id_ok(client_id: str) -> bool:
    return set(client_id) <= _CLIENT_ID_CHARS


def add_binance_routes(
    app: web.Application, venue: Venue, prefix: str = "/binance", **kw: Any
) -> BinanceServer:
    """Mount a fake Binance over ``venue`` at ``prefix`` of ``app``; the server object."""
    server = BinanceServer(venue, **kw)
    app.add_subapp(prefix, server.app)
    return server
