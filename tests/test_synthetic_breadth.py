"""The `synthetic` feed's breadth: per-symbol settings, independent premiums on three or
more venues, generated universes, volumes reported with drift, and staggering."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from arbframe_plugins.feeds.synthetic import EPOCH_NS, SyntheticFeed
from jsonschema import Draft202012Validator, ValidationError

from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.testing import feed_context

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN = REPO / "scenarios" / "_campaign_base.yaml"
STEP = 100_000_000  # the default interval


def feed(config: dict[str, Any], seed: int = 3, ctx: Any = None) -> SyntheticFeed:
    Draft202012Validator(SyntheticFeed.config_schema).validate(config)
    return SyntheticFeed(config, name="feeds[0]", ctx=ctx or feed_context(REPO, seed=seed))


def take(f: SyntheticFeed, n: int) -> list[tuple[Any, ...]]:
    return list(itertools.islice(f.events(), n))


def premiums(events: list[tuple[Any, ...]], base: str) -> dict[tuple[str, str], list[float]]:
    """Per (venue, symbol): each interval's mid against the first venue's, in bps."""
    mids: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _, venue, symbol, bids, asks in events:
        mids[venue, symbol].append((bids[0][0] + asks[0][0]) / 2)
    return {
        (venue, symbol): [
            (m / b - 1) * 1e4 for m, b in zip(series, mids[base, symbol], strict=False)
        ]
        for (venue, symbol), series in mids.items()
        if venue != base
    }


def test_a_symbol_as_a_mapping_with_only_its_price_is_the_plain_form() -> None:
    plain = feed({"symbols": {"BTC": 60000, "ETH": 3000}, "venues": ["a", "b"], "pattern": "mixed"})
    mapped = feed(
        {
            "symbols": {"BTC": {"price": 60000}, "ETH": {"price": 3000, "pattern": "mixed"}},
            "venues": ["a", "b"],
            "pattern": "mixed",
        }
    )
    assert take(plain, 20_000) == take(mapped, 20_000)


def test_each_symbol_plays_its_own_pattern() -> None:
    # One feed: BTC's episodes all widen (always_lose), ETH's all converge (always_win), and
    # SOL overrides premium keys to have no dislocation and no noise at all.
    f = feed(
        {
            "symbols": {
                "BTC": {"price": 60000, "pattern": "always_lose"},
                "ETH": {"price": 3000, "pattern": "always_win"},
                "SOL": {"price": 150, "episode_bps": 0, "diverge_bps": 0, "noise_bps": 0},
            },
            "venues": ["a", "b"],
            "pattern": "mixed",
        }
    )
    prem = premiums(take(f, 6 * 3000), "a")  # 5 minutes
    btc, eth, sol = (prem["b", s] for s in ("BTC", "ETH", "SOL"))
    # Widened: jump (<= 1.3 x 60) plus 80 more; converging never goes past the jump.
    assert max(map(abs, btc)) > 120
    assert max(map(abs, eth)) < 60 * 1.3 + 5
    assert max(map(abs, eth)) > 40  # it did have episodes
    tick_bps = 0.01 / 150 * 1e4  # the default tick grid, 1e-5 of the price
    assert max(map(abs, sol)) <= 2 * tick_bps


def test_a_third_venue_leaves_the_first_two_as_they_were() -> None:
    # Two-venue runs must not change when breadth is added: the third venue's premium has
    # its own random stream, so the first two venues' books are the same, interval by interval.
    config = {"symbols": {"BTC": 60000, "ETH": 3000}, "pattern": "mixed"}
    two = take(feed({**config, "venues": ["a", "b"]}), 2 * 2 * 5000)
    three = take(feed({**config, "venues": ["a", "b", "c"]}), 3 * 2 * 5000)
    assert [e[1:] for e in two] == [e[1:] for e in three if e[1] != "c"]


def test_each_later_venue_has_its_own_premium_episodes() -> None:
    f = feed({"symbols": {"BTC": 60000}, "venues": ["a", "b", "c", "d"], "pattern": "mixed"})
    prem = premiums(take(f, 4 * 6000), "a")  # 10 minutes
    b, c, d = prem["b", "BTC"], prem["c", "BTC"], prem["d", "BTC"]

    def open_(series: list[float]) -> set[int]:
        return {i for i, p in enumerate(series) if abs(p) > 40}

    # Each venue has episodes, and they do not coincide: routes open at different times.
    assert all(len(open_(s)) > 100 for s in (b, c, d))
    n = len(b)
    for x, y in itertools.combinations((b, c, d), 2):
        both, ox, oy = len(open_(x) & open_(y)), len(open_(x)), len(open_(y))
        # About what independence gives (one shared process would give min(ox, oy)).
        assert both < 1.3 * ox * oy / n
        assert both < 0.8 * min(ox, oy)
    # ... and a route between two later venues opens on its own as well.
    cross = [(1 + y * 1e-4) / (1 + x * 1e-4) * 1e4 - 1e4 for x, y in zip(b, c, strict=True)]
    assert max(map(abs, cross)) > 40


def test_the_same_seed_gives_the_same_books_and_another_seed_others() -> None:
    config = {"generate": {"count": 5, "price": [1, 1000]}, "venues": ["a", "b", "c"]}
    assert take(feed(config, seed=4), 3000) == take(feed(config, seed=4), 3000)
    assert take(feed(config, seed=4), 3000) != take(feed(config, seed=5), 3000)


def test_generated_symbols_are_named_priced_and_seeded() -> None:
    config = {
        "generate": {"count": 50, "prefix": "S", "price": [1, 50000], "volume": [1e5, 1e9]},
        "venues": ["a", "b", "c"],
    }
    f = feed(config, seed=1)
    assert f.symbols() == [f"S{i:02d}" for i in range(50)]
    prices = [f.specs[s].price for s in f.symbols()]
    assert all(1 <= p <= 50000 for p in prices)
    assert len(set(prices)) == 50
    # Log-uniform: both cheap and dear symbols, not all near the arithmetic mean.
    assert min(prices) < 100 and max(prices) > 5000
    assert prices == [feed(config, seed=1).specs[s].price for s in f.symbols()]
    assert prices != [feed(config, seed=2).specs[s].price for s in f.symbols()]
    # Listed symbols come first; a wide universe gets wider names.
    wide = feed({"symbols": {"BTC": 60000}, "generate": {"count": 120, "prefix": "X"},
                 "venues": ["a", "b"]})  # fmt: skip
    assert wide.symbols()[:3] == ["BTC", "X000", "X001"] and wide.symbols()[-1] == "X119"
    # Every symbol is quoted on every venue, each book on its own tick grid.
    events = take(f, 3 * 50 * 2)
    assert {(e[1], e[2]) for e in events} == {(v, s) for v in "abc" for s in f.symbols()}
    for _, _, symbol, bids, asks in events:
        assert bids[0][0] < asks[0][0]
        assert abs((bids[0][0] + asks[0][0]) / 2 / f.specs[symbol].price - 1) < 0.01


@dataclass
class VolumeContext:
    """A feed context that takes volumes, as the run's will once it can; each report is
    stamped with the number of books the feed had produced before it."""

    base: Any
    reports: list[tuple[int, str, str, float]] = field(default_factory=list)
    books: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def report_volume(self, venue: str, symbol: str, value: float) -> None:
        self.reports.append((self.books, venue, symbol, value))


def volume_run(config: dict[str, Any], intervals: int, seed: int = 3) -> VolumeContext:
    ctx = VolumeContext(feed_context(REPO, seed=seed))
    f = feed(config, ctx=ctx)
    for _ in itertools.islice(f.events(), intervals * len(f.symbols()) * len(f.venues())):
        ctx.books += 1
    return ctx


def test_volumes_are_reported_at_the_start_and_every_period() -> None:
    config = {
        "symbols": {
            "BTC": {"price": 60000, "volume": {"a": 5e8, "b": 2e8}},
            "ETH": {"price": 3000, "volume": 1e8},
        },
        "venues": ["a", "b"],
        "volume_every": "30s",
    }
    ctx = volume_run(config, intervals=1200)  # 2 minutes
    # Before the first book, then at the start of every 30 s of feed time (300 intervals
    # of 2 symbols x 2 venues = 1,200 books).
    assert sorted({n for n, *_ in ctx.reports}) == [0, 1200, 2400, 3600]
    first = {(v, s): x for n, v, s, x in ctx.reports if n == 0}
    assert first == {("a", "BTC"): 5e8, ("b", "BTC"): 2e8, ("a", "ETH"): 1e8, ("b", "ETH"): 1e8}
    # No drift configured: the volumes stay as given.
    assert {x for _, v, s, x in ctx.reports if (v, s) == ("a", "BTC")} == {5e8}


def test_volume_drift_reorders_a_ranking_and_is_seeded() -> None:
    config = {
        "generate": {"count": 20, "price": [1, 1000], "volume": [1e6, 2e6]},
        "venues": ["a", "b", "c"],
        "volume_drift": 2.0,
        "volume_every": "1m",
    }

    def rankings(ctx: VolumeContext) -> list[list[str]]:
        by_time: dict[int, dict[str, float]] = defaultdict(dict)
        for t, venue, symbol, value in ctx.reports:
            if venue == "a":
                by_time[t][symbol] = value
        return [sorted(v, key=v.__getitem__, reverse=True) for _, v in sorted(by_time.items())]

    one = volume_run(config, intervals=6000)  # 10 minutes
    ranks = rankings(one)
    assert len(ranks) == 10  # at 0 and after each minute but the last
    assert ranks[0][:5] != ranks[-1][:5]  # the top 5 changed during the run
    assert all(v > 0 for *_, v in one.reports)
    assert one.reports == volume_run(config, intervals=6000).reports
    assert one.reports != volume_run(config, intervals=6000, seed=4).reports
    # Drift does not touch the books: the same seed gives the same books with or without it.
    still = {**config, "volume_drift": 0}
    assert take(feed(config), 6000) == take(feed(still), 6000)


def test_volumes_are_reported_in_each_venues_quote_currency() -> None:
    # Configured in the report currency, like prices; exchanges publish quote volume.
    config = {"symbols": {"BTC": {"price": 60000, "volume": 1e8}}, "venues": ["upbit", "binance"]}
    base = feed_context(REPO, fx={"KRW": 1350.0}, quotes={"upbit": "KRW"})
    ctx = VolumeContext(base)
    take(feed(config, ctx=ctx), 2)
    assert ctx.reports == [(0, "upbit", "BTC", 1e8 * 1350.0), (0, "binance", "BTC", 1e8)]


def test_a_run_reads_the_volumes_the_feed_reports(run_scenario) -> None:
    from arbframe.components import Strategy

    seen: dict[str, float | None] = {}

    class Probe(Strategy):  # reads ctx.market.volume, as a universe or a strategy would
        type_name = "volume_probe"
        interface_version = 2
        config_schema = {"type": "object"}

        def on_market(self, ts: int, symbol: str) -> None:
            seen[symbol] = self.ctx.market.volume("upbit", symbol)

    class Plugin:
        @staticmethod
        @hookimpl
        def arbframe_register_strategies(register: Any) -> None:
            register(Probe)

    result = run_scenario(
        {
            "extends": str(CAMPAIGN),
            "name": "volumes",
            "duration": "2s",
            "feeds": [
                {
                    "type": "synthetic",
                    "venues": ["upbit", "binance"],
                    "tick": {"upbit": 1000, "binance": 0.01},
                    "symbols": {"BTC": {"price": 60000, "volume": 2.5e8}},
                }
            ],
            "strategy": {"type": "volume_probe"},
            "guards": None,
        },  # fmt: skip
        plugins=(Plugin,),
    )
    assert result.summary["events"]["quotes"] > 0
    # Reported in KRW, read back in the report currency.
    assert seen["BTC"] == pytest.approx(2.5e8)


@pytest.mark.parametrize(
    ("stagger", "offsets"),
    [
        (True, [0, 33_333_333, 66_666_666]),
        (False, [0, 0, 0]),
        ("10ms", [0, 10_000_000, 20_000_000]),
    ],
)
def test_stagger_sets_each_venues_offset(stagger: Any, offsets: list[int]) -> None:
    config = {"symbols": {"BTC": 60000}, "venues": ["a", "b", "c"], "stagger": stagger}
    events = take(feed(config), 6)
    assert [e[0] - EPOCH_NS for e in events] == offsets + [STEP + o for o in offsets]


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        (
            {"stagger": "50ms"},
            ("stagger",),
            "3 venues 50ms apart do not fit in one interval (100ms)",
        ),
        ({"tick": {"x": 1}}, ("tick", "x"), "venue 'x' is not in venues"),
        (
            {"symbols": {"BTC": {"price": 1, "tick": {"x": 1}}}},
            ("symbols", "BTC", "tick", "x"),
            "venue 'x' is not in venues",
        ),
        (
            {"symbols": {"BTC": {"price": 1, "volume": {"a": 1, "b": 2}}}},
            ("symbols", "BTC", "volume"),
            "no volume for c",
        ),
        (
            {"symbols": {"BTC": {"price": 1, "outcomes": {"converge": 0}}}},
            ("symbols", "BTC", "outcomes"),
            "every outcome weight is 0",
        ),
        (
            {"generate": {"count": 3, "price": [10, 1]}},
            ("generate", "price"),
            "low 10 is above high 1",
        ),
        (
            {"symbols": {"S01": 5}, "generate": {"count": 3}},
            ("generate",),
            "generated symbol S01 is also in symbols",
        ),
        ({"venues": ["a", "b", "a"]}, ("venues",), "a venue is listed twice"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_key(
    config: dict[str, Any], key: tuple[str, ...], message: str
) -> None:
    config = {"symbols": {"BTC": 60000}, "venues": ["a", "b", "c"], **config}
    with pytest.raises(ConfigError) as err:
        feed(config)
    assert err.value.key == key
    assert err.value.message == message


@pytest.mark.parametrize(
    "config",
    [
        {"venues": ["a", "b"]},  # neither symbols nor generate
        {"symbols": {"BTC": {"pattern": "mixed"}}, "venues": ["a", "b"]},  # no price
        {"symbols": {"BTC": {"price": 1, "interval": "1s"}}, "venues": ["a", "b"]},  # feed-wide
        {"generate": {"count": 2, "prefix": "s"}, "venues": ["a", "b"]},
        {"generate": {"count": 2, "price": [1]}, "venues": ["a", "b"]},
    ],
)
def test_the_schema_refuses_malformed_breadth(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Draft202012Validator(SyntheticFeed.config_schema).validate(config)


def test_a_generated_universe_on_three_venues_trades_end_to_end(run_scenario) -> None:
    # Venues learn generated symbols from the feed; `markets: {default}` sets precision.
    count = 6
    names = [f"G{i:02d}" for i in range(count)]
    capital = {n: 1e6 for n in names}
    venue = {
        "type": "paper",
        "quote": "USDT",
        "fees": {"taker_bps": 5},
        "markets": {"default": {"price_tick": "0.00000001", "amount_step": "0.000001"}},
    }
    result = run_scenario(
        {
            "extends": str(CAMPAIGN),
            "name": "generated",
            "duration": "3m",
            "venues": {"upbit": None, "binance": None, "a": venue, "b": venue, "c": venue},
            "capital": {
                "upbit": None,
                "binance": None,
                **{v: {"USDT": 1e5, **capital} for v in "abc"},
            },
            "feeds": [
                {
                    "type": "synthetic",
                    "venues": ["a", "b", "c"],
                    "pattern": "high_winrate",
                    "generate": {"count": count, "prefix": "G", "price": [5, 500]},
                }
            ],  # fmt: skip
        }
    )
    summary = result.summary
    assert summary["reconciliation"]["passed"], summary["reconciliation"]["violations"]
    # Every book of 1,800 intervals, and the first venue's at exactly 3 minutes.
    assert summary["events"]["quotes"] == 3 * count * 1800 + count
    assert set(summary["symbols"]) == set(names)
    # The third venue's own premium episodes are traded too, not only a<->b. (Which route
    # wins when several open is the strategy's choice: spread_arb takes the first listed.)
    routes = {r for s in summary["routes"].values() for r in s}
    assert {frozenset(r.split("_to_")) for r in routes} >= {frozenset("ab"), frozenset("ac")}
    assert math.isclose(
        sum(float(s["pnl"]) for s in summary["symbols"].values()),
        float(summary["portfolio"]["pnl"]),
        abs_tol=1e-6,
    )
