"""The execution layer against a venue that answers late, out of order, twice or not at all.

Every case runs the same hand-checkable trade (tests/conftest.py: enter at 1 s buying a
and selling b, exit on reversion at 3 s) and must end exactly as the plain run does, with
the ledger equal to the venues' own accounts to the unit.
"""

from __future__ import annotations

import re
from decimal import Decimal as D

from conftest import book, two_venue_scenario

from arbframe.orders import OrderState

EVENTS = [
    book("0s", "a", 99.90, 100.00),
    book("1s", "b", 100.60, 100.70),  # enter: buy a at 100.00, sell b at 100.60
    book("3s", "b", 99.80, 99.85),  # reversion: sell a at 99.90, buy b at 99.85
]


def legs(result):
    return [(f.venue, f.side, f.price, f.amount, f.role) for f in result.fills]


def plain(run_scenario):
    return run_scenario(two_venue_scenario(EVENTS))


def test_plain_round_trip(run_scenario):
    result = plain(run_scenario)
    assert legs(result) == [
        ("a", "buy", D("100.00"), D("0.500"), "entering"),
        ("b", "sell", D("100.60"), D("0.500"), "entering"),
        ("a", "sell", D("99.90"), D("0.500"), "exiting"),
        ("b", "buy", D("99.85"), D("0.500"), "exiting"),
    ]
    [trade] = result.trades
    assert trade.exit_reason == "reversion" and trade.exited


def with_venue(run_scenario, venue: str = "b", execution=None, faults=(), **paper):
    scenario = two_venue_scenario(EVENTS, **({"execution": execution} if execution else {}))
    scenario["venues"][venue].update(paper)
    scenario["faults"] = list(faults)
    return run_scenario(scenario)


def test_late_ack_and_fills_before_it(run_scenario):
    base = plain(run_scenario)
    result = with_venue(run_scenario, report_delays={"ack": "300ms"})
    assert legs(result) == legs(base)
    assert result.trades[0].net_pnl == base.trades[0].net_pnl
    # b's orders filled (and the trade moved on) before their acks arrived; each ack
    # was then recognised as late and changed nothing.
    b_orders = [o for o in result.run.execution.orders.values() if o.venue == "b"]
    assert [o.state for o in b_orders] == [OrderState.FILLED] * 2
    assert all(o.exchange_id == f"b-o{i}" for i, o in zip((1, 3), b_orders, strict=True))
    assert result.summary["reconciliation"]["passed"] is True


def test_a_fill_reported_after_the_cancel_still_counts(run_scenario):
    """b fills 40 % of the entry and cancels the rest; the fill report arrives 300 ms after
    the cancel. The trade must wait for it, then unwind to the hedged amount: closing the
    trade on the cancel would leave 0.2 BTC sold on b that no trade owns."""
    fault = {"type": "partial_fill", "venue": "b", "role": "entering", "fraction": 0.4}
    on_time = with_venue(run_scenario, faults=[fault])
    late = with_venue(run_scenario, faults=[fault], report_delays={"fill": "300ms"})
    assert legs(late) == legs(on_time)
    assert [f for f in legs(late) if f[4] == "unwinding"] == [
        ("a", "sell", D("99.90"), D("0.300"), "unwinding")
    ]
    assert late.summary["orders"]["late_fills"] == 1  # b's entry fill, after its cancel
    assert on_time.summary["orders"].get("late_fills") is None
    [trade] = late.trades
    assert trade.exit_reason == "reversion" and trade.net_pnl == on_time.trades[0].net_pnl
    assert late.summary["portfolio"]["open_trades"] == 0
    assert late.summary["reconciliation"]["passed"] is True


def test_repeated_and_reordered_reports(run_scenario):
    base = plain(run_scenario)
    result = with_venue(
        run_scenario,
        report_delays={"ack": "20ms", "fill": "5ms"},
        duplicate_reports=True,
    )
    assert legs(result) == legs(base)
    counts = result.summary["orders"]
    # b: two orders, each an ack, a fill and a final report, every one sent twice
    assert counts["duplicate_fills"] == 2 and counts["duplicate_reports"] == 4
    assert counts.get("illegal_transitions") is None
    assert result.summary["reconciliation"]["passed"] is True


