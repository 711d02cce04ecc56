"""The Prometheus exporter (arbframe/metrics.py): what it serves equals what the run's
summary says, in a wall-clock session over HTTP and in the ``--metrics FILE`` of a
simulated run; labels stay bounded; bad settings are refused naming the key."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from arbframe import metrics
from arbframe.cli import main
from arbframe.errors import ScenarioError
from arbframe.realtime import Histogram
from arbframe.testing import run_scenario_file

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "scenarios" / "_campaign_base.yaml"
# A dislocation every second, held for three: several trades within seconds of a wall run.
WALL = f"""\
extends: {BASE}
name: metrics_wall
duration: 20s
clock: wall
speed: 4
venues:
  upbit: {{latency: 100ms}}
  binance: {{latency: 50ms}}
feeds:
  - type: synthetic
    symbols: {{BTC: 60000}}
    venues: [upbit, binance]
    pattern: mixed
    tick: {{upbit: 1000, binance: 0.01}}
    episode_every: 1s
    persist_for: 3s
strategy: {{max_hold: 2s}}
guards: [{{type: global, daily_loss_limit: 300}}]
state: [{{type: sqlite, path: state.db}}]
snapshots: {{every: 2s}}
metrics: {{port: 0, linger: 60s}}
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(k)[label]: v for (n, k), v in samples.items() if n == name}


def money(text: str) -> float:
    return float(Decimal(text))


def assert_matches_summary(samples: Samples, summary: dict[str, Any]) -> None:
    """The figures the exporter reads equal the summary's, exactly (money as the float
    nearest the exact decimal, which is what the text format carries)."""
    portfolio = summary["portfolio"]
    assert value(samples, "arbframe_trades_total") == portfolio["trades_closed"]
    assert value(samples, "arbframe_trades_won_total") == portfolio["wins"]
    assert value(samples, "arbframe_realized_pnl") == money(portfolio["pnl"])
    assert value(samples, "arbframe_realized_fees") == money(portfolio["fees"])
    assert value(samples, "arbframe_max_drawdown") == money(portfolio["max_drawdown"])
    assert value(samples, "arbframe_open_positions") == portfolio["open_trades"]
    if portfolio["winrate"] is not None:
        assert value(samples, "arbframe_win_ratio") == pytest.approx(portfolio["winrate"], abs=1e-6)
    symbols = by_label(samples, "arbframe_symbol_trades_total", "symbol")
    assert symbols == {s: k["trades_closed"] for s, k in summary["symbols"].items()}
    pnl = by_label(samples, "arbframe_symbol_realized_pnl", "symbol")
    assert pnl == {s: money(k["pnl"]) for s, k in summary["symbols"].items()}
    routes = {
        (dict(k)["symbol"], dict(k)["route"]): v
        for (n, k), v in samples.items()
        if n == "arbframe_route_trades_total"
    }
    assert routes == {
        (symbol, route): k["trades_closed"]
        for symbol, by_route in summary["routes"].items()
        for route, k in by_route.items()
    }
    events = summary["events"]
    assert value(samples, "arbframe_quotes_total") == events["quotes"]
    assert value(samples, "arbframe_instants_total") == events["instants"]
    orders = by_label(samples, "arbframe_order_events_total", "event")
    counted = {k: v for k, v in summary["orders"].items() if v}
    assert {k: v for k, v in orders.items() if v} == counted
    alerts = by_label(samples, "arbframe_alerts_total", "severity")
    assert {k: v for k, v in alerts.items() if v} == summary["alerts"]
    # Guard counts, however the summary lays them out (per guard, or under by_guard).
    guards = summary["guards"].get("by_guard", summary["guards"])
    decisions = {
        (dict(k)["guard"], dict(k)["decision"]): v
        for (n, k), v in samples.items()
        if n == "arbframe_guard_decisions_total" and v
    }
    assert decisions == {
        (guard, decision): n
        for guard, counts in guards.items()
        for decision, n in counts.items()
        if isinstance(n, int) and n
    }


# ---- a simulated run: --metrics FILE -----------------------------------------------------------


