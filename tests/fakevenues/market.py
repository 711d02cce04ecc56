"""A seeded synthetic market: books for the fake venues, refreshed every ``interval``.

BTC/USDT on Binance follows a random walk around ``btc_usdt``; on Upbit, USDT/KRW walks around
``usdt_krw`` and BTC/KRW sits at BTC/USDT x USDT/KRW times a "kimchi premium" that oscillates:
``premium_bps + amplitude_bps * sin(2 pi t / period_s)``, t counted in steps x interval (so a
seed gives the same books every run). The default (60 bp around 0, period 8 s) crosses a 20 bp
spread-arb threshold plus both venues' fees every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from decimal import Decimal
from typing import Any

from .engine import Level, Venue, dec, floor_to, run_on_loop

__all__ = ["SyntheticMarket"]


class SyntheticMarket:
    def __init__(
        self,
        binance: Venue | None = None,
        upbit: Venue | None = None,
        *,
        seed: int = 1,
        interval: float = 0.1,
        levels: int = 10,
        btc_usdt: float = 60000.0,
        usdt_krw: float = 1350.0,
        premium_bps: float = 0.0,
        amplitude_bps: float = 60.0,
        period_s: float = 8.0,
        vol_bps: float = 1.0,
    ) -> None:
        self.binance = binance
        self.upbit = upbit
        self.rng = random.Random(seed)
        self.interval = interval
        self.levels = levels
        self.btc_usdt = btc_usdt
        self.usdt_krw = usdt_krw
        self.premium_center_bps = premium_bps
        self.amplitude_bps = amplitude_bps
        self.period_s = period_s
        self.vol_bps = vol_bps
        self.steps = 0
        self.frozen = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    # -- control (thread-safe) --
    def freeze(self) -> None:
        """Stop moving the books (the last ones stay; ``set_books`` still works)."""
        self.frozen = True

    def unfreeze(self) -> None:
        self.frozen = False

    def set_books(self, venue: Venue | str, symbol: str, bids: Any, asks: Any) -> None:
        """Freeze the market and set an exact book (best first, (price, size) pairs)."""
        self.frozen = True
        target = self._venue(venue)
        run_on_loop(self.loop, lambda: target.set_book(symbol, bids, asks))

    def step(self) -> None:
        """One update of every book now (whether frozen or not)."""
        run_on_loop(self.loop, self._step)

    def premium(self) -> float:
        """The current premium of BTC/KRW over BTC/USDT x USDT/KRW, in bp."""
        t = self.steps * self.interval
        return self.premium_center_bps + self.amplitude_bps * math.sin(
            2 * math.pi * t / self.period_s
        )

    # -- running --
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the update task on ``loop`` (call from any thread); one update runs first."""
        self.loop = loop

        def go() -> None:
            self._step()
            self._task = loop.create_task(self._run())

        run_on_loop(loop, go)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.frozen:
                self._step()

    def _venue(self, venue: Venue | str) -> Venue:
        if isinstance(venue, Venue):
            return venue
        found = {"binance": self.binance, "upbit": self.upbit}.get(venue)
        if found is None:
            raise KeyError(venue)
        return found

    def _walk(self, price: float) -> float:
        return price * (1 + self.rng.gauss(0, self.vol_bps / 1e4))

    def _step(self) -> None:
        self.steps += 1
        self.btc_usdt = self._walk(self.btc_usdt)
        self.usdt_krw = self._walk(self.usdt_krw)
        if self.binance is not None and "BTC/USDT" in self.binance.markets:
            self._set(self.binance, "BTC/USDT", self.btc_usdt, 0.05, 1.5, spacing_bps=0.5)
        if self.upbit is not None:
            if "USDT/KRW" in self.upbit.markets:
                self._set(self.upbit, "USDT/KRW", self.usdt_krw, 500, 20000, spacing_bps=0.0)
            if "BTC/KRW" in self.upbit.markets:
                krw = self.btc_usdt * self.usdt_krw * (1 + self.premium() / 1e4)
                self._set(self.upbit, "BTC/KRW", krw, 0.01, 0.5, spacing_bps=0.5)

    def _set(
        self, venue: Venue, symbol: str, mid: float, size_lo: float, size_hi: float, spacing_bps
    ) -> None:
        market = venue.markets[symbol]
        tick = market.tick
        spacing = max(tick, floor_to(dec(round(mid * spacing_bps / 1e4, 8)), tick))
        best_bid = floor_to(dec(round(mid, 8)), tick)
        best_ask = best_bid + tick
        bids: list[Level] = []
        asks: list[Level] = []
        for i in range(self.levels):
            bids.append((best_bid - spacing * i, self._size(size_lo, size_hi, market.step)))
            asks.append((best_ask + spacing * i, self._size(size_lo, size_hi, market.step)))
        venue.set_book(symbol, bids, asks)

    def _size(self, lo: float, hi: float, step: Decimal) -> Decimal:
        size = floor_to(dec(round(self.rng.uniform(lo, hi), 8)), step)
        return max(size, step)
