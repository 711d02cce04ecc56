"""``inventory:``: balances per venue and asset, how unevenly each asset is spread, exposure,
rebalance signals and simulated transfers.

Definitions (exact, from the ledger's balances):

* an asset's venues: those with an instrument that has it as base or quote (``assets:``
  narrows the assets; each needs two venues);
* its **imbalance**: the largest of its venues' balances divided by their total (1/n when
  even over n venues, 1 when one venue holds it all); undefined while the total is not
  positive. Compared with ``rebalance_at`` exactly; shown rounded to 1e-12;
* a venue's **exposure**: its balances valued in the report currency (currencies at their FX
  rate, a base asset at the mid of the venue's book of it), and separately the open trades'
  legs there (|position| x mid).

Every ``check_every`` of scenario time (from the first feed event) each asset is checked; an
imbalance at or above ``rebalance_at`` reached from below is a **rebalance signal**: counted,
a P3 alert and the ``rebalance`` event. With ``transfer:``, the signal also moves half the
difference between the richest and the poorest venue (an even split of the two): the
source's balance falls at once, the destination's rises ``delay`` later by the amount less
the asset's fee. Each side is a ledger entry (``transfer_out``, ``transfer_in``, booked as a
venue report is) and the same move in the paper venue's own account, so the audit's balance
check still holds to the unit. One transfer per asset at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from arbframe.model import ZERO, BalanceChange, money
from arbframe.units import parse_duration

if TYPE_CHECKING:
    from arbframe.components import Exchange
    from arbframe.execution import ExecutionEngine

UNIT = Decimal("1e-8")  # transfers move whole units of this (the paper venues' default step)
RATIO_SHOWN = Decimal("1e-12")
VALUE_SHOWN = Decimal("1e-8")


@dataclass
class Transfer:
    """A simulated transfer between two venues' accounts."""

    ts: int
    """When the source was debited (ns)."""
    asset: str
    source: str
    dest: str
    amount: Decimal
    """Debited from the source."""
    fee: Decimal
    """Kept from what arrives: the destination is credited ``amount - fee``."""
    due: int
    """When it arrives (ns)."""
    ref: str
    arrived_at: int | None = None


@dataclass(frozen=True)
class RebalanceSignal:
    """An asset's imbalance reached ``rebalance_at`` (``arbframe_on_rebalance``)."""

    ts: int
    asset: str
    imbalance: Decimal
    """Exact: the richest venue's share of the asset's total."""
    venue: str
    """The richest venue."""
    transfer: Transfer | None
    """The transfer started for it (``transfer:`` configured and something to move)."""