def test_metrics_file_of_a_simulated_run_equals_its_summary(tmp_path: Path, capsys) -> None:
    # c1_mixed: wins and losses (a drawdown), stop losses, the symbol guard's cooldowns.
    out = tmp_path / "run.prom"
    code = main(["run", str(REPO / "scenarios" / "c1_mixed.yaml"), "--json", "--metrics", str(out)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    samples = parse(out.read_text())
    assert_matches_summary(samples, summary)
    portfolio = summary["portfolio"]
    assert 0 < portfolio["wins"] < portfolio["trades_closed"]  # the checks above saw both
    assert money(portfolio["max_drawdown"]) > 0
    assert sum(by_label(samples, "arbframe_guard_triggers_total", "guard").values()) > 0
    info = by_label(samples, "arbframe_run_info", "scenario")
    assert info == {"c1_mixed": 1.0}
    assert value(samples, "arbframe_running") == 0  # written once the run has ended
    # A simulated run has no loop to measure: the histograms are there, empty.
    assert value(samples, "arbframe_quote_to_decision_seconds_count") == 0
    assert value(samples, "process_resident_memory_bytes") > 0


def test_drawdown_is_the_current_fall_from_the_peak_not_the_largest(tmp_path: Path) -> None:
    # c2_high_winrate falls ~13 from a peak, recovers most of it, and ends ~2.3 under its peak.
    result = run_scenario_file(REPO / "scenarios" / "c2_high_winrate.yaml")
    cumulative = peak = largest = Decimal(0)
    for trade in result.trades:  # realised PnL stepped at each close, in closing order
        if trade.fills:
            cumulative += trade.net_pnl
            peak = max(peak, cumulative)
            largest = max(largest, peak - cumulative)
    assert 0 < peak - cumulative < largest  # the run recovered part of its largest fall
    out = tmp_path / "run.prom"
    metrics.write(result.run, out)
    samples = parse(out.read_text())
    assert value(samples, "arbframe_drawdown") == float(peak - cumulative)
    assert value(samples, "arbframe_max_drawdown") == float(largest)
    assert value(samples, "arbframe_max_drawdown") == money(
        result.summary["portfolio"]["max_drawdown"]
    )


def test_metrics_file_into_a_missing_directory_is_refused_before_the_run(
    tmp_path: Path, capsys
) -> None:
    target = tmp_path / "nowhere" / "run.prom"
    code = main(["run", str(REPO / "scenarios" / "always_win.yaml"), "--metrics", str(target)])
    assert code == 2
    err = capsys.readouterr()
    assert f"--metrics {target}: directory" in err.err and err.out == ""


# ---- label cardinality -------------------------------------------------------------------------


def many_symbols(n: int) -> dict[str, Any]:
    prices = {f"X{i:02d}": 60000.0 * (1 + 0.05 * i) for i in range(n)}
    return {
        "extends": str(BASE),
        "name": "many",
        "duration": "10m",
        "feeds": [
            {
                "type": "synthetic",
                "symbols": prices,
                "venues": ["upbit", "binance"],
                "pattern": "mixed",
                "tick": {"upbit": 1000, "binance": 0.01},
            }
        ],
        "capital": {
            "upbit": {"KRW": 13_500_000 * n, **dict.fromkeys(prices, 0.2)},
            "binance": {"USDT": 10_000 * n, **dict.fromkeys(prices, 0.2)},
        },
        "guards": None,
        "metrics": {"port": 0, "max_label_values": 3},
    }


def test_symbol_labels_are_capped_and_the_rest_folded_into_other(run_scenario) -> None:
    result = run_scenario(many_symbols(12))
    traded = result.summary["symbols"]
    assert len(traded) > 4  # more symbols traded than the cap lets through
    reg, _ = metrics.registry(result.run, max_label_values=3)
    samples = parse(generate_latest(reg).decode())
    symbols = by_label(samples, "arbframe_symbol_trades_total", "symbol")
    assert len(symbols) == 4 and "other" in symbols
    # Folded, not dropped: the per-symbol figures still add up to the totals.
    assert sum(symbols.values()) == value(samples, "arbframe_trades_total")
    assert sum(symbols.values()) == sum(k["trades_closed"] for k in traded.values())
    kept = set(symbols) - {"other"}
    assert symbols["other"] == sum(k["trades_closed"] for s, k in traded.items() if s not in kept)
    pnl = by_label(samples, "arbframe_symbol_realized_pnl", "symbol")
    folded = sum((Decimal(k["pnl"]) for s, k in traded.items() if s not in kept), Decimal(0))
    assert pnl["other"] == float(folded)
    books = {dict(k)["symbol"] for (n, k), _ in samples.items() if n == "arbframe_book_age_seconds"}
    assert len(books) == 4 and "other" in books
    routes = {
        dict(k)["symbol"] for (n, k), _ in samples.items() if n == "arbframe_route_trades_total"
    }
    assert routes <= kept | {"other"}


def test_without_a_setting_50_label_values_are_kept_and_the_rest_are_other(
    run_scenario, tmp_path: Path
) -> None:
    scenario = many_symbols(52)
    scenario["duration"] = "1m"
    del scenario["metrics"]  # no metrics: block: --metrics FILE takes the default cap
    result = run_scenario(scenario)
    assert len(result.summary["symbols"]) == 52  # every symbol traded
    out = tmp_path / "run.prom"
    metrics.write(result.run, out)
    samples = parse(out.read_text())
    symbols = by_label(samples, "arbframe_symbol_trades_total", "symbol")
    assert len(symbols) == 51 and "other" in symbols  # 50 of their own, and other
    assert sum(symbols.values()) == value(samples, "arbframe_trades_total")
    books = {dict(k)["symbol"] for (n, k), _ in samples.items() if n == "arbframe_book_age_seconds"}
    assert len(books) == 51 and "other" in books


def test_a_label_value_keeps_its_series_once_given_one() -> None:
    cap = metrics.Cap(2)
    got = [cap(v) for v in ("a", "b", "c", "a", "d", "b")]
    assert got == ["a", "b", "other", "a", "other", "b"]


# ---- the latency histograms --------------------------------------------------------------------


def test_loop_histograms_become_cumulative_buckets_in_seconds() -> None:
    histogram = Histogram()
    for ns in [3_000] * 5 + [40_000] * 2 + [2_000_000_000]:
        histogram.add(ns)
    buckets, total = metrics._buckets(histogram)
    cumulative = dict(buckets)
    assert cumulative["2.5e-06"] == 0 and cumulative["5e-06"] == 5
    assert cumulative["2.5e-05"] == 5 and cumulative["5e-05"] == 7
    assert cumulative["1.0"] == 7 and cumulative["2.5"] == 8 and cumulative["+Inf"] == 8
    exact = (5 * 3_000 + 2 * 40_000 + 2_000_000_000) / 1e9
    assert total == pytest.approx(exact, rel=0.04)  # bucket middles: within the buckets' 3 %


# ---- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{port: 70000}", "metrics.port: 70000 is greater than the maximum"),
        ("{host: 127.0.0.1}", "metrics: missing required key 'port'"),
        ("{port: 0, linger: soon}", "metrics.linger"),
        ("{port: 0, max_label_values: 0}", "metrics.max_label_values: 0 is less than"),
        ("{port: 0, verbose: true}", "metrics.verbose: unknown key 'verbose'"),
    ],
)
def test_bad_metrics_settings_are_refused_naming_the_key(
    run_scenario, block: str, message: str
) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        run_scenario(f"extends: {BASE}\nname: bad\nduration: 1s\nmetrics: {block}\n")


