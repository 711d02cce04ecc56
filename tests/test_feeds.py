"""The `scripted` and `replay` feeds: exact tuples, ordering, errors, schemas, real data."""

from __future__ import annotations

import csv
import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from arbframe_plugins.feeds import replay, scripted
from arbframe_plugins.feeds.replay import ReplayFeed
from arbframe_plugins.feeds.scripted import ScriptedFeed
from jsonschema import Draft202012Validator

from arbframe.errors import ArbframeError, ConfigError
from arbframe.testing import feed_context

REPO = Path(__file__).resolve().parents[1]
BINANCE = "data/real/binance_LINKUSDT_orderbook10_1s_20210820.csv.gz"
HUOBI = "data/real/huobi_LINKUSDT_orderbook10_1s_20210820.csv.gz"
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z, the scripted feed's default epoch
REAL_T0 = 1_629_417_600_000_000_000  # 2021-08-20T00:00:00Z, first row of the real files
S = 1_000_000_000


def scripted_feed(config: dict[str, Any], base: Path = REPO) -> ScriptedFeed:
    Draft202012Validator(ScriptedFeed.config_schema).validate(config)
    return ScriptedFeed(config, name="feeds[0]", ctx=feed_context(base))


def replay_feed(config: dict[str, Any], base: Path = REPO) -> ReplayFeed:
    Draft202012Validator(ReplayFeed.config_schema).validate(config)
    return ReplayFeed(config, name="feeds[0]", ctx=feed_context(base))


def real_config(**extra: Any) -> dict[str, Any]:
    return {"symbol": "LINK", "venues": {"binance": BINANCE, "huobi": HUOBI}, **extra}


# --------------------------------------------------------------------------------------
# scripted
# --------------------------------------------------------------------------------------


def test_scripted_inline_gives_exact_tuples() -> None:
    feed = scripted_feed(
        {
            "size": 1000,
            "events": [
                {"at": "0s", "fx": {"KRW": 1350, "JPY": "150.5"}},
                {"at": "0s", "venue": "upbit", "symbol": "BTC", "bid": 100, "ask": 101},
                {
                    "at": "1s",
                    "venue": "binance",
                    "symbol": "BTC",
                    "bid": 99,
                    "ask": 99.5,
                    "bid_size": 2,
                    "ask_size": 3,
                },
                {
                    "at": "2s",
                    "venue": "binance",
                    "symbol": "BTC",
                    "bids": [[99, 1], [98.9, 2]],
                    "asks": [[99.5, 1], [99.6, 5]],
                },
                {"at": 2.5, "venue": "upbit", "symbol": "ETH", "bid": "10.5", "ask": "10.75"},
            ],
        }
    )
    assert list(feed.events()) == [
        (T0, None, "KRW", 1350.0, None),
        (T0, None, "JPY", 150.5, None),
        (T0, "upbit", "BTC", ((100.0, 1000.0),), ((101.0, 1000.0),)),
        (T0 + S, "binance", "BTC", ((99.0, 2.0),), ((99.5, 3.0),)),
        (T0 + 2 * S, "binance", "BTC", ((99.0, 1.0), (98.9, 2.0)), ((99.5, 1.0), (99.6, 5.0))),
        (T0 + 2_500_000_000, "upbit", "ETH", ((10.5, 1000.0),), ((10.75, 1000.0),)),
    ]
    assert feed.venues() == ["upbit", "binance"]
    assert feed.symbols() == ["BTC", "ETH"]  # FX currencies are not symbols
    # Replayable: a second pass gives the same events.
    assert list(feed.events()) == list(feed.events())


def test_scripted_default_size_start_and_types() -> None:
    feed = scripted_feed(
        {
            "start": "2021-08-20T00:00:00Z",
            "events": [{"at": "1m250ms", "venue": "v", "symbol": "BTC", "bid": 1, "ask": 2}],
        }
    )
    [event] = list(feed.events())
    assert event == (REAL_T0 + 60_250_000_000, "v", "BTC", ((1.0, 1e9),), ((2.0, 1e9),))
    assert type(event[0]) is int and type(event[3][0][0]) is float


def test_scripted_naive_start_is_utc() -> None:
    feed = scripted_feed({"start": "2021-08-20 00:00:00", "events": [{"at": 0, "fx": {"KRW": 1}}]})
    assert next(iter(feed.events()))[0] == REAL_T0


