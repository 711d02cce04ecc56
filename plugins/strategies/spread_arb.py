"""`spread_arb`: cross-venue spread arbitrage on the same asset.

Prices are normalised to the report currency through the FX table (price / rate).
For a route "buy A, sell B" on a symbol:

* entry edge (bps) = (bid_B - ask_A) / ask_A * 1e4 - (taker fee A + taker fee B). Enter,
  both legs together, when it is >= `entry_bps`.
* while open, the premium still to pay back is (ask_B - bid_A) / bid_A * 1e4; the exit is a
  reversion when it is <= `exit_bps`.
* estimated trade PnL (bps) = entry spread - premium to pay back - round-trip fees; it
  drives `take_profit_bps`, `stop_loss_bps` and `partial_close`; `max_hold` bounds time.

Legs are managed against a target exposure per venue (+amount on A, -amount on B while
open, 0 when closing). Whenever no order of the trade is in flight, the strategy compares
the fills to the target and sends what is missing; after `leg_risk.max_retries` failed
attempts at entry it unwinds to the hedged amount (never leaving one leg naked), and if
even that fails it raises a P0 alert and halts the symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from arbframe.components import Strategy
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import BUY, SELL, Action, Book, Intent, Order, Trade
from arbframe.schema import DURATION
from arbframe.units import parse_duration

ZERO = Decimal(0)


@dataclass
class SymbolState:
    symbol: str
    books: list[tuple[str, Book, str]]  # (venue, its live book of the symbol, quote currency)
    # Entry routes to check, in order: (index in books to buy, to sell, their taker fees).
    routes: list[tuple[int, int, float, float]] = field(default_factory=list)
    trade: Trade | None = None
    phase: str = "flat"  # flat, entering, open, partial, exiting, unwinding, halted
    target: dict[str, Decimal] = field(default_factory=dict)
    inflight: set[str] = field(default_factory=set)
    retries: int = 0
    orders_sent: int = 0
    partial_done: bool = False
    exit_reason: str = ""
    exit_spread: float | None = None
    trades: int = 0


class SpreadArb(Strategy):
    type_name = "spread_arb"
    description = "Cross-venue spread arbitrage with reversion exit, TP/SL, max hold, leg risk."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["entry_bps", "exit_bps", "size"],
        "properties": {
            "symbols": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "venues": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "entry_bps": {"type": "number", "minimum": 0},
            "exit_bps": {"type": "number"},
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
            "leg_risk": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "policy": {"enum": ["unwind", "rebalance"]},
                    "max_retries": {"type": "integer", "minimum": 0, "maximum": 20},
                },
            },
            "close_at_end": {"type": "boolean"},
            "max_book_age": {
                **DURATION,
                "description": "Ignore entries when a book is older than this (stale quotes).",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, run: Any) -> None:
        super().__init__(config, name=name, run=run)
        self.entry_bps = float(config["entry_bps"])
        self.exit_bps = float(config["exit_bps"])
        self.take_profit_bps = config.get("take_profit_bps")
        self.stop_loss_bps = config.get("stop_loss_bps")
        self.max_hold = parse_duration(config["max_hold"]) if "max_hold" in config else None
        self.size = config["size"]
        # Notional per trade when sized in the quote currency; exact, converted once.
        self.quote_notional = Decimal(str(self.size["quote"])) if "quote" in self.size else None
        self.partial = config.get("partial_close")
        leg_risk = config.get("leg_risk", {})
        self.rebalance = leg_risk.get("policy", "unwind") == "rebalance"
        self.max_retries = leg_risk.get("max_retries", 2)
        self.close_at_end = config.get("close_at_end", True)
        age = config.get("max_book_age")
        self.max_book_age = parse_duration(age) if age is not None else None
        self.states: dict[str, SymbolState] = {}
        self.by_order: dict[str, SymbolState] = {}
        self._check_universe()

    def _check_universe(self) -> None:
        venues = self.run.venues
        for i, name in enumerate(self.config.get("venues", [])):
            if name not in venues:
                raise ConfigError(
                    f"unknown venue {name!r} (venues: {', '.join(venues)})", ("venues", i)
                )
        names = self.config.get("venues") or list(venues)
        for i, symbol in enumerate(self.config.get("symbols", [])):
            quoted = [n for n in names if symbol in venues[n].markets]
            if len(quoted) < 2:
                raise ConfigError(
                    f"{symbol} is quoted on {len(quoted)} of the venues by the "
                    "feeds; spread_arb needs at least two",
                    ("symbols", i),
                )

    # ---- wiring -------------------------------------------------------------------------

    def on_start(self) -> None:
        engine = self.run.engine
        self.engine, self.ledger, self.venues = engine, engine.ledger, engine.venues
        self.fx = engine.fx_float
        self.fee_bps = {name: float(v.taker_bps) for name, v in self.venues.items()}
        names = self.config.get("venues") or list(self.venues)
        symbols = self.config.get("symbols") or sorted(
            {s for n in names for s in self.venues[n].markets}
        )
        fee = self.fee_bps
        for symbol in symbols:
            books = [
                (n, self.venues[n].books[symbol], self.venues[n].quote)
                for n in names
                if symbol in self.venues[n].markets
            ]
            if len(books) >= 2:
                routes = [
                    (i, j, fee[buy], fee[sell])
                    for i, (buy, _, _) in enumerate(books)
                    for j, (sell, _, _) in enumerate(books)
                    if buy is not sell
                ]
                self.states[symbol] = SymbolState(symbol, books, routes)

    # ---- per quote (hot path) -----------------------------------------------------------

    def on_quote(self, ts: int, venue: str, symbol: str) -> None:
        st = self.states.get(symbol)
        if st is None or st.inflight:
            return
        if st.phase == "flat":
            self._look_for_entry(ts, st)
        elif st.phase == "open":
            self._manage(ts, st)

    def _top(self, venue: str, symbol: str) -> tuple[float, float] | None:
        """Best bid and ask of a venue, in the report currency."""
        book = self.venues[venue].books[symbol]
        if not book.bids or not book.asks:
            return None
        rate = self.fx[self.venues[venue].quote]
        return book.bids[0][0] / rate, book.asks[0][0] / rate

    def _look_for_entry(self, ts: int, st: SymbolState) -> None:
        until = self.engine.cooldowns.get(st.symbol)
        if until is not None and ts < until:
            return
        fx = self.fx
        bids, asks = [], []  # best prices in the report currency, in the order of st.books
        oldest = ts - self.max_book_age if self.max_book_age is not None else None
        for _, book, quote in st.books:
            if not book.bids or not book.asks or (oldest is not None and book.ts < oldest):
                return
            rate = fx[quote]
            bids.append(book.bids[0][0] / rate)
            asks.append(book.asks[0][0] / rate)
        for buy, sell, fee_buy, fee_sell in st.routes:
            ask = asks[buy]
            spread = (bids[sell] - ask) / ask * 1e4
            if spread - fee_buy - fee_sell >= self.entry_bps:
                self._enter(ts, st, st.books[buy][0], st.books[sell][0], spread, ask)
                return

    def _manage(self, ts: int, st: SymbolState) -> None:
        trade = st.trade
        assert trade is not None
        a = self._top(trade.buy_venue, st.symbol)
        b = self._top(trade.sell_venue, st.symbol)
        if a is None or b is None:
            return
        to_pay_back = (b[1] - a[0]) / a[0] * 1e4
        fees = 2 * (self.fee_bps[trade.buy_venue] + self.fee_bps[trade.sell_venue])
        estimate = trade.entry_spread_bps - to_pay_back - fees
        reason = ""
        if to_pay_back <= self.exit_bps:
            reason = "reversion"
        elif self.take_profit_bps is not None and estimate >= self.take_profit_bps:
            reason = "take_profit"
        elif self.stop_loss_bps is not None and estimate <= -self.stop_loss_bps:
            reason = "stop_loss"
        elif self.max_hold is not None and ts - trade.opened_at >= self.max_hold:
            reason = "max_hold"
        elif self.partial and not st.partial_done and estimate >= self.partial["at_bps"]:
            self._partial_close(st)
            return
        if reason:
            self._exit(st, reason, to_pay_back)

    # ---- lifecycle ----------------------------------------------------------------------

    def _enter(
        self, ts: int, st: SymbolState, buy: str, sell: str, spread: float, ask: float
    ) -> None:
        if self.quote_notional is not None:
            notional = self.quote_notional
        else:
            notional = Decimal(str(self.size["base"])) * Decimal(repr(ask))
        decision = self.engine.check_entry(Intent(ts, st.symbol, buy, sell, notional))
        if decision.action in (Action.BLOCK, Action.COOLDOWN):
            return
        if decision.action is Action.DEGRADE:
            notional *= Decimal(repr(decision.scale))
        ma, mb = self.venues[buy].markets[st.symbol], self.venues[sell].markets[st.symbol]
        step = max(ma.amount_step, mb.amount_step)
        amount = (notional / Decimal(repr(ask))).quantize(step, ROUND_DOWN)
        if amount < max(ma.min_amount, mb.min_amount) or not self._affordable(
            buy, sell, st.symbol, amount
        ):
            return
        notional = (amount * Decimal(repr(ask))).quantize(Decimal("1e-8"))
        stop = self.stop_loss_bps if self.stop_loss_bps is not None else 100
        st.trades += 1
        trade = Trade(
            trade_id=f"{st.symbol}-{st.trades}",
            symbol=st.symbol,
            buy_venue=buy,
            sell_venue=sell,
            opened_at=ts,
            entry_spread_bps=spread,
            notional=notional,
            risk=(notional * Decimal(repr(stop)) / 10_000).quantize(Decimal("1e-8")),
        )
        self.ledger.open_trade(trade)
        st.trade, st.phase, st.retries, st.orders_sent, st.partial_done = (
            trade,
            "entering",
            0,
            0,
            False,
        )
        st.target = {buy: amount, sell: -amount}
        self._send_missing(st)

    def _affordable(self, buy: str, sell: str, symbol: str, amount: Decimal) -> bool:
        """Both legs must be coverable by free balances, or a leg would be rejected."""
        ask = self.venues[buy].books[symbol].asks[0][0]
        cost = amount * Decimal(repr(ask)) * Decimal("1.01")  # headroom for slippage and fees
        return (
            self.venues[buy].available(self.venues[buy].quote) >= cost
            and self.venues[sell].available(symbol) >= amount
        )

    def _partial_close(self, st: SymbolState) -> None:
        trade = st.trade
        assert trade is not None
        step = max(self.venues[v].markets[st.symbol].amount_step for v in st.target)
        keep = (st.target[trade.buy_venue] * Decimal(repr(1 - self.partial["fraction"]))).quantize(
            step, ROUND_DOWN
        )
        st.partial_done = True
        if keep <= 0:
            return
        st.phase, st.retries = "partial", 0
        st.target = {trade.buy_venue: keep, trade.sell_venue: -keep}
        self._send_missing(st)

    def _exit(self, st: SymbolState, reason: str, spread: float | None) -> None:
        st.phase, st.retries, st.exit_reason, st.exit_spread = "exiting", 0, reason, spread
        st.target = dict.fromkeys(st.target, ZERO)
        self._send_missing(st)

    def _send_missing(self, st: SymbolState) -> None:
        """Send, on every venue, the order that moves the trade's exposure to its target."""
        trade = st.trade
        assert trade is not None
        exposure = self.ledger.exposure(trade)
        sent = False
        for venue, target in st.target.items():
            diff = target - exposure.get(venue, ZERO)
            if not diff:
                continue
            side = BUY if diff > 0 else SELL
            book = self.venues[venue].books[st.symbol]
            st.orders_sent += 1
            order = Order(
                client_id=f"af-{trade.trade_id}-{st.orders_sent}",
                venue=venue,
                symbol=st.symbol,
                side=side,
                amount=abs(diff),
                trade_id=trade.trade_id,
                role=st.phase,
                reference_price=(book.asks if side == BUY else book.bids)[0][0],
            )
            st.inflight.add(order.client_id)
            self.by_order[order.client_id] = st
            self.engine.submit(order)
            sent = True
        if not sent:
            self._settled(st)

    # ---- order updates ------------------------------------------------------------------

    def on_order_update(self, order: Order) -> None:
        st = self.by_order.get(order.client_id)
        if st is None or not order.status.final:
            return
        del self.by_order[order.client_id]
        st.inflight.discard(order.client_id)
        if not st.inflight:
            self._settled(st)

    def _settled(self, st: SymbolState) -> None:
        """All of the trade's orders are final: move on, retry, or escalate."""
        trade = st.trade
        assert trade is not None
        exposure = self.ledger.exposure(trade)
        if all(exposure.get(v, ZERO) == t for v, t in st.target.items()):
            return self._phase_done(st, trade)
        st.retries += 1
        if st.phase == "entering" and (not self.rebalance or st.retries > self.max_retries):
            hedged = min(exposure.get(trade.buy_venue, ZERO), -exposure.get(trade.sell_venue, ZERO))
            hedged = max(hedged, ZERO)
            st.phase, st.retries = "unwinding", 0
            st.target = {trade.buy_venue: hedged, trade.sell_venue: -hedged}
            self.engine.alert(
                "P2",
                f"leg mismatch on {trade.trade_id}",
                f"exposure {dict(exposure)}; unwinding to {hedged}",
            )
        elif st.retries > self.max_retries:
            st.phase = "halted"
            self.engine.alert(
                "P0",
                f"naked leg on {trade.trade_id}",
                f"exposure {dict(exposure)} != target {st.target}; symbol halted",
            )
            return
        self._send_missing(st)

    def _phase_done(self, st: SymbolState, trade: Trade) -> None:
        if all(t == 0 for t in st.target.values()):
            reason = (
                st.exit_reason
                if st.phase == "exiting"
                else ("leg_failure" if trade.fills else "entry_failed")
            )
            st.phase, st.trade = "flat", None
            self.engine.trade_closed(trade.trade_id, reason, st.exit_spread)
            st.exit_reason, st.exit_spread = "", None
            return
        just_opened = st.phase in ("entering", "unwinding")
        st.phase = "open"
        if self.engine.closing and self.close_at_end:
            self._exit(st, "end_of_run", None)
        elif just_opened and self.max_hold is not None:
            # Time exits must not wait for a quote: a quiet market is when they matter.
            due = max(0, trade.opened_at + self.max_hold - self.engine.now)
            self.engine.set_timer(due, (st.symbol, trade.trade_id))

    def on_timer(self, ts: int, payload: Any) -> None:
        symbol, trade_id = payload
        st = self.states[symbol]
        if (
            st.trade is not None
            and st.trade.trade_id == trade_id
            and st.phase == "open"
            and not st.inflight
        ):
            self._exit(st, "max_hold", self._current_spread(st))

    def on_end(self) -> None:
        if not self.close_at_end:
            return
        for st in self.states.values():
            if st.phase == "open" and not st.inflight:
                self._exit(st, "end_of_run", self._current_spread(st))

    def _current_spread(self, st: SymbolState) -> float | None:
        trade = st.trade
        assert trade is not None
        a = self._top(trade.buy_venue, st.symbol)
        b = self._top(trade.sell_venue, st.symbol)
        return None if a is None or b is None else (b[1] - a[0]) / a[0] * 1e4


@hookimpl
def arbframe_register_strategies(register: Any) -> None:
    register(SpreadArb)
