"""`synthetic`: seeded books for two or more venues with cross-venue premium processes.

Per symbol, a mid price in the report currency follows a random walk. The first venue
quotes the mid; every later venue quotes mid x (1 + its premium), where a premium (bps) is
idle noise, mean-reverting to `base_bps`, interrupted by episodes. An episode starts at a
random time (exponential gaps, mean `episode_every`), jumps the premium to about
+/-`episode_bps`, and then plays out one outcome, drawn with the `outcomes` weights:

* converge: the premium decays back to base with half-life `half_life`;
* diverge:  it widens by a further `diverge_bps` over `diverge_over`, and holds there
  until `persist_for` has passed since the jump; then it snaps back to base;
* persist:  it stays around the jump level for `persist_for`, then snaps back to base.

The second venue's premium is drawn from the feed's own random stream (as it always was,
so two-venue runs are unchanged); each venue after it has an independent premium process
with its own stream, so its episodes, and the routes between any two venues, open at
other times.

The presets (`pattern:`) set these to reproduce the campaigns: mixed (C1), high_winrate (C2),
low_winrate (C3), always_win, always_lose. Explicit keys override the preset, and a symbol
given as a mapping (`{price: 60000, pattern: high_winrate, noise_bps: 1}`) overrides the
feed's settings for itself. `generate:` adds seeded symbols for large universes.
Books: `levels` levels per side, one `tick` apart, around the venue's mid with a spread of
`spread_bps`; each level holds about `depth_quote` of the report currency. Volumes (24h,
report currency) are reported to the run per (venue, symbol) at the start and every
`volume_every`, drifting by `volume_drift`.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterator
from typing import Any

from arbframe.components import Feed, FeedEvent
from arbframe.errors import ConfigError
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
HOUR_NS = 3_600_000_000_000
POSITIVE = {"type": "number", "exclusiveMinimum": 0}
VENUE_NUMBERS = {
    "type": "object",
    "additionalProperties": POSITIVE,
    "description": "Venue -> number.",
}
RANGE = {
    "type": "array",
    "items": POSITIVE,
    "minItems": 2,
    "maxItems": 2,
    "description": "[low, high], drawn log-uniformly.",
}
SETTINGS: dict[str, Any] = {
    "pattern": {"enum": sorted(PRESETS)},
    "levels": {"type": "integer", "minimum": 1, "maximum": 50},
    "spread_bps": POSITIVE,
    "depth_quote": POSITIVE,
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
}
SYMBOL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["price"],
    "properties": {
        "price": POSITIVE,
        "volume": {"anyOf": [POSITIVE, VENUE_NUMBERS]},
        "tick": VENUE_NUMBERS,
        **SETTINGS,
    },
}


class SyntheticFeed(Feed):
    type_name = "synthetic"
    interface_version = 2
    description = (
        "Seeded books on two or more venues with mean-reverting, regime-switching premiums."
    )
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venues"],
        "anyOf": [{"required": ["symbols"]}, {"required": ["generate"]}],
        "properties": {
            "symbols": {
                "type": "object",
                "minProperties": 1,
                "description": "Symbol -> starting mid price in the report currency, or a "
                "mapping {price, pattern, volume, tick, <premium or book key>} of its own.",
                "additionalProperties": {"anyOf": [POSITIVE, SYMBOL]},
            },
            "generate": {
                "type": "object",
                "additionalProperties": False,
                "required": ["count"],
                "description": "Seeded symbols <prefix>00, <prefix>01, ... added to `symbols`.",
                "properties": {
                    "count": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "prefix": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{0,9}$"},
                    "price": RANGE,
                    "volume": RANGE,
                    "pattern": {"enum": sorted(PRESETS)},
                },
            },
            "venues": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "interval": DURATION,
            "stagger": {"anyOf": [{"type": "boolean"}, DURATION]},
            "tick": {
                **VENUE_NUMBERS,
                "description": "Venue -> price tick in its quote currency.",
            },
            "volume_drift": {"type": "number", "minimum": 0},
            "volume_every": DURATION,
            **SETTINGS,
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.p = {**DEFAULTS, **PRESETS.get(config.get("pattern", ""), {}), **config}
        self.seed = ctx.info.seed
        seed = zlib.crc32(f"{self.seed}:{name}".encode())
        self.rng = random.Random(seed)
        self.specs = self._specs()
        # Venue j publishes at t + j * gap: by default spread evenly over the interval.
        step, stagger, n = (
            parse_duration(self.p["interval"]),
            config.get("stagger", True),
            len(config["venues"]),
        )
        if stagger is True:
            self.gap = step // n
        else:
            self.gap = 0 if stagger is False else parse_duration(stagger)
            if self.gap * (n - 1) >= step:
                raise ConfigError(
                    f"{n} venues {stagger} apart do not fit in one interval ({self.p['interval']})",
                    ("stagger",),
                )

    def _stream(self, purpose: str) -> random.Random:
        """A random stream of its own, so a new use of randomness leaves the others as
        they were (two-venue runs stay bit-identical to earlier versions)."""
        return random.Random(zlib.crc32(f"{self.seed}:{self.name}:{purpose}".encode()))

    def _specs(self) -> dict[str, _Spec]:
        """Each symbol's settings: the feed's, then its pattern's, then its own keys."""
        cfg, venues = self.config, self.config["venues"]
        if len(set(venues)) != len(venues):
            raise ConfigError("a venue is listed twice", ("venues",))
        specs: dict[str, _Spec] = {}
        for symbol, value in cfg.get("symbols", {}).items():
            own = value if isinstance(value, dict) else {"price": value}
            p = {**self.p, **PRESETS.get(own.get("pattern", ""), {}), **own}
            p["tick"] = {**self.p.get("tick", {}), **own.get("tick", {})}
            for venue in p["tick"]:
                if venue not in venues:
                    where = (
                        ("symbols", symbol, "tick") if venue in own.get("tick", {}) else ("tick",)
                    )
                    raise ConfigError(f"venue {venue!r} is not in venues", (*where, venue))
            volume = own.get("volume")
            if isinstance(volume, dict):
                for venue in volume:
                    if venue not in venues:
                        raise ConfigError(
                            f"venue {venue!r} is not in venues",
                            ("symbols", symbol, "volume", venue),
                        )
                missing = [v for v in venues if v not in volume]
                if missing:
                    raise ConfigError(
                        f"no volume for {', '.join(missing)}", ("symbols", symbol, "volume")
                    )
            elif volume is not None:
                volume = dict.fromkeys(venues, float(volume))
            if not any(p["outcomes"].values()):
                where = ("symbols", symbol) if "outcomes" in own else ()
                raise ConfigError("every outcome weight is 0", (*where, "outcomes"))
            specs[symbol] = _Spec(p, float(own["price"]), volume, None)
        if "generate" in cfg:
            self._generate(cfg["generate"], specs)
        return specs

    def _generate(self, gen: dict[str, Any], specs: dict[str, _Spec]) -> None:
        for key in ("price", "volume"):
            low, high = gen.get(key, (1.0, 1.0))
            if low > high:
                raise ConfigError(f"low {low} is above high {high}", ("generate", key))
        rng = self._stream("generate")
        count, prefix = gen["count"], gen.get("prefix", "S")
        width = max(2, len(str(count - 1)))
        p = {**self.p, **PRESETS.get(gen.get("pattern", ""), {})}
        p["tick"] = dict(self.p.get("tick", {}))
        # Generated symbols share one table of normal draws: a table per symbol would cost
        # 0.5 MB and 16,384 gauss() calls each, for nothing a shared table lacks.
        normals = [rng.gauss(0.0, 1.0) for _ in range(1 << NORMAL_BITS)]
        price_lo, price_hi = (math.log(x) for x in gen.get("price", (100.0, 100.0)))
        for i in range(count):
            symbol = f"{prefix}{i:0{width}d}"
            if symbol in specs:
                raise ConfigError(f"generated symbol {symbol} is also in symbols", ("generate",))
            price = float(f"{math.exp(rng.uniform(price_lo, price_hi)):.6g}")
            volume = None
            if "volume" in gen:
                lo, hi = (math.log(x) for x in gen["volume"])
                base = math.exp(rng.uniform(lo, hi))
                # Venues share a symbol's volume unevenly (lognormal shares, sd 0.3).
                volume = {
                    v: round(base * math.exp(0.3 * rng.gauss(0.0, 1.0)), 2)
                    for v in self.config["venues"]
                }
            specs[symbol] = _Spec(p, price, volume, normals)

    def venues(self) -> list[str]:
        return list(self.config["venues"])

    def symbols(self) -> list[str]:
        return list(self.specs)

    def events(self) -> Iterator[FeedEvent]:
        p, rng = self.p, self.rng
        step = parse_duration(p["interval"])
        dt = step / 1e9
        venues = self.venues()
        symbols = self.symbols()
        specs = [self.specs[s] for s in symbols]
        quotes = {v: self.ctx.venue_quote(v) for v in venues}
        gap = self.gap
        # The second venue's premium comes from the feed's stream (one process per symbol,
        # also walking the mid); each later venue has its own stream and processes.
        processes = [_Premium(s.p, rng, dt, s.price, s.normals) for s in specs]
        extra: list[list[_Premium]] = []
        for venue in venues[2:]:
            vrng = self._stream(f"venue:{venue}")
            table = [vrng.gauss(0.0, 1.0) for _ in range(1 << NORMAL_BITS)]
            extra.append([_Premium(s.p, vrng, dt, s.price, table, walk=False) for s in specs])
        books = [
            [
                _BookShape(s.p, s.price, self.ctx.fx_rate(quotes[v]), s.p["tick"].get(v))
                for v in venues
            ]
            for s in specs
        ]
        # Per venue (staggered within the interval): its offset, which premium it quotes
        # (0: none, 1: the symbol's own, k >= 2: extra[k - 2]) and (index, symbol, shape).
        plan = [
            (j * gap, j, venue, [(i, sym, books[i][j]) for i, sym in enumerate(symbols)])
            for j, venue in enumerate(venues)
        ]
        volumes = _Volumes(self, specs, symbols, venues)
        premiums: list[list[float]] = []
        t = EPOCH_NS
        while True:
            if t >= volumes.next_at:
                volumes.report(t)
            states = [process.step(t) for process in processes]
            if extra:
                premiums = [[q.step(t)[1] for q in procs] for procs in extra]
            for offset, which, venue, shapes in plan:
                ts = t + offset
                if which == 0:
                    for i, symbol, shape in shapes:
                        bids, asks = shape.make(states[i][0])
                        yield (ts, venue, symbol, bids, asks)
                elif which == 1:
                    for i, symbol, shape in shapes:
                        mid, premium = states[i]
                        bids, asks = shape.make(mid * (1.0 + premium * 1e-4))
                        yield (ts, venue, symbol, bids, asks)
                else:
                    own = premiums[which - 2]
                    for i, symbol, shape in shapes:
                        bids, asks = shape.make(states[i][0] * (1.0 + own[i] * 1e-4))
                        yield (ts, venue, symbol, bids, asks)
            t += step


