"""Columnar market data: the Parquet dataset (arbframe.marketdata), `arbframe data import`,
and the replay feed reading Parquet: the same events as from CSV, the same run, bad rows
refused with file, row and column."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from arbframe_plugins.feeds.replay import ReplayFeed
from jsonschema import Draft202012Validator

from arbframe.cli import main
from arbframe.errors import ArbframeError
from arbframe.marketdata import DatasetWriter, book_schema, dataset_files, read_books
from arbframe.testing import feed_context, run_scenario_file

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "data" / "real"
BINANCE = REAL / "binance_LINKUSDT_orderbook10_1s_20210820.csv.gz"
HUOBI = REAL / "huobi_LINKUSDT_orderbook10_1s_20210820.csv.gz"
DAY = 86_400 * 10**9
S = 10**9


def replay(venues: dict[str, str], **extra: Any) -> ReplayFeed:
    config = {"symbol": "LINK", "venues": venues, **extra}
    Draft202012Validator(ReplayFeed.config_schema).validate(config)
    return ReplayFeed(config, name="feeds[0]", ctx=feed_context(REPO))


@pytest.fixture(scope="module")
def link_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real LINK files imported through the command line, as a user would."""
    out = tmp_path_factory.mktemp("link")
    for venue, path in (("binance", BINANCE), ("huobi", HUOBI)):
        code = main(["data", "import", str(path), "--venue", venue, "--symbol", "LINK",
                     "--out", str(out), "--json"])  # fmt: skip
        assert code == 0
    return out


def test_round_trip_keeps_every_book_exactly(tmp_path: Path) -> None:
    books = [
        (1 * S, "v", "X", ((10.5, 1.0), (10.25, 2.0), (10.0, 0.125)), ((11.0, 3.0),)),
        (2 * S, "v", "X", ((10.5, 1.0),), ((11.0, 3.0), (11.5, 1e-8), (12.0, 7.0))),
        (2 * S, "v", "X", (), ((11.0, 3.0),)),  # one side empty, same instant
        (3 * S, "v", "X", ((0.1 + 0.2, 1 / 3),), ()),  # floats that do not print short
    ]
    with DatasetWriter(tmp_path, levels=3, row_group_rows=2) as writer:
        for book in books:
            writer.add(*book)
    [part] = dataset_files(tmp_path, "v", "X")
    assert part.parent.name == "date=1970-01-01"
    assert pq.ParquetFile(part).metadata.num_row_groups == 2  # row groups of the size asked
    back = list(read_books([part], "v", "X", batch_rows=3))  # a batch boundary mid-file
    assert back == books
    assert list(read_books([part], "v", "X", start=2 * S, limit=2)) == books[1:3]
    assert list(read_books([part], "v", "X", levels=1))[0][3] == ((10.5, 1.0),)


def test_days_are_partitions_across_midnight(tmp_path: Path) -> None:
    midnight = 19_000 * DAY
    times = [midnight - 2 * S, midnight - 1, midnight, midnight + S]
    with DatasetWriter(tmp_path, levels=1) as writer:
        for ts in times:
            writer.add(ts, "binance", "USDT/KRW", ((1.0, 1.0),), ((2.0, 1.0),))
    files = dataset_files(tmp_path, "binance", "USDT/KRW")
    assert [f.parent.name for f in files] == ["date=2022-01-07", "date=2022-01-08"]
    assert files[0].parents[1].name == "symbol=USDT%2FKRW"  # Hive's encoding of the "/"
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [2, 2]
    assert [e[0] for e in read_books(files, "binance", "USDT/KRW")] == times


def test_a_killed_writer_leaves_no_partial_part(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path, levels=1, row_group_rows=1)
    writer.add(S, "v", "X", ((1.0, 1.0),), ((2.0, 1.0),))
    writer.add(2 * S, "v", "X", ((1.0, 1.0),), ((2.0, 1.0),))  # a row group already on disk
    assert dataset_files(tmp_path) == []  # still under its hidden temporary name
    assert len(list(tmp_path.rglob(".part-*.tmp"))) == 1
    writer.close()
    assert len(dataset_files(tmp_path)) == 1 and not list(tmp_path.rglob(".part-*"))


def test_parquet_replay_gives_the_csv_replays_events(link_dataset: Path) -> None:
    csv = replay({"binance": str(BINANCE), "huobi": str(HUOBI)})
    parquet = replay({"binance": str(link_dataset), "huobi": str(link_dataset)})
    expected = list(csv.events())
    assert len(expected) == 14_400
    assert list(parquet.events()) == expected
    # start and limit mean the same on both
    options = {"start": "2021-08-20T01:00:00", "limit": 100, "levels": 3}
    a = replay({"binance": str(BINANCE)}, **options)
    b = replay({"binance": str(link_dataset)}, **options)
    assert list(b.events()) == list(a.events())
    assert len(list(b.events())) == 100


