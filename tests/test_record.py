"""`arbframe record`: books from the fake Binance and Upbit (the real ccxt client, on
127.0.0.1) into a Parquet dataset, checked against what the fake venues published; the
recording then replays through a scenario."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fakevenues.server import FakeVenues

from arbframe.cli import main
from arbframe.marketdata import dataset_files, read_books
from arbframe.testing import run_scenario_file

ROOT = Path(__file__).resolve().parents[1]
LIVE = ROOT / "scenarios" / "live_upbit_binance_btc.yaml"
MARKETS = {"binance": "BTC/USDT", "upbit": "BTC/KRW"}

Book = tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]


def publication_log(fake: FakeVenues) -> dict[str, list[Book]]:
    """Every book each fake venue publishes for the scenario's market, from its own state."""
    log: dict[str, list[Book]] = {name: [] for name in MARKETS}
    lock = threading.Lock()
    for name in MARKETS:
        venue = getattr(fake, name)

        def on_event(event: str, name: str = name, venue: Any = venue, **payload: Any) -> None:
            if event == "book" and payload["symbol"] == MARKETS[name]:
                book = venue.book(MARKETS[name])
                side = lambda levels: tuple((float(p), float(q)) for p, q in levels[:10])  # noqa: E731
                with lock:
                    log[name].append((side(book.bids), side(book.asks)))

        fake.call(venue.add_listener, on_event)
    return log


def watch_progress(proc: subprocess.Popen[str]) -> Any:
    """Read the process's stderr in a thread; ``progress()`` is the last book count its
    progress line showed, ``progress.text()`` all of stderr."""
    seen: list[str] = []

    def read() -> None:
        for chunk in iter(lambda: proc.stderr.read(64), ""):  # type: ignore[union-attr]
            seen.append(chunk)

    threading.Thread(target=read, daemon=True).start()

    def progress() -> int:
        counts = re.findall(r"recorded ([\d,]+) books", "".join(seen))
        return int(counts[-1].replace(",", "")) if counts else 0

    progress.text = lambda: "".join(seen)  # type: ignore[attr-defined]
    return progress


def is_subsequence(recorded: list[Book], published: list[Book]) -> bool:
    """Each recorded book is a published one, in publication order: ccxt may skip some
    (coalesced updates) or deliver one twice (a message that changed nothing)."""
    at = 0
    for book in recorded:
        while at < len(published) and published[at] != book:
            at += 1
        if at == len(published):
            return False
    return True


def test_record_from_the_fake_venues_then_replay(fake_venues: FakeVenues, tmp_path: Path):
    log = publication_log(fake_venues)
    out = tmp_path / "dataset"
    env = {**os.environ, **fake_venues.env(), "ARBFRAME_MODE": "shadow"}
    env["ARBFRAME_STATE_DIR"] = str(tmp_path / "state")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arbframe",
            "record",
            str(LIVE),
            "--out",
            str(out),
            "--duration",
            "300s",
            "--json",
            "--progress",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    progress = watch_progress(proc)
    deadline = time.monotonic() + 120  # start-up (markets over REST), then books every 0.1 s
    while progress() < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # what it has so far is flushed, whole
    stdout = proc.stdout.read()  # type: ignore[union-attr]
    proc.wait(timeout=60)
    stderr = progress.text()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    result = json.loads(stdout)
    assert result["interrupted"] is True
    assert not list(out.rglob(".part-*")), "a temporary part was left behind"
    recorded = {}
    for name in MARKETS:
        files = dataset_files(out, name, "BTC")
        assert files, f"nothing recorded for {name}"
        recorded[name] = [(e[3], e[4]) for e in read_books(files, name, "BTC")]
        assert len(recorded[name]) >= 10, (name, len(recorded[name]))
        assert result["by_market"][f"{name}/BTC"] == len(recorded[name])
        assert all(len(bids) == len(asks) == 10 for bids, asks in recorded[name])
        assert is_subsequence(recorded[name], log[name]), name
    assert result["fx_updates_not_recorded"] > 0  # Upbit's USDT/KRW mid: a rate, not a book

    # The recording replays through a scenario: every recorded book is a quote.
    scenario = tmp_path / "replayed.yaml"
    scenario.write_text(
        f"""
name: replayed_recording
mode: backtest
clock: simulated
duration: 1h
report_currency: USDT
fx: {{KRW: 1350}}
venues:
  upbit: {{type: paper, quote: KRW, fees: {{taker_bps: 5}}, latency: 30ms,
          markets: {{default: {{price_tick: "1000", amount_step: "0.0001", min_notional: 5000}}}}}}
  binance: {{type: paper, quote: USDT, fees: {{taker_bps: 10}}, latency: 20ms,
            markets: {{default: {{price_tick: "0.01", amount_step: "0.00001", min_notional: 5}}}}}}
capital:
  upbit: {{KRW: 13000000, BTC: 0.2}}
  binance: {{USDT: 10000, BTC: 0.2}}
feeds:
  - {{type: replay, symbol: BTC, venues: {{upbit: {out}, binance: {out}}}}}
strategy: {{type: spread_arb, entry_bps: 25, exit_bps: 5, max_hold: 10s, size: {{quote: 300}}}}
"""
    )
    summary = run_scenario_file(scenario).summary
    assert summary["events"]["quotes"] == len(recorded["upbit"]) + len(recorded["binance"])
    assert summary["reconciliation"]["passed"]


