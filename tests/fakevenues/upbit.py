"""A fake Upbit (KRW market) on aiohttp: REST under ``<prefix>/v1`` and websockets under
``<prefix>/websocket/v1``, over a shared ``engine.Venue``.

What it mimics of the real venue, as the ccxt client sees it:

- Signed calls carry ``Authorization: Bearer <JWT HS256>`` whose payload holds ``access_key``,
  ``nonce`` and, when the request has parameters, ``query_hash`` = SHA512 hex of the unescaped
  ``k=v&k=v`` string (for a POST: the JSON body's keys in their order). An unknown key answers 401
  ``invalid_access_key``, a bad signature 401 ``jwt_verification``, a wrong hash 401
  ``invalid_query_payload``, a reused nonce 401 ``nonce_used``.
- ``POST /v1/orders`` answers with the order as accepted, *before* it traded (``state: wait``,
  nothing executed), even for IOC and market orders: the outcome is read with ``GET /v1/order``
  (``uuid`` or ``identifier``; its ``trades`` list) or from the private stream (``myOrder``). A
  market buy by KRW amount (``ord_type: price``) that leaves KRW unspent ends ``cancel`` although
  it filled; ``DELETE /v1/order`` answers with the order still ``wait``.
- Fees are charged in KRW on both sides (on top of the cost of a buy).
- Errors are ``{"error": {"name", "message"}}`` with Upbit's names; a 429 or 5xx injected with
  ``faults.fail_next`` has a plain-text body, so ccxt maps it by the HTTP status
  (``RateLimitExceeded``, ``ExchangeNotAvailable``) rather than as an unknown exchange error.
- Websocket frames are binary JSON (as Upbit sends them). An ``orderbook`` subscription first gets
  a ``SNAPSHOT`` per code, then a ``REALTIME`` full book (15 units) on every change. The private
  socket checks the JWT at the handshake and sends ``myOrder`` (``wait``, one ``trade`` per fill,
  then ``done`` or ``cancel``) and ``myAsset`` events of its account.

Not mimicked: FOK and post-only orders (refused with ``validation_error``), ``best`` orders, SMP,
stop orders, candles, public trades, deposits and withdrawals, the 7-day window of closed orders.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import WSMsgType, web

from .engine import EngineOrder, Market, Trade, Venue, VenueError

__all__ = ["UpbitServer", "add_upbit_routes", "ccxt_urls", "order_uuid", "trade_uuid"]

ZERO = Decimal(0)
KST = timezone(timedelta(hours=9))
BOOK_UNITS = 15  # what Upbit sends by default, REST and websocket
MAX_BOOK_UNITS = 30
LOST_ACK_MAX_S = 120.0  # a lost acknowledgement hangs until the client gives up (or this)
WS_CLOSE_TIMEOUT_S = 1.0  # how long a close waits for the client's close frame
REMAINING_REQ = "group=default; min=1800; sec=29"

# Order and trade ids are UUIDs that carry the engine's integer id in their low 60 bits.
_ORDER_TAG = 0x5EED_0B1D_0000_4000
_TRADE_TAG = 0x5EED_7AD3_0000_4000
_VARIANT = 0x8 << 60
_LOW = (1 << 60) - 1

# Upbit's error names (``DUPLICATE_IDENTIFIER`` is this fake's choice: Upbit documents that an
# identifier must be unique but not the name of the error).
DUPLICATE_IDENTIFIER = "duplicate_identifier"


def ccxt_urls(base_http_url: str) -> dict[str, str]:
    """The whole ``exchange.urls['api']`` for a ccxt ``upbit`` pointed at this fake, given the
    HTTP base of its routes (``http://127.0.0.1:PORT/upbit``): ccxt adds ``/v1/...`` to
    ``public`` and ``private``, and ``/private`` to ``ws`` for the private stream."""
    base = base_http_url.rstrip("/")
    if base.startswith("https://"):
        ws = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        ws = "ws://" + base[len("http://") :]
    else:
        raise ValueError(f"not an http(s) URL: {base_http_url}")
    return {"public": base, "private": base, "ws": ws + "/websocket/v1"}


def order_uuid(order_id: int) -> str:
    return str(uuidlib.UUID(int=(_ORDER_TAG << 64) | _VARIANT | order_id))


def trade_uuid(trade_id: int) -> str:
    return str(uuidlib.UUID(int=(_TRADE_TAG << 64) | _VARIANT | trade_id))


def order_id_of(value: str) -> int | None:
    """The engine id inside an order uuid of this fake, or None."""
    try:
        number = uuidlib.UUID(value).int
    except (ValueError, AttributeError, TypeError):
        return None
    if number >> 64 != _ORDER_TAG:
        return None
    return number & _LOW


# ---- formatting --------------------------------------------------------------------------------


def num(value: Decimal | None) -> str | None:
    """A decimal as Upbit prints it in REST answers: a plain string, no exponent."""
    if value is None:
        return None
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def fnum(value: Decimal | None) -> float | None:
    """Websocket messages and order books carry JSON numbers."""
    return None if value is None else float(value)


def kst(ms: int, micro: bool = False) -> str:
    moment = datetime.fromtimestamp(ms / 1000, KST)
    return moment.isoformat(timespec="microseconds" if micro else "seconds")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw(value: Any) -> str:
    """A JSON body value as ccxt writes it into the string it hashes (``rawencode``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ApiError(Exception):
    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(f"{status} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message


def error_response(status: int, name: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"name": name, "message": message}},
        status=status,
        headers={"Remaining-Req": REMAINING_REQ},
    )


def injected_failure(status: int) -> web.Response:
    """The answer to a request that ``faults.fail_next`` fails."""
    if status == 429:
        return web.Response(status=429, text="Too many API requests.")
    if status == 418:
        return web.Response(status=418, text="I'm a teapot: temporarily blocked.")
    if status >= 500:
        reason = {
            502: "Bad Gateway",
            503: "Service Temporarily Unavailable",
            504: "Gateway Timeout",
        }
        text = reason.get(status, "Internal Server Error")
        return web.Response(
            status=status,
            text=f"<html><head><title>{status} {text}</title></head><body>{text}</body></html>",
            content_type="text/html",
        )
    names = {400: "validation_error", 401: "jwt_verification", 403: "out_of_scope", 404: "404"}
    return error_response(status, names.get(status, str(status)), f"injected failure {status}")


def venue_error(err: VenueError, side: str | None = None) -> ApiError:
    """Upbit's answer to an engine refusal (side: 'bid' or 'ask')."""
    s = side or "bid"
    kind = err.kind
    if kind == "insufficient_balance":
        return ApiError(
            400, f"insufficient_funds_{s}", f"주문가능한 금액이 부족합니다. ({err.message})"
        )
    if kind == "min_notional":
        return ApiError(
            400, f"under_min_total_{s}", f"최소주문금액 이상으로 주문해주세요 ({err.message})"
        )
    if kind == "invalid_price":
        return ApiError(
            400, f"invalid_price_{s}", f"주문 가격 단위를 잘못 입력하셨습니다. ({err.message})"
        )
    if kind == "invalid_amount":
        return ApiError(
            400, f"invalid_volume_{s}", f"주문 수량을 잘못 입력하셨습니다. ({err.message})"
        )
    if kind == "duplicate_client_id":
        return ApiError(400, DUPLICATE_IDENTIFIER, f"identifier is already used ({err.message})")
    if kind == "order_not_found":
        return ApiError(404, "order_not_found", "주문을 찾지 못했습니다.")
    if kind == "not_cancelable":
        return ApiError(400, "done_order", f"이미 체결된 주문입니다. ({err.message})")
    if kind == "unknown_symbol":
        return ApiError(400, "validation_error", "market does not have a valid value")
    return ApiError(400, "validation_error", err.message)


# ---- the server --------------------------------------------------------------------------------


class _Recent:
    """The last ``size`` values seen (a set with a bounded memory)."""

    def __init__(self, size: int = 100_000) -> None:
        self.order: deque[str] = deque()
        self.seen: set[str] = set()
        self.size = size

    def add(self, value: str) -> bool:
        """False if ``value`` is already there."""
        if value in self.seen:
            return False
        self.seen.add(value)
        self.order.append(value)
        if len(self.order) > self.size:
            self.seen.discard(self.order.popleft())
        return True


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    private: bool
    key: str | None = None
    books: dict[str, int] = field(default_factory=dict)  # venue symbol -> units
    my_order: bool = False
    my_order_codes: set[str] | None = None  # None: every market
    my_asset: bool = False
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


class UpbitServer:
    """The routes of one fake Upbit over ``venue`` (see ``add_upbit_routes``)."""

    def __init__(self, venue: Venue, prefix: str = "/upbit") -> None:
        self.venue = venue
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.conns: set[_Conn] = set()
        self.nonces: dict[str, _Recent] = {}  # the recent nonces of each key
        self.no_identifier: set[int] = set()  # orders placed without an identifier
        self.requests: deque[tuple[str, str]] = deque(maxlen=10000)  # (method, path), latest
        self._closing: asyncio.Event | None = None
        venue.add_listener(self._on_event)
        venue.faults.add_dropper(self._drop)

    # -- mounting --
    def add_routes(self, app: web.Application) -> None:
        p = self.prefix
        r = app.router
        r.add_get(p + "/v1/market/all", self._rest(self.market_all))
        r.add_get(p + "/v1/orderbook", self._rest(self.orderbook))
        r.add_get(p + "/v1/ticker", self._rest(self.ticker))
        r.add_get(p + "/v1/ticker/all", self._rest(self.ticker_all))
        r.add_get(p + "/v1/accounts", self._rest(self.accounts, signed=True))
        r.add_get(p + "/v1/orders/chance", self._rest(self.chance, signed=True))
        r.add_post(p + "/v1/orders", self._rest(self.create_order, signed=True))
        r.add_get(p + "/v1/order", self._rest(self.get_order, signed=True))
        r.add_delete(p + "/v1/order", self._rest(self.cancel_order, signed=True))
        r.add_get(p + "/v1/orders/open", self._rest(self.open_orders, signed=True))
        r.add_get(p + "/v1/orders/closed", self._rest(self.closed_orders, signed=True))
        r.add_get(p + "/websocket/v1", self.public_ws)
        r.add_get(p + "/websocket/v1/private", self.private_ws)
        app.on_shutdown.append(self._on_shutdown)

    @property
    def closing(self) -> asyncio.Event:
        if self._closing is None:
            self._closing = asyncio.Event()
        return self._closing

    async def _on_shutdown(self, app: web.Application) -> None:
        self.closing.set()
        closes = [conn.ws.close(code=1001, message=b"server shutdown") for conn in self.conns]
        await asyncio.gather(*closes, return_exceptions=True)

    # -- REST plumbing --
    def _rest(self, handler: Callable[..., Any], signed: bool = False):
        async def route(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            failure = self.venue.faults.take_failure(request.path, request.method)
            if failure is not None:
                return injected_failure(failure)
            try:
                if request.method == "POST":
                    params = await self._body(request)
                else:
                    params = dict(
                        parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
                    )
                key = await self._authenticate(request, params) if signed else None
                result = handler(request, params, key) if signed else handler(request, params)
                if asyncio.iscoroutine(result):
                    result = await result
            except ApiError as err:
                return error_response(err.status, err.name, err.message)
            if isinstance(result, web.StreamResponse):
                return result
            status = 201 if request.method == "POST" else 200
            return web.json_response(
                result, status=status, headers={"Remaining-Req": REMAINING_REQ}
            )

        return route

    async def _body(self, request: web.Request) -> dict[str, Any]:
        text = await request.text()
        if not text:
            return {}
        try:
            body = json.loads(text)
        except ValueError as err:
            raise ApiError(400, "validation_error", "the body is not JSON") from err
        if not isinstance(body, dict):
            raise ApiError(400, "validation_error", "the body is not a JSON object")
        return body

    async def _authenticate(self, request: web.Request, params: dict[str, Any]) -> str:
        payload = self._verify_jwt(request.headers.get("Authorization", ""))
        key = payload["access_key"]
        nonce = payload.get("nonce")
        if not nonce:
            raise ApiError(401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다. (no nonce)")
        used = self.nonces.setdefault(key, _Recent())
        if not used.add(str(nonce)):
            raise ApiError(401, "nonce_used", "이미 요청한 nonce값이 다시 사용되었습니다.")
        if request.method == "POST":
            query = "&".join(f"{k}={_raw(v)}" for k, v in params.items())
        else:
            query = unquote(request.rel_url.raw_query_string)
        if query:
            alg = str(payload.get("query_hash_alg", "SHA512")).upper()
            if alg != "SHA512":
                raise ApiError(401, "invalid_query_payload", f"query_hash_alg {alg} not supported")
            expected = hashlib.sha512(query.encode()).hexdigest()
            if not hmac.compare_digest(str(payload.get("query_hash", "")), expected):
                raise ApiError(
                    401, "invalid_query_payload", "Jwt의 query를 검증하는데 실패하였습니다."
                )
        return key

    def _verify_jwt(self, authorization: str) -> dict[str, Any]:
        """The payload of a valid ``Bearer`` token, else ApiError 401."""
        bad = ApiError(401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise bad
        head_b64, body_b64, sig_b64 = token.split(".")
        try:
            header = json.loads(_b64url_decode(head_b64))
            payload = json.loads(_b64url_decode(body_b64))
            signature = _b64url_decode(sig_b64)
        except ValueError as err:
            raise bad from err
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(
            header.get("alg") if isinstance(header, dict) else None
        )
        if digest is None or not isinstance(payload, dict):
            raise bad
        secret = self.venue.secret_of(str(payload.get("access_key")))
        if secret is None:
            raise ApiError(401, "invalid_access_key", "잘못된 엑세스 키입니다.")
        expected = hmac.new(secret.encode(), f"{head_b64}.{body_b64}".encode(), digest).digest()
        if not hmac.compare_digest(expected, signature):
            raise bad
        return payload

    # -- quotation --
    def market_all(self, request: web.Request, params: dict[str, str]) -> list[dict[str, Any]]:
        details = params.get("isDetails") == "true"
        out = []
        for market in self.venue.markets.values():
            item: dict[str, Any] = {
                "market": market.venue_symbol,
                "korean_name": market.base,
                "english_name": market.base,
            }
            if details:
                item["market_warning"] = "NONE"
            out.append(item)
        return out

    def _markets_param(self, params: dict[str, str]) -> list[Market]:
        codes = [c for c in params.get("markets", "").split(",") if c]
        if not codes:
            raise ApiError(400, "validation_error", "markets is missing")
        try:
            return [self._market(code) for code in codes]
        except ApiError as err:
            raise ApiError(404, "404", "Code not found") from err

    def _market(self, code: str) -> Market:
        market = self.venue.by_venue_symbol.get(code)
        if market is None:
            raise ApiError(400, "validation_error", "market does not have a valid value")
        return market

    def book_message(self, market: Market, units: int = BOOK_UNITS, pad: bool = True) -> dict:
        """Upbit's order book: ``units`` rows pairing the i-th bid and ask.

        Upbit always fills both sides of every row. When one side here is shorter, the websocket
        rows simply lack its keys (ccxt skips them), but ccxt's REST parser reads every row for
        both sides, so REST rows are padded with size-0 levels one tick further out each (from
        the other side's best when a side is empty)."""
        book = self.venue.book(market.symbol)
        bids, asks = book.bids[:units], book.asks[:units]
        rows: list[dict[str, Any]] = []
        tick = market.tick
        for i in range(max(len(bids), len(asks))):
            row: dict[str, Any] = {}
            if i < len(asks):
                row.update(ask_price=fnum(asks[i][0]), ask_size=fnum(asks[i][1]))
            elif pad:
                edge = asks[-1][0] if asks else bids[0][0]
                row.update(ask_price=fnum(edge + tick * (i - len(asks) + 1)), ask_size=0.0)
            if i < len(bids):
                row.update(bid_price=fnum(bids[i][0]), bid_size=fnum(bids[i][1]))
            elif pad:
                edge = bids[-1][0] if bids else asks[0][0]
                price = max(edge - tick * (i - len(bids) + 1), ZERO)
                row.update(bid_price=fnum(price), bid_size=0.0)
            rows.append(row)
        return {
            "market": market.venue_symbol,
            "timestamp": book.ts_ms or _now_ms(),
            "total_ask_size": fnum(sum((q for _, q in asks), ZERO)),
            "total_bid_size": fnum(sum((q for _, q in bids), ZERO)),
            "orderbook_units": rows,
            "level": 0,
        }

    def orderbook(self, request: web.Request, params: dict[str, str]) -> list[dict[str, Any]]:
        units = BOOK_UNITS
        if params.get("count"):
            try:
                units = max(1, min(MAX_BOOK_UNITS, int(params["count"])))
            except ValueError as err:
                raise ApiError(
                    400, "validation_error", "count does not have a valid value"
                ) from err
        return [self.book_message(m, units) for m in self._markets_param(params)]

    def ticker_all(self, request: web.Request, params: dict[str, str]) -> list[dict[str, Any]]:
        quotes = {q for q in params.get("quote_currencies", "").split(",") if q}
        if not quotes:
            raise ApiError(400, "validation_error", "quote_currencies is missing")
        markets = [m for m in self.venue.markets.values() if m.quote in quotes]
        return self._tickers(markets)

    def ticker(self, request: web.Request, params: dict[str, str]) -> list[dict[str, Any]]:
        return self._tickers(self._markets_param(params))

    def _tickers(self, markets: list[Market]) -> list[dict[str, Any]]:
        """Tickers from the venue's trades (all accounts'), or the mid when none happened."""
        out = []
        now = _now_ms()
        for market in markets:
            book = self.venue.book(market.symbol)
            trades = sorted(
                (t for k in self.venue.accounts for t in self.venue.trades(k, market.symbol)),
                key=lambda t: (t.ts_ms, t.id),
            )
            last = trades[-1].price if trades else (book.mid() or ZERO)
            ts = trades[-1].ts_ms if trades else (book.ts_ms or now)
            volume = sum((t.amount for t in trades), ZERO)
            value = sum((t.cost for t in trades), ZERO)
            moment = datetime.fromtimestamp(ts / 1000, timezone.utc)
            out.append(
                {
                    "market": market.venue_symbol,
                    "trade_date": moment.strftime("%Y%m%d"),
                    "trade_time": moment.strftime("%H%M%S"),
                    "trade_timestamp": ts,
                    "opening_price": fnum(last),
                    "high_price": fnum(last),
                    "low_price": fnum(last),
                    "trade_price": fnum(last),
                    "prev_closing_price": fnum(last),
                    "change": "EVEN",
                    "change_price": 0.0,
                    "change_rate": 0.0,
                    "signed_change_price": 0.0,
                    "signed_change_rate": 0.0,
                    "trade_volume": fnum(trades[-1].amount) if trades else 0.0,
                    "acc_trade_price": fnum(value),
                    "acc_trade_price_24h": fnum(value),
                    "acc_trade_volume": fnum(volume),
                    "acc_trade_volume_24h": fnum(volume),
                    "timestamp": now,
                }
            )
        return out

    # -- exchange --
    def _account_row(self, key: str, asset: str) -> dict[str, Any]:
        account = self.venue.account(key)
        return {
            "currency": asset,
            "balance": num(account.free(asset)),
            "locked": num(account.held(asset)),
            "avg_buy_price": "0",
            "avg_buy_price_modified": False,
            "unit_currency": "KRW",
        }

    def accounts(self, request: web.Request, params: dict[str, str], key: str) -> list[dict]:
        account = self.venue.account(key)
        quotes = {m.quote for m in self.venue.markets.values()}
        assets = [a for a in account.assets() if account.total(a) != 0 or account.held(a) != 0]
        assets = sorted(set(assets) | quotes, key=lambda a: (a not in quotes, a))
        return [self._account_row(key, a) for a in assets]

    def chance(self, request: web.Request, params: dict[str, str], key: str) -> dict[str, Any]:
        market = self._market(params.get("market", ""))
        taker = num(self.venue.taker_bps / 10000)
        maker = num(self.venue.maker_bps / 10000)
        return {
            "bid_fee": taker,
            "ask_fee": taker,
            "maker_bid_fee": maker,
            "maker_ask_fee": maker,
            "market": {
                "id": market.venue_symbol,
                "name": f"{market.base}/{market.quote}",
                "order_types": ["limit"],
                "order_sides": ["ask", "bid"],
                "bid_types": ["limit", "price"],
                "ask_types": ["limit", "market"],
                "bid": {"currency": market.quote, "min_total": num(market.min_notional)},
                "ask": {"currency": market.base, "min_total": num(market.min_notional)},
                "max_total": "1000000000",
                "state": "active",
            },
            "bid_account": self._account_row(key, market.quote),
            "ask_account": self._account_row(key, market.base),
        }

    async def create_order(
        self, request: web.Request, body: dict[str, Any], key: str
    ) -> dict[str, Any] | web.StreamResponse:
        market = self._market(str(body.get("market", "")))
        side = body.get("side")
        if side not in ("bid", "ask"):
            raise ApiError(
                400, "validation_error", "side is missing, side does not have a valid value"
            )
        ord_type = body.get("ord_type")
        price = _decimal(body.get("price"), "price")
        volume = _decimal(body.get("volume"), "volume")
        tif = body.get("time_in_force")
        identifier = body.get("identifier")
        if identifier is not None:
            identifier = str(identifier)
        create_error = f"create_{side}_error"
        kwargs: dict[str, Any] = {"side": "buy" if side == "bid" else "sell"}
        if ord_type == "limit":
            if price is None or volume is None:
                raise ApiError(400, create_error, "a limit order needs price and volume")
            kwargs.update(type="limit", price=price, amount=volume)
        elif ord_type == "price":
            if side != "bid" or price is None or volume is not None:
                raise ApiError(400, create_error, "a price order is a bid with price and no volume")
            kwargs.update(type="market", quote_amount=price)
        elif ord_type == "market":
            if side != "ask" or volume is None or price is not None:
                raise ApiError(
                    400, create_error, "a market order is an ask with volume and no price"
                )
            kwargs.update(type="market", amount=volume)
        else:
            raise ApiError(400, "validation_error", f"ord_type {ord_type!r} is not supported here")
        if tif is not None:
            if tif != "ioc" or ord_type != "limit":
                raise ApiError(
                    400, "validation_error", f"time_in_force {tif!r} is not supported by this fake"
                )
            kwargs["tif"] = "ioc"
        try:
            order = self.venue.place(key, market.symbol, client_id=identifier, **kwargs)
        except VenueError as err:
            raise venue_error(err, side) from err
        if identifier is None:
            self.no_identifier.add(order.id)
        answer = self.order_as_accepted(order)
        faults = self.venue.faults
        if faults.take_lose_ack():
            await self._hang(request)
            raise ApiError(504, "lost", "the acknowledgement was lost")
        delay = faults.take_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        return answer

    async def _hang(self, request: web.Request) -> None:
        """Never answer: wait until the client gives up (closes the connection), the server
        shuts down, or ``LOST_ACK_MAX_S``."""
        deadline = time.monotonic() + LOST_ACK_MAX_S
        while time.monotonic() < deadline and not self.closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.closing.wait(), 0.05)

    def _find(self, key: str, params: dict[str, Any]) -> EngineOrder:
        order_uuid_ = params.get("uuid")
        identifier = params.get("identifier")
        if not order_uuid_ and not identifier:
            raise ApiError(400, "validation_error", "uuid or identifier is required")
        try:
            if order_uuid_:
                oid = order_id_of(order_uuid_)
                if oid is None:
                    raise VenueError("order_not_found", order_uuid_)
                order = self.venue.get(key, order_id=oid)
                if identifier and self.identifier_of(order) != identifier:
                    raise VenueError("order_not_found", identifier)
                return order
            return self.venue.get(key, client_id=identifier)
        except VenueError as err:
            raise venue_error(err) from err

    def get_order(self, request: web.Request, params: dict[str, str], key: str) -> dict:
        order = self._find(key, params)
        view = self.order_view(order)
        view["trades"] = [self.trade_view(order, t) for t in order.trades]
        return view

    def cancel_order(self, request: web.Request, params: dict[str, str], key: str) -> dict:
        order = self._find(key, params)
        side = "bid" if order.side == "buy" else "ask"
        if not order.is_open:
            if self.upbit_state(order) == "done":
                raise venue_error(VenueError("not_cancelable", f"order is {order.state}"), side)
            raise venue_error(VenueError("order_not_found", "order is not open"), side)
        view = self.order_view(order)  # Upbit answers with the order as it was: still 'wait'
        try:
            self.venue.cancel(key, order_id=order.id)
        except VenueError as err:
            raise venue_error(err, side) from err
        return view

    def open_orders(self, request: web.Request, params: dict[str, str], key: str) -> list[dict]:
        state = params.get("state", "wait")
        if state == "watch":
            return []
        if state != "wait":
            raise ApiError(400, "validation_error", "state does not have a valid value")
        orders = self.venue.open_orders(key, self._symbol_param(params))
        return self._page(orders, params, default_limit=100)

    def closed_orders(self, request: web.Request, params: dict[str, str], key: str) -> list[dict]:
        states = {params["state"]} if "state" in params else {"done", "cancel"}
        if not states <= {"done", "cancel"}:
            raise ApiError(400, "validation_error", "state does not have a valid value")
        start = _time_param(params.get("start_time"))
        end = _time_param(params.get("end_time"))
        orders = [
            o
            for o in self.venue.all_orders(key, self._symbol_param(params))
            if not o.is_open
            and self.upbit_state(o) in states
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        return self._page(orders, params, default_limit=100, max_limit=1000)

    def _symbol_param(self, params: dict[str, str]) -> str | None:
        code = params.get("market")
        return self._market(code).symbol if code else None

    def _page(self, orders: list[EngineOrder], params: dict[str, str], default_limit: int,
              max_limit: int = 100) -> list[dict]:  # fmt: skip
        try:
            limit = min(int(params.get("limit", default_limit)), max_limit)
            page = max(int(params.get("page", 1)), 1)
        except ValueError as err:
            raise ApiError(400, "validation_error", "limit or page is not a number") from err
        ordered = sorted(orders, key=lambda o: (o.created_ms, o.id))
        if params.get("order_by", "desc") != "asc":
            ordered.reverse()
        chosen = ordered[(page - 1) * limit : page * limit]
        return [self.order_view(o) for o in chosen]

    # -- order views --
    def ord_type(self, order: EngineOrder) -> str:
        if order.type == "limit":
            return "limit"
        if order.quote_amount is not None:
            return "price"
        return "market"

    def identifier_of(self, order: EngineOrder) -> str | None:
        return None if order.id in self.no_identifier else order.client_id

    def upbit_state(self, order: EngineOrder) -> str:
        if order.is_open:
            return "wait"
        if order.quote_amount is not None:  # a market buy by KRW amount
            return "done" if order.remaining_quote <= 0 else "cancel"
        if order.state == "filled":
            return "done"
        return "cancel"

    def _fee_rate(self) -> Decimal:
        return max(self.venue.taker_bps, self.venue.maker_bps) / 10000

    def _reserved_fee(self, order: EngineOrder) -> Decimal:
        if order.side != "buy":
            return ZERO
        if order.quote_amount is not None:
            base = order.quote_amount
        elif order.price is not None and order.amount is not None:
            base = order.price * order.amount
        else:
            return ZERO
        return (base * self._fee_rate()).quantize(self.venue.fee_unit, ROUND_UP)

    def _order_price(self, order: EngineOrder) -> Decimal | None:
        if order.quote_amount is not None:
            return order.quote_amount
        return order.price

    def _base_view(self, order: EngineOrder) -> dict[str, Any]:
        view: dict[str, Any] = {
            "uuid": order_uuid(order.id),
            "side": "bid" if order.side == "buy" else "ask",
            "ord_type": self.ord_type(order),
            "price": num(self._order_price(order)),
            "state": "wait",
            "market": order.market.venue_symbol,
            "created_at": kst(order.created_ms),
            "volume": num(order.amount),
            "remaining_volume": num(order.amount),
            "reserved_fee": num(self._reserved_fee(order)),
            "remaining_fee": num(self._reserved_fee(order)),
            "paid_fee": "0",
            "locked": "0",
            "prevented_volume": "0",
            "prevented_locked": "0",
            "executed_volume": "0",
            "executed_funds": "0",
            "trades_count": 0,
        }
        if order.tif == "ioc" and order.type == "limit":
            view["time_in_force"] = "ioc"
        identifier = self.identifier_of(order)
        if identifier is not None:
            view["identifier"] = identifier
        return view

    def order_as_accepted(self, order: EngineOrder) -> dict[str, Any]:
        """The order as Upbit acknowledges it: nothing executed yet, its funds locked."""
        view = self._base_view(order)
        if order.side == "buy":
            price = self._order_price(order)
            spend = (
                price
                if order.quote_amount is not None
                else (price or ZERO) * (order.amount or ZERO)
            )
            view["locked"] = num(spend + self._reserved_fee(order))
        else:
            view["locked"] = num(order.amount)
        return view

    def order_view(self, order: EngineOrder) -> dict[str, Any]:
        view = self._base_view(order)
        paid = order.fee(order.market.quote)
        reserved = self._reserved_fee(order)
        view.update(
            state=self.upbit_state(order),
            paid_fee=num(paid),
            remaining_fee=num(max(reserved - paid, ZERO) if order.is_open else ZERO),
            locked=num(order.locked),
            executed_volume=num(order.filled),
            executed_funds=num(order.cost),
            trades_count=len(order.trades),
        )
        if order.amount is not None:
            view["remaining_volume"] = num(order.remaining)
        return view

    def trade_view(self, order: EngineOrder, trade: Trade) -> dict[str, Any]:
        side = "bid" if order.side == "buy" else "ask"
        return {
            "market": order.market.venue_symbol,
            "uuid": trade_uuid(trade.id),
            "price": num(trade.price),
            "volume": num(trade.amount),
            "funds": num(trade.cost),
            # No fee per trade: Upbit gives the order's (paid_fee) only.
            "trend": "up" if side == "bid" else "down",
            "created_at": kst(trade.ts_ms, micro=True),
            "side": side,
        }

    # -- websockets --
    async def public_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=WS_CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        conn = _Conn(ws=ws, request=request, private=False)
        return await self._serve(conn)

    async def private_ws(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = self._verify_jwt(request.headers.get("Authorization", ""))
        except ApiError as err:
            return error_response(err.status, err.name, err.message)
        ws = web.WebSocketResponse(autoping=True, timeout=WS_CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        conn = _Conn(ws=ws, request=request, private=True, key=payload["access_key"])
        return await self._serve(conn)

    async def _serve(self, conn: _Conn) -> web.WebSocketResponse:
        self.conns.add(conn)
        writer = asyncio.ensure_future(self._writer(conn))
        try:
            async for msg in conn.ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = msg.data if isinstance(msg.data, str) else msg.data.decode()
                    self._on_client_message(conn, data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.conns.discard(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        return conn.ws

    async def _writer(self, conn: _Conn) -> None:
        while True:
            message = await conn.queue.get()
            if conn.ws.closed:
                return
            try:
                await conn.ws.send_bytes(json.dumps(message, separators=(",", ":")).encode())
            except (ConnectionError, RuntimeError):
                return

    def _send(self, conn: _Conn, message: dict[str, Any]) -> None:
        conn.queue.put_nowait(message)

    def _on_client_message(self, conn: _Conn, data: str) -> None:
        if data.strip().upper() == "PING":
            self._send(conn, {"status": "UP"})
            return
        try:
            request = json.loads(data)
        except ValueError:
            self._send(conn, {"error": {"name": "WRONG_FORMAT", "message": "not JSON"}})
            return
        if not isinstance(request, list) or not any(
            isinstance(x, dict) and "ticket" in x for x in request
        ):
            self._send(conn, {"error": {"name": "NO_TICKET", "message": "a ticket is required"}})
            return
        books: dict[str, int] = {}
        my_order, my_order_codes, my_asset = False, None, False
        for item in request:
            if not isinstance(item, dict) or "type" not in item:
                continue
            kind = item["type"]
            codes = [str(c) for c in item.get("codes") or []]
            if kind == "orderbook" and not conn.private:
                for code in codes:
                    name, _, units = code.partition(".")
                    if name in self.venue.by_venue_symbol:
                        books[name] = int(units) if units.isdigit() else BOOK_UNITS
            elif kind == "myOrder" and conn.private:
                my_order = True
                if codes:
                    my_order_codes = (my_order_codes or set()) | set(codes)
            elif kind == "myAsset" and conn.private:
                my_asset = True
        # a new request replaces the connection's subscriptions, as on Upbit
        conn.books = books
        conn.my_order, conn.my_order_codes, conn.my_asset = my_order, my_order_codes, my_asset
        for code, units in books.items():
            message = self.book_message(self.venue.by_venue_symbol[code], units, pad=False)
            self._send(conn, self._ws_book(message, "SNAPSHOT"))

    @staticmethod
    def _ws_book(message: dict[str, Any], stream_type: str) -> dict[str, Any]:
        out = {"type": "orderbook", "code": message["market"]}
        out.update({k: v for k, v in message.items() if k != "market"})
        out["stream_type"] = stream_type
        return out

    # -- engine events --
    def _on_event(self, event: str, **payload: Any) -> None:
        if event == "book":
            self._on_book(payload["symbol"])
        elif event == "order":
            self._on_order(payload["order"], payload["exec"], payload.get("trade"))
        elif event == "balance":
            self._on_balance(payload["key"], payload["assets"])

    def _on_book(self, symbol: str) -> None:
        market = self.venue.markets[symbol]
        cache: dict[int, dict[str, Any]] = {}
        for conn in list(self.conns):
            units = conn.books.get(market.venue_symbol)
            if units is None:
                continue
            if units not in cache:
                cache[units] = self._ws_book(
                    self.book_message(market, units, pad=False), "REALTIME"
                )
            self._send(conn, cache[units])

    def _private_targets(self, key: str, predicate: Callable[[_Conn], bool]) -> list[_Conn]:
        return [c for c in self.conns if c.private and c.key == key and predicate(c)]

    def _on_order(self, order: EngineOrder, exec_type: str, trade: Trade | None) -> None:
        code = order.market.venue_symbol
        targets = self._private_targets(
            order.key,
            lambda c: c.my_order and (c.my_order_codes is None or code in c.my_order_codes),
        )
        if not targets or self.venue.faults.take_mute():
            return
        messages = []
        if exec_type == "NEW":
            messages.append(self.my_order(order, "wait"))
        elif exec_type == "TRADE" and trade is not None:
            messages.append(self.my_order(order, "trade", trade))
            if not order.is_open:
                messages.append(self.my_order(order, self.upbit_state(order)))
        else:  # CANCELED, EXPIRED, REJECTED
            messages.append(self.my_order(order, self.upbit_state(order)))
        for conn in targets:
            for message in messages:
                self._send(conn, message)

    def my_order(self, order: EngineOrder, state: str, trade: Trade | None = None) -> dict:
        """A ``myOrder`` event; with a trade, price and volume are the fill's."""
        view = self.order_view(order) if state != "wait" else self.order_as_accepted(order)
        paid = order.fee(order.market.quote)
        now = _now_ms()
        is_trade = trade is not None
        return {
            "type": "myOrder",
            "code": order.market.venue_symbol,
            "uuid": view["uuid"],
            "ask_bid": view["side"].upper(),
            "order_type": view["ord_type"],
            "state": state,
            "trade_uuid": trade_uuid(trade.id) if is_trade else None,
            "price": fnum(trade.price if is_trade else self._order_price(order)),
            "avg_price": fnum(order.average or ZERO),
            "volume": fnum(trade.amount if is_trade else order.amount),
            "remaining_volume": fnum(order.remaining if order.amount is not None else None),
            "executed_volume": fnum(order.filled),
            "trades_count": len(order.trades),
            "reserved_fee": fnum(self._reserved_fee(order)),
            "remaining_fee": float(view["remaining_fee"]),
            "paid_fee": fnum(paid),
            "locked": float(view["locked"]),
            "executed_funds": fnum(order.cost),
            "time_in_force": view.get("time_in_force"),
            "trade_fee": fnum(trade.fee) if is_trade else None,
            "is_maker": trade.maker if is_trade else None,
            "identifier": view.get("identifier"),
            "smp_type": None,
            "prevented_volume": 0.0,
            "prevented_locked": 0.0,
            "trade_timestamp": trade.ts_ms if is_trade else None,
            "order_timestamp": order.created_ms,
            "timestamp": now,
            "stream_type": "REALTIME",
        }

    def _on_balance(self, key: str, assets: list[str]) -> None:
        targets = self._private_targets(key, lambda c: c.my_asset)
        if not targets or self.venue.faults.take_mute():
            return
        account = self.venue.account(key)
        now = _now_ms()
        message = {
            "type": "myAsset",
            "asset_uuid": str(uuidlib.uuid4()),
            "assets": [
                {"currency": a, "balance": fnum(account.free(a)), "locked": fnum(account.held(a))}
                for a in assets
            ],
            "asset_timestamp": now,
            "timestamp": now,
            "stream_type": "REALTIME",
        }
        for conn in targets:
            self._send(conn, message)

    def _drop(self, kind: str, code: int) -> int:
        """``faults.drop_streams``: close the book ('book') and/or private sockets."""
        dropped = 0
        for conn in list(self.conns):
            if kind != "all" and (kind == "private") != conn.private:
                continue
            dropped += 1
            self.conns.discard(conn)
            if code == 1006:
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                asyncio.ensure_future(conn.ws.close(code=code, message=b"dropped by the fake"))
        return dropped


def add_upbit_routes(app: web.Application, venue: Venue, prefix: str = "/upbit") -> UpbitServer:
    """Mount a fake Upbit over ``venue`` on ``app`` under ``prefix``; the ccxt URLs are then
    ``ccxt_urls('http://HOST:PORT' + prefix)``. The routes run on the app's loop, which must be
    the one the engine is called on."""
    server = UpbitServer(venue, prefix)
    server.add_routes(app)
    return server


def _decimal(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        out = Decimal(str(value))
    except ArithmeticError as err:
        raise ApiError(400, "validation_error", f"{name} does not have a valid value") from err
    if not out.is_finite():
        raise ApiError(400, "validation_error", f"{name} does not have a valid value")
    return out


def _time_param(value: str | None) -> int | None:
    """start_time / end_time: milliseconds or ISO 8601."""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as err:
        raise ApiError(400, "validation_error", "time does not have a valid value") from err


def _now_ms() -> int:
    return int(time.time() * 1000)