def test_scripted_equal_times_keep_file_order() -> None:
    events = [
        {"at": "1s", "venue": name, "symbol": "BTC", "bid": 1, "ask": 2} for name in ("c", "a", "b")
    ]
    feed = scripted_feed({"events": events})
    assert [e[1] for e in feed.events()] == ["c", "a", "b"]
    assert feed.venues() == ["c", "a", "b"]


def test_scripted_out_of_order_names_the_event() -> None:
    # The brief's example lists the FX event last with `at: 0s`: that is out of order.
    config = {
        "events": [
            {"at": "0s", "venue": "upbit", "symbol": "BTC", "bid": 100, "ask": 101},
            {"at": "1s", "venue": "binance", "symbol": "BTC", "bid": 99, "ask": 99.5},
            {
                "at": "2s",
                "venue": "binance",
                "symbol": "BTC",
                "bids": [[99, 1]],
                "asks": [[99.5, 1]],
            },
            {"at": "0s", "fx": {"KRW": 1350}},
        ]
    }
    with pytest.raises(ConfigError, match=r"^at '0s' is earlier") as err:
        scripted_feed(config)
    assert err.value.key == ("events", 3)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"bid": 101, "ask": 100}, "crossed book"),
        ({"bids": [[99, 1], [99.5, 1]], "asks": [[100, 1]]}, "bids are not best first"),
        ({"bids": [[99, 1]], "asks": [[100, 1], [100, 2]]}, "asks are not best first"),
    ],
)
def test_scripted_rejects_bad_books(event: dict[str, Any], message: str) -> None:
    config = {
        "events": [{"at": 0, "fx": {"KRW": 1}}, {"at": 1, "venue": "v", "symbol": "BTC", **event}]
    }
    with pytest.raises(ConfigError, match=message) as err:
        scripted_feed(config)
    assert err.value.key == ("events", 1)


def test_scripted_csv(tmp_path: Path) -> None:
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "script.csv").write_text(
        "at,venue,symbol,bid,ask,bid_size,ask_size\n"
        "0s,upbit,BTC,100,101,,\n"
        "1.5,binance,BTC,99,99.5,2,3\n"
        "1500ms,upbit,BTC,100.5,101,4,\n"
    )
    feed = scripted_feed({"csv": "books/script.csv", "size": "7"}, base=tmp_path)
    assert list(feed.events()) == [
        (T0, "upbit", "BTC", ((100.0, 7.0),), ((101.0, 7.0),)),
        (T0 + 1_500_000_000, "binance", "BTC", ((99.0, 2.0),), ((99.5, 3.0),)),
        (T0 + 1_500_000_000, "upbit", "BTC", ((100.5, 4.0),), ((101.0, 7.0),)),
    ]
    assert feed.venues() == ["upbit", "binance"] and feed.symbols() == ["BTC"]


def test_scripted_csv_without_size_columns(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("at,venue,symbol,bid,ask\n2s,v,LINK,1.25,1.5\n")
    feed = scripted_feed({"csv": "s.csv"}, base=tmp_path)
    assert list(feed.events()) == [(T0 + 2 * S, "v", "LINK", ((1.25, 1e9),), ((1.5, 1e9),))]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("at,venue,symbol,bid,ask\n2s,v,X,1,2\n1s,v,X,1,2\n", r"s\.csv:3: at '1s' is earlier"),
        ("at,venue,symbol,bid,ask\n0s,v,X,1,2\n1s,v,X,abc,2\n", r"s\.csv:3: could not convert"),
        ("at,venue,symbol,bid,ask\n0s,v,X,1,2\n1s,v,X,3,2\n", r"s\.csv:3: crossed book"),
        ("at,venue,symbol,bid,ask\nsoon,v,X,1,2\n", r"s\.csv:2: not a duration"),
        ("at,venue,symbol,bid,ask\n-1,v,X,1,2\n", r"s\.csv:2: not a duration"),
        ("at,venue,symbol,bid,ask\n0s,v,X,1\n", r"s\.csv:2: wrong number of columns"),
        ("at,venue,symbol,bid\n", r"s\.csv:1: missing column\(s\) ask"),
        ("at,venue,symbol,bid,ask,depth\n", r"s\.csv:1: unknown column\(s\) depth"),
    ],
)
def test_scripted_csv_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(ArbframeError, match=message):
        scripted_feed({"csv": "s.csv"}, base=tmp_path)


