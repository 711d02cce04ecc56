"""Faults in a venue's account that no report reveals: only the kernel's reconciliation with
the venue (arbframe.reconcile) can find them.

* `orphan_order`: at `at`, the venue gains an open limit order with a client id the kernel
  never issued (placed by a process that died, or by hand). *Detected* when the kernel's
  open-orders check finds it; *recovered* when the kernel has dealt with it: its cancel
  confirmed (`reconcile.orphans: cancel`) or the order adopted (`adopt`). With `alert` it
  stays open: never recovered.
* `balance_drift`: at `at`, the venue's balance of `asset` changes by `amount` and the venue
  says nothing. *Detected* when the kernel books the difference (a ``reconciliation`` ledger
  entry); *recovered* at the kernel's next balance comparison of that venue that finds no
  difference.

Both act through the paper venue's drill hooks (``place_outside``, ``drift``) and are
detected and recovered from what the kernel noticed (``ctx.watch_reconciliation``), never
from their own schedule.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from arbframe.components import Fault
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import BUY, LIMIT, Finding, OrderRequest
from arbframe.orderflow import session_mark
from arbframe.schema import DURATION, POSITIVE_DECIMAL
from arbframe.units import parse_duration

SIGNED = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d*\.?\d+$"}]}
COMMON = {
    "venue": {"type": "string", "description": "The venue it acts on."},
    "at": {**DURATION, "description": "When, after the run's first feed event."},
}


class _AccountFault(Fault):
    interface_version = 2
    needs = ""  # the paper venue's drill hook it acts through

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.at = parse_duration(config["at"])
        venue = ctx.venues.get(config["venue"])
        if venue is None:
            known = ", ".join(ctx.venues)
            raise ConfigError(f"unknown venue {config['venue']!r} (venues: {known})", ("venue",))
        if not hasattr(venue, self.needs):
            raise ConfigError(
                f"venue {config['venue']!r} ({venue.type_name}) does not support {self.type_name}",
                ("venue",),
            )
        self.venue = venue
        self.over = False

    def arm(self) -> None:
        self.ctx.watch_reconciliation(self._noticed)

    def on_start(self, ts: int) -> None:
        self.ctx.clock.call_at(ts + self.at, self._fire)

    def on_end(self) -> None:
        self.over = True  # a time after the data never comes (the wind-down runs the clock)

    def _fire(self) -> None:
        if not self.over:
            self.fire()

    def fire(self) -> None:
        raise NotImplementedError

    def _noticed(self, finding: Finding) -> None:
        raise NotImplementedError


class OrphanOrder(_AccountFault):
    type_name = "orphan_order"
    description = "The venue gains an open limit order the kernel never placed."
    needs = "place_outside"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venue", "at", "amount"],
        "properties": {
            **COMMON,
            "symbol": {"type": "string", "description": "Default: the venue's first market."},
            "side": {"enum": ["buy", "sell"], "default": "buy"},
            "amount": POSITIVE_DECIMAL,
            "price": {
                **POSITIVE_DECIMAL,
                "description": "Limit price; default `away_bps` from the book so it rests.",
            },
            "away_bps": {
                "type": "number",
                "minimum": 0,
                "default": 500,
                "description": "Without `price`: a buy this far under the best bid, a sell "
                "this far over the best ask.",
            },
            "client_id": {
                "type": "string",
                "minLength": 1,
                "description": "Default: an id of an earlier process of this session "
                "(<session mark>x-<name>), which reconcile's default cancels; give another "
                "(e.g. manual-1) for an order placed by hand, which it only alerts about.",
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        default = f"{session_mark(ctx.info.session)}x-{name}"  # a dead process's
        self.client_id = config.get("client_id", default)

    def fire(self) -> None:
        config, venue = self.config, self.venue
        instruments = venue.instruments()
        symbol = config.get("symbol") or next(iter(instruments))
        instrument = instruments[symbol]
        side = config.get("side", BUY)
        price = self._price(symbol, side, instrument.price_tick)
        if price is None:
            return  # no book yet: nothing to price it against
        request = OrderRequest(
            self.client_id, venue.name, symbol, side, Decimal(str(config["amount"])), LIMIT, price
        )
        venue.place_outside(request)
        self.ctx.fired(self.type_name, venue=venue.name, client_id=self.client_id,
                       side=side, price=str(price))  # fmt: skip

    def _price(self, symbol: str, side: str, tick: Decimal) -> Decimal | None:
        if "price" in self.config:
            return Decimal(str(self.config["price"]))
        book = self.venue.books[symbol]
        if not book.ready:
            return None
        away = Decimal(str(self.config.get("away_bps", 500))) / 10_000
        if side == BUY:
            return (Decimal(repr(book.bids[0][0])) * (1 - away)).quantize(tick, ROUND_DOWN)
        return (Decimal(repr(book.asks[0][0])) * (1 + away)).quantize(tick, ROUND_UP)

    def _noticed(self, finding: Finding) -> None:
        if finding.client_id != self.client_id or finding.venue != self.venue.name:
            return
        if finding.kind == "orphan":
            self.ctx.detected(venue=finding.venue, client_id=finding.client_id)
        elif finding.kind in ("orphan_canceled", "orphan_adopted"):
            self.ctx.recovered(venue=finding.venue, client_id=finding.client_id, how=finding.kind)


class BalanceDrift(_AccountFault):
    type_name = "balance_drift"
    description = "The venue's balance of an asset changes and the venue reports nothing."
    needs = "drift"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["venue", "at", "asset", "amount"],
        "properties": {
            **COMMON,
            "asset": {"type": "string", "minLength": 1},
            "amount": {**SIGNED, "description": "Signed: > 0 appears, < 0 disappears."},
        },
    }

    def fire(self) -> None:
        amount = Decimal(str(self.config["amount"]))
        self.venue.drift(self.config["asset"], amount)
        self.ctx.fired(self.type_name, venue=self.venue.name, asset=self.config["asset"],
                       amount=str(amount))  # fmt: skip

    def _noticed(self, finding: Finding) -> None:
        if finding.venue != self.venue.name:
            return
        if finding.kind == "balance_mismatch" and finding.asset == self.config["asset"]:
            self.ctx.detected(venue=finding.venue, asset=finding.asset, amount=str(finding.amount))
        elif finding.kind == "balances_match":
            self.ctx.recovered(venue=finding.venue)


@hookimpl
def arbframe_register_faults(register: Any) -> None:
    register(OrphanOrder)
    register(BalanceDrift)
