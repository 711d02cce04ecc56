"""Nothing lost on interruption, output paths checked before the run, a summary people read."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arbframe.cli import Progress
from arbframe.report import format_summary
from arbframe.testing import run_scenario_file

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "scenarios" / "_campaign_base.yaml"


def long_run(tmp_path: Path) -> Path:
    """The C1 campaign over 200 hours: about a minute of work, never allowed to finish."""
    path = tmp_path / "long.yaml"
    path.write_text(f"extends: {BASE}\nname: long\nduration: 200h\n")
    return path


def start(tmp_path: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "arbframe", "run", str(long_run(tmp_path)), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(path: Path) -> list[dict]:
    """Every complete line (a kill may cut the last one short)."""
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def wait_for_fills(out: Path, proc: subprocess.Popen[str]) -> int:
    """Wait until the run has flushed fills to disk (it flushes at least once a second)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fills = out / "fills.jsonl"
        if fills.exists() and fills.stat().st_size > 0:
            return len(lines(fills))
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no fills written within 60 s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_keeps_its_record(tmp_path, sig):
    out = tmp_path / "out"
    proc = start(tmp_path, out)
    flushed = wait_for_fills(out, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["passed"] is False
    fills, trades = lines(out / "fills.jsonl"), lines(out / "trades.jsonl")
    assert len(fills) >= flushed > 0
    # What stderr says was kept is what the files hold, and the summary agrees.
    kept = stderr.strip().splitlines()[-1]
    assert kept.startswith("interrupted at ")
    assert f"kept {len(fills):,} fills, {summary['portfolio']['trades_closed']:,} closed" in kept
    assert len(trades) == summary["portfolio"]["trades_closed"]
    assert summary["reconciliation"]["fills"]["checked"] == len(fills)
    assert "INTERRUPTED" in stdout


def test_a_killed_run_leaves_what_it_flushed(tmp_path):
    out = tmp_path / "out"
    proc = start(tmp_path, out)
    wait_for_fills(out, proc)
    time.sleep(1.5)  # at least one more flush
    proc.kill()
    proc.communicate(timeout=60)
    fills = lines(out / "fills.jsonl")
    assert fills and all({"fill_id", "price", "amount", "fee"} <= set(f) for f in fills)
    assert not (out / "summary.json").exists()  # a kill gives no chance to write it


def arbframe(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "arbframe", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_out_naming_a_file_is_refused_before_the_run(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    result = arbframe("run", REPO / "scenarios" / "c1_mixed.yaml", "--out", target)
    assert result.returncode == 2
    assert result.stderr == f"--out {target}: {target} exists and is not a directory\n"
    assert result.stdout == ""  # nothing ran


def test_an_unwritable_sink_path_is_a_located_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory is needed")
    path = tmp_path / "s.yaml"
    path.write_text(
        f"extends: {BASE}\nname: x\nsinks:\n  - {{type: sqlite, path: blocker/run.db}}\n"
    )
    result = arbframe("validate", path)
    assert result.returncode == 2
    blocker = tmp_path / "blocker"
    assert result.stderr == (
        f"{path}:4:26: sinks[0].path: {blocker} is a file, so {blocker} cannot be created\n"
    )


def test_a_venue_without_capital_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASE}\nname: x\ncapital: !replace {{upbit: {{KRW: 1000}}}}\n")
    result = arbframe("validate", path)
    assert result.returncode == 2
    assert "venues.binance: venue 'binance' has no capital, so it could not trade" in result.stderr


# ---- the printed summary ------------------------------------------------------------------


def test_the_summary_reads_as_text():
    summary = run_scenario_file(REPO / "scenarios" / "always_lose.yaml").summary
    text = format_summary(summary)
    assert "{" not in text and "Decimal(" not in text and "'" not in text
    assert "data from 2024-01-01T00:00:00.000+00:00 to 2024-01-01T00:30:00.000+00:00" in text
    first = summary["guard_first"]["global"]["block"]
    blocked = summary["guards"]["by_guard"]["global"]["block"]
    assert (
        f"guard global first blocked an entry at {first['at'][11:19]} ({first['reason']}); "
        f"{blocked:,} entry checks blocked"
    ) in text
    assert "PASS  portfolio.wins == 0  (actual 0)" in text


def test_kpis_of_a_run_without_trades_are_not_zero():
    summary = run_scenario_file(REPO / "scenarios" / "real_link_binance_huobi.yaml").summary
    portfolio = summary["portfolio"]
    assert portfolio["trades_closed"] == 0
    assert portfolio["winrate"] is portfolio["sharpe"] is portfolio["avg_r"] is None
    row = next(line for line in format_summary(summary).splitlines() if "portfolio" in line)
    assert row.split().count("n/a") == 4  # win%, avg R, sharpe and hold s, not 0.000


def test_progress_redraws_by_time_and_clears_itself(monkeypatch, capsys):
    class Run:
        scenario = {"duration": "1h"}
        name = "p"
        info = type("I", (), {"report_currency": "USDT"})()
        execution = type("E", (), {"closed": []})()

    now = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    progress = Progress(Run())  # type: ignore[arg-type]
    progress(60 * 10**9, 1024)  # too soon after the start: nothing drawn
    now[0] += 0.6
    progress(30 * 60 * 10**9, 2048)
    now[0] += 0.1
    progress(40 * 60 * 10**9, 3072)  # within half a second of the last draw
    progress.clear()
    line = "p:  50.0%  quotes 2,048  trades 0  pnl 0.00 USDT"
    # one line drawn, then wiped: nothing left on the terminal, no newline
    assert capsys.readouterr().err == "\r" + line + "\r" + " " * len(line) + "\r"


def test_fault_flags_read_as_flags_in_the_summary_text():
    from arbframe.report import _counts

    assert _counts({"position_loss": 0, "state_integrity": True}) == (
        "position_loss 0, state_integrity ok"
    )
    assert _counts({"state_integrity": False, "reconnects": 1200}) == (
        "state_integrity FAILED, reconnects 1,200"
    )
