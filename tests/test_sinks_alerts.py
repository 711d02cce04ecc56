"""Sinks and alert channels receive run events through the event hooks."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal as D

from conftest import book, two_venue_scenario

EVENTS = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),
    book("3s", "b", 99.80, 99.85),
]


def test_sqlite_sink_stores_fills_trades_and_summary(run_scenario, tmp_path):
    scenario = two_venue_scenario(EVENTS)
    scenario["sinks"] = [{"type": "sqlite", "path": "out/run.db"}]
    result = run_scenario(scenario)
    db = sqlite3.connect(tmp_path / "out" / "run.db")
    rows = db.execute("SELECT client_id, venue, side, price, amount, fee FROM fills").fetchall()
    assert [(c, v, s, D(p), D(a), D(fee)) for c, v, s, p, a, fee in rows] == [
        (f.client_id, f.venue, f.side, f.price, f.amount, f.fee) for f in result.fills
    ]
    [(trade_id, net, reason)] = db.execute("SELECT trade_id, net_pnl, exit_reason FROM trades")
    assert (trade_id, D(net), reason) == ("BTC-1", result.trades[0].net_pnl, "reversion")
    passed, summary = db.execute("SELECT passed, summary FROM runs").fetchone()
    assert passed == 1 and json.loads(summary)["portfolio"]["trades_closed"] == 1


def test_log_alerts_filter_by_severity(run_scenario, tmp_path):
    scenario = two_venue_scenario(EVENTS)
    scenario["faults"] = [{"type": "order_reject", "venue": "b", "role": "entering", "count": 1}]
    scenario["alerts"] = [
        {"type": "log", "path": "p2.log", "min_severity": "P2"},
        {"type": "log", "path": "p1.log", "min_severity": "P1"},
    ]
    result = run_scenario(scenario)
    assert result.summary["alerts"] == {"P2": 1}
    [line] = (tmp_path / "p2.log").read_text().splitlines()
    assert line.startswith("[P2]") and "leg mismatch on BTC-1" in line
    assert (tmp_path / "p1.log").read_text() == ""