def test_scripted_missing_csv_file(tmp_path: Path) -> None:
    with pytest.raises(ArbframeError, match="cannot read"):
        scripted_feed({"csv": "nope.csv"}, base=tmp_path)


def test_scripted_schema_accepts_the_documented_example() -> None:
    example = {
        "start": "2024-01-01T00:00:00Z",
        "events": [
            {"at": "0s", "venue": "upbit", "symbol": "BTC", "bid": 100, "ask": 101},
            {
                "at": "1s",
                "venue": "binance",
                "symbol": "BTC",
                "bid": 99,
                "ask": 99.5,
                "bid_size": 2,
                "ask_size": 3,
            },
            {
                "at": "2s",
                "venue": "binance",
                "symbol": "BTC",
                "bids": [[99, 1], [98.9, 2]],
                "asks": [[99.5, 1], [99.6, 5]],
            },
            {"at": "0s", "fx": {"KRW": 1350}},
        ],
        "size": 1000,
    }
    validator = Draft202012Validator(ScriptedFeed.config_schema)
    Draft202012Validator.check_schema(ScriptedFeed.config_schema)
    validator.validate(example)
    validator.validate({"csv": "books.csv"})


BOOK = {"at": "0s", "venue": "v", "symbol": "BTC", "bid": 1, "ask": 2}


@pytest.mark.parametrize(
    "config",
    [
        {},  # neither events nor csv
        {"events": [BOOK], "csv": "x.csv"},  # both
        {"events": [BOOK], "speed": 2},  # unknown key
        {"events": [{**BOOK, "bids": [[1, 1]]}]},  # bid and bids mixed
        {"events": [{**BOOK, "depth": 3}]},  # unknown event key
        {"events": [{"at": "0s", "venue": "v", "symbol": "BTC", "bid": 1}]},  # no ask
        {"events": [{**BOOK, "at": "soon"}]},
        {"events": [{**BOOK, "bid": -1}]},
        {"events": [{"at": "0s", "fx": {"krw": 1350}}]},  # currency codes are upper case
        {"events": [{"at": "0s", "fx": {}}]},
        {
            "events": [
                {"at": "0s", "venue": "v", "symbol": "BTC", "bids": [[1, 1, 1]], "asks": [[2, 1]]}
            ]
        },
        {"events": [BOOK], "size": 0},
    ],
)
def test_scripted_schema_rejects(config: dict[str, Any]) -> None:
    assert not Draft202012Validator(ScriptedFeed.config_schema).is_valid(config)


# --------------------------------------------------------------------------------------
# replay: the real files
# --------------------------------------------------------------------------------------


def first_csv_row(path: str) -> dict[str, str]:
    with gzip.open(REPO / path, "rt", newline="") as handle:
        return next(csv.DictReader(handle))


@pytest.fixture(scope="module")
def real_events() -> list[Any]:
    return list(replay_feed(real_config()).events())


def test_replay_real_counts_and_merged_order(real_events: list[Any]) -> None:
    assert len(real_events) == 14_400
    per_venue = {v: sum(1 for e in real_events if e[1] == v) for v in ("binance", "huobi")}
    assert per_venue == {"binance": 7_200, "huobi": 7_200}
    times = [e[0] for e in real_events]
    assert times == sorted(times)
    # Identical timestamps in both files: each second appears once per venue, config order.
    assert [e[1] for e in real_events[:4]] == ["binance", "huobi", "binance", "huobi"]
    assert times[0::2] == times[1::2] == [REAL_T0 + i * S for i in range(7_200)]
    assert all(e[2] == "LINK" and len(e[3]) == len(e[4]) == 10 for e in real_events)


def test_replay_real_first_event_matches_the_csv(real_events: list[Any]) -> None:
    ts, venue, symbol, bids, asks = real_events[0]
    assert (ts, venue, symbol) == (REAL_T0, "binance", "LINK")
    # Hand-copied from the file's first data row.
    assert bids[0] == (27.095, 988.45) and bids[9] == (27.076, 354.909)
    assert asks[0] == (27.101, 21.079) and asks[9] == (27.113, 180.377)
    assert real_events[1][3][0] == (27.0999, 10.67) and real_events[1][4][0] == (27.1, 83.08)
    for event, path in ((real_events[0], BINANCE), (real_events[1], HUOBI)):
        row = first_csv_row(path)
        assert event[3] == tuple((float(row[f"b{i}"]), float(row[f"bv{i}"])) for i in range(1, 11))
        assert event[4] == tuple((float(row[f"a{i}"]), float(row[f"av{i}"])) for i in range(1, 11))