class _Spec:
    """One symbol's settings, starting price, volumes per venue (or None) and the table of
    normal draws it shares (None: it draws its own)."""

    __slots__ = ("p", "price", "volume", "normals")

    def __init__(
        self,
        p: dict[str, Any],
        price: float,
        volume: dict[str, float] | None,
        normals: list[float] | None,
    ) -> None:
        self.p, self.price, self.volume, self.normals = p, price, volume, normals


class _Volumes:
    """24h quote volumes per (venue, symbol), reported to the run and drifting as a
    seeded lognormal random walk (sd `volume_drift` per hour) between reports."""

    def __init__(self, feed: SyntheticFeed, specs: list[_Spec], symbols: list[str],
                 venues: list[str]) -> None:  # fmt: skip
        self.values = {
            (v, sym): spec.volume[v]
            for sym, spec in zip(symbols, specs, strict=True)
            if spec.volume is not None
            for v in venues
        }
        # A context from before FeedContext took volumes has nowhere to send them.
        self.sink = getattr(feed.ctx, "report_volume", None)
        # Configured in the report currency, like prices; reported in the venue's quote
        # currency, as exchanges publish quote volume.
        self.rates = {v: feed.ctx.fx_rate(feed.ctx.venue_quote(v)) for v in venues}
        self.every = parse_duration(feed.p.get("volume_every", "1m"))
        drift = feed.p.get("volume_drift", 0.0)
        self.sd = drift * math.sqrt(self.every / HOUR_NS)
        self.rng = feed._stream("volume")
        self.next_at = EPOCH_NS if self.values and self.sink else math.inf
        self.first = True

    def report(self, t: int) -> None:
        if not self.first and self.sd:
            gauss, sd = self.rng.gauss, self.sd
            for key, value in self.values.items():
                self.values[key] = value * math.exp(sd * gauss(0.0, 1.0))
        self.first = False
        rates = self.rates
        for (venue, symbol), value in self.values.items():
            self.sink(venue, symbol, value * rates[venue])  # type: ignore[misc]
        self.next_at = t + self.every


class _Premium:
    """Mid price and premium (bps) for one symbol, advanced once per interval."""

    def __init__(
        self,
        p: dict[str, Any],
        rng: random.Random,
        dt: float,
        price: float,
        normals: list[float] | None = None,
        walk: bool = True,
    ) -> None:
        self.rng, self.dt, self.mid, self.walk = rng, dt, price, walk
        # Standard normal draws come from a seeded table: indexing it with random bits is
        # several times cheaper than gauss() on the per-quote path, and just as reproducible.
        if normals is None:
            normals = [rng.gauss(0.0, 1.0) for _ in range(1 << NORMAL_BITS)]
        self.normals = normals
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
        if self.walk:  # a later venue's premium only: the symbol's own process walks the mid
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
