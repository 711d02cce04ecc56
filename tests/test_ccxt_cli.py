"""Live sessions through the command line against local fakes of Binance and Upbit: the
start-up check refuses what cannot trade (exit 2, no traceback, no key in the message), API
keys never reach an output, and a session SIGKILLed while an order's acknowledgement is still
on its way resumes without sending that order again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from fakevenues.server import FakeVenues
from test_ccxt_venue import balances, check_against_the_venues, jsonl, ours

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "live_upbit_binance_btc.yaml"


def write(tmp_path: Path, overrides: str = "") -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"extends: {SCENARIO}\nname: ccxt_cli\n{overrides}")
    return path


def arbframe(
    fake: FakeVenues, tmp_path: Path, *args: str, mode: str = "live", **env: str
) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        **fake.env(),
        "ARBFRAME_MODE": mode,
        "ARBFRAME_STATE_DIR": str(tmp_path / "state"),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "arbframe", *args],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def refused(fake: FakeVenues, tmp_path: Path, overrides: str, *args: str, **env: str) -> str:
    code, out, err = finish(arbframe(fake, tmp_path, "run", str(write(tmp_path, overrides)),
                                     *args, **env))  # fmt: skip
    assert code == 2, (out, err)
    assert "Traceback" not in err
    for key in fake.env().values():
        if "http" not in key:
            assert key not in err + out
    assert ours(fake) == {}  # refused before anything was sent
    return err


def test_live_needs_the_command_line_to_agree(fake_venues: FakeVenues, tmp_path: Path):
    err = refused(fake_venues, tmp_path, "")
    assert "mode: live" in err.replace("mode live", "mode: live") and "--live" in err


def test_start_up_refuses_missing_capital(fake_venues: FakeVenues, tmp_path: Path):
    err = refused(fake_venues, tmp_path, "capital: {binance: {USDT: 1000000}}\n", "--live")
    assert "capital.binance.USDT" in err and "holds 100000" in err


def test_start_up_refuses_a_missing_market(fake_venues: FakeVenues, tmp_path: Path):
    overrides = "feeds:\n  - {type: venue_books, venues: [upbit, binance], symbols: [NOPE]}\n"
    err = refused(fake_venues, tmp_path, overrides, "--live")
    assert "has no market NOPE/KRW" in err


def test_start_up_refuses_a_wrong_key(fake_venues: FakeVenues, tmp_path: Path):
    err = refused(fake_venues, tmp_path, "", "--live", BINANCE_SECRET="x" * 64)
    assert "venues.binance.api_key" in err and "refused the key" in err


def test_a_key_written_in_the_file_is_refused(fake_venues: FakeVenues, tmp_path: Path):
    key = fake_venues.binance_key
    for value in (key, f"${{NOT_SET:-{key}}}"):  # as such, or as a default
        err = refused(fake_venues, tmp_path, f"venues: {{binance: {{api_key: '{value}'}}}}\n",
                      "--live")  # fmt: skip
        assert "venues.binance.api_key" in err and "only from the environment" in err


def test_sigkill_mid_trade_resumes_without_a_duplicate_order(
    fake_venues: FakeVenues, tmp_path: Path
):
    """The first Binance order reaches the venue and is executed there, but its answer is
    held back; the session is SIGKILLed then, and resumed: the order is found by its client
    id (written ahead before it left), booked once, and never sent again."""
    start = balances(fake_venues)
    binance = fake_venues.binance
    fake_venues.call(binance.faults.delay_ack, 30.0, 1)
    scenario = write(tmp_path, "snapshots: {every: 1s}\n")
    out = tmp_path / "out"
    proc = arbframe(fake_venues, tmp_path, "run", str(scenario), "--live", "--out", str(out),
                    ARBFRAME_DURATION="8s")  # fmt: skip
    deadline = time.monotonic() + 30
    while not [o for o in ours(fake_venues).values() if o.market.quote == "USDT"]:
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc)
        time.sleep(0.05)
    time.sleep(0.2)  # its acknowledgement is held back by the venue
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    held = [o for o in ours(fake_venues).values() if o.market.quote == "USDT"]
    assert len(held) == 1 and held[0].filled > 0  # executed there; this process never heard
    code, stdout, stderr = finish(
        arbframe(
            fake_venues,
            tmp_path,
            "run",
            str(scenario),
            "--live",
            "--resume",
            "--out",
            str(out),
            "--json",
            ARBFRAME_DURATION="15s",  # room for the start-up reconciliation on a busy machine
        )  # fmt: skip
    )
    assert code in (0, 1), stderr
    summary = json.loads(stdout)
    assert summary["state"]["resumed_from"] is not None
    assert summary["state"]["resume_queries"] >= 1  # asked about, not resent
    kernel = {o["client_id"]: o for o in jsonl(out / "orders.jsonl")}
    assert kernel[held[0].client_id]["filled"] == str(held[0].filled)
    assert binance.duplicates == 0 and fake_venues.upbit.duplicates == 0
    check_against_the_venues(fake_venues, out, start)
    assert summary["faults"]["position_loss"] == 0
    # The keys are in no output: not the record, not the snapshots, not the messages.
    keys = [v for k, v in fake_venues.env().items() if "URL" not in k]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any(p.name == "fills.jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        for key in keys:
            assert key.encode() not in data, path
    for key in keys:
        assert key not in stdout + stderr
    assert Decimal(summary["portfolio"]["fees"]) > 0