def test_a_lost_final_report_is_recovered_by_asking(run_scenario):
    base = plain(run_scenario)
    lost = {"type": "report_loss", "venue": "b", "reports": "all", "count": 3}
    result = with_venue(run_scenario, execution={"order_timeout": "500ms"}, faults=[lost])
    # b's entry order went silent (ack, fill, final all lost): 500 ms later the kernel
    # asked, got the order's fills and state, and the trade went on.
    assert legs(result) == legs(base)
    assert result.summary["orders"]["queries"] == 1
    assert result.summary["faults"]["report_loss"] == 3
    [trade] = result.trades
    assert trade.opened_at + 510_000_000 < trade.fills[2].ts  # exit after the recovery
    assert result.summary["reconciliation"]["passed"] is True


def test_a_venue_that_never_answers_is_escalated(run_scenario):
    silent = {"type": "report_loss", "venue": "b", "reports": "all"}
    settings = {"order_timeout": "200ms", "max_queries": 2}
    result = with_venue(run_scenario, execution=settings, faults=[silent])
    s = result.summary
    assert s["orders"]["queries"] == 2 and s["orders"]["unresolved"] == 1
    assert s["alerts"] == {"P0": 1}
    [halt] = s["execution"]["halts"]
    assert halt["trade_id"] == "BTC-1" and "no final answer after 2 queries" in halt["why"]
    assert s["portfolio"]["open_trades"] == 1  # halted, reported, left to an operator
    # The venue did fill: the ledger missed those fills, and reconciliation says so.
    assert s["reconciliation"]["passed"] is False and s["passed"] is False


def test_a_halted_trade_stays_halted_when_the_answer_comes_late(run_scenario):
    """b answers five seconds after the kernel gave up on it: the fills are booked (money
    moved), but the trade stays halted for an operator instead of trading on."""
    late = {"ack": "5s", "fill": "5s", "final": "5s"}
    settings = {"order_timeout": "200ms", "max_queries": 1}
    result = with_venue(run_scenario, execution=settings, report_delays=late)
    s = result.summary
    [trade] = result.run.execution.trades.values()
    assert trade.state.value == "halted" and trade.closed_at is None
    assert [f.role for f in trade.fills] == ["entering", "entering"]  # no exit was sent
    assert len(s["execution"]["halts"]) == 1 and s["alerts"] == {"P0": 1}
    assert s["portfolio"]["open_trades"] == 1 and s["portfolio"]["exits"] == 0
    assert s["reconciliation"]["passed"] is True  # the late fills were booked


def test_an_order_timeout_of_zero_is_refused(run_scenario):
    import pytest

    from arbframe.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"execution\.order_timeout: must be longer than 0"):
        run_scenario(two_venue_scenario(EVENTS, execution={"order_timeout": 0}))


def test_fees_in_the_asset_received(run_scenario):
    result = with_venue(run_scenario, venue="a", fees={"taker_bps": 10, "asset": "received"})
    [trade] = result.trades
    a_fills = [f for f in result.fills if f.venue == "a"]
    # a's buy of 0.5 pays 0.0005 BTC: the leg holds 0.4995, and the exit sells what the
    # venue can trade of it (0.499, the 0.001 step); 0.0005 BTC is left as residue.
    assert [(f.side, f.amount, f.fee, f.fee_asset) for f in a_fills] == [
        ("buy", D("0.500"), D("0.0005000"), "BTC"),
        ("sell", D("0.499"), D("0.04985010"), "USDT"),
    ]
    assert trade.residue == {"a:BTC": D("0.0005000")}
    flows = sum((f.price * f.amount * (1 if f.side == "sell" else -1) for f in result.fills), D(0))
    quote_fees = sum((f.fee for f in result.fills if f.fee_asset == "USDT"), D(0))
    assert trade.net_pnl == flows - quote_fees + D("0.0005") * D("99.90")
    assert trade.fees == quote_fees + D("0.0005") * D("100.00")
    assert result.run.venues["a"].balances()["BTC"] == D("1.0005")
    assert result.summary["reconciliation"]["passed"] is True


