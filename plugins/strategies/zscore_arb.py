"""`zscore_arb`: trade the z-score of the spread between two venues quoting one symbol.

Each instant with both books: s = (mid_b - mid_a) / mid_a * 1e4 (bps, report currency) and z =
(s - mean) / std of the `window` spreads before s (population std; the window keeps rolling in
a trade). With no trade open, |z| crossing entry_z from below (and under stop_z) enters: z > 0
(b rich) buys a and sells b, z < 0 the reverse. Exit when z, signed the trade's way, is back
to exit_z or past it ("reverted"), urgently when it reaches stop_z ("stop")."""

import math
from collections import deque
from decimal import Decimal

from arbframe.components import Strategy, StrategyContext
from arbframe.errors import ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.model import Route, TradeState


class ZScoreArb(Strategy):
    type_name = "zscore_arb"
    interface_version = 2
    description = "Two-venue spread mean reversion on a rolling z-score."
    config_schema = {
        "additionalProperties": False,
        "required": ["venues", "symbol", "window", "entry_z", "quote"],
        "properties": {
            "venues": {"type": "array", "minItems": 2, "maxItems": 2, "uniqueItems": True},
            "symbol": {"type": "string"},
            "window": {"type": "integer", "minimum": 2},  # spreads (instants), not time
            "entry_z": {"type": "number", "exclusiveMinimum": 0},
            "exit_z": {"type": "number", "default": 0},
            "stop_z": {"type": "number", "exclusiveMinimum": 0},  # absent: no stop
            "quote": {"type": "number", "exclusiveMinimum": 0},  # report currency per trade
            "risk_bps": {"type": "number", "exclusiveMinimum": 0, "default": 100},  # for R
        },
    }

    def __init__(self, config: dict, *, name: str, ctx: StrategyContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.symbol, (self.a, self.b) = config["symbol"], config["venues"]
        for i, venue in enumerate(config["venues"]):
            if venue not in ctx.market.quoting(self.symbol):  # venues fed a book of it
                raise ConfigError(f"no feed quotes {self.symbol} on {venue!r}", ("venues", i))
        self.entry_z, self.exit_z = config["entry_z"], config.get("exit_z", 0)
        self.stop_z = config.get("stop_z", math.inf)
        if not self.exit_z < self.entry_z < self.stop_z:
            raise ConfigError("needs exit_z < entry_z < stop_z", ("entry_z",))
        self.quote, self.risk_bps = Decimal(str(config["quote"])), config.get("risk_bps", 100)
        self.spreads: deque[float] = deque(maxlen=config["window"])
        self.mean = self.m2 = self.z = 0.0  # m2: sum of squared deviations from mean

    def on_market(self, ts: int, symbol: str) -> None:
        a, b = (self.ctx.market.top(venue, self.symbol) for venue in (self.a, self.b))
        if symbol != self.symbol or a is None or b is None:
            return
        s = ((b[0] + b[1]) / (a[0] + a[1]) - 1) * 1e4  # (mid_b - mid_a) / mid_a, in bps
        w, mean, m2 = self.spreads, self.mean, self.m2  # the window before s
        old = w[0] if (full := len(w) == w.maxlen) else mean  # growing: nothing drops
        w.append(s)
        self.mean += (s - old) / len(w)
        self.m2 += (s - old) * (s - self.mean + old - mean)  # Welford's updates
        if not full or m2 <= 0:  # z needs a full window, with std > 0
            return
        was, self.z = self.z, (s - mean) / math.sqrt(m2 / len(w))
        for trade in [t for t in self.ctx.execution.trades() if t.state is TradeState.OPEN]:
            z = self.z if trade.sell_venue == self.b else -self.z  # > 0: dislocated our way
            if z <= self.exit_z:
                self.ctx.execution.exit(trade, "reverted")
            elif z >= self.stop_z:
                self.ctx.execution.exit(trade, "stop", urgent=True)
        if not self.ctx.execution.trades() and abs(was) < self.entry_z <= abs(self.z) < self.stop_z:
            buy, sell = (self.a, self.b) if self.z > 0 else (self.b, self.a)
            route = Route.spread(symbol, buy=buy, sell=sell)
            self.ctx.execution.enter(route, quote=self.quote, risk_bps=self.risk_bps)


@hookimpl
def arbframe_register_strategies(register: Register) -> None:
    register(ZScoreArb)
