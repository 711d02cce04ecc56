"""`synthetic`: seeded books for two (or more) venues with a cross-venue premium process.

Per symbol, a mid price in the report currency follows a random walk. Every venue after
the first quotes that mid times (1 + premium), where the premium (bps) is idle noise,
mean-reverting to `base_bps`, interrupted by episodes. An episode starts at a random time
(exponential gaps, mean `episode_every`), jumps the premium to about +/-`episode_bps`, and
then plays out one outcome, drawn with the `outcomes` weights:

* converge: the premium decays back to base with half-life `half_life`;
* diverge:  it widens by a further `diverge_bps` over `diverge_over`, and holds there
  until `persist_for` has passed since the jump; then it snaps back to base;
* persist:  it stays around the jump level for `persist_for`, then snaps back to base.

The presets (`pattern:`) set these to reproduce the campaigns: mixed (C1), high_winrate (C2),
low_winrate (C3), always_win, always_lose. Explicit keys override the preset.
Books: `levels` levels per side, one `tick` apart, around the venue's mid with a spread of
`spread_bps`; each level holds about `depth_quote` of the report currency.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterator
from typing import Any

from arbframe.components import Feed, FeedEvent
from arbframe.hookspecs import hookimpl
from arbframe.schema import DURATION
from arbframe.units import parse_duration

PRESETS: dict[str, dict[str, Any]] = {
    "mixed": {"outcomes": {"converge": 0.45, "diverge": 0.3, "persist": 0.25}},
    "high_winrate": {"outcomes": {"converge": 0.8, "diverge": 0.1, "persist": 0.1}},
    "low_winrate": {"outcomes": {"converge": 0.15, "diverge": 0.25, "persist": 0.6}},
    "always_win": {"outcomes": {"converge": 1.0}, "noise_bps": 0.5},
    "always_lose": {"outcomes": {"diverge": 1.0}},
}
DEFAULTS: dict[str, Any] = {
    "interval": "100ms",
    "levels": 5,
    "spread_bps": 2.0,
    "depth_quote": 20000.0,
    "volatility_bps": 5.0,  # mid random walk, per square-root second
    "base_bps": 0.0,
    "noise_bps": 1.5,
    "episode_every": "6s",
    "episode_bps": 60.0,
    "half_life": "1.5s",
    "diverge_bps": 80.0,
    "diverge_over": "3s",
    "persist_for": "20s",
    "outcomes": {"converge": 1.0},
}
Side = tuple[tuple[float, float], ...]
EPOCH_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z, scenario time zero
NORMAL_BITS = 14


class SyntheticFeed(Feed):
    type_name = "synthetic"
    interface_version = 2
    description = "Seeded two-venue books with a mean-reverting, regime-switching premium."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["symbols", "venues"],
        "properties": {
            "symbols": {
                "type": "object",
                "minProperties": 1,
                "description": "Symbol -> starting mid price in the report currency.",
                "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
            },
            "venues": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "pattern": {"enum": sorted(PRESETS)},
            "interval": DURATION,
            "levels": {"type": "integer", "minimum": 1, "maximum": 50},
            "spread_bps": {"type": "number", "exclusiveMinimum": 0},
            "depth_quote": {"type": "number", "exclusiveMinimum": 0},
            "tick": {
                "type": "object",
                "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                "description": "Venue -> price tick in its quote currency.",
            },
            "volatility_bps": {"type": "number", "minimum": 0},
            "base_bps": {"type": "number"},
            "noise_bps": {"type": "number", "minimum": 0},
            "episode_every": DURATION,
            "episode_bps": {"type": "number", "minimum": 0},
            "half_life": DURATION,
            "diverge_bps": {"type": "number"},
            "diverge_over": DURATION,
            "persist_for": DURATION,
            "outcomes": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    k: {"type": "number", "minimum": 0} for k in ("converge", "diverge", "persist")
                },
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.p = {**DEFAULTS, **PRESETS.get(config.get("pattern", ""), {}), **config}
        seed = zlib.crc32(f"{ctx.info.seed}:{name}".encode())
        self.rng = random.Random(seed)

    def venues(self) -> list[str]:
        return list(self.config["venues"])

    def symbols(self) -> list[str]:
        return list(self.config["symbols"])

    def events(self) -> Iterator[FeedEvent]:
        p, rng = self.p, self.rng
        step = parse_duration(p["interval"])
        dt = step / 1e9
        venues = self.venues()
        quotes = {v: self.ctx.venue_quote(v) for v in venues}
        stagger = step // len(venues)
        processes = [_Premium(p, rng, dt, price) for price in self.config["symbols"].values()]
        books = [
            [
                _BookShape(p, price, self.ctx.fx_rate(quotes[v]), p.get("tick", {}).get(v))
                for v in venues
            ]
            for price in self.config["symbols"].values()
        ]
        symbols = self.symbols()
        # Per venue (staggered within the interval): its offset and (symbol index, symbol, shape).
        plan = [
            (j * stagger, j > 0, venue, [(i, sym, books[i][j]) for i, sym in enumerate(symbols)])
            for j, venue in enumerate(venues)
        ]
        t = EPOCH_NS
        while True:
            states = [process.step(t) for process in processes]
            for offset, premium_applies, venue, shapes in plan:
                ts = t + offset
                for i, symbol, shape in shapes:
                    mid, premium = states[i]
                    bids, asks = shape.make(
                        mid * (1.0 + premium * 1e-4) if premium_applies else mid
                    )
                    yield (ts, venue, symbol, bids, asks)
            t += step


class _Premium:
    """Mid price and premium (bps) for one symbol, advanced once per interval."""

    def __init__(self, p: dict[str, Any], rng: random.Random, dt: float, price: float) -> None:
        self.rng, self.dt, self.mid = rng, dt, price
        # Standard normal draws come from a seeded table: indexing it with random bits is
        # several times cheaper than gauss() on the per-quote path, and just as reproducible.
        self.normals = [rng.gauss(0.0, 1.0) for _ in range(1 << NORMAL_BITS)]
        self.vol = p["volatility_bps"] * 1e-4 * math.sqrt(dt)
        self.noise = p["noise_bps"] * math.sqrt(dt)
        self.base = p["base_bps"]
        self.jump = p["episode_bps"]
        self.mean_gap = parse_duration(p["episode_every"])
        self.decay = 0.5 ** (dt / (parse_duration(p["half_life"]) / 1e9))
        self.diverge = p["diverge_bps"]
        self.diverge_steps = max(1, round(parse_duration(p["diverge_over"]) / 1e9 / dt))
        self.persist_ns = parse_duration(p["persist_for"])
        weights = p["outcomes"]
        self.outcomes = [k for k in ("converge", "diverge", "persist") if weights.get(k, 0) > 0]
        self.weights = [weights[k] for k in self.outcomes]
        self.premium = self.base
        self.mode = "idle"
        self.level = 0.0  # where the premium is held during diverge/persist
        self.steps_left = 0
        self.hold_until = 0
        self.next_episode = 0

    def step(self, t: int) -> tuple[float, float]:
        rng, normals = self.rng, self.normals
        self.mid *= 1.0 + self.vol * normals[rng.getrandbits(NORMAL_BITS)]
        noise = self.noise * normals[rng.getrandbits(NORMAL_BITS)]
        if not self.next_episode:
            self.next_episode = t + int(rng.expovariate(1.0) * self.mean_gap)
        if self.mode == "idle" and t >= self.next_episode:
            self._start_episode(t)
        if self.mode == "diverge" and self.steps_left > 0:
            self.level += self.diverge_delta
            self.steps_left -= 1
        if self.mode in ("diverge", "persist"):
            if t >= self.hold_until:  # the dislocation ends at once
                self._idle(t)
                self.premium = self.base + noise
            else:
                self.premium = self.level + noise
        else:
            self.premium = self.base + (self.premium - self.base) * self.decay + noise
            if self.mode == "converge" and abs(self.premium - self.base) < 2 * self.noise + 1:
                self._idle(t)
        return self.mid, self.premium

    def _idle(self, t: int) -> None:
        self.mode = "idle"
        self.next_episode = t + int(self.rng.expovariate(1.0) * self.mean_gap)

    def _start_episode(self, t: int) -> None:
        rng = self.rng
        sign = 1.0 if rng.random() < 0.5 else -1.0
        self.level = self.base + sign * self.jump * rng.uniform(0.9, 1.3)
        self.premium = self.level
        self.mode = rng.choices(self.outcomes, self.weights)[0]
        if self.mode == "diverge":
            self.diverge_delta = sign * self.diverge / self.diverge_steps
            self.steps_left = self.diverge_steps
            self.hold_until = t + self.persist_ns
        elif self.mode == "persist":
            self.hold_until = t + self.persist_ns


class _BookShape:
    """Turns a mid into `levels` price levels per side on the venue's tick grid.

    Level prices are best +/- i * tick in floats: they may carry float noise in the last
    digits, which venues remove by quantizing fill prices to their own tick.
    """

    def __init__(self, p: dict[str, Any], price: float, rate: float, tick: float | None) -> None:
        local = price * rate
        self.tick = tick or 10.0 ** (math.floor(math.log10(local)) - 5)
        self.half = max(1, round(local * p["spread_bps"] * 1e-4 / 2 / self.tick))
        size = round(p["depth_quote"] / price, 6)
        sizes = [round(size * (1 + 0.5 * i), 6) for i in range(p["levels"])]
        self.levels = [(i * self.tick, s) for i, s in enumerate(sizes)]
        self.rate = rate

    def make(self, price: float) -> tuple[Side, Side]:
        tick = self.tick
        centre = round(price * self.rate / tick)
        bid, ask = (centre - self.half) * tick, (centre + self.half) * tick
        # Runs once per quote: one loop filling both sides is cheaper than two comprehensions.
        bids, asks = [], []
        for o, s in self.levels:
            bids.append((bid - o, s))
            asks.append((ask + o, s))
        # Tuples of floats: the garbage collector stops tracking them, so the books the
        # kernel keeps for its audit cost no collection time.
        return tuple(bids), tuple(asks)


@hookimpl
def arbframe_register_feeds(register: Any) -> None:
    register(SyntheticFeed)
