"""Did a run lose a position or send an order twice? Checked against the venues.

The venues are the independent source: what each holds of every asset it trades, and
the client ids it received. ``position_loss`` counts (venue, base asset) pairs whose
change in the venue's own balance is not explained by the positions of the kernel's
trades there, the fills of orders it adopted (orphans it tracks as its own, without a
trade), and the deposits and transfers the venue reported: a fill nobody owns, a leg
forgotten across a crash. A ``reconciliation`` ledger entry (a difference the kernel found
between the venue and its ledger, arbframe.reconcile) brings the ledger in line but
explains nothing, so a base asset that moved silently still counts here.
``ledger_mismatches`` counts assets whose ledger balance differs from the venue's.
``duplicate_orders`` is what the venues counted: a client id received twice.
``state_integrity`` holds when all three are 0.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from arbframe.model import BUY, money


def check(
    venues: dict[str, Any], ledger: Any, trades: Any, instruments: Any, orders: Any = ()
) -> dict[str, Any]:
    held: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for trade in trades:
        for leg in trade.legs:
            held[(leg.venue, leg.base)] += leg.position
    adopted = {o.client_id for o in orders if o.role == "adopted"}
    for fill in ledger.fills if adopted else ():  # tracked by the kernel, owned by no trade
        if fill.client_id in adopted:
            held[(fill.venue, fill.base)] += fill.amount if fill.side == BUY else -fill.amount
            if fill.fee_asset == fill.base:
                held[(fill.venue, fill.base)] -= fill.fee
    moved_outside: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in ledger.entries:
        if entry.kind != "reconciliation":
            moved_outside[(entry.venue, entry.asset)] += entry.amount
    unexplained: dict[str, str] = {}
    mismatches: dict[str, str] = {}
    bases = {(i.venue, i.base) for i in instruments}
    for name, venue in venues.items():
        now = venue.balances()
        start = ledger.start_balances.get(name, {})
        for venue_name, base in sorted(bases):
            if venue_name != name:
                continue
            change = now.get(base, Decimal(0)) - start.get(base, Decimal(0))
            gap = change - moved_outside[(name, base)] - held[(name, base)]
            if gap:
                unexplained[f"{name}:{base}"] = money(gap)
        for asset in sorted({*now, *ledger.balances.get(name, {})}):
            ours = ledger.balances.get(name, {}).get(asset, Decimal(0))
            if ours != now.get(asset, Decimal(0)):
                mismatches[f"{name}:{asset}"] = money(now.get(asset, Decimal(0)) - ours)
    duplicates = sum(v.stats().get("duplicate_orders", 0) for v in venues.values())
    return {
        "position_loss": len(unexplained),
        "ledger_mismatches": len(mismatches),
        "duplicate_orders": duplicates,
        "state_integrity": not (unexplained or mismatches or duplicates),
        "unexplained": unexplained,
        "mismatched": mismatches,
    }