def test_replay_real_levels_truncate(real_events: list[Any]) -> None:
    five = list(replay_feed(real_config(levels=5)).events())
    assert len(five) == len(real_events)
    assert all(len(e[3]) == len(e[4]) == 5 for e in five)
    assert all(
        a[:3] == b[:3] and a[3] == b[3][:5] and a[4] == b[4][:5]
        for a, b in zip(five, real_events, strict=True)
    )


def test_replay_gz_and_plain_csv_agree(tmp_path: Path, real_events: list[Any]) -> None:
    for path in (BINANCE, HUOBI):
        with gzip.open(REPO / path, "rb") as source:
            (tmp_path / Path(path).name.removesuffix(".gz")).write_bytes(source.read())
    config = {
        "symbol": "LINK",
        "venues": {
            "binance": Path(BINANCE).name.removesuffix(".gz"),
            "huobi": Path(HUOBI).name.removesuffix(".gz"),
        },
    }
    assert list(replay_feed(config, base=tmp_path).events()) == real_events


def test_replay_limit_start_and_venue_order() -> None:
    feed = replay_feed(
        {
            "symbol": "LINK",
            "venues": {"huobi": HUOBI, "binance": BINANCE},
            "start": "2021-08-20T01:00:00Z",
            "limit": 3,
        }
    )
    assert feed.venues() == ["huobi", "binance"] and feed.symbols() == ["LINK"]
    events = list(feed.events())
    assert [(e[0], e[1]) for e in events] == [
        (REAL_T0 + 3600 * S + i * S, venue) for i in range(3) for venue in ("huobi", "binance")
    ]


def test_replay_streams_lazily() -> None:
    events = replay_feed(real_config()).events()
    assert isinstance(events, Iterator)
    assert [e[0] for e in itertools.islice(events, 3)] == [REAL_T0, REAL_T0, REAL_T0 + S]


def test_replay_schema() -> None:
    documented = {
        "symbol": "LINK",
        "venues": {"binance": BINANCE, "huobi": HUOBI},
        "levels": 10,
        "columns": {
            "timestamp": "timestamp",
            "bid_price": "b{i}",
            "bid_size": "bv{i}",
            "ask_price": "a{i}",
            "ask_size": "av{i}",
        },
        "start": None,
        "limit": None,
    }
    Draft202012Validator.check_schema(ReplayFeed.config_schema)
    validator = Draft202012Validator(ReplayFeed.config_schema)
    validator.validate(documented)
    for bad in (
        {"venues": {"binance": BINANCE}},  # no symbol
        {"symbol": "LINK", "venues": {}},
        {"symbol": "LINK", "venues": {"binance": BINANCE}, "levels": 0},
        {"symbol": "LINK", "venues": {"binance": BINANCE}, "speed": 2},
        {"symbol": "LINK", "venues": {"binance": BINANCE}, "columns": {"time": "t"}},
        {"symbol": "LINK", "venues": {"binance": BINANCE}, "timestamp_unit": "minutes"},
        {"symbol": "LINK", "venues": {"binance": BINANCE}, "limit": 0},
    ):
        assert not validator.is_valid(bad), bad


# --------------------------------------------------------------------------------------
# replay: other layouts and bad input
# --------------------------------------------------------------------------------------

HEADER = "timestamp,symbol,b1,b2,bv1,bv2,a1,a2,av1,av2\n"
GOOD = "2021-08-20 00:00:00,X,10,9,1,2,11,12,3,4\n"


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return name


def test_replay_column_mapping_and_epoch_ms(tmp_path: Path) -> None:
    name = write(
        tmp_path,
        "custom.csv",
        (
            "exch_ms,bid_px_1,bid_qty_1,ask_px_1,ask_qty_1,bid_px_2,bid_qty_2,ask_px_2,ask_qty_2\n"
            "1629417600000,100.5,1,101,2,100,3,101.5,4\n"
            "1629417600250,100.5,1,101,2,0,3,,\n"  # a zero price and an empty level: skipped
            "1629417600250.5,100.25,5,100.75,6,100,7,101,8\n"
        ),
    )
    feed = replay_feed(
        {
            "symbol": "BTC",
            "venues": {"x": name},
            "timestamp_unit": "ms",
            "columns": {
                "timestamp": "exch_ms",
                "bid_price": "bid_px_{i}",
                "bid_size": "bid_qty_{i}",
                "ask_price": "ask_px_{i}",
                "ask_size": "ask_qty_{i}",
            },
        },
        base=tmp_path,
    )
    assert list(feed.events()) == [
        (REAL_T0, "x", "BTC", ((100.5, 1.0), (100.0, 3.0)), ((101.0, 2.0), (101.5, 4.0))),
        (REAL_T0 + 250_000_000, "x", "BTC", ((100.5, 1.0),), ((101.0, 2.0),)),
        (
            REAL_T0 + 250_500_000,
            "x",
            "BTC",
            ((100.25, 5.0), (100.0, 7.0)),
            ((100.75, 6.0), (101.0, 8.0)),
        ),
    ]


