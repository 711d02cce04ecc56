"""The `sqlite` and `postgres` sinks against real databases: a scenario runs with the sink,
then every row is checked against what the run did, one by one."""

from __future__ import annotations

import json

import pytest
from conftest import book, pg_url, two_venue_scenario
from sqlalchemy import create_engine, select
from test_state_stores import context

from arbframe.db import tables
from arbframe.errors import ArbframeError
from arbframe.model import Alert, money
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.testing import TcpProxy

pytestmark = pytest.mark.services

REGISTRY = build_registry(get_plugin_manager())
EVENTS = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),
    book("3s", "b", 99.80, 99.85),
]


@pytest.fixture(params=["sqlite", "postgres"])
def sink(request, tmp_path):
    """(sink block, URL to read it back with)."""
    if request.param == "sqlite":
        return {"type": "sqlite", "path": "out/run.db"}, f"sqlite:///{tmp_path / 'out' / 'run.db'}"
    url = pg_url(request.getfixturevalue("pg_schema"))
    return {"type": "postgres", "url": url}, url


def rows(url: str, table) -> list[dict]:
    engine = create_engine(url)
    with engine.connect() as db:
        query = select(table).order_by(*table.primary_key.columns)
        found = [dict(r) for r in db.execute(query).mappings()]
    engine.dispose()
    return found


def eventful(sink_block: dict) -> dict:
    """One trade; a rejected entry leg (an order_reject fault: a P2 alert, a fault event)
    and a guard that degrades the entry."""
    scenario = two_venue_scenario(EVENTS)
    scenario["sinks"] = [sink_block]
    scenario["faults"] = [{"type": "order_reject", "venue": "b", "role": "entering", "count": 1}]
    scenario["guards"] = [{"type": "symbol", "max_notional": 40}]
    return scenario


def test_every_row_matches_the_run(run_scenario, sink):
    block, url = sink
    result = run_scenario(eventful(block))
    run, summary = result.run, result.summary
    [run_row] = rows(url, tables.runs)
    run_id = run_row["run_id"]
    assert run_row["session"] == run.info.session == "hand_checked"
    assert run_row["passed"] is summary["passed"] and run_row["complete"] is True
    assert run_row["net_pnl"] == summary["portfolio"]["pnl"]
    assert run_row["summary"] == json.loads(json.dumps(summary, default=str))

    fills = rows(url, tables.fills)
    assert len(fills) == len(result.fills) > 0
    for row, fill in zip(fills, result.fills, strict=True):
        assert row == {
            "id": row["id"],
            "run_id": run_id,
            "session": "hand_checked",
            **fill.as_dict(),
        }

    trades = rows(url, tables.trades)
    assert [t["trade_id"] for t in trades] == [t.trade_id for t in result.trades]
    for row, trade in zip(trades, result.trades, strict=True):
        record = trade.as_dict()
        assert row["data"] == record and row["net_pnl"] == money(trade.net_pnl)
        assert row["exit_reason"] == trade.exit_reason and row["closed_at"] == trade.closed_at

    updates = rows(url, tables.order_updates)
    finals = {u["client_id"]: u for u in updates if u["final"]}
    orders = run.execution.orders
    assert finals.keys() == orders.keys()  # every order's final state is there
    for client_id, order in orders.items():
        final = finals[client_id]
        assert (final["state"], final["filled"]) == (order.state.value, money(order.filled))
    assert {u["run_id"] for u in updates} == {run_id}

    [alert] = rows(url, tables.alerts)
    assert alert["severity"] == "P2" and "leg mismatch on BTC-1" in alert["title"]
    [fault] = rows(url, tables.faults)
    assert fault["name"] == "order_reject" and fault["seq"] == 1
    assert fault["detail"]["venue"] == "b" and summary["faults"]["order_reject"] == 1
    [decision] = rows(url, tables.guard_decisions)
    assert (decision["guard"], decision["action"], decision["symbol"]) == (
        "symbol",
        "degrade",
        "BTC",
    )


def test_each_run_appends_its_own_rows(run_scenario, sink):
    block, url = sink
    run_scenario(eventful(block))
    run_scenario(eventful(block))
    run_ids = [r["run_id"] for r in rows(url, tables.runs)]
    assert len(set(run_ids)) == 2
    fills = rows(url, tables.fills)
    assert {f["run_id"] for f in fills} == set(run_ids)
    first = [f["fill_id"] for f in fills if f["run_id"] == run_ids[0]]
    assert first == [f["fill_id"] for f in fills if f["run_id"] == run_ids[1]]  # deterministic


def test_a_database_down_at_the_start_stops_the_run_before_it_trades(run_scenario, tmp_path):

    with TcpProxy("127.0.0.1", 5432) as proxy:
        proxy.cut()
        block = {"type": "postgres", "url": pg_url("public", proxy.port)}
        with pytest.raises(ArbframeError, match=r"sinks\[0\] \(postgres sink, .*\): .*refused"):
            run_scenario(eventful(block))


def test_rows_wait_through_an_outage_and_are_written_once_the_database_is_back(
    pg_schema, tmp_path, capsys
):

    cls = REGISTRY.get("sink", "postgres").cls
    with TcpProxy("127.0.0.1", 5432) as proxy:
        sink = cls({"url": pg_url(pg_schema, proxy.port)}, name="sinks[0]", ctx=context(tmp_path))
        run = context(tmp_path).info
        sink.arbframe_on_run_start(run=run)
        proxy.cut()
        for ts in (1, 2):
            sink.arbframe_on_alert(run=run, alert=Alert(ts, "P1", f"alert {ts}"))
        assert sink.flush() is False  # unreachable: nothing lost, nothing raised
        proxy.restore()
        sink.arbframe_on_run_end(run=run, summary={"passed": True, "portfolio": {"pnl": "0"}})
        sink.close()
    url = pg_url(pg_schema)
    assert [(a["ts"], a["title"]) for a in rows(url, tables.alerts)] == [
        (1, "alert 1"),
        (2, "alert 2"),
    ]
    [run_row] = rows(url, tables.runs)
    assert run_row["passed"] is True and run_row["net_pnl"] == "0"
    assert capsys.readouterr().err == ""


def test_rows_still_unwritten_at_the_end_are_counted_on_stderr(pg_schema, tmp_path, capsys):

    cls = REGISTRY.get("sink", "postgres").cls
    with TcpProxy("127.0.0.1", 5432) as proxy:
        sink = cls({"url": pg_url(pg_schema, proxy.port)}, name="sinks[0]", ctx=context(tmp_path))
        run = context(tmp_path).info
        sink.arbframe_on_run_start(run=run)
        proxy.cut()
        sink.arbframe_on_alert(run=run, alert=Alert(1, "P1", "lost"))
        sink.arbframe_on_run_end(run=run, summary={"passed": True})
        sink.close()
    err = capsys.readouterr().err
    assert err.startswith("warning: sinks[0] (postgres sink, postgresql+psycopg://postgres@")
    assert err.endswith("database unreachable, 1 rows and the run summary not written\n")
