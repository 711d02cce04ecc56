"""`paper`: a simulated venue that fills orders against the book the feeds published.

What it models: taker fills that walk the book level by level (slippage); its own fills
consuming the levels they took until the feed's next book replaces them (a second order
in the same instant cannot fill again from the same depth); partial fills when depth is
short (a market order's unfilled rest is canceled, IOC-style); limit orders that take
what crosses on arrival and rest for the remainder (filled as maker at their price when a
later book crosses it); one-way latency between a decision and its execution; taker and
maker fees in the quote currency, the base asset, the asset received, or a third asset at
a configured price, rounded half-even to the asset's unit; balance locks for resting
orders; rejects for insufficient balance, amounts below the minimum or off the step, and
notionals below the minimum; refusal of a client order id it has already seen (a
"duplicate client order id" rejection, counted: the independent check that no order is
ever sent twice); its own account, kept apart from the kernel's ledger, optionally in a
file that outlives the process (``account``, below); and, for drills, reports that arrive
late, out of order or twice (``report_delays``, ``duplicate_reports``) and money that moves
without a fill (``transfers``).

``account: {path: FILE}``: the account (balances, every order received with its state and
fills, the client ids seen, the duplicates refused) lives in a SQLite file, committed at
each change (plugins/exchanges/paper_account.py). A run that finds the venue's account in
the file starts from it instead of the scenario's capital, and answers ``fetch_order`` for
any order it ever received. An order is in the account from the moment it is sent; one the
process died with before its latency elapsed (received, not yet executed) is executed at
the first book of its symbol after the restart.

It answers ``fetch_open_orders`` (its resting orders, whoever placed them) and
``fetch_balances`` (its account's totals) after its latency, like every request.

What it does not model: queue position of resting orders, market impact beyond the levels
taken (other traders do not react), rate limits, and self-trade rules.

Fault hooks (for fault injectors): ``order_filters``, ``report_filters`` and
``extra_latency`` (ns added to every request's latency, e.g. by ``latency_spike``);
``place_outside(request)`` (an order placed by someone else: it rests, unreported) and
``drift(asset, amount)`` (the account moves with no report at all).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from arbframe.components import SimulatedExchange
from arbframe.errors import ConfigError
from arbframe.hookspecs import hookimpl
from arbframe.model import (
    BUY,
    LIMIT,
    MARKET,
    Accepted,
    BalanceChange,
    Balances,
    Book,
    CancelRejected,
    Closed,
    FeeSchedule,
    FillReport,
    Instrument,
    OpenOrders,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    Report,
    VenueOrder,
)
from arbframe.orders import OrderState
from arbframe.paths import output_file_problem
from arbframe.schema import DURATION, NONNEGATIVE_DECIMAL, POSITIVE_DECIMAL
from arbframe.snapshot import historic
from arbframe.units import parse_duration

from . import paper_account

log = logging.getLogger("arbframe.paper")

BPS = Decimal(10_000)
ZERO = Decimal(0)

# Order filters (installed by fault injectors) see each order on arrival and may return
# ("reject", reason), ("cap", max_amount) to limit what can fill, or ("drop", why): the order
# never arrived (no answer; the venue does not know it). Report filters see each report
# before it leaves and return True to lose it.
OrderFilter = Callable[[OrderRequest, int], tuple[str, Any] | None]
ReportFilter = Callable[[Report], bool]

MARKET_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "price_tick": POSITIVE_DECIMAL,
        "amount_step": POSITIVE_DECIMAL,
        "min_amount": NONNEGATIVE_DECIMAL,
        "min_notional": NONNEGATIVE_DECIMAL,
    },
}
DUPLICATE = "duplicate client order id"
SIGNED_DECIMAL = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d*\.?\d+$"}]}


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass
class _VenueOrder:
    """The venue's own record of an order."""

    request: OrderRequest
    exchange_id: str
    state: OrderState = OrderState.OPEN
    filled: Decimal = ZERO
    fills: list[FillReport] = field(default_factory=list)
    reason: str = ""
    saved: int = 0  # fills already in the account file

    @property
    def remaining(self) -> Decimal:
        return self.request.amount - self.filled


# A final venue order no longer changes: snapshots write it once and share it after.
historic(
    _VenueOrder,
    lambda o: (o.state, o.filled, len(o.fills), o.reason, o.saved) if o.state.final else None,
)