def test_a_port_in_use_is_refused_naming_metrics_port(tmp_path: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "s.yaml"
        path.write_text(f"extends: {BASE}\nname: busy\nduration: 1s\nmetrics: {{port: {port}}}\n")
        code = main(["run", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "metrics.port: cannot serve metrics on 127.0.0.1:" in err and err.count("\n") == 1


# ---- a wall-clock session over HTTP ------------------------------------------------------------


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return parse(answer.read().decode())


def wait_for(ready: Any, proc: subprocess.Popen[str], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = ready()
        if got:
            return got
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def start_session(tmp_path: Path, text: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``arbframe run`` of ``text`` in the background; the process and its metrics URL."""
    path = tmp_path / "s.yaml"
    path.write_text(text)
    err = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBFRAME_")}
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "arbframe", "run", str(path), "--reset", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
    )

    def url() -> str | None:
        for line in err.read_text().splitlines():
            if line.startswith("metrics: serving "):
                return line.removeprefix("metrics: serving ")
        return None

    return proc, wait_for(url, proc, "the metrics URL")


def test_a_wall_session_serves_metrics_that_end_equal_to_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, url = start_session(tmp_path, WALL, "--out", str(out), "--json")
    try:
        assert url.startswith("http://127.0.0.1:")
        # While it trades: the session is up and running, and trades show before the end.
        during = wait_for(
            lambda: (s := scrape(url)) and value(s, "arbframe_trades_total") > 0 and s,
            proc,
            "a closed trade",
        )
        assert value(during, "arbframe_up") == 1 and value(during, "arbframe_running") == 1
        assert not (out / "summary.json").exists()
        info = [k for (n, k) in during if n == "arbframe_run_info"]
        assert dict(info[0])["clock"] == "wall" and dict(info[0])["session"] == "metrics_wall"
        assert value(during, "arbframe_quote_to_decision_seconds_count") > 0
        assert value(during, "arbframe_state_store_up", store="sqlite") == 1
        assert value(during, "process_resident_memory_bytes") > 0
        assert ("process_cpu_seconds_total", ()) in during
        # After the end it lingers: the final figures, equal to the summary's.
        final = wait_for(
            lambda: (s := scrape(url)) and value(s, "arbframe_running") == 0 and s,
            proc,
            "the end of the run",
        )
        summary = json.loads((out / "summary.json").read_text())
        assert_matches_summary(final, summary)
        assert summary["portfolio"]["trades_closed"] >= 3
        loop = summary["loop"]
        assert (
            value(final, "arbframe_quote_to_decision_seconds_count")
            == (loop["quote_to_decision_us"]["count"])
        )
        assert value(final, "arbframe_loop_lag_seconds_count") == loop["lag_ms"]["count"]
        assert value(final, "arbframe_snapshots_total", result="taken") == summary["state"]["taken"]
        assert summary["state"]["taken"] > 0
        proc.send_signal(signal.SIGTERM)  # ends the linger; the run itself was complete
        stdout, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert json.loads(stdout)["portfolio"] == summary["portfolio"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
