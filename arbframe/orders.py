"""The order state machine: every legal (state, event) -> state transition in one table.

Venues report in any order and sometimes twice: an acknowledgement after the fills, a fill
after the order was canceled, the same final report again. The table says which of these
are legal; the execution layer applies a report only through :func:`transition`, and an
event the table does not list is an illegal transition, logged and alerted, never a crash
(the money it carried, a fill, is still booked: the venue says it happened).
"""

from __future__ import annotations

from enum import Enum


class OrderState(str, Enum):
    """Where an order is in its life. ``final`` states accept no new order flow, but a
    fill that happened before the final report may still arrive late (see the table)."""

    NEW = "new"  #: created by the kernel, not yet sent
    SUBMITTED = "submitted"  #: sent to the venue, not yet acknowledged
    OPEN = "open"  #: acknowledged by the venue, nothing filled
    PARTIALLY_FILLED = "partially_filled"  #: some filled, the rest still live
    PENDING_CANCEL = "pending_cancel"  #: cancel requested, not yet confirmed
    FILLED = "filled"  #: completely filled
    CANCELED = "canceled"  #: canceled (possibly after partial fills)
    REJECTED = "rejected"  #: refused by the venue (or lost: the venue never knew it)
    EXPIRED = "expired"  #: ended by the venue's time in force

    @property
    def final(self) -> bool:
        """``filled``, ``canceled``, ``rejected`` or ``expired``: no new order flow (a late fill may
        still arrive)."""
        return self in FINAL


FINAL = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED})


class OrderEvent(str, Enum):
    """What happened to an order: sent by the kernel or reported by the venue."""

    SUBMIT = "submit"  #: the kernel sent it
    ACCEPT = "accept"  #: the venue acknowledged it
    FILL = "fill"  #: a fill that leaves part of the amount unfilled
    FILL_COMPLETE = "fill_complete"  #: a fill that completes the amount
    CANCEL_REQUEST = "cancel_request"  #: the kernel asked the venue to cancel
    CANCEL_REJECT = "cancel_reject"  #: the venue refused the cancel, nothing filled yet
    CANCEL_REJECT_PARTIAL = "cancel_reject_partial"  #: refused, part already filled
    CANCELED = "canceled"  #: the venue canceled it (the rest of it)
    REJECTED = "rejected"  #: the venue refused it
    EXPIRED = "expired"  #: the venue expired it


S, E = OrderState, OrderEvent

# (state, event) -> new state. Absent pairs are illegal.
TRANSITIONS: dict[tuple[OrderState, OrderEvent], OrderState] = {
    (S.NEW, E.SUBMIT): S.SUBMITTED,
    (S.NEW, E.REJECTED): S.REJECTED,  # refused by the kernel's own pre-trade checks
    # Sent, not yet acknowledged: fills and final answers may overtake the ack.
    (S.SUBMITTED, E.ACCEPT): S.OPEN,
    (S.SUBMITTED, E.FILL): S.PARTIALLY_FILLED,
    (S.SUBMITTED, E.FILL_COMPLETE): S.FILLED,
    (S.SUBMITTED, E.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.SUBMITTED, E.CANCELED): S.CANCELED,
    (S.SUBMITTED, E.REJECTED): S.REJECTED,
    (S.SUBMITTED, E.EXPIRED): S.EXPIRED,
    (S.OPEN, E.ACCEPT): S.OPEN,  # a duplicate ack
    (S.OPEN, E.FILL): S.PARTIALLY_FILLED,
    (S.OPEN, E.FILL_COMPLETE): S.FILLED,
    (S.OPEN, E.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.OPEN, E.CANCELED): S.CANCELED,
    (S.OPEN, E.REJECTED): S.REJECTED,  # acknowledged, then refused (e.g. by the matcher)
    (S.OPEN, E.EXPIRED): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.ACCEPT): S.PARTIALLY_FILLED,  # the ack arrived after a fill
    (S.PARTIALLY_FILLED, E.FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL_COMPLETE): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, E.EXPIRED): S.EXPIRED,
    # A cancel races the venue: fills may still land, or the cancel is refused.
    (S.PENDING_CANCEL, E.ACCEPT): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.FILL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.FILL_COMPLETE): S.FILLED,
    (S.PENDING_CANCEL, E.CANCEL_REJECT): S.OPEN,
    (S.PENDING_CANCEL, E.CANCEL_REJECT_PARTIAL): S.PARTIALLY_FILLED,
    (S.PENDING_CANCEL, E.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, E.EXPIRED): S.EXPIRED,
    # Final states: late acks and repeated final reports change nothing; a fill that
    # happened before the cancel or expiry may be reported after it.
    (S.FILLED, E.ACCEPT): S.FILLED,
    (S.FILLED, E.CANCEL_REJECT): S.FILLED,  # the cancel lost the race to the last fill
    (S.FILLED, E.CANCEL_REJECT_PARTIAL): S.FILLED,
    (S.CANCELED, E.ACCEPT): S.CANCELED,
    (S.CANCELED, E.CANCELED): S.CANCELED,
    (S.CANCELED, E.FILL): S.CANCELED,
    (S.CANCELED, E.FILL_COMPLETE): S.FILLED,
    (S.REJECTED, E.REJECTED): S.REJECTED,
    (S.EXPIRED, E.ACCEPT): S.EXPIRED,
    (S.EXPIRED, E.EXPIRED): S.EXPIRED,
    (S.EXPIRED, E.FILL): S.EXPIRED,
    (S.EXPIRED, E.FILL_COMPLETE): S.FILLED,
}


def transition(state: OrderState, event: OrderEvent) -> OrderState | None:
    """The state after ``event``, or None when the table does not allow it."""
    return TRANSITIONS.get((state, event))