class PaperExchange(SimulatedExchange):
    type_name = "paper"
    interface_version = 2
    description = "Simulated venue filling against the feed's L2 book, with fees and latency."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["quote"],
        "properties": {
            "quote": {"type": "string", "description": "Quote currency of every market here."},
            "fees": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "taker_bps": {"type": "number", "minimum": 0, "maximum": 1000},
                    "maker_bps": {"type": "number", "minimum": -100, "maximum": 1000},
                    "asset": {
                        "type": "string",
                        "description": "quote (default), base, received, or an asset code",
                    },
                    "asset_price": POSITIVE_DECIMAL,
                },
            },
            "latency": DURATION,
            "quote_unit": POSITIVE_DECIMAL,
            "markets": {
                "type": "object",
                "description": "Per-symbol precision and minimums; `default` applies to all.",
                "additionalProperties": MARKET_SCHEMA,
            },
            "report_delays": {
                "type": "object",
                "additionalProperties": False,
                "description": "Extra delay before each kind of report leaves the venue.",
                "properties": {k: DURATION for k in ("ack", "fill", "final", "balance")},
            },
            "duplicate_reports": {"type": "boolean"},
            "account": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path"],
                "description": "Keep the venue's account in a file that outlives the process.",
                "properties": {"path": {"type": "string", "format": "path"}},
            },
            "transfers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["at", "asset", "amount"],
                    "properties": {
                        "at": DURATION,
                        "asset": {"type": "string", "minLength": 1},
                        "amount": SIGNED_DECIMAL,
                        "kind": {"type": "string", "minLength": 1},
                    },
                },
            },
        },
    }

    def __init__(self, config: dict[str, Any], *, name: str, ctx: Any) -> None:
        super().__init__(config, name=name, ctx=ctx)
        self.quote = config["quote"]
        fees = config.get("fees", {})
        self.quote_unit = _dec(config.get("quote_unit", "1e-8"))
        self.fee_asset = fees.get("asset", "quote")
        if self.fee_asset not in ("quote", "base", "received") and "asset_price" not in fees:
            raise ConfigError(
                f"fees in {self.fee_asset} need asset_price (its price in {self.quote})",
                ("fees", "asset"),
            )
        self.schedule = FeeSchedule(
            taker_bps=_dec(fees.get("taker_bps", 0)),
            maker_bps=_dec(fees.get("maker_bps", fees.get("taker_bps", 0))),
            asset=self.fee_asset,
            asset_price=_dec(fees["asset_price"]) if "asset_price" in fees else None,
            quote_unit=self.quote_unit,
        )
        self.latency = parse_duration(config.get("latency", 0))
        delays = config.get("report_delays", {})
        self.delays = {k: parse_duration(delays.get(k, 0)) for k in ("ack", "fill", "final")}
        self.delays["balance"] = parse_duration(delays.get("balance", 0))
        self.duplicate = config.get("duplicate_reports", False)
        self._instruments: dict[str, Instrument] = {}
        self.books: dict[str, Book] = {}
        self.account: dict[str, Decimal] = defaultdict(Decimal)
        self.locked: dict[str, Decimal] = defaultdict(Decimal)
        self.orders: dict[str, _VenueOrder] = {}
        self.resting: dict[str, list[_VenueOrder]] = defaultdict(list)
        self.order_filters: list[OrderFilter] = []
        self.report_filters: list[ReportFilter] = []
        self.extra_latency = 0
        """ns added to the latency of every request sent from now on (a fault hook)."""
        self.duplicates = 0
        """Orders refused in this run because their client id was already seen."""
        self.received = 0
        """Orders that reached the venue in this run (duplicates included, dropped ones not)."""
        self._ids = 0
        self.account_path = None
        if "account" in config:
            self.account_path = ctx.resolve_path(config["account"]["path"])
            problem = output_file_problem(self.account_path)
            if problem:  # found now, not after the run
                raise ConfigError(problem, ("account", "path"))
        self.account_source = "scenario"
        self.outlives_process = self.account_path is not None  # its account is on disk
        self.store: paper_account.AccountFile | None = None
        self._restart_inbox: dict[str, list[tuple[int, OrderRequest]]] = defaultdict(list)

    # ---- trading interface --------------------------------------------------------------------

    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    def balances(self) -> dict[str, Decimal]:
        return {asset: amount for asset, amount in self.account.items()}

    def available(self, asset: str) -> Decimal:
        return self.account[asset] - self.locked[asset]

    def submit(self, order: OrderRequest) -> None:
        clock = self.ctx.clock
        inbox = self.store.receive(order, clock.now) if self.store else None
        clock.call_later(self.latency + self.extra_latency, self._arrive, order, inbox)

    def cancel(self, order: OrderRequest) -> None:
        self.ctx.clock.call_later(self.latency + self.extra_latency, self._cancel, order)

    def fetch_order(self, order: OrderRequest) -> None:
        self.ctx.clock.call_later(self.latency + self.extra_latency, self._query, order)

    def fetch_open_orders(self) -> None:
        self.ctx.clock.call_later(self.latency + self.extra_latency, self._open_orders)

    def fetch_balances(self) -> None:
        self.ctx.clock.call_later(self.latency + self.extra_latency, self._balances)

    def stats(self) -> dict[str, Any]:
        return {
            "orders_received": self.received,
            "duplicate_orders": self.duplicates,
            "account": self.account_source,
        }

    # ---- simulation interface -----------------------------------------------------------------

    def add_instrument(self, symbol: str, book: Book) -> Instrument:
        specs = self.config.get("markets", {})
        spec = {**specs.get("default", {}), **specs.get(symbol, {})}
        step = _dec(spec.get("amount_step", "1e-8"))
        base, _, quote = symbol.partition("/")
        instrument = Instrument(
            venue=self.name,
            symbol=symbol,
            base=base,
            quote=quote or self.quote,
            price_tick=_dec(spec.get("price_tick", "1e-8")),
            amount_step=step,
            min_amount=_dec(spec.get("min_amount", step)),
            min_notional=_dec(spec.get("min_notional", 0)),
            fees=self.schedule,
        )
        self._instruments[symbol] = instrument
        self.books[symbol] = book
        return instrument

    def fund(self, balances: dict[str, Decimal]) -> None:
        try:
            saved = paper_account.load(self.account_path, self.name) if self.account_path else None
        except sqlite3.Error as err:
            where = (*self.scenario_path, "account", "path")
            raise self.ctx.error(where, f"cannot read {self.account_path}: {err}") from None
        if saved is None:
            for asset, amount in balances.items():
                self.account[asset] = amount
            if self.account_path:
                self.account_source = "new"
            return
        # The account outlived the last process: it, not the scenario's capital, is the truth.
        self.account_source = "loaded"
        self.account.update(saved.balances)
        self._ids = saved.next_id
        for request, exchange_id, state, filled, reason, fills in saved.orders:
            self.orders[request.client_id] = _VenueOrder(
                request, exchange_id, state, filled, list(fills), reason, saved=len(fills)
            )
        for seq, request in saved.inbox:
            self._restart_inbox[request.symbol].append((seq, request))
        log.info(
            "paper venue %s: account loaded from %s (%d orders, %d waiting to execute); "
            "the scenario's capital is not used",
            self.name, self.account_path, len(saved.orders), len(saved.inbox),
        )  # fmt: skip

    def on_resume(self) -> None:
        if self.account_path:
            self._open_account()

    def _open_account(self) -> None:
        self.store = paper_account.AccountFile(self.account_path, self.name)
        self._restore_resting()
        self._save([])

    # A snapshot keeps the venue's state, not its open account file (a process's handle).
    def snapshot_state(self) -> dict[str, Any]:
        skip = {"ctx", "config", "name", "scenario_path", "store"}
        return {k: v for k, v in vars(self).items() if k not in skip}

    def restore_state(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        if self.account_path and self.store is None:
            self.store = paper_account.AccountFile(self.account_path, self.name)

    def on_start(self, ts: int) -> None:
        if self.account_path:  # opened when the run starts: validating writes nothing
            self._open_account()
            if self.account_source == "new":
                log.info("paper venue %s: new account in %s, funded from the scenario's "
                         "capital", self.name, self.account_path)  # fmt: skip
        for i, transfer in enumerate(self.config.get("transfers", [])):
            at = ts + parse_duration(transfer["at"])
            self.ctx.clock.call_at(at, self._transfer, i, transfer)

    def on_book(self, ts: int, symbol: str, bids: Any, asks: Any) -> None:
        book = self.books[symbol]
        book.bids = bids
        book.asks = asks
        book.ts = ts
        if self.resting[symbol]:
            self._match_resting(symbol)
        if self._restart_inbox:
            self._execute_inbox(symbol)

    # ---- the account file -------------------------------------------------------------------

    def _save(self, orders: list[_VenueOrder], **event: Any) -> None:
        if self.store is not None:
            self.store.save(orders, dict(self.account), self._ids, **event)

    def _restore_resting(self) -> None:
        """Limit orders resting when the last process stopped rest again, their funds locked."""
        for order in self.orders.values():
            request = order.request
            if request.type == LIMIT and not order.state.final and order.exchange_id:
                self.resting[request.symbol].append(order)
                self._lock(order, self._instruments[request.symbol])

    def _execute_inbox(self, symbol: str) -> None:
        """Orders received before a restart and never executed meet the first book."""
        for seq, request in self._restart_inbox.pop(symbol, ()):
            self._arrive(request, seq)

    # ---- reports --------------------------------------------------------------------------------

    def _send(self, kind: str, report: Report) -> None:
        for lose in self.report_filters:
            if lose(report):
                return
        clock, deliver = self.ctx.clock, self.ctx.report
        clock.call_later(self.delays[kind], deliver, report)
        if self.duplicate:
            clock.call_later(self.delays[kind], deliver, report)

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{self.name}-{prefix}{self._ids}"

    def _close(self, order: _VenueOrder, state: OrderState, reason: str = "") -> None:
        order.state, order.reason = state, reason
        request = order.request
        self._send(
            "final",
            Closed(
                self.name, request.client_id, state, order.filled, self.ctx.clock.now,
                reason, order.exchange_id,
            ),
        )  # fmt: skip

    # ---- orders ---------------------------------------------------------------------------------

    def _arrive(self, request: OrderRequest, inbox: int | None = None) -> None:
        now = self.ctx.clock.now
        if request.client_id in self.orders:  # as exchanges do: an id is used once, ever
            self.received += 1
            self.duplicates += 1
            self._send("final", Closed(
                self.name, request.client_id, OrderState.REJECTED, ZERO, now, DUPLICATE
            ))  # fmt: skip
            return self._save([], inbox=inbox, duplicate=(request.client_id, now))
        cap, rejected = request.amount, ""
        for order_filter in self.order_filters:  # in order; a reject or a drop ends them
            verdict = order_filter(request, now)
            if verdict and verdict[0] == "drop":  # lost on the way: the venue never saw it
                return self._save([], inbox=inbox)
            if verdict and verdict[0] == "reject":
                rejected = verdict[1]
                break
            if verdict and verdict[0] == "cap":
                cap = min(cap, verdict[1])
        self.received += 1
        order = self.orders[request.client_id] = _VenueOrder(request, self._next_id("o"))
        if rejected:
            self._close(order, OrderState.REJECTED, rejected)
        else:
            self._execute(order, cap)
        self._save([order], inbox=inbox)

    def _execute(self, order: _VenueOrder, cap: Decimal) -> None:
        request, now = order.request, self.ctx.clock.now
        problem, plan = self._check(request, cap)
        if problem:
            return self._close(order, OrderState.REJECTED, problem)
        self._send("ack", Accepted(self.name, request.client_id, order.exchange_id, now))
        instrument = self._instruments[request.symbol]
        book = self.books[request.symbol]
        for price, amount, _ in plan:
            self._fill(order, price, amount, instrument, maker=False)
        self._deplete(book, request.side, plan, instrument)
        if request.type == LIMIT and order.remaining > 0:
            self._lock(order, instrument)
            self.resting[request.symbol].append(order)
        elif order.remaining > 0:
            why = "insufficient depth" if cap == request.amount else "capped by fault"
            self._close(order, OrderState.CANCELED, why)
        else:
            self._close(order, OrderState.FILLED)

    def _check(self, request: OrderRequest, cap: Decimal) -> tuple[str, list[Any]]:
        """Why the order is refused ("" if it is not), and the fills it would take now."""
        instrument = self._instruments.get(request.symbol)
        if instrument is None:
            return f"unknown symbol {request.symbol}", []
        book = self.books[request.symbol]
        if not book.ts:
            return "no book", []
        amount = request.amount
        if amount < instrument.min_amount or amount % instrument.amount_step:
            return f"amount {amount} below minimum or off step", []
        plan = self._walk(self._takeable(request, book), min(cap, amount), instrument)
        if request.type == MARKET and not plan:
            return "no liquidity", []
        ref_price = request.price if request.type == LIMIT else plan[0][0]
        if ref_price * amount < instrument.min_notional:  # type: ignore[operator]
            return f"notional below minimum {instrument.min_notional}", []
        return self._shortfall(request, plan, instrument), plan

    def _takeable(self, request: OrderRequest, book: Book) -> Any:
        levels = book.asks if request.side == BUY else book.bids
        if request.type == MARKET:
            return levels
        limit = float(request.price)  # type: ignore[arg-type]
        if request.side == BUY:
            return [lv for lv in levels if lv[0] <= limit]
        return [lv for lv in levels if lv[0] >= limit]

    def _walk(self, levels: Any, amount: Decimal, instrument: Instrument) -> list[Any]:
        """Split `amount` over the levels, best first: [(price, amount, level index)]."""
        plan = []
        left = amount
        for i, (price, size) in enumerate(levels):
            if left <= 0:
                break
            take = min(left, _dec(size).quantize(instrument.amount_step, ROUND_DOWN))
            if take > 0:
                plan.append((_dec(price).quantize(instrument.price_tick, ROUND_HALF_EVEN), take, i))
                left -= take
        return plan

    def _deplete(self, book: Book, side: str, plan: list[Any], instrument: Instrument) -> None:
        """What our fills took is gone from the book until the feed replaces it."""
        if not plan:
            return
        levels: list[Any] = list(book.asks if side == BUY else book.bids)
        step = float(instrument.amount_step)
        for _, amount, i in plan:  # the levels taken are a prefix of the side: same index
            price, size = levels[i]
            rest = size - float(amount)
            levels[i] = (price, rest) if rest >= step else None
        left = tuple(level for level in levels if level is not None)
        if side == BUY:
            book.asks = left
        else:
            book.bids = left

    def fee(self, side: str, price: Decimal, amount: Decimal, instrument: Instrument,
            maker: bool) -> tuple[Decimal, str, Decimal]:  # fmt: skip
        """(fee, asset, price of the asset in quote) of one fill, from the schedule."""
        schedule = instrument.fees
        asset = schedule.fee_asset(side, instrument.base, instrument.quote)
        if asset == instrument.quote:
            fee_price, unit = Decimal(1), schedule.quote_unit
        elif asset == instrument.base:
            fee_price, unit = price, schedule.unit
        else:
            fee_price, unit = schedule.asset_price, schedule.unit  # type: ignore[assignment]
        bps = schedule.maker_bps if maker else schedule.taker_bps
        fee = (price * amount * bps / BPS / fee_price).quantize(unit, ROUND_HALF_EVEN)
        return fee, asset, fee_price

    def _shortfall(self, request: OrderRequest, plan: list[Any], instrument: Instrument) -> str:
        """Why the balances cannot cover the order (what fills now plus what would rest)."""
        buy = request.side == BUY
        spends = instrument.quote if buy else instrument.base
        receives = instrument.base if buy else instrument.quote
        need: dict[str, Decimal] = defaultdict(Decimal)
        for price, amount, _ in plan:
            need[spends] += price * amount if buy else amount
            fee, asset, _ = self.fee(request.side, price, amount, instrument, maker=False)
            if asset != receives:  # a fee taken from what the fill delivers needs no balance
                need[asset] += fee
        rest = request.amount - sum((a for _, a, _ in plan), ZERO)
        if request.type == LIMIT and rest > 0:
            for asset, amount in self._lock_amounts(request, rest, instrument).items():
                need[asset] += amount
        for asset, amount in need.items():
            if amount > self.available(asset):
                return f"insufficient {asset}: need {amount}, have {self.available(asset)}"
        return ""

    def _fill(
        self, order: _VenueOrder, price: Decimal, amount: Decimal, instrument: Instrument,
        maker: bool,
    ) -> None:  # fmt: skip
        request = order.request
        notional = price * amount
        fee, fee_asset, fee_price = self.fee(request.side, price, amount, instrument, maker)
        account = self.account
        if request.side == BUY:
            account[instrument.base] += amount
            account[instrument.quote] -= notional
        else:
            account[instrument.base] -= amount
            account[instrument.quote] += notional
        account[fee_asset] -= fee
        order.filled += amount
        report = FillReport(
            venue=self.name,
            client_id=request.client_id,
            exchange_id=order.exchange_id,
            fill_id=self._next_id("f"),
            ts=self.ctx.clock.now,
            symbol=request.symbol,
            side=request.side,
            price=price,
            amount=amount,
            fee=fee,
            fee_asset=fee_asset,
            fee_price=fee_price,
            liquidity="maker" if maker else "taker",
        )
        order.fills.append(report)
        self._send("fill", report)

    # ---- resting limit orders -------------------------------------------------------------------

    def _lock_amounts(
        self, request: OrderRequest, rest: Decimal, instrument: Instrument
    ) -> dict[str, Decimal]:
        if request.side != BUY:
            return {instrument.base: rest}
        notional = rest * request.price  # type: ignore[operator]
        out = {instrument.quote: notional}
        if instrument.fees.fee_asset(BUY, instrument.base, instrument.quote) == instrument.quote:
            rate = max(instrument.fees.maker_bps, ZERO)
            out[instrument.quote] += (notional * rate / BPS).quantize(self.quote_unit)
        return out

    def _lock(self, order: _VenueOrder, instrument: Instrument) -> None:
        for asset, amount in self._lock_amounts(order.request, order.remaining, instrument).items():
            self.locked[asset] += amount

    def _unlock(self, order: _VenueOrder, instrument: Instrument) -> None:
        for asset, amount in self._lock_amounts(order.request, order.remaining, instrument).items():
            self.locked[asset] -= amount

    def _match_resting(self, symbol: str) -> None:
        book, instrument = self.books[symbol], self._instruments[symbol]
        filled = []
        for order in list(self.resting[symbol]):
            request = order.request
            plan = self._walk(self._takeable(request, book), order.remaining, instrument)
            if not plan:
                continue
            filled.append(order)
            self._unlock(order, instrument)
            for _, amount, _ in plan:  # a resting order fills at its own price, as maker
                self._fill(order, request.price, amount, instrument, maker=True)  # type: ignore[arg-type]
            self._deplete(book, request.side, plan, instrument)
            if order.remaining > 0:
                self._lock(order, instrument)
                order.state = OrderState.PARTIALLY_FILLED
            else:
                self.resting[symbol].remove(order)
                self._close(order, OrderState.FILLED)
        if filled:
            self._save(filled)

    def _cancel(self, request: OrderRequest) -> None:
        order = self.orders.get(request.client_id)
        now = self.ctx.clock.now
        if order is None or order not in self.resting[request.symbol]:
            why = "unknown order" if order is None else f"order is {order.state.value}"
            self._send("final", CancelRejected(self.name, request.client_id, now, why))
            return
        self._unlock(order, self._instruments[request.symbol])
        self.resting[request.symbol].remove(order)
        self._close(order, OrderState.CANCELED, "canceled by request")
        self._save([order])

    def _query(self, request: OrderRequest) -> None:
        order = self.orders.get(request.client_id)
        now = self.ctx.clock.now
        if order is None:
            self._send("final", OrderNotFound(self.name, request.client_id, now))
            return
        status = OrderStatus(
            self.name, request.client_id, order.exchange_id, order.state, order.filled,
            tuple(order.fills), now, order.reason,
        )  # fmt: skip
        self._send("final", status)

    def _open_orders(self) -> None:
        listed = tuple(_listed(o) for orders in self.resting.values() for o in orders)
        self._send("final", OpenOrders(self.name, self.ctx.clock.now, listed))

    def _balances(self) -> None:
        self._send("final", Balances(self.name, self.ctx.clock.now, self.balances()))

    # ---- drills: what happens at a venue without the kernel --------------------------------------

    def place_outside(self, request: OrderRequest) -> str:
        """A limit order placed by someone else (a process that died, an operator by hand):
        it rests, its funds locked, and nothing is reported. Returns its exchange id."""
        instrument = self._instruments[request.symbol]
        order = self.orders[request.client_id] = _VenueOrder(request, self._next_id("o"))
        self._lock(order, instrument)
        self.resting[request.symbol].append(order)
        self._save([order])
        return order.exchange_id

    def drift(self, asset: str, amount: Decimal) -> None:
        """The account moves by ``amount`` and the venue says nothing (a fee taken, a
        transfer, an error on its side): only a balance check can find it."""
        self.account[asset] += amount
        self._save([])

    # ---- money without fills --------------------------------------------------------------------

    def _transfer(self, index: int, transfer: dict[str, Any]) -> None:
        amount = _dec(transfer["amount"])
        asset = transfer["asset"]
        self.account[asset] += amount
        kind = transfer.get("kind", "deposit" if amount > 0 else "withdrawal")
        change = BalanceChange(
            self.name, asset, amount, kind, self.ctx.clock.now, f"{self.name}-t{index + 1}"
        )
        self._send("balance", change)
        self._save([])


def _listed(order: _VenueOrder) -> VenueOrder:
    """A resting order as the venue lists it in OpenOrders."""
    r = order.request
    return VenueOrder(
        r.client_id, order.exchange_id, r.symbol, r.side, r.type, r.amount, r.price,
        order.filled, order.state,
    )  # fmt: skip


@hookimpl
def arbframe_register_exchanges(register: Any) -> None:
    register(PaperExchange)