def _summary_without_timing(summary: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(summary, default=str, sort_keys=True)
    out = json.loads(text)
    for key in ("scenario", "session", "wall_s"):
        out.pop(key, None)
    return out


@pytest.mark.parametrize("scenario", ["real_link_binance_huobi", "real_link_zero_fee"])
def test_scenario_on_parquet_matches_csv(scenario: str, link_dataset: Path, tmp_path: Path):
    path = tmp_path / "on_parquet.yaml"
    path.write_text(
        f"extends: {REPO / 'scenarios' / scenario}.yaml\nname: on_parquet\n"
        f"feeds:\n  - type: replay\n    symbol: LINK\n"
        f"    venues: {{binance: {link_dataset}, huobi: {link_dataset}}}\n"
    )
    on_parquet = run_scenario_file(path)
    on_csv = run_scenario_file(REPO / "scenarios" / f"{scenario}.yaml")
    assert on_parquet.summary["passed"]
    assert _summary_without_timing(on_parquet.summary) == _summary_without_timing(on_csv.summary)
    assert (
        on_parquet.fills
        and len(on_parquet.fills) == len(on_csv.fills)
        or scenario.endswith("huobi")
    )
    assert list(map(_fill, on_parquet.fills)) == list(map(_fill, on_csv.fills))


def _fill(fill: Any) -> dict[str, Any]:
    """A fill without its client order id (derived from the session, i.e. the name)."""
    return {f.name: getattr(fill, f.name) for f in fields(fill) if f.name != "client_id"}


def _bad_file(tmp_path: Path, column: str, row: int, value: Any) -> Path:
    """A valid 3-level file of 50 books with one cell changed."""
    n = 50
    data: dict[str, list[Any]] = {"ts": [i * S for i in range(n)]}
    for i in range(1, 4):
        data[f"bid_price_{i}"] = [100.0 - i] * n
        data[f"bid_size_{i}"] = [1.0] * n
        data[f"ask_price_{i}"] = [100.0 + i] * n
        data[f"ask_size_{i}"] = [1.0] * n
    data[column][row] = value
    schema = book_schema(3)
    table = pa.table({f.name: pa.array(data[f.name], f.type) for f in schema}, schema=schema)
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("bid_price_2", -1.0, "not a positive finite number"),
        ("ask_size_3", math.inf, "not a positive finite number"),
        ("ask_price_1", math.nan, "not a number"),
        ("bid_size_1", 0.0, "not a positive finite number"),
        ("bid_price_2", 99.5, "bid levels are not best first"),
        ("bid_price_2", 99.0, "bid levels are not best first"),  # equal to level 1
        ("ask_price_3", 102.0, "ask levels are not best first"),  # equal to level 2
        ("ask_price_1", 98.0, "crossed book: best bid >= best ask"),
        ("ask_price_1", 99.0, "crossed book: best bid >= best ask"),  # locked: bid == ask
        ("ask_size_2", None, "price and size not both set"),
        ("ts", 0, "time goes backwards"),
    ],
)
def test_a_bad_row_is_refused_with_file_row_and_column(
    tmp_path: Path, column: str, value: Any, what: str
) -> None:
    path = _bad_file(tmp_path, column, 37, value)
    feed = replay({"binance": str(path)})
    with pytest.raises(ArbframeError) as err:
        list(feed.events())
    assert str(err.value) == f"{path}: row 38: column {column}: {what}"


def test_a_level_after_a_missing_one_is_refused(tmp_path: Path) -> None:
    path = _bad_file(tmp_path, "bid_price_1", 3, None)
    table = pq.read_table(path)
    sizes = table.column("bid_size_1").to_pylist()
    sizes[3] = None
    table = table.set_column(2, "bid_size_1", pa.array(sizes, pa.float64()))
    pq.write_table(table, path)
    with pytest.raises(ArbframeError, match=r"row 4: column bid_price_2: a level after a missing"):
        list(replay({"binance": str(path)}).events())


