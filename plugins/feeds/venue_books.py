"""`venue_books`: the order books real venues stream (``ccxt`` venues), as they arrive.

Every book a listed venue publishes for a listed symbol becomes an event stamped with the
time it arrived (this process's clock: staleness is judged from what we have seen, not from
what the venue claims). ``fx`` turns a venue's book into an FX series: its mid, e.g. Upbit's
USDT/KRW as KRW per USDT when the report currency is USDT.

A pushed feed: it runs on the wall clock only, and must be the scenario's only feed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from arbframe.components import Feed, FeedEvent
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl


class VenueBooks(Feed):
    type_name = "venue_books"
    interface_version = 2
    description = "Books streamed by real venues (ccxt), and FX from a venue's market."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venues", "symbols"],
        "properties": {
            "venues": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "symbols": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "fx": {
                "type": "object",
                "description": "Currency -> the venue market whose mid is its rate, in units "
                "of the currency per report-currency unit (e.g. KRW: {venue: upbit, symbol: "
                "USDT/KRW}).",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["venue", "symbol"],
                    "properties": {"venue": {"type": "string"}, "symbol": {"type": "string"}},
                },
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        if ctx.info.clock != "wall":
            raise ConfigError("venue_books streams live books: it needs clock: wall", ("type",))
        named = [("venues", i, v) for i, v in enumerate(config["venues"])]
        named += [("fx", c, s["venue"]) for c, s in config.get("fx", {}).items()]
        for *key, venue in named:  # found at wiring, before anything connects
            try:
                streams = hasattr(ctx.venue(venue), "stream_book")
            except KeyError:
                continue  # an unknown venue: the kernel names it, with the known ones
            if not streams:
                raise ConfigError(f"venue {venue!r} streams no books (a ccxt venue does)", key)

    def venues(self) -> list[str]:
        return list(self.config["venues"])

    def symbols(self) -> list[str]:
        return list(self.config["symbols"])

    def events(self) -> AsyncIterator[FeedEvent]:  # type: ignore[override]
        return self._events()

    def _streamer(self, name: str, key: tuple[str | int, ...]) -> Any:
        venue = self.ctx.venue(name)
        if not hasattr(venue, "stream_book"):
            raise self.ctx.error((*self.scenario_path, *key), f"venue {name!r} streams no books")
        return venue

    async def _events(self) -> AsyncIterator[FeedEvent]:
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        streams = []
        for name in self.config["venues"]:
            venue = self._streamer(name, ("venues",))
            for symbol in self.config["symbols"]:

                def book(bids: Any, asks: Any, name: str = name, symbol: str = symbol) -> None:
                    queue.put_nowait((time.time_ns(), name, symbol, bids, asks))

                streams.append(venue.stream_book(venue.market_symbol(symbol), book))
        for currency, source in self.config.get("fx", {}).items():
            venue = self._streamer(source["venue"], ("fx", currency, "venue"))

            def rate(bids: Any, asks: Any, currency: str = currency) -> None:
                if bids and asks:
                    mid = (bids[0][0] + asks[0][0]) / 2
                    queue.put_nowait((time.time_ns(), None, currency, mid, None))

            streams.append(venue.stream_book(source["symbol"], rate))
        tasks = [asyncio.ensure_future(stream) for stream in streams]
        try:
            while True:
                for task in tasks:  # a stream that died is a bug, not an outage: raise it
                    if task.done() and not task.cancelled() and task.exception():
                        raise task.exception()  # type: ignore[misc]
                yield await queue.get()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@hookimpl
def arbframe_register_feeds(register: Any) -> None:
    register(VenueBooks)
