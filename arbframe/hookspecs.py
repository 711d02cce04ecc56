"""Every arbframe hook specification, grouped by lifecycle phase.

Two families:

* Registration hooks are called once, when the plugin manager is built. Each receives a
  ``register`` callable; a plugin calls ``register(ComponentClass)`` for every component
  type it provides. The class carries its ``type_name``, its ``kind`` and the JSON Schema
  of its config block (see :mod:`arbframe.components`).
* Event hooks are called on low-frequency run events (fills, closed trades, guard
  decisions, alerts, faults, run start and end). Sinks and alert channels implement them.
  Nothing here is ever called per quote: the engine resolves components once when it
  wires a run and then calls them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from arbframe.components import Component, RunInfo
    from arbframe.inventory import RebalanceSignal
    from arbframe.model import Alert, BalanceChange, Fill, GuardDecision, OrderUpdate, Trade
    from arbframe.universe import UniverseChange

hookspec = pluggy.HookspecMarker("arbframe")
hookimpl = pluggy.HookimplMarker("arbframe")

Register = Callable[[type["Component"]], None]

# --------------------------------------------------------------------------------------
# Registration: called once, while the plugin manager is built.
# --------------------------------------------------------------------------------------


@hookspec
def arbframe_register_exchanges(register: Register) -> None:
    """Register exchange (venue) component types.

    Called once at start-up. Call ``register(cls)`` for each :class:`~arbframe.components.Exchange`
    subclass this plugin provides. Returns nothing.
    """


@hookspec
def arbframe_register_feeds(register: Register) -> None:
    """Register market-data feed types (:class:`~arbframe.components.Feed` subclasses).

    Called once at start-up. Returns nothing.
    """


@hookspec
def arbframe_register_strategies(register: Register) -> None:
    """Register strategy types (:class:`~arbframe.components.Strategy` subclasses).

    Called once at start-up. Returns nothing.
    """


@hookspec
def arbframe_register_guards(register: Register) -> None:
    """Register risk-guard types (:class:`~arbframe.components.Guard` subclasses).

    Called once at start-up. Returns nothing.
    """


@hookspec
def arbframe_register_sinks(register: Register) -> None:
    """Register persistence sink types (:class:`~arbframe.components.Sink` subclasses).

    Called once at start-up. Returns nothing.
    """


@hookspec
def arbframe_register_alerts(register: Register) -> None:
    """Register alert channel types (:class:`~arbframe.components.AlertChannel` subclasses).

    Called once at start-up. Returns nothing.
    """


@hookspec
def arbframe_register_faults(register: Register) -> None:
    """Register fault injector types (:class:`~arbframe.components.Fault` subclasses).

    Called once at start-up. Returns nothing.
    """


@hookspec
def arbframe_register_state_stores(register: Register) -> None:
    """Register state store types (:class:`~arbframe.components.StateStore` subclasses).

    Called once at start-up. Returns nothing.
    """


@hookspec
def arbframe_register_universes(register: Register) -> None:
    """Register universe types (:class:`~arbframe.components.Universe` subclasses): which
    symbols a run trades.

    Called once at start-up. Returns nothing.
    """


# --------------------------------------------------------------------------------------
# Run events: called on every implementation, results ignored. Sinks and alert channels
# configured in a scenario are registered as plugins for the duration of the run. Events
# reach the hooks through a queue drained between instants, never inside the execution
# layer: by the time a hook runs, trading may have moved on (payloads are snapshots or
# final records, so they still say what happened).
# --------------------------------------------------------------------------------------


@hookspec
def arbframe_on_run_start(run: RunInfo) -> None:
    """Called once after the run is wired, before the first event. Returns nothing."""


@hookspec
def arbframe_on_order_update(run: RunInfo, update: OrderUpdate) -> None:
    """Called after every state change of an order: submitted, acknowledged, (partially)
    filled, cancel requested, canceled, rejected, expired; ``update`` is a snapshot.
    Returns nothing."""


@hookspec
def arbframe_on_fill(run: RunInfo, fill: Fill) -> None:
    """Called for every fill, once (repeats from the venue are dropped), after the ledger
    has booked it. Returns nothing."""


@hookspec
def arbframe_on_balance_change(run: RunInfo, entry: BalanceChange) -> None:
    """Called for money that moved without a fill (deposit, withdrawal, transfer, rebate),
    after the ledger has booked it. Returns nothing."""


@hookspec
def arbframe_on_trade_opened(run: RunInfo, trade: Trade) -> None:
    """Called when a trade is accepted (guards passed, entry orders sent). ``trade`` is the
    live object: by the time the hook runs its entry may have progressed; ``trade_id``,
    ``strategy``, ``route``, ``opened_at``, ``entry_spread_bps`` and the legs' ratios say
    what was decided. Returns nothing."""


@hookspec
def arbframe_on_trade_closed(run: RunInfo, trade: Trade) -> None:
    """Called when a trade is flat on every leg and its PnL is final. Returns nothing."""


@hookspec
def arbframe_on_guard_decision(run: RunInfo, decision: GuardDecision) -> None:
    """Called when a guard's verdict on its scope (the symbol, or the route or venue the
    decision names) changes to something other than ALLOW (not on every refused quote:
    ``summary.guards`` counts those). Returns nothing."""


@hookspec
def arbframe_on_alert(run: RunInfo, alert: Alert) -> None:
    """Called when the kernel or a component raises an alert (severity P0..P3).

    Alert channels deliver it. Returns nothing.
    """


@hookspec
def arbframe_on_fault(
    run: RunInfo, name: str, detail: dict[str, Any], fault: str, phase: str, ts: int
) -> None:
    """Called at each moment of a fault: every firing (``phase`` ``injected``; ``name`` is
    what the fault counted, usually its type), then once each when it is ``detected`` and
    ``recovered`` (``name`` is its type). ``fault`` is its name in the scenario (``name:``,
    else ``faults[i]``); ``detail`` what the fault said; ``ts`` the moment, in scenario time
    (ns). Returns nothing."""


@hookspec
def arbframe_on_universe_change(run: RunInfo, change: UniverseChange) -> None:
    """Called when an evaluation of the ``universe:`` adds or removes symbols (the first
    evaluation included); ``change`` says when and which. Returns nothing."""


@hookspec
def arbframe_on_rebalance(run: RunInfo, signal: RebalanceSignal) -> None:
    """Called when an asset's imbalance across venues reaches ``inventory.rebalance_at``
    (``signal`` says which, how far, and the transfer started for it, if any). Returns
    nothing."""


@hookspec
def arbframe_on_run_end(run: RunInfo, summary: dict[str, Any]) -> None:
    """Called once after the summary is built, before it is written. Returns nothing."""
