"""The paper venue remembers like an exchange: client ids are used once, and with
``account: {path: ...}`` balances and orders outlive the process that traded on them.

Standalone venues (tests/test_paper_venue.py's ``Venue``: book bids 99.9/99.8, asks
100.0/100.1/100.5, taker 10 bp) stand for "the same exchange, a new client process" when a
second one opens the same file; whole runs check the same through the kernel.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from arbframe_plugins.exchanges import paper_account
from arbframe_plugins.exchanges.paper import DUPLICATE
from conftest import book, two_venue_scenario
from test_paper_venue import ASKS, BIDS, MS, T0, Venue, kinds

from arbframe.errors import ArbframeError
from arbframe.model import BUY, LIMIT, Closed, FillReport, OrderRequest, OrderStatus
from arbframe.orders import OrderState
from arbframe.plugins import build_registry, get_plugin_manager
from arbframe.runner import Run
from arbframe.scenario import load_scenario

CAPITAL = {"USDT": D(10000), "BTC": D(1), "BNB": D(1)}  # what Venue funds


def test_a_client_id_is_refused_the_second_time_and_counted():
    v = Venue()
    first = v.order(BUY, "0.1")
    v.run()
    balances = v.paper.balances()
    v.paper.submit(OrderRequest("o1", "a", "BTC", BUY, D("0.2")))  # the same id again
    [refusal] = v.run(20)
    assert refusal == Closed("a", "o1", OrderState.REJECTED, D(0), T0 + 20 * MS, DUPLICATE)
    assert v.paper.duplicates == 1 and v.paper.stats()["duplicate_orders"] == 1
    assert v.paper.balances() == balances  # nothing moved
    v.paper.fetch_order(first)  # the venue's record of o1 is the first order's
    [status] = v.run(30)
    assert (status.state, status.filled) == (OrderState.FILLED, D("0.1"))


def test_the_account_outlives_the_venue_object(tmp_path: Path):
    path = str(tmp_path / "account.db")
    first = Venue(account={"path": path})
    assert first.paper.stats()["account"] == "new"
    order = first.order(BUY, "0.6")  # walks three levels
    fills = [r for r in first.run() if isinstance(r, FillReport)]
    left = first.paper.balances()
    assert left["USDT"] == CAPITAL["USDT"] - D("60.07") - D("0.06007")

    again = Venue(account={"path": path})  # funded with CAPITAL, which it must ignore
    assert again.paper.stats()["account"] == "loaded"
    assert again.paper.balances() == left
    again.paper.fetch_order(order)
    [status] = again.run()
    assert isinstance(status, OrderStatus)
    assert (status.state, status.filled, status.fills) == (
        OrderState.FILLED,
        D("0.6"),
        tuple(fills),
    )
    # The new client starts its ids over: the venue refuses o1, takes o2.
    again.order(BUY, "0.1")
    again.order(BUY, "0.1")
    reports = again.run(20)
    assert kinds(reports) == ["Closed", "Accepted", "FillReport", "Closed"]
    assert reports[0].reason == DUPLICATE and reports[1].client_id == "o2"
    assert reports[2].fill_id not in {f.fill_id for f in fills}  # ids continue too
    assert again.paper.duplicates == 1
    saved = paper_account.load(Path(path), "a")
    assert saved is not None and saved.duplicates == 1 and saved.balances["BTC"] == D("1.7")


def test_an_order_the_process_died_with_executes_at_the_first_book_after_restart(tmp_path):
    path = str(tmp_path / "account.db")
    crashed = Venue(account={"path": path})
    crashed.order(BUY, "0.3")  # received; the process dies within its 10 ms latency
    saved = paper_account.load(Path(path), "a")
    assert saved is not None and [r.client_id for _, r in saved.inbox] == ["o1"]

    restarted = Venue(account={"path": path})  # its first book (T0) executes o1
    reports = restarted.run(0)
    assert kinds(reports) == ["Accepted", "FillReport", "Closed"]
    assert reports[1].price == D("100.00") and reports[1].amount == D("0.3")
    assert restarted.paper.balances()["BTC"] == D("1.3")
    saved = paper_account.load(Path(path), "a")
    assert saved is not None and saved.inbox == []
    [(request, _, state, filled, _, _)] = saved.orders
    assert (request.client_id, state, filled) == ("o1", OrderState.FILLED, D("0.3"))


def test_a_resting_order_rests_again_with_its_funds_locked(tmp_path):
    path = str(tmp_path / "account.db")
    first = Venue(account={"path": path})
    first.order(BUY, "0.5", type=LIMIT, price=D("99.50"))
    first.run()
    free = first.paper.available("USDT")
    assert free < CAPITAL["USDT"]

    again = Venue(account={"path": path})
    assert again.paper.available("USDT") == free
    again.paper.on_book(T0 + 50 * MS, "BTC", BIDS, ((99.4, 1.0), *ASKS))  # crosses 99.50
    reports = again.run(50)
    assert kinds(reports) == ["FillReport", "Closed"]
    assert (reports[0].price, reports[0].liquidity) == (D("99.50"), "maker")
    assert again.paper.available("USDT") == again.paper.balances()["USDT"]


# ---- through the kernel ----------------------------------------------------------------------

# Entries at 1, 5 and 9 s (b's bid jumps), each reverting the second after.
EVENTS = [
    event
    for t in range(12)
    for event in (
        book(f"{t}s", "a", 99.90, 100.00),
        book(f"{t}s", "b", *((100.60, 100.70) if t in (1, 5, 9) else (99.80, 99.85))),
    )
]


def scenario(duration: str) -> dict:
    sc = two_venue_scenario(EVENTS)
    sc["duration"] = duration
    for venue in ("a", "b"):
        sc["venues"][venue]["account"] = {"path": "accounts.db"}
    return sc


def test_two_processes_against_one_account(run_scenario, tmp_path):
    """The first run trades once (client ids 1-4) and stops at 3 s. The second, same
    session, starts from the accounts' balances, not the capital; its ids start over, so
    the venues refuse its entries at 1 s (ids 1, 2) and 5 s (3, 4) as duplicates; the one
    at 9 s (5, 6) trades."""
    first = run_scenario(scenario("3s"))
    assert first.summary["reconciliation"]["passed"] is True
    assert len(first.fills) == 4
    after = {name: venue.balances() for name, venue in first.run.venues.items()}
    assert first.summary["venues"]["a"] == {
        "orders_received": 2, "duplicate_orders": 0, "account": "new",
    }  # fmt: skip

    second = run_scenario(scenario("1h"))
    s = second.summary
    assert s["reconciliation"]["passed"] is True
    assert second.run.ledger.start_balances == after
    assert after["a"]["USDT"] != D(10000)  # the capital would have said 10000
    for name in ("a", "b"):
        assert s["venues"][name] == {
            "orders_received": 4, "duplicate_orders": 2, "account": "loaded",
        }  # fmt: skip
    assert s["faults"]["duplicate_orders"] == 4 and first.summary["faults"]["duplicate_orders"] == 0
    refused = [o for o in second.run.execution.orders.values() if o.reason == DUPLICATE]
    assert sorted(int(o.client_id.rsplit("-", 1)[1]) for o in refused) == [1, 2, 3, 4]
    assert all(o.state is OrderState.REJECTED for o in refused)
    assert [t.exit_reason for t in second.trades] == ["entry_failed", "entry_failed", "reversion"]
    assert [f.client_id for f in second.fills][0].endswith("-5")

    # The exchange still answers about the first process's orders, fills included.
    venue = Venue(account={"path": str(tmp_path / "accounts.db")})
    first_order = first.fills[0].client_id
    venue.paper.fetch_order(OrderRequest(first_order, "a", "BTC", BUY, D("0.5")))
    [status] = venue.run()
    assert (status.state, status.filled) == (OrderState.FILLED, D("0.5"))
    assert [(f.fill_id, f.price, f.amount, f.fee) for f in status.fills] == [
        (f.fill_id, f.price, f.amount, f.fee) for f in first.fills if f.client_id == first_order
    ]


def test_validating_writes_no_account(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(json.dumps(scenario("3s")))
    pm = get_plugin_manager()
    registry = build_registry(pm)
    Run(load_scenario(path, registry), registry, pm)  # what `arbframe validate` does
    assert not (tmp_path / "accounts.db").exists()


def test_an_unreadable_account_is_an_input_error(run_scenario, tmp_path):
    (tmp_path / "accounts.db").write_text("not a database, " * 100)
    with pytest.raises(
        ArbframeError, match=r"venues\.a\.account\.path: cannot read .*accounts\.db"
    ):
        run_scenario(scenario("3s"))