def test_record_a_simulated_feed_writes_its_events(tmp_path: Path, capsys) -> None:
    """A simulated feed is recorded for --duration of its own time: exactly its events."""
    scenario = ROOT / "scenarios" / "c1_mixed.yaml"
    out = tmp_path / "ds"
    assert main(["record", str(scenario), "--out", str(out), "--duration", "10s", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    from arbframe.plugins import build_registry, get_plugin_manager
    from arbframe.runner import Run
    from arbframe.scenario import load_scenario

    pm = get_plugin_manager()
    registry = build_registry(pm)
    [feed] = Run(load_scenario(scenario, registry), registry, pm).feeds
    events = iter(feed.events())
    first = next(events)
    expected = [first] + [e for e in _until(events, first[0] + 10 * 10**9)]
    books = [e for e in expected if e[1] is not None]
    assert result["books"] == len(books) > 100
    for venue in {e[1] for e in books}:
        got = list(read_books(dataset_files(out, venue, "BTC"), venue, "BTC"))
        want = [e for e in books if e[1] == venue]
        assert [(e[0], e[3], e[4]) for e in got] == [
            (e[0], tuple(map(tuple, e[3][:10])), tuple(map(tuple, e[4][:10]))) for e in want
        ]


def _until(events: Any, end: int) -> Any:
    for event in events:
        if event[0] > end:
            return
        yield event


class _Scripted:
    """A simulated feed publishing the events given."""

    def __init__(self, events: list[Any]) -> None:
        self._events = events

    def events(self) -> Any:
        return iter(self._events)


def test_crossed_books_are_counted_and_not_recorded(tmp_path: Path) -> None:
    from arbframe.marketdata import DatasetWriter
    from arbframe.recording import record

    s = 10**9
    book = ((10.0, 1.0),), ((11.0, 2.0),)
    events = [
        (1 * s, "v", "X", *book),
        (2 * s, "v", "X", ((11.0, 1.0),), ((11.0, 2.0),)),  # locked: bid == ask
        (3 * s, "v", "X", ((12.0, 1.0),), ((11.0, 2.0),)),  # crossed
        (4 * s, None, "USDT/KRW", ((1350.0, 1.0),), ()),  # an FX rate, not a book
        (5 * s, "v", "X", *book),
    ]
    stats = record([_Scripted(events)], DatasetWriter(tmp_path, levels=1), 60 * s)
    result = stats.as_dict()
    assert result["crossed_books_not_recorded"] == 2
    assert result["fx_updates_not_recorded"] == 1
    assert result["books"] == 2 and result["by_market"] == {"v/X": 2}
    got = list(read_books(dataset_files(tmp_path, "v", "X"), "v", "X"))
    assert got == [(1 * s, "v", "X", *book), (5 * s, "v", "X", *book)]


def test_record_refuses_a_non_positive_duration(tmp_path: Path) -> None:
    scenario = ROOT / "scenarios" / "c1_mixed.yaml"
    for duration in ("0s", "0"):
        cmd = [sys.executable, "-m", "arbframe", "record", str(scenario), "--out",
               str(tmp_path / "ds"), "--duration", duration]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == f"--duration: must be positive, not {duration!r}"
        assert not (tmp_path / "ds").exists() or dataset_files(tmp_path / "ds") == []


def test_recording_twice_into_one_dataset_is_refused(tmp_path: Path, capsys) -> None:
    """The same simulated span again would overlap the first recording: refused, nothing
    added (replay would find time going backwards)."""
    scenario = ROOT / "scenarios" / "c1_mixed.yaml"
    out = tmp_path / "ds"
    assert main(["record", str(scenario), "--out", str(out), "--duration", "5s"]) == 0
    before = dataset_files(out)
    capsys.readouterr()
    assert main(["record", str(scenario), "--out", str(out), "--duration", "5s"]) == 2
    err = capsys.readouterr().err
    assert "the dataset already holds books from" in err and "overlap" in err
    assert dataset_files(out) == before
    assert main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert all(m["overlaps"] == [] for m in info["markets"])
