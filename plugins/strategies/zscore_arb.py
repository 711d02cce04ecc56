"""`zscore_arb`: trade the z-score of the spread s = (mid_b - mid_a) / mid_a (bps) between two
venues, z = (s - mean) / std over the `window` spreads before it. |z| crossing `entry_z` enters
(z > 0: b rich, buy a, sell b); z back to `exit_z` the trade's way exits ("reverted"), reaching
`stop_z` exits urgently ("stop"). The kernel does everything else."""

import math
from collections import deque

from arbframe.components import Strategy, StrategyContext
from arbframe.errors import ConfigError
from arbframe.hookspecs import Register, hookimpl
from arbframe.model import Route, Trade, TradeState


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
        },
    }

    def __init__(self, config: dict, *, name: str, ctx: StrategyContext) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.symbol, (self.a, self.b) = config["symbol"], config["venues"]
        for i, venue in enumerate(config["venues"]):
            if venue not in ctx.market.quoting(self.symbol):  # no feed gives it a book
                raise ConfigError(f"no feed quotes {self.symbol} on {venue!r}", ("venues", i))
        self.entry_z, self.exit_z = config["entry_z"], config.get("exit_z", 0)
        self.stop_z = config.get("stop_z", math.inf)
        if not self.exit_z < self.entry_z < self.stop_z:
            raise ConfigError("needs exit_z < entry_z < stop_z", ("entry_z",))
        self.spreads: deque[float] = deque(maxlen=config["window"])
        self.mean = self.m2 = self.z = 0.0  # m2: sum of squared deviations (Welford)
        self.trade: Trade | None = None

    def on_market(self, ts: int, symbol: str) -> None:
        mid_a, mid_b = (self.ctx.market.mid(v, self.symbol) for v in (self.a, self.b))
        if symbol != self.symbol or mid_a is None or mid_b is None:
            return
        was, self.z = self.z, self.score((mid_b - mid_a) / mid_a * 1e4)
        execution, trade = self.ctx.execution, self.trade
        if trade is not None and trade.state is TradeState.CLOSED:
            self.trade = trade = None
        if trade is not None and trade.state is TradeState.OPEN:
            z = self.z if trade.sell_venue == self.b else -self.z  # > 0: still our way
            if z <= self.exit_z:
                execution.exit(trade, "reverted")
            elif z >= self.stop_z:
                execution.exit(trade, "stop", urgent=True)
        elif trade is None and abs(was) < self.entry_z <= abs(self.z) < self.stop_z:
            buy, sell = (self.a, self.b) if self.z > 0 else (self.b, self.a)
            route = Route.spread(self.symbol, buy=buy, sell=sell)
            self.trade = execution.enter(route, quote=self.config["quote"])  # R: 100 bp

    def score(self, s: float) -> float:
        """z of ``s`` against the window before it (0 until full); then s joins the window."""
        w, mean, m2 = self.spreads, self.mean, self.m2
        full = len(w) == w.maxlen
        old = w[0] if full else mean  # a full window drops its oldest spread
        w.append(s)
        self.mean += (s - old) / len(w)
        self.m2 += (s - old) * (s - self.mean + old - mean)
        return (s - mean) / math.sqrt(m2 / len(w)) if full and m2 > 0 else 0.0


@hookimpl
def arbframe_register_strategies(register: Register) -> None:
    register(ZScoreArb)
