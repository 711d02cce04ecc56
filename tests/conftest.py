"""Shared helpers: small two-venue scenarios built from scripted books."""

from __future__ import annotations

import copy
from typing import Any

import pytest


def two_venue_scenario(events: list[dict[str, Any]], **strategy: Any) -> dict[str, Any]:
    """Venues `a` (taker 10 bp) and `b` (taker 20 bp), both in USDT, 10 ms latency."""
    market = {"default": {"price_tick": "0.01", "amount_step": "0.001"}}
    return {
        "name": "hand_checked",
        "duration": "1h",
        "venues": {
            "a": {
                "type": "paper",
                "quote": "USDT",
                "fees": {"taker_bps": 10},
                "latency": "10ms",
                "markets": market,
            },
            "b": {
                "type": "paper",
                "quote": "USDT",
                "fees": {"taker_bps": 20},
                "latency": "10ms",
                "markets": market,
            },
        },
        "capital": {"a": {"USDT": 10000, "BTC": 1}, "b": {"USDT": 10000, "BTC": 1}},
        "feeds": [{"type": "scripted", "size": 10, "events": copy.deepcopy(events)}],
        "strategy": {
            "type": "spread_arb",
            "entry_bps": 10,
            "exit_bps": 5,
            "size": {"base": 0.5},
            **strategy,
        },
    }


def book(at: str, venue: str, bid: float, ask: float, **extra: Any) -> dict[str, Any]:
    return {"at": at, "venue": venue, "symbol": "BTC", "bid": bid, "ask": ask, **extra}


@pytest.fixture
def scenario() -> Any:
    return two_venue_scenario
