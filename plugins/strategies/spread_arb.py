"""`spread_arb`: cross-venue spread arbitrage on the same asset.

Signal logic only: the kernel's execution layer sizes, sends, retries and unwinds. Prices
are normalised to the report currency through the FX table (price / rate). For a route
"buy A, sell B" on a symbol:

* entry edge (bps) = (bid_B - ask_A) / ask_A * 1e4 - (taker fee A + taker fee B). Enter
  when it is >= `entry_bps` (which may be negative: pay to get in ahead of a reversion).
* while open, the premium still to pay back is (ask_B - bid_A) / bid_A * 1e4; the exit is a
  reversion when it is <= `exit_bps`; with `exit_on_mid_cross`, also when A's mid reaches
  B's (the dislocation has fully reverted).
* estimated trade PnL (bps) = entry spread - premium to pay back - round-trip fees; it
  drives `take_profit_bps`, `stop_loss_bps` and `partial_close`; `max_hold` bounds time.
Stop-loss and max-hold exits are urgent: they act even on books older than the
execution's `max_book_age`; reversion and take-profit wait for fresh books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from arbframe.components import Strategy
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import Book, Route, Trade, TradeState
from arbframe.schema import DURATION
from arbframe.units import parse_duration


@dataclass
class _Symbol:
    symbol: str
    books: list[tuple[Book, str]]  # (live book, its quote currency), in venue order
    # Entry routes, in order: (index of the buy book, of the sell book, the route, fees bps).
    routes: list[tuple[int, int, Route, float]] = field(default_factory=list)
    trade: Trade | None = None  # the open (or halted) trade, one at a time
    legs: tuple[str, str, float] = ("", "", 0.0)  # its buy venue, sell venue, both fees
    partial_done: bool = False


class SpreadArb(Strategy):
    type_name = "spread_arb"
    interface_version = 2
    description = "Cross-venue spread arbitrage: reversion / mid-cross exit, TP, SL, max hold."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["entry_bps", "exit_bps", "size"],
        "properties": {
            "symbols": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "venues": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "entry_bps": {"type": "number"},
            "exit_bps": {"type": "number"},
            "exit_on_mid_cross": {"type": "boolean"},
            "take_profit_bps": {"type": "number", "exclusiveMinimum": 0},
            "stop_loss_bps": {"type": "number", "exclusiveMinimum": 0},
            "max_hold": DURATION,
            "size": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {
                    "quote": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "description": "Notional per trade in the report currency.",
                    },
                    "base": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "description": "Amount of the asset per trade.",
                    },
                },
            },
            "partial_close": {
                "type": "object",
                "additionalProperties": False,
                "required": ["at_bps", "fraction"],
                "properties": {
                    "at_bps": {"type": "number"},
                    "fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                },
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.entry_bps = float(config["entry_bps"])
        self.exit_bps = float(config["exit_bps"])
        self.mid_cross = config.get("exit_on_mid_cross", False)
        self.take_profit_bps = config.get("take_profit_bps")
        self.stop_loss_bps = config.get("stop_loss_bps")
        self.max_hold = parse_duration(config["max_hold"]) if "max_hold" in config else None
        size = config["size"]
        self.size = {k: Decimal(str(v)) for k, v in size.items()}
        self.partial = config.get("partial_close")
        self.states: dict[str, _Symbol] = {}
        self._timed: set[str] = set()  # trades whose max_hold timer is set
        self.cooldowns = ctx.execution.cooldowns
        self._routes()

    def _routes(self) -> None:
        """Every symbol on >= 2 of the venues, and its routes (checked at wiring)."""
        market = self.ctx.market
        names = self.config.get("venues") or market.venues
        for i, name in enumerate(names):
            if name not in market.venues:
                raise ConfigError(
                    f"unknown venue {name!r} (venues: {', '.join(market.venues)})", ("venues", i)
                )
        listed = self.config.get("symbols")
        for i, symbol in enumerate(listed or market.symbols()):
            venues = [v for v in market.quoting(symbol) if v in names]
            if len(venues) < 2:
                if listed:
                    raise ConfigError(
                        f"{symbol} is quoted on {len(venues)} of the venues by the feeds; "
                        "spread_arb needs at least two",
                        ("symbols", i),
                    )
                continue
            books = [(market.book(v, symbol), market.instrument(v, symbol).quote) for v in venues]
            fee = [float(market.instrument(v, symbol).fees.taker_bps) for v in venues]
            routes = [
                (i, j, Route.spread(symbol, buy, sell), fee[i] + fee[j])
                for i, buy in enumerate(venues)
                for j, sell in enumerate(venues)
                if i != j
            ]
            self.states[symbol] = _Symbol(symbol, books, routes)

    # ---- per instant (the hot path) ---------------------------------------------------------

    def on_market(self, ts: int, symbol: str) -> None:
        st = self.states.get(symbol)
        if st is None:
            return
        if st.trade is None:
            until = self.cooldowns.get(symbol)
            if until is None or ts >= until:
                self._look_for_entry(st)
        elif st.trade.state is TradeState.OPEN:
            self._manage(ts, st, st.trade)

    def _look_for_entry(self, st: _Symbol) -> None:
        fx = self.ctx.market.fx
        bids, asks = [], []  # best prices in the report currency, in venue order
        for book, quote in st.books:
            if not book.bids or not book.asks:
                return
            rate = fx[quote]
            bids.append(book.bids[0][0] / rate)
            asks.append(book.asks[0][0] / rate)
        for buy, sell, route, fees in st.routes:
            ask = asks[buy]
            if (bids[sell] - ask) / ask * 1e4 - fees >= self.entry_bps:
                stop = self.stop_loss_bps if self.stop_loss_bps is not None else 100.0
                st.trade = self.ctx.execution.enter(route, **self.size, risk_bps=stop)
                st.legs = (route.legs[0].venue, route.legs[1].venue, fees)
                st.partial_done = False
                return

    def _manage(self, ts: int, st: _Symbol, trade: Trade) -> None:
        market = self.ctx.market
        buy, sell, fees = st.legs
        a = market.top(buy, st.symbol)
        b = market.top(sell, st.symbol)
        if a is None or b is None:
            return
        to_pay_back = (b[1] - a[0]) / a[0] * 1e4
        estimate = (trade.entry_spread_bps or 0.0) - to_pay_back - 2 * fees
        urgent = False
        if to_pay_back <= self.exit_bps:
            reason = "reversion"
        elif self.mid_cross and a[0] + a[1] >= b[0] + b[1]:
            reason = "mid_cross"
        elif self.take_profit_bps is not None and estimate >= self.take_profit_bps:
            reason = "take_profit"
        elif self.stop_loss_bps is not None and estimate <= -self.stop_loss_bps:
            reason, urgent = "stop_loss", True
        elif self.max_hold is not None and ts - trade.opened_at >= self.max_hold:
            reason, urgent = "max_hold", True
        else:
            if self.partial and not st.partial_done and estimate >= self.partial["at_bps"]:
                st.partial_done = True
                keep = trade.size * Decimal(repr(1 - self.partial["fraction"]))
                self.ctx.execution.resize(trade, keep)
            return
        self.ctx.execution.exit(trade, reason, urgent=urgent)

    # ---- trades -----------------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        st = self.states[trade.symbol]
        if trade.state is TradeState.CLOSED:
            if st.trade is trade:
                st.trade = None
        elif (
            trade.state is TradeState.OPEN
            and self.max_hold is not None
            and trade.trade_id not in self._timed
        ):
            # Time exits must not wait for a quote: a quiet market is when they matter.
            self._timed.add(trade.trade_id)
            due = trade.opened_at + self.max_hold - self.ctx.clock.now
            self.ctx.set_timer(due, (trade.symbol, trade.trade_id))

    def on_timer(self, ts: int, payload: Any) -> None:
        symbol, trade_id = payload
        trade = self.states[symbol].trade
        if trade is not None and trade.trade_id == trade_id and trade.state is TradeState.OPEN:
            self.ctx.execution.exit(trade, "max_hold", urgent=True)


@hookimpl
def arbframe_register_strategies(register: Any) -> None:
    register(SpreadArb)