def test_fees_in_a_third_asset(run_scenario):
    scenario = two_venue_scenario(EVENTS)
    scenario["venues"]["b"]["fees"] = {"taker_bps": 20, "asset": "BNB", "asset_price": 250}
    scenario["capital"]["b"]["BNB"] = 1
    result = run_scenario(scenario)
    b_fills = [f for f in result.fills if f.venue == "b"]
    # 50.30 USDT * 20 bp = 0.1006 USDT = 0.0004024 BNB; 49.925 * 20 bp = 0.09985 = 0.0003994
    assert [(f.fee, f.fee_asset, f.fee_price) for f in b_fills] == [
        (D("0.00040240"), "BNB", D(250)),
        (D("0.00039940"), "BNB", D(250)),
    ]
    [trade] = result.trades
    assert trade.fees == D("0.05") + D("0.04995") + (D("0.0004024") + D("0.0003994")) * 250
    assert result.run.venues["b"].balances()["BNB"] == D(1) - D("0.0008018")
    assert result.run.ledger.balances["b"]["BNB"] == D(1) - D("0.0008018")
    assert result.summary["reconciliation"]["passed"] is True


def test_a_deposit_is_a_ledger_entry_not_pnl(run_scenario):
    base = plain(run_scenario)
    transfers = [{"at": "2s", "asset": "USDT", "amount": 500}]
    result = with_venue(run_scenario, venue="a", transfers=transfers)
    s = result.summary
    [entry] = result.run.ledger.entries
    assert (entry.venue, entry.asset, entry.amount, entry.kind) == ("a", "USDT", 500, "deposit")
    assert s["orders"]["balance_changes"] == 1
    assert s["portfolio"]["pnl"] == base.summary["portfolio"]["pnl"]
    assert D(s["portfolio"]["balance_changes"]) == 500
    assert s["portfolio"]["inventory_pnl"] == base.summary["portfolio"]["inventory_pnl"]
    assert D(s["portfolio"]["equity_end"]) == D(base.summary["portfolio"]["equity_end"]) + 500
    assert result.run.ledger.balances["a"]["USDT"] == result.run.venues["a"].balances()["USDT"]
    assert s["reconciliation"]["passed"] is True


def test_an_illegal_transition_is_alerted_not_fatal(run_scenario, monkeypatch):
    """The venue fills b's entry, then also calls it rejected: the kernel keeps the fill
    (money moved), refuses the transition, raises a P1 and carries on."""
    from arbframe_plugins.exchanges.paper import PaperExchange

    close = PaperExchange._close

    def contradict(self, order, state, reason=""):
        close(self, order, state, reason)
        if self.name == "b" and state is OrderState.FILLED and order.exchange_id == "b-o1":
            close(self, order, OrderState.REJECTED, "changed its mind")

    monkeypatch.setattr(PaperExchange, "_close", contradict)
    result = plain(run_scenario)
    s = result.summary
    assert s["orders"]["illegal_transitions"] == 1 and s["alerts"] == {"P1": 1}
    assert [t.exit_reason for t in result.trades] == ["reversion"]
    assert s["reconciliation"]["passed"] is True


def test_client_ids_are_unique_per_session_and_deterministic(run_scenario):
    result = plain(run_scenario)
    ids = list(result.run.execution.orders)
    assert len(ids) == len(set(ids)) == 4
    # short and plain enough for every venue (Binance: [A-Za-z0-9-_]{1,36})
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,36}", i) for i in ids)
    again = run_scenario(two_venue_scenario(EVENTS))
    assert list(again.run.execution.orders) == ids  # the same session: deterministic
    other = two_venue_scenario(EVENTS)
    other["session"] = "another"
    assert not set(run_scenario(other).run.execution.orders) & set(ids)


