"""Problems found while wiring a run still name file:line:column and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbframe.errors import ScenarioError
from arbframe.testing import run_scenario_file

CAMPAIGN = Path(__file__).parent.parent / "scenarios" / "c1_mixed.yaml"
REAL = Path(__file__).parent.parent / "scenarios" / "real_link_binance_huobi.yaml"


@pytest.mark.parametrize(
    ("base", "body", "where", "message"),
    [
        (
            CAMPAIGN,
            "strategy: {symbols: [ETH]}",
            "3:22: strategy.symbols[0]",
            "ETH is quoted on 0 of the venues by the feeds; spread_arb needs at least two",
        ),
        (
            CAMPAIGN,
            "strategy: {venues: [upbit, kraken]}",
            "3:28: strategy.venues[1]",
            "unknown venue 'kraken' (venues: upbit, binance)",
        ),
        (
            REAL,
            "feeds:\n  - {type: replay, symbol: LINK, venues: {binance: nope.csv}}",
            "4:52: feeds[0].venues.binance",
            "cannot read",
        ),
        (
            CAMPAIGN,
            "faults: [{type: order_reject, venue: kraken}]",
            "3:38: faults[0].venue",
            "unknown venue 'kraken' (venues: upbit, binance)",
        ),
        (CAMPAIGN, "mode: live\nclock: wall", "3:7: mode", "mode live places real orders"),
    ],
)
def test_wiring_error_names_the_place(tmp_path, base, body, where, message):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {base}\nname: broken\n{body}\n")
    with pytest.raises(ScenarioError) as err:
        run_scenario_file(path)
    assert str(err.value).startswith(f"{path}:{where}: {message}")


def test_error_in_an_inherited_block_points_into_the_base_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {CAMPAIGN}\nname: eur\nreport_currency: EUR\nfx: {{KRW: 1450}}\n")
    with pytest.raises(ScenarioError) as err:
        run_scenario_file(path)
    base = CAMPAIGN.parent / "_campaign_base.yaml"
    line = base.read_text().splitlines().index("  binance:") + 1
    assert str(err.value) == (
        f"{base}:{line}:3: venues.binance: no FX rate for USDT: add fx: {{USDT: <units per EUR>}}"
    )


def test_paths_in_a_base_file_are_relative_to_that_file(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "books.csv").write_text(
        "at,venue,symbol,bid,ask\n0,a,BTC,99.9,100\n1,b,BTC,100.6,100.7\n3,b,BTC,99.8,99.85\n"
    )
    base = tmp_path / "base" / "base.yaml"
    base.write_text(
        "name: base\nduration: 1m\n"
        "venues: {a: {type: paper, quote: USDT}, b: {type: paper, quote: USDT}}\n"
        "capital: {a: {USDT: 1000, BTC: 1}, b: {USDT: 1000, BTC: 1}}\n"
        "feeds: [{type: scripted, csv: books.csv}]\n"
        "strategy: {type: spread_arb, entry_bps: 10, exit_bps: 5, size: {base: 0.5}}\n"
        "sinks: [{type: sqlite, path: out/run.db}]\n"
    )
    top = tmp_path / "top.yaml"
    top.write_text("extends: base/base.yaml\nname: top\n")
    result = run_scenario_file(top)
    assert result.summary["events"]["quotes"] == 3
    assert result.summary["portfolio"]["trades_closed"] == 1
    assert (tmp_path / "base" / "out" / "run.db").exists()  # where the base file said