def test_replay_iso_variants(tmp_path: Path) -> None:
    name = write(
        tmp_path,
        "iso.csv",
        HEADER
        + GOOD
        + "2021-08-20T00:00:00.5,X,10,9,1,2,11,12,3,4\n"
        + "2021-08-20T02:00:01+02:00,X,10,9,1,2,11,12,3,4\n",
    )
    feed = replay_feed({"symbol": "X", "venues": {"v": name}}, base=tmp_path)
    assert [e[0] for e in feed.events()] == [REAL_T0, REAL_T0 + S // 2, REAL_T0 + S]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2021-08-20 00:00:01,X,10,9,1,abc,11,12,3,4\n", "column bv2: not a number: 'abc'"),
        ("2021-08-20 00:00:01,X,10,9,1,2,11,12,3\n", "expected 10 columns, got 9"),
        ("2021-08-20 00:00:01,X,11.5,9,1,2,11,12,3,4\n", "crossed book: best bid 11.5"),
        ("2021-08-20 00:00:01,X,10,9,1,-2,11,12,3,4\n", "bad level"),
        ("2021-08-20 00:00:01,X,9,10,1,2,11,12,3,4\n", "bid levels are not best first"),
        ("2021-08-19 23:59:59,X,10,9,1,2,11,12,3,4\n", "timestamp '2021-08-19 23:59:59' goes back"),
        ("yesterday,X,10,9,1,2,11,12,3,4\n", "column timestamp: bad timestamp 'yesterday'"),
    ],
)
def test_replay_malformed_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    name = write(tmp_path, "bad.csv", HEADER + GOOD + row)
    events = replay_feed({"symbol": "X", "venues": {"v": name}}, base=tmp_path).events()
    assert next(events)[0] == REAL_T0  # the good row comes out before the bad one is read
    with pytest.raises(ArbframeError) as caught:
        next(events)
    assert str(caught.value).startswith(f"{tmp_path / name}:3: {message}")


def test_replay_header_problems_fail_at_construction(tmp_path: Path) -> None:
    name = write(tmp_path, "two.csv", HEADER + GOOD)
    with pytest.raises(
        ArbframeError,
        match=r"two\.csv:1: 3 level\(s\) wanted but only 2 "
        r"available \(no column 'b3'\)",
    ):
        replay_feed({"symbol": "X", "venues": {"v": name}, "levels": 3}, base=tmp_path)
    with pytest.raises(ArbframeError, match=r"two\.csv:1: no column 'time'"):
        replay_feed(
            {"symbol": "X", "venues": {"v": name}, "columns": {"timestamp": "time"}}, base=tmp_path
        )
    with pytest.raises(ConfigError, match=r"^cannot read .*missing") as err:
        replay_feed({"symbol": "X", "venues": {"w": "missing.csv.gz"}}, base=tmp_path)
    assert err.value.key == ("venues", "w")


def test_replay_gz_errors_report_line(tmp_path: Path) -> None:
    text = HEADER + GOOD + "2021-08-20 00:00:01,X,10,9,1,2,11,12,3\n"
    (tmp_path / "bad.csv.gz").write_bytes(gzip.compress(text.encode()))
    events = replay_feed({"symbol": "X", "venues": {"v": "bad.csv.gz"}}, base=tmp_path).events()
    with pytest.raises(ArbframeError, match=r"bad\.csv\.gz:3: expected 10 columns, got 9"):
        list(events)


# --------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------


def test_modules_register_their_feed() -> None:
    registered: list[type] = []
    scripted.arbframe_register_feeds(registered.append)
    replay.arbframe_register_feeds(registered.append)
    assert registered == [ScriptedFeed, ReplayFeed]
    assert [c.type_name for c in registered] == ["scripted", "replay"]
