"""The ledger: every fill, every trade, and balances rebuilt from the fills alone.

Venues keep their own balances as they execute; the ledger keeps a second set built only
from the fills it is told about. :meth:`Ledger.reconcile` compares the two to the unit, so
a fill that moved money without being reported (or the reverse) cannot go unnoticed.

Trade PnL is the sum of the trade's fill cash flows: each fill's quote flow (``-price *
amount`` for a buy, ``+price * amount`` for a sell) and fee, converted to the report
currency at the FX rate recorded on that fill. Once a trade is flat on every venue its
base flows cancel, so the sum is exactly what the trade made or lost.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from arbframe.model import BUY, Fill, Trade, money

if TYPE_CHECKING:
    from arbframe.components import Exchange

ZERO = Decimal(0)
REPORT_QUANTUM = Decimal("1e-12")


class Ledger:
    def __init__(self, report_currency: str, venues: dict[str, Exchange]) -> None:
        self.report_currency = report_currency
        self.quotes = {name: venue.quote for name, venue in venues.items()}
        self.start_balances = {name: dict(v.balances) for name, v in venues.items()}
        self.balances: dict[str, dict[str, Decimal]] = {
            name: defaultdict(Decimal, v.balances) for name, v in venues.items()
        }
        self.fees: dict[str, dict[str, Decimal]] = {name: defaultdict(Decimal) for name in venues}
        self.fills: list[Fill] = []
        self.trades: dict[str, Trade] = {}
        self.closed: list[Trade] = []

    def open_trade(self, trade: Trade) -> Trade:
        if trade.trade_id in self.trades:
            raise RuntimeError(f"trade id {trade.trade_id} used twice")
        self.trades[trade.trade_id] = trade
        return trade

    def book_fill(self, fill: Fill) -> None:
        base, quote = fill.symbol, fill.quote
        flow = fill.price * fill.amount
        balances = self.balances[fill.venue]
        if fill.side == BUY:
            balances[base] += fill.amount
            balances[quote] -= flow
        else:
            balances[base] -= fill.amount
            balances[quote] += flow
        balances[fill.fee_asset] -= fill.fee
        self.fees[fill.venue][fill.fee_asset] += fill.fee
        self.fills.append(fill)
        if fill.trade_id is not None:
            self.trades[fill.trade_id].fills.append(fill)

    def to_report(self, amount: Decimal, fill: Fill) -> Decimal:
        if fill.quote == self.report_currency:
            return amount
        return (amount / fill.fx).quantize(REPORT_QUANTUM)

    def exposure(self, trade: Trade) -> dict[str, Decimal]:
        """Signed base amount the trade holds on each venue (buys positive)."""
        out: dict[str, Decimal] = defaultdict(Decimal)
        for fill in trade.fills:
            out[fill.venue] += fill.amount if fill.side == BUY else -fill.amount
        return out

    def close_trade(
        self, trade_id: str, ts: int, reason: str, exit_spread_bps: float | None
    ) -> Trade:
        trade = self.trades[trade_id]
        gross = fees = slippage = ZERO
        for fill in trade.fills:
            flow = fill.price * fill.amount
            gross += self.to_report(-flow if fill.side == BUY else flow, fill)
            fee_in_quote = fill.fee if fill.fee_asset == fill.quote else fill.fee * fill.price
            fees += self.to_report(fee_in_quote, fill)
            slippage += self.to_report(fill.slippage, fill)
        trade.gross_pnl, trade.fees, trade.slippage = gross, fees, slippage
        trade.net_pnl = gross - fees
        trade.closed_at, trade.exit_reason, trade.exit_spread_bps = ts, reason, exit_spread_bps
        self.closed.append(trade)
        return trade

    def open_trades(self) -> list[Trade]:
        return [t for t in self.trades.values() if t.closed_at is None]

    def reconcile(self, venues: dict[str, Exchange]) -> dict[str, Any]:
        """Venue balances versus start + fills - fees, per venue and asset, to the unit."""
        report: dict[str, Any] = {"reconciled": True, "venues": {}}
        for name, venue in venues.items():
            assets = sorted(set(venue.balances) | set(self.balances[name]))
            rows = {}
            for asset in assets:
                start = self.start_balances[name].get(asset, ZERO)
                rebuilt = self.balances[name].get(asset, ZERO)
                actual = venue.balances.get(asset, ZERO)
                rows[asset] = {
                    "start": money(start),
                    "end": money(actual),
                    "from_fills": money(rebuilt),
                    "fees": money(self.fees[name].get(asset, ZERO)),
                    "difference": money(actual - rebuilt),
                }
                if actual != rebuilt:
                    report["reconciled"] = False
            report["venues"][name] = rows
        return report