def _part(root: Path, times: list[int], name: str) -> Path:
    """A one-level part of ``times`` (books all alike) at ``root``'s place for v/X, under
    the part name given (parts are read in name order)."""
    schema = book_schema(1, "v", "X")
    n = len(times)
    data = {"ts": times, "bid_price_1": [1.0] * n, "bid_size_1": [1.0] * n,
            "ask_price_1": [2.0] * n, "ask_size_1": [1.0] * n}  # fmt: skip
    table = pa.table({f.name: pa.array(data[f.name], f.type) for f in schema}, schema=schema)
    path = root / "venue=v" / "symbol=X" / "date=1970-01-01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def test_time_is_checked_across_parts(tmp_path: Path) -> None:
    _part(tmp_path, [10 * S, 11 * S, 12 * S], "part-1.parquet")
    second = _part(tmp_path, [12 * S, 11 * S + 1], "part-2.parquet")
    with pytest.raises(ArbframeError) as err:
        list(replay({"v": str(tmp_path)}, symbol="X").events())
    assert str(err.value) == f"{second}: row 2: column ts: time goes backwards"
    second.unlink()
    third = _part(tmp_path, [12 * S - 1, 13 * S], "part-3.parquet")  # its first row goes back
    with pytest.raises(ArbframeError) as err:
        list(replay({"v": str(tmp_path)}, symbol="X").events())
    assert str(err.value) == f"{third}: row 1: column ts: time goes backwards"


def test_time_is_checked_across_batches(tmp_path: Path) -> None:
    times = [i * S for i in range(30)]
    times[20] = 19 * S - 1  # the first row of the third batch of 10 goes back
    path = _part(tmp_path, times, "part-1.parquet")
    with pytest.raises(ArbframeError) as err:
        list(read_books([path], "v", "X", batch_rows=10))
    assert str(err.value) == f"{path}: row 21: column ts: time goes backwards"


def test_import_refuses_what_replay_refuses_with_the_same_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "t,bid,bidq,ask,askq\n2024-01-01T00:00:00,10,1,11,1\n2024-01-01T00:00:01,12,1,11,1\n"
    )
    columns = {"timestamp": "t", "bid_price": "bid", "bid_size": "bidq", "ask_price": "ask",
               "ask_size": "askq"}  # fmt: skip
    with pytest.raises(ArbframeError) as replayed:
        list(replay({"x": str(bad)}, columns=columns).events())
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "arbframe", "data", "import", str(bad), "--venue", "x",
           "--symbol", "LINK", "--out", str(out), "--columns",
           *(f"{k}={v}" for k, v in columns.items())]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == str(replayed.value)
    assert f"{bad}:3: crossed book" in done.stderr and "Traceback" not in done.stderr
    assert dataset_files(out) == []


