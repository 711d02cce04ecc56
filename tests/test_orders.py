"""The order state machine's table: what may happen after what."""

from __future__ import annotations

import pytest

from arbframe.orders import FINAL, TRANSITIONS, OrderEvent, OrderState, transition

S, E = OrderState, OrderEvent


def test_the_happy_paths():
    state = S.NEW
    for event in (E.SUBMIT, E.ACCEPT, E.FILL, E.FILL_COMPLETE):
        state = transition(state, event)
    assert state is S.FILLED
    assert transition(transition(S.SUBMITTED, E.CANCEL_REQUEST), E.CANCELED) is S.CANCELED


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (S.SUBMITTED, E.FILL, S.PARTIALLY_FILLED),  # a fill before the acknowledgement
        (S.PARTIALLY_FILLED, E.ACCEPT, S.PARTIALLY_FILLED),  # ...and the ack after it
        (S.CANCELED, E.FILL, S.CANCELED),  # a fill reported after the cancel
        (S.CANCELED, E.FILL_COMPLETE, S.FILLED),
        (S.PENDING_CANCEL, E.FILL_COMPLETE, S.FILLED),  # the cancel lost the race
        (S.FILLED, E.CANCEL_REJECT, S.FILLED),
        (S.PENDING_CANCEL, E.CANCEL_REJECT_PARTIAL, S.PARTIALLY_FILLED),
        (S.OPEN, E.REJECTED, S.REJECTED),
    ],
)
def test_what_real_venues_do_is_legal(state, event, after):
    assert transition(state, event) is after


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.REJECTED, E.FILL),  # money moved on an order the venue refused
        (S.FILLED, E.CANCELED),
        (S.NEW, E.FILL),  # a fill for an order never sent
        (S.CANCELED, E.REJECTED),
    ],
)
def test_contradictions_are_illegal(state, event):
    assert transition(state, event) is None


def test_nothing_leaves_a_final_state_but_late_fills_and_repeats():
    for (state, event), after in TRANSITIONS.items():
        if state in FINAL and after is not state:
            assert event in (E.FILL, E.FILL_COMPLETE) and after is S.FILLED, (state, event)
    assert all(transition(state, E.SUBMIT) is None for state in S if state is not S.NEW)
