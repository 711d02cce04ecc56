"""`spread_arb`: cross-venue spread arbitrage on the same asset.

Signal logic only: the kernel's routing service (arbframe.routing) prices and scores the
routes, its execution layer sizes, sends, retries and unwinds. Prices are normalised to the
report currency through the FX table (price / rate). For a route "buy A, sell B" on a symbol:

* entry edge (bps) = (bid_B - ask_A) / ask_A * 1e4 - (taker fee A + taker fee B). A route
  clears when it is >= `entry_bps` (which may be negative: pay to get in ahead of a
  reversion). Of the routes that clear, enter the one the router scores best (`routing:
  weights`), sized min(`size`, the depth the books support at `entry_bps`); at most one
  entry per symbol per instant, up to `max_open_per_symbol` trades open at once.
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
from arbframe.model import Route, Trade, TradeState
from arbframe.routing import ROUTING_SCHEMA, RouteScanner, Weights
from arbframe.schema import DURATION
from arbframe.units import parse_duration

# What a snapshot leaves out: the wiring, and the routes (rebuilt at construction).
_NOT_STATE = frozenset({"ctx", "config", "name", "scenario_path", "states"})


@dataclass
class _Symbol:
    symbol: str
    scanner: RouteScanner  # its routes, priced and scored by the kernel's routing service
    trades: list[Trade] = field(default_factory=list)  # open (or halted), oldest first


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
            "max_open_per_symbol": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "Trades open at once per symbol, each managed on its own.",
            },
            "routing": {
                **ROUTING_SCHEMA,
                "properties": {
                    **ROUTING_SCHEMA["properties"],
                    "size_to_depth": {
                        "type": "boolean",
                        "default": True,
                        "description": "Cap the size at the depth the books hold at entry_bps.",
                    },
                },
            },
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
        # what scanner.best(quote, base) takes, positionally: the per-quote path
        self.wanted = tuple(float(size[k]) if k in size else None for k in ("quote", "base"))
        self.max_open = config.get("max_open_per_symbol", 1)
        routing = config.get("routing", {})
        self.weights = Weights.from_config(routing, ("routing",))
        self.size_to_depth = routing.get("size_to_depth", True)
        self.partial = config.get("partial_close")
        self.states: dict[str, _Symbol] = {}
        self._timed: set[str] = set()  # trades whose max_hold timer is set
        self._partial: set[str] = set()  # trades already partially closed
        self._legs: dict[str, tuple[str, str, float]] = {}  # trade -> buy, sell venue, fees
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
            scanner = self.ctx.routes.scanner(
                symbol, entry_bps=self.entry_bps, venues=venues, weights=self.weights
            )
            self.states[symbol] = _Symbol(symbol, scanner)

    # ---- per instant (the hot path) ---------------------------------------------------------

    def on_market(self, ts: int, symbol: str) -> None:
        st = self.states.get(symbol)
        if st is None:
            return
        trades = st.trades
        room = len(trades) < self.max_open  # before managing: a close frees a slot next time
        for trade in tuple(trades) if trades else ():  # an exit may close one synchronously
            if trade.state is TradeState.OPEN:
                self._manage(ts, st, trade)
        if room:
            until = self.cooldowns.get(symbol)
            if until is None or ts >= until:
                self._look_for_entry(st)

    def _look_for_entry(self, st: _Symbol) -> None:
        opp = st.scanner.best(*self.wanted, self._vet)
        if opp is None:
            return
        # The strategy's own size unless the books hold less at the threshold.
        capped = opp.depth_limited and self.size_to_depth
        size = {"base": Decimal(repr(opp.base))} if capped else self.size
        stop = self.stop_loss_bps if self.stop_loss_bps is not None else 100.0
        trade = self.ctx.execution.enter(
            opp.route, **size, risk_bps=stop, expected_slippage_bps=opp.expected_slippage_bps
        )
        if trade is not None:
            st.trades.append(trade)

    def _vet(self, route: Route) -> bool:
        # Guards and cooldowns before a route is priced in depth (enter reuses the answer).
        return self.ctx.execution.vet(route, **self.size)

    def _manage(self, ts: int, st: _Symbol, trade: Trade) -> None:
        market = self.ctx.market
        legs = self._legs.get(trade.trade_id)
        if legs is None:  # once per trade: this runs at every instant it is open
            buy, sell = trade.legs[0].venue, trade.legs[1].venue
            legs = self._legs[trade.trade_id] = (buy, sell, st.scanner.fees[trade.route])
        buy, sell, fees = legs
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
            partial = self.partial
            if partial and estimate >= partial["at_bps"] and trade.trade_id not in self._partial:
                self._partial.add(trade.trade_id)
                keep = trade.size * Decimal(repr(1 - self.partial["fraction"]))
                self.ctx.execution.resize(trade, keep)
            return
        self.ctx.execution.exit(trade, reason, urgent=urgent)

    # ---- trades -----------------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        st = self.states.get(trade.symbol)
        if st is None:
            return
        if trade.state is TradeState.CLOSED:
            if trade in st.trades:  # not a kernel recovery trade (-late<n>)
                st.trades.remove(trade)
                self._timed.discard(trade.trade_id)
                self._partial.discard(trade.trade_id)
                self._legs.pop(trade.trade_id, None)
        elif (
            trade.state is TradeState.OPEN
            and self.max_hold is not None
            and trade.trade_id not in self._timed
        ):
            # Time exits must not wait for a quote: a quiet market is when they matter.
            self._timed.add(trade.trade_id)
            due = trade.opened_at + self.max_hold - self.ctx.clock.now
            self.ctx.set_timer(due, (trade.symbol, trade.trade_id))

    # ---- snapshots: every attribute, as by default, but each symbol's open trades instead of
    # its scanner (the routes are wiring, rebuilt at construction around the run's router) --

    def snapshot_state(self) -> dict[str, Any]:
        state = {k: v for k, v in vars(self).items() if k not in _NOT_STATE}
        state["trades"] = {symbol: list(st.trades) for symbol, st in self.states.items()}
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "trades" not in state:  # a snapshot of the one-trade spread_arb: one per symbol
            old = state.pop("states")
            state["trades"] = {s: [o.trade] if o.trade else [] for s, o in old.items()}
            state["_partial"] = {o.trade.trade_id for o in old.values() if o.partial_done}
        for symbol, trades in state.pop("trades").items():
            self.states[symbol].trades = trades
        vars(self).update(state)
        self.cooldowns = self.ctx.execution.cooldowns  # the restored guard chain's

    def on_timer(self, ts: int, payload: Any) -> None:
        symbol, trade_id = payload
        for trade in self.states[symbol].trades:
            if trade.trade_id == trade_id and trade.state is TradeState.OPEN:
                self.ctx.execution.exit(trade, "max_hold", urgent=True)
                return


@hookimpl
def arbframe_register_strategies(register: Any) -> None:
    register(SpreadArb)