def test_import_with_a_column_mapping_and_epoch_times(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("ms,bp1,bq1,ap1,aq1\n1700000000000,10,1,11,2\n1700000000500,10.5,1,11,2\n")
    out = tmp_path / "ds"
    mapping = ["timestamp=ms", "bid_price=bp{i}", "bid_size=bq{i}", "ask_price=ap{i}",
               "ask_size=aq{i}"]  # fmt: skip
    code = main(["data", "import", str(src), "--venue", "kraken", "--symbol", "ETH", "--out",
                 str(out), "--timestamp-unit", "ms", "--columns", *mapping])  # fmt: skip
    assert code == 0
    events = list(read_books(dataset_files(out, "kraken", "ETH"), "kraken", "ETH"))
    assert events == [
        (1_700_000_000_000_000_000, "kraken", "ETH", ((10.0, 1.0),), ((11.0, 2.0),)),
        (1_700_000_000_500_000_000, "kraken", "ETH", ((10.5, 1.0),), ((11.0, 2.0),)),
    ]


def _import(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "arbframe", "data", "import", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_import_names_a_bad_columns_key_and_a_missing_column(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("ms,bp1,bq1,ap1,aq1\n1700000000000,10,1,11,2\n")
    base = [str(src), "--venue", "k", "--symbol", "E", "--out", str(tmp_path / "ds")]
    done = _import(*base, "--columns", "foo=bar")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "--columns: unknown key 'foo' (keys: timestamp, bid_price, bid_size, ask_price, ask_size)"
    )
    mapping = ["timestamp=ms", "bid_size=bq{i}", "ask_price=ap{i}", "ask_size=aq{i}"]
    done = _import(*base, "--timestamp-unit", "ms", "--columns", *mapping)  # bid_price: b{i}
    assert done.returncode == 2
    assert done.stderr.strip() == f"{src}:1: no column 'b1'"
    assert "level(s) wanted" not in done.stderr
    done = _import(*base, "--timestamp-unit", "ms", "--levels", "2", "--columns", *mapping,
                   "bid_price=bp{i}")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"{src}:1: 2 level(s) wanted but only 1 available " \
        "(no column 'bp2')"  # fmt: skip


def _csv(path: Path, first: str, seconds: int) -> Path:
    """A one-level CSV of ``seconds`` books a second apart from ``first`` (ISO)."""
    from datetime import datetime, timedelta

    t0 = datetime.fromisoformat(first)
    lines = ["timestamp,b1,bv1,a1,av1"]
    lines += [f"{(t0 + timedelta(seconds=i)).isoformat()},10,1,11,1" for i in range(seconds)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_into_a_dataset_refuses_an_overlap_and_appends_a_later_span(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "ds"
    day1 = _csv(tmp_path / "day1.csv", "2024-01-01T23:59:50", 5)
    day2 = _csv(tmp_path / "day2.csv", "2024-01-02T00:00:00", 5)
    late = _csv(tmp_path / "late.csv", "2024-01-01T23:59:54", 3)  # starts inside day1's span
    around = _csv(tmp_path / "around.csv", "2024-01-01T23:59:40", 30)  # covers all of it
    base = ["--venue", "v", "--symbol", "X", "--out", str(out)]
    assert main(["data", "import", str(day1), *base]) == 0
    before = dataset_files(out)
    done = _import(str(day1), *base)  # the same file again
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{before[0]}: v X: the dataset already holds books from ")
    assert "overlap" in done.stderr
    for src in (late, around):
        done = _import(str(src), *base)
        assert done.returncode == 2, (src, done.stderr)
    assert dataset_files(out) == before  # nothing written by a refused import
    assert main(["data", "import", str(day2), *base]) == 0  # the next day: appended
    capsys.readouterr()
    assert main(["data", "info", str(out), "--json"]) == 0
    [market] = json.loads(capsys.readouterr().out)["markets"]
    assert (market["rows"], market["files"], market["overlaps"]) == (10, 2, [])
    events = list(replay({"v": str(out)}, symbol="X").events())
    assert len(events) == 10


def test_data_info_flags_overlapping_parts(tmp_path: Path, capsys) -> None:
    """A dataset filled by other means (or by an older arbframe) with the same span twice."""
    _part(tmp_path, [10 * S, 11 * S, 12 * S], "part-1.parquet")
    twice = _part(tmp_path, [10 * S, 11 * S, 12 * S], "part-2.parquet")
    _part(tmp_path, [12 * S, 13 * S], "part-3.parquet")  # equal times at the seam: fine
    assert main(["data", "info", str(tmp_path), "--json"]) == 0
    [market] = json.loads(capsys.readouterr().out)["markets"]
    assert market["overlaps"] == [str(twice)]
    assert market["rows"] == 8
    assert main(["data", "info", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert f"OVERLAPPING: 1 part(s) start before the previous one ends; replay refuses this " \
        f"market. First: {twice}" in text  # fmt: skip


def test_data_info_on_a_directory_without_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "venue=v").mkdir()
    done = subprocess.run([sys.executable, "-m", "arbframe", "data", "info", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"{tmp_path}: no market data (no venue=*/symbol=*/date=*/part-*.parquet in it)"
    )


def test_data_info_names_venues_symbols_rows_and_span(link_dataset: Path, capsys) -> None:
    assert main(["data", "info", str(link_dataset), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == 14_400
    assert [(m["venue"], m["symbol"], m["rows"]) for m in info["markets"]] == [
        ("binance", "LINK", 7200),
        ("huobi", "LINK", 7200),
    ]
    assert info["markets"][0]["first"].startswith("2021-08-20T00:00:00")
    assert info["markets"][0]["last"].startswith("2021-08-20T01:59:59")


def test_a_dataset_without_the_venue_names_what_it_holds(link_dataset: Path) -> None:
    with pytest.raises(ArbframeError, match=r"no data for venue 'okx'.*binance/LINK, huobi/LINK"):
        replay({"okx": str(link_dataset)})


@pytest.mark.parametrize("seed", range(6))
def test_the_vectorised_merge_orders_as_heapq_merge(seed: int, tmp_path: Path, monkeypatch):
    """Venues with repeated times, uneven batches and chunks: the same order, ties in venue
    order, as heapq.merge of the venues' streams."""
    import heapq
    import random
    from operator import itemgetter

    from arbframe import marketdata

    rng = random.Random(seed)
    with DatasetWriter(tmp_path, levels=2) as writer:
        for venue, n in (("a", 40), ("b", 25), ("c", 33)):
            ts = 0
            for _ in range(n):
                ts += rng.choice((0, 0, 1, 2)) * S
                writer.add(ts, venue, "X", ((float(rng.randint(1, 9)), 1.0),), ((10.0, 2.0),))
    monkeypatch.setattr(marketdata, "EVENT_CHUNK_ROWS", 4)
    files = {v: dataset_files(tmp_path, v, "X") for v in "abc"}
    streams = [(v, marketdata.read_batches(files[v], batch_rows=7)) for v in "abc"]
    merged = list(marketdata.merge_books(streams, "X"))
    reference = heapq.merge(*(read_books(files[v], v, "X") for v in "abc"), key=itemgetter(0))
    assert merged == list(reference)
    assert len(merged) == 98
    assert len({e[0] for e in merged}) < 98  # ties (across venues and within) were there
