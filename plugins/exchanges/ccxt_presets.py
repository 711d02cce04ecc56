"""What the `ccxt` venue knows about particular exchanges: quote currency, fee schedule, the
ccxt options that keep start-up to one request, how a market order is sent, and where each
API lives when the venue is pointed at a local server (``url:``, e.g. a test fake).

A venue whose exchange has no preset works from its config alone (``quote:`` and ``fees:``
are then required) and cannot be pointed at a local server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    quote: str
    """Quote currency of the markets arbframe trades there."""
    taker_bps: str
    maker_bps: str
    fee_asset: str
    """``quote``, ``base``, ``received`` or an asset code (see ``FeeSchedule.asset``)."""
    market_orders: str
    """``native`` (the exchange takes a market order by base amount) or ``ioc_limit`` (sent as
    a limit order at the best price plus ``ioc_slippage_bps``, immediate-or-cancel)."""
    options: dict[str, Any] = field(default_factory=dict)
    """ccxt options."""
    local_urls: Callable[[str], dict[str, Any]] | None = None
    """``urls['api']`` for a server at an http base URL (the whole dict: ccxt merges a partial
    one with the real hosts)."""
    quote_unit: str = "1e-8"
    min_notional: str = "0"
    """Smallest order value in the quote currency, where ccxt's public markets omit it."""
    tick_ladder: tuple[tuple[int, str], ...] = ()
    """Price tick by price level, highest first, where the tick depends on the price (ccxt's
    markets then give none): the tick at the price when the session starts is used."""


def _ws(base: str) -> str:
    return "ws" + base.removeprefix("http")


def _binance_urls(base: str) -> dict[str, Any]:
    ws = _ws(base)
    return {
        "public": f"{base}/api/v3",
        "private": f"{base}/api/v3",
        "v1": f"{base}/api/v1",
        "sapi": f"{base}/sapi/v1",
        "ws": {"spot": f"{ws}/ws", "margin": f"{ws}/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}},
    }


def _upbit_urls(base: str) -> dict[str, Any]:
    # Upbit adds /v1/ itself; the private stream is the public one + /private.
    return {"public": base, "private": base, "ws": f"{_ws(base)}/websocket/v1"}


PRESETS: dict[str, Preset] = {
    # Spot, USDT markets; 0.10 % taker and maker, charged in the asset the fill delivers
    # (no BNB discount: a BNB fee would need BNB's price).
    "binance": Preset(
        quote="USDT",
        taker_bps="10",
        maker_bps="10",
        fee_asset="received",
        market_orders="native",
        options={
            # exchangeInfo for spot only, no currencies or margin pairs: one request at start.
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "fetchOpenOrders": {"warnWithoutSymbol": False},
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
        local_urls=_binance_urls,
    ),
    # KRW markets; 0.05 % charged in KRW. A market buy there is given by its KRW cost, not
    # by amount: arbframe sends a marketable limit order, immediate-or-cancel, instead.
    "upbit": Preset(
        quote="KRW",
        taker_bps="5",
        maker_bps="5",
        fee_asset="quote",
        market_orders="ioc_limit",
        local_urls=_upbit_urls,
        min_notional="5000",
        tick_ladder=(
            (2_000_000, "1000"),
            (1_000_000, "500"),
            (500_000, "100"),
            (100_000, "50"),
            (10_000, "10"),
            (1_000, "1"),
            (100, "0.1"),
            (10, "0.01"),
            (1, "0.001"),
            (0, "0.0001"),
        ),
    ),
}
