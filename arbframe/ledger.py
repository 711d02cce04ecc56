"""The ledger: every fill and every other balance change, and the balances they add up to.

The ledger books what the venues *report* (fills, deposits, withdrawals, transfers,
rebates). It is one of two independent accounts: the venue keeps its own, and the
reconciliation (arbframe.audit) compares them at the end, asset by asset, to the unit.

Trade PnL (:func:`trade_pnl`) is computed from the trade's fills alone: the quote flow of
each fill (``-price * amount`` for a buy, ``+price * amount`` for a sell), less the fees
paid in anything but the traded asset (a fee in the base asset is already in the leg's
position), plus any residue smaller than the venue trades valued at its last fill price;
each amount converted to the report currency at the FX rate recorded on its fill.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from arbframe.model import BUY, ZERO, BalanceChange, Fill, Trade

REPORT_QUANTUM = Decimal("1e-12")


class Ledger:
    def __init__(self, report_currency: str, start: dict[str, dict[str, Decimal]]) -> None:
        self.report_currency = report_currency
        self.start_balances = {venue: dict(assets) for venue, assets in start.items()}
        self.balances: dict[str, defaultdict[str, Decimal]] = {
            venue: defaultdict(Decimal, assets) for venue, assets in start.items()
        }
        self.fees: dict[str, defaultdict[str, Decimal]] = {v: defaultdict(Decimal) for v in start}
        self.fills: list[Fill] = []
        self.entries: list[BalanceChange] = []
        self.booked: defaultdict[str, int] = defaultdict(int)
        """Per venue, how many fills and entries were booked: a balance comparison knows
        nothing moved in the ledger while it waited for the venue's answer."""

    def book_fill(self, fill: Fill) -> None:
        flow = fill.price * fill.amount
        balances = self.balances[fill.venue]
        if fill.side == BUY:
            balances[fill.base] += fill.amount
            balances[fill.quote] -= flow
        else:
            balances[fill.base] -= fill.amount
            balances[fill.quote] += flow
        balances[fill.fee_asset] -= fill.fee
        self.fees[fill.venue][fill.fee_asset] += fill.fee
        self.fills.append(fill)
        self.booked[fill.venue] += 1

    def book_entry(self, entry: BalanceChange) -> None:
        self.balances[entry.venue][entry.asset] += entry.amount
        self.entries.append(entry)
        self.booked[entry.venue] += 1


def to_report(amount: Decimal, fill: Fill, report_currency: str) -> Decimal:
    """A quote-currency amount of ``fill`` in the report currency (rounded to 1e-12)."""
    if fill.quote == report_currency:
        return amount
    return (amount / fill.fx).quantize(REPORT_QUANTUM)


def trade_pnl(trade: Trade, report_currency: str) -> None:
    """Set the trade's gross, fees, slippage, net PnL, residue and notional from its fills."""
    net = fees = slippage = ZERO
    last: dict[tuple[str, str], Fill] = {}
    for fill in trade.fills:
        flow = fill.price * fill.amount
        net += to_report(-flow if fill.side == BUY else flow, fill, report_currency)
        fee = to_report(fill.fee_value, fill, report_currency)
        fees += fee
        if fill.fee_asset != fill.base:  # a base fee is already in the position
            net -= fee
        slippage += to_report(fill.slippage, fill, report_currency)
        last[(fill.venue, fill.symbol)] = fill
    trade.residue = {}
    for leg in trade.legs:
        if leg.position:  # what the venue could not trade: valued at the leg's last fill
            fill = last[(leg.venue, leg.symbol)]
            trade.residue[f"{leg.venue}:{leg.symbol}"] = leg.position
            net += to_report(leg.position * leg.last_price, fill, report_currency)
    trade.net_pnl, trade.fees, trade.slippage = net, fees, slippage
    trade.gross_pnl = net + fees
    trade.notional = entry_notional(trade, report_currency)
    trade.risk = (trade.notional * Decimal(repr(trade.risk_bps)) / 10_000).quantize(Decimal("1e-8"))


def entry_notional(trade: Trade, report_currency: str) -> Decimal:
    """Report-currency value of the largest leg filled while entering."""
    per_leg: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for fill in trade.fills:
        if fill.role == "entering":
            per_leg[(fill.venue, fill.symbol)] += to_report(fill.notional, fill, report_currency)
    return max(per_leg.values(), default=ZERO)