class Inventory:
    """The kernel's inventory watch (one per run with ``inventory:``)."""

    def __init__(
        self,
        config: dict[str, Any],
        execution: ExecutionEngine,
        venues: dict[str, Exchange],
        error: Callable[[tuple[str | int, ...], str], Exception],
    ) -> None:
        self.execution, self.venues = execution, venues
        self.market, self.ledger, self.clock = execution.market, execution.ledger, execution.clock
        self.rebalance_at = Decimal(repr(config["rebalance_at"]))
        self.every = parse_duration(config.get("check_every", "1m"))
        self.assets = self._assets(config.get("assets"), error)
        transfer = config.get("transfer")
        self.delay = parse_duration(transfer.get("delay", "30s")) if transfer is not None else None
        self.fees = {a: Decimal(str(v)) for a, v in (transfer or {}).get("fee", {}).items()}
        if transfer is not None:
            for name, venue in venues.items():
                if not hasattr(venue, "drift"):  # the paper venue's account hook
                    raise error(
                        ("inventory", "transfer"),
                        f"venue {name!r} ({venue.type_name}) cannot transfer: only paper venues "
                        "can (a real transfer is not simulated)",
                    )
        self.above: set[str] = set()  # assets at or over the threshold at the last check
        self.in_flight: set[str] = set()
        self.signals: list[RebalanceSignal] = []
        self.transfers: list[Transfer] = []
        self.skipped = 0
        """Signals whose transfer had nothing to move after the fee."""
        self.checks = 0

    def _assets(
        self, listed: list[str] | None, error: Callable[..., Exception]
    ) -> dict[str, list[str]]:
        """Asset -> its venues (scenario order), for assets traded on two venues or more."""
        held: dict[str, list[str]] = {}
        for name in self.venues:
            for asset in dict.fromkeys(
                a for i in self.market.instruments(name) for a in (i.base, i.quote)
            ):
                held.setdefault(asset, []).append(name)
        if listed is None:
            return {a: v for a, v in held.items() if len(v) >= 2}
        for i, asset in enumerate(listed):
            if len(held.get(asset, ())) < 2:
                raise error(
                    ("inventory", "assets", i),
                    f"{asset} is traded on {len(held.get(asset, ()))} venue(s); an imbalance "
                    "needs two",
                )
        return {a: held[a] for a in listed}

    # ---- checks -------------------------------------------------------------------------------

    def start(self, ts: int) -> None:
        """The first feed event: the first check at ``ts`` (the clock is not there yet)."""
        self.clock.call_at(ts, self._tick)

    def _tick(self) -> None:
        if self.execution.closing:
            return
        self.check()
        self.clock.call_later(self.every, self._tick)

    def imbalance(self, asset: str) -> Decimal | None:
        """The largest venue's share of ``asset`` across its venues (exact), or None."""
        amounts = [self.ledger.balances[v][asset] for v in self.assets[asset]]
        total = sum(amounts, ZERO)
        return max(amounts) / total if total > 0 else None

    def check(self) -> None:
        self.checks += 1
        for asset in self.assets:
            ratio = self.imbalance(asset)
            if ratio is None or ratio < self.rebalance_at:
                self.above.discard(asset)
                continue
            if asset in self.above or asset in self.in_flight:
                continue
            self.above.add(asset)
            self._signal(asset, ratio)

    def _signal(self, asset: str, ratio: Decimal) -> None:
        venues = self.assets[asset]
        balances = self.ledger.balances
        richest = max(venues, key=lambda v: balances[v][asset])  # first of equals
        transfer = self._transfer(asset, richest) if self.delay is not None else None
        signal = RebalanceSignal(self.clock.now, asset, ratio, richest, transfer)
        self.signals.append(signal)
        self.execution.alert(
            "P3",
            f"rebalance {asset}",
            f"{richest} holds {money(ratio.quantize(RATIO_SHOWN))} of it"
            + (f"; {money(transfer.amount)} sent to {transfer.dest}" if transfer else ""),
        )
        self.execution.bus.publish("rebalance", signal=signal)

    # ---- transfers ------------------------------------------------------------------------------

    def _transfer(self, asset: str, source: str) -> Transfer | None:
        balances = self.ledger.balances
        dest = min(self.assets[asset], key=lambda v: balances[v][asset])
        half = (balances[source][asset] - balances[dest][asset]) / 2
        amount = min(half, self.venues[source].available(asset)).quantize(UNIT, ROUND_DOWN)
        fee = self.fees.get(asset, ZERO)
        if amount <= fee:
            self.skipped += 1
            return None
        now = self.clock.now
        ref = f"inventory-{len(self.transfers) + 1}"
        transfer = Transfer(now, asset, source, dest, amount, fee, now + self.delay, ref)
        self.transfers.append(transfer)
        self.in_flight.add(asset)
        self._move(source, asset, -amount, "transfer_out", f"{ref}-out")
        self.clock.call_at(transfer.due, self._arrive, transfer)
        return transfer

    def _arrive(self, transfer: Transfer) -> None:
        transfer.arrived_at = self.clock.now
        received = transfer.amount - transfer.fee
        self._move(transfer.dest, transfer.asset, received, "transfer_in", f"{transfer.ref}-in")
        self.in_flight.discard(transfer.asset)

    def _move(self, venue: str, asset: str, amount: Decimal, kind: str, ref: str) -> None:
        """The venue's account and the ledger move together, as a venue's report would."""
        self.venues[venue].drift(asset, amount)  # type: ignore[attr-defined]
        entry = BalanceChange(venue, asset, amount, kind, self.clock.now, ref)
        self.execution.flow.on_report(entry)

    # ---- valuation and the summary --------------------------------------------------------------

    def _price(self, venue: str, asset: str) -> Decimal | None:
        """``asset`` in the report currency on ``venue``: its FX rate, or its book's mid."""
        fx = self.market.fx_exact
        if asset in fx:
            return 1 / fx[asset]
        for instrument in self.market.instruments(venue):
            if instrument.base == asset:
                mid = self.market.mid(venue, instrument.symbol)
                if mid is not None:
                    return Decimal(repr(mid))
        return None

    def exposure(self) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """Per venue: its balances' value, and its open legs' value (report currency)."""
        balances: dict[str, Decimal] = {}
        for venue, assets in self.ledger.balances.items():
            total = ZERO
            for asset, amount in assets.items():
                price = self._price(venue, asset)
                total += amount * price if price is not None else ZERO
            balances[venue] = total
        legs = dict.fromkeys(self.venues, ZERO)
        for job in self.execution.jobs.values():
            for leg in job.trade.legs:
                mid = self.market.mid(leg.venue, leg.symbol)
                if mid is not None:
                    legs[leg.venue] += abs(leg.position) * Decimal(repr(mid))
        return balances, legs

    def snapshot_state(self) -> dict[str, Any]:
        keys = ("above", "in_flight", "signals", "transfers", "skipped", "checks")
        return {k: getattr(self, k) for k in keys}

    def restore_state(self, state: dict[str, Any]) -> None:
        vars(self).update(state)

    def summary(self, iso: Callable[[int], str | None]) -> dict[str, Any]:
        balances, legs = self.exposure()
        ratios = {a: self.imbalance(a) for a in self.assets}
        return {
            "balances": {
                venue: {asset: money(amount) for asset, amount in sorted(assets.items())}
                for venue, assets in self.ledger.balances.items()
            },
            "imbalance": {
                a: money(r.quantize(RATIO_SHOWN, ROUND_HALF_EVEN))
                for a, r in ratios.items()
                if r is not None
            },
            "exposure": {v: money(x.quantize(VALUE_SHOWN)) for v, x in balances.items()},
            "open_legs": {v: money(x.quantize(VALUE_SHOWN)) for v, x in legs.items()},
            "checks": self.checks,
            "rebalance_signals": len(self.signals),
            "signals": [
                {
                    "ts": s.ts,
                    "at": iso(s.ts),
                    "asset": s.asset,
                    "venue": s.venue,
                    "imbalance": money(s.imbalance.quantize(RATIO_SHOWN, ROUND_HALF_EVEN)),
                }
                for s in self.signals
            ],  # fmt: skip
            "transfer_count": len(self.transfers),
            "transfers_skipped": self.skipped,
            "transfers": [
                {
                    "ts": t.ts,
                    "at": iso(t.ts),
                    "asset": t.asset,
                    "from": t.source,
                    "to": t.dest,
                    "amount": money(t.amount),
                    "fee": money(t.fee),
                    "arrived_at": t.arrived_at,
                    "received": money(t.amount - t.fee),
                }
                for t in self.transfers
            ],  # fmt: skip
        }
