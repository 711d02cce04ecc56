"""`inventory:`: imbalance per asset, rebalance signals and simulated transfers between the
paper venues' accounts, booked in the ledger so the run still reconciles to the unit."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from arbframe_plugins.state.memory import MemoryStore

from arbframe.errors import ScenarioError
from arbframe.runner import Run

START = 1704067200 * 10**9  # the scripted feed's default start
S = 10**9


def scenario(btc: tuple[str, str], inventory: dict[str, Any] | None) -> dict[str, Any]:
    """Venues a and b holding ``btc`` BTC each and 1000 USDT; books every 10 s for 90 s; a
    strategy that never trades (no fill moves a balance)."""
    events = [
        {"at": f"{t}s", "venue": v, "symbol": "BTC", "bid": 59999, "ask": 60001}
        for t in range(0, 91, 10)
        for v in ("a", "b")
    ]
    sc: dict[str, Any] = {
        "name": "inventory_test",
        "duration": "90s",
        "venues": {v: {"type": "paper", "quote": "USDT"} for v in ("a", "b")},
        "capital": {v: {"USDT": 1000, "BTC": amount} for v, amount in zip("ab", btc, strict=True)},
        "feeds": [{"type": "scripted", "events": events}],
        "strategy": {"type": "spread_arb", "entry_bps": 10000, "exit_bps": 0, "size": {"quote": 1}},
    }
    if inventory is not None:
        sc["inventory"] = inventory
    return sc


def test_imbalance_is_the_largest_venue_share_of_the_total(run_scenario):
    result = run_scenario(scenario(("3", "4"), {"rebalance_at": 0.9}))
    inventory = result.summary["inventory"]
    # BTC: max(3, 4) / (3 + 4) = 4/7 = 0.571428571428571..., shown to 1e-12; USDT: 1000/2000.
    assert inventory["imbalance"] == {"BTC": "0.571428571429", "USDT": "0.5"}
    assert result.run.inventory.imbalance("BTC") == Decimal(4) / Decimal(7)
    assert inventory["balances"] == {
        "a": {"BTC": "3", "USDT": "1000"},
        "b": {"BTC": "4", "USDT": "1000"},
    }
    # Exposure: 3 BTC at the 60000 mid + 1000 USDT; open legs: none.
    assert inventory["exposure"] == {"a": "181000", "b": "241000"}
    assert inventory["open_legs"] == {"a": "0", "b": "0"}
    assert inventory["checks"] == 2  # at 0 s and 60 s (check_every 1m)
    assert inventory["rebalance_signals"] == 0


@pytest.mark.parametrize(("threshold", "signals"), [(0.75, 1), (0.7500001, 0), (0.6, 1)])
def test_the_signal_fires_at_the_threshold_and_not_just_below(run_scenario, threshold, signals):
    result = run_scenario(scenario(("3", "1"), {"rebalance_at": threshold, "check_every": "10s"}))
    inventory = result.summary["inventory"]
    assert inventory["imbalance"]["BTC"] == "0.75"  # 3 / (3 + 1)
    # Once per crossing: ten checks above the threshold make one signal.
    assert inventory["checks"] == 10
    assert inventory["rebalance_signals"] == signals
    assert result.summary["alerts"].get("P3", 0) == signals
    if signals:
        assert inventory["signals"][0] | {"at": None} == {
            "ts": START, "at": None, "asset": "BTC", "venue": "a", "imbalance": "0.75"
        }  # fmt: skip


TRANSFER = {
    "rebalance_at": 0.7,
    "check_every": "10s",
    "transfer": {"delay": "30s", "fee": {"BTC": "0.0005"}},
}


def test_a_transfer_arrives_after_its_delay_less_its_fee_and_the_run_reconciles(run_scenario):
    result = run_scenario(scenario(("3", "1"), TRANSFER))
    summary, run = result.summary, result.run
    inventory = summary["inventory"]
    # Half the difference, (3 - 1) / 2 = 1 BTC, leaves a at once; b gets 1 - 0.0005 at 30 s.
    [transfer] = inventory["transfers"]
    assert (transfer["asset"], transfer["from"], transfer["to"]) == ("BTC", "a", "b")
    assert (transfer["amount"], transfer["fee"], transfer["received"]) == ("1", "0.0005", "0.9995")
    assert transfer["ts"] == START and transfer["arrived_at"] == START + 30 * S
    entries = [(e.venue, e.amount, e.kind, e.ts) for e in run.ledger.entries]
    assert entries == [
        ("a", Decimal("-1"), "transfer_out", START),
        ("b", Decimal("0.9995"), "transfer_in", START + 30 * S),
    ]
    assert (
        inventory["balances"]["a"]["BTC"] == "2" and inventory["balances"]["b"]["BTC"] == "1.9995"
    )
    # The venues' own accounts moved the same: the audit compares them to the unit.
    assert run.venues["a"].balances()["BTC"] == Decimal(2)
    assert run.venues["b"].balances()["BTC"] == Decimal("1.9995")
    assert summary["reconciliation"]["passed"]
    assert summary["reconciliation"]["balances"]["mismatches"] == 0
    assert summary["integrity"]["position_loss"] == 0  # a transfer explains the move
    assert summary["portfolio"]["balance_changes"] == "-30"  # the fee, 0.0005 BTC at 60000
    # 2 / 3.9995 after the arrival: under 0.7, so no second signal.
    assert inventory["rebalance_signals"] == 1 and inventory["transfer_count"] == 1


def test_no_transfer_while_one_is_in_flight(run_scenario):
    # 3.99 / 4 stays over 0.7 after the debit (2 on a, 0.01 on b until the credit): the checks
    # at 10 s and 20 s see it in flight and do not send another.
    result = run_scenario(scenario(("3.99", "0.01"), TRANSFER))
    assert result.summary["inventory"]["transfer_count"] == 1
    assert result.summary["reconciliation"]["passed"]


def test_a_transfer_with_nothing_left_after_the_fee_is_skipped(run_scenario):
    config = copy.deepcopy(TRANSFER)
    config["transfer"]["fee"] = {"BTC": "1"}  # exactly what would move
    result = run_scenario(scenario(("3", "1"), config))
    inventory = result.summary["inventory"]
    assert inventory["rebalance_signals"] == 1
    assert inventory["transfer_count"] == 0 and inventory["transfers_skipped"] == 1
    assert result.run.ledger.entries == []


def test_a_transfer_is_capped_at_the_sources_free_balance(run_scenario):
    # 3 BTC on each venue (even). At 5 s a sell order nobody placed rests on a, locking 2.6 of
    # its 3 BTC; at 15 s 2 BTC leave b (a withdrawal). The check at 20 s sees 3 / (3 + 1) =
    # 0.75: half the difference is 1 BTC, but only 0.4 of a's BTC is free.
    sc = scenario(("3", "3"), {**TRANSFER, "transfer": {"delay": "30s"}})
    sc["faults"] = [{"type": "orphan_order", "venue": "a", "at": "5s", "amount": 2.6,
                     "side": "sell", "price": 70000, "client_id": "manual-1"}]  # fmt: skip
    sc["venues"]["b"]["transfers"] = [{"at": "15s", "asset": "BTC", "amount": -2}]
    result = run_scenario(sc)
    inventory = result.summary["inventory"]
    [transfer] = inventory["transfers"]
    assert (transfer["from"], transfer["to"], transfer["ts"]) == ("a", "b", START + 20 * S)
    assert transfer["amount"] == "0.4" and transfer["received"] == "0.4"
    assert result.run.venues["a"].available("BTC") == 0
    assert inventory["balances"]["a"]["BTC"] == "2.6" and inventory["balances"]["b"]["BTC"] == "1.4"


class Crash(Exception):
    pass


def test_a_resume_mid_transfer_neither_loses_nor_doubles_it(run_scenario, monkeypatch):
    sc = scenario(("3", "1"), TRANSFER) | {
        "state": [{"type": "memory"}],
        "snapshots": {"every": "5s"},
    }
    MemoryStore.records.clear()
    whole = run_scenario(copy.deepcopy(sc)).summary
    MemoryStore.records.clear()
    between = Run._between

    def dying(self, now, next_ts):
        between(self, now, next_ts)
        if now == START + 20 * S:  # debited at 0 s, due at 30 s
            raise Crash

    monkeypatch.setattr(Run, "_between", dying)
    with pytest.raises(Crash):
        run_scenario(copy.deepcopy(sc))
    monkeypatch.undo()
    resumed = run_scenario(copy.deepcopy(sc), resume=True)
    snapshot = resumed.run.resumed_from
    assert START < snapshot.ts < START + 30 * S  # the transfer was in flight in it
    for key in ("inventory", "reconciliation", "integrity"):
        assert resumed.summary[key] == whole[key]
    assert [e.kind for e in resumed.run.ledger.entries] == ["transfer_out", "transfer_in"]
    MemoryStore.records.clear()


def test_a_venue_without_an_account_hook_cannot_transfer(run_scenario, monkeypatch):
    from arbframe_plugins.exchanges.paper import PaperExchange

    monkeypatch.delattr(PaperExchange, "drift")
    with pytest.raises(ScenarioError) as info:
        run_scenario(scenario(("3", "1"), TRANSFER))
    assert ": inventory.transfer: venue 'a' (paper) cannot transfer" in str(info.value)


@pytest.mark.parametrize(
    ("inventory", "where"),
    [
        ({"rebalance_at": 1.5}, "inventory.rebalance_at"),
        ({"rebalance_at": 0.7, "assets": ["ETH"]}, "inventory.assets[0]"),
        ({"rebalance_at": 0.7, "transfer": {"delay": "soon"}}, "inventory.transfer.delay"),
    ],
)
def test_bad_config_names_the_key(run_scenario, inventory, where):
    with pytest.raises(ScenarioError) as info:
        run_scenario(scenario(("3", "1"), inventory))
    assert f": {where}: " in str(info.value)