def test_a_repeated_balance_change_is_booked_once(run_scenario):
    transfers = [{"at": "2s", "asset": "USDT", "amount": 500}]
    result = with_venue(run_scenario, venue="a", transfers=transfers, duplicate_reports=True)
    s = result.summary
    assert len(result.run.ledger.entries) == 1 and s["orders"]["balance_changes"] == 1
    assert s["reconciliation"]["passed"] is True


def test_a_venue_may_answer_from_inside_submit(run_scenario):
    """Every order of a drive is in flight before the first is sent, so a venue that fills
    synchronously does not make the trade settle with one leg still unsent."""
    from arbframe_plugins.exchanges.paper import PaperExchange

    from arbframe.hookspecs import hookimpl

    class Immediate(PaperExchange):
        type_name = "paper_now"

        def submit(self, order):
            self._arrive(order)  # executes and reports before returning

        def _send(self, kind, report):
            self.ctx.report(report)

    class Plugin:
        @hookimpl
        def arbframe_register_exchanges(self, register):
            register(Immediate)

    scenario = two_venue_scenario(EVENTS)
    for venue in scenario["venues"].values():
        venue["type"] = "paper_now"
    result = run_scenario(scenario, plugins=(Plugin(),))
    run, summary = result.run, result.summary
    assert [t.exit_reason for t in run.execution.closed] == ["reversion"]
    assert summary["alerts"] == {} and summary["reconciliation"]["passed"] is True


def test_a_fill_after_its_trade_closed_is_unwound_by_a_trade_of_its_own(run_scenario, monkeypatch):
    """b cancels the rest of a partly filled entry but says it filled nothing; the fill
    report arrives after the kernel, believing it, closed the trade. A recovery trade takes
    the stray position, unwinds it and closes as late_fill; the guards saw it open and close."""
    from arbframe_plugins.exchanges.paper import PaperExchange

    close = PaperExchange._close

    def understated(self, order, state, reason=""):
        if self.name == "b" and state is OrderState.CANCELED:
            order.filled, real = D(0), order.filled
            close(self, order, state, reason)
            order.filled = real
        else:
            close(self, order, state, reason)

    monkeypatch.setattr(PaperExchange, "_close", understated)
    fault = {"type": "partial_fill", "venue": "b", "role": "entering", "fraction": 0.4}
    scenario = two_venue_scenario(EVENTS)
    scenario["venues"]["b"]["report_delays"] = {"fill": "300ms"}
    scenario["faults"] = [fault]
    scenario["guards"] = [{"type": "global", "max_open_trades": 5}]
    result = run_scenario(scenario)
    reasons = [(t.trade_id, t.exit_reason) for t in result.trades]
    assert reasons[0] == ("BTC-1", "leg_failure")  # a's leg unwound: b said nothing filled
    late = [t for t in result.trades if t.exit_reason == "late_fill"]
    assert len(late) == 1 and late[0].trade_id.startswith("BTC-1-late")
    assert [(f.venue, f.side, f.amount) for f in late[0].fills] == [
        ("b", "sell", D("0.200")),
        ("b", "buy", D("0.200")),
    ]
    s = result.summary
    assert s["alerts"]["P1"] == 1 and s["guard_state"]["global"]["open_trades"] == 0
    assert s["portfolio"]["open_trades"] == 0 and s["reconciliation"]["passed"] is True


def test_an_entry_below_the_minimum_notional_is_refused_not_failed(run_scenario):
    scenario = two_venue_scenario(EVENTS)
    scenario["venues"]["b"]["markets"]["default"]["min_notional"] = 60  # 0.5 x ~100 < 60
    result = run_scenario(scenario)
    assert result.fills == [] and result.summary["alerts"] == {}
    assert result.summary["execution"]["refused"]["size"] >= 1
    assert result.summary["portfolio"]["entry_failures"] == 0
