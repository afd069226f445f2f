"""The state machines: one table each, and move() refuses whatever a table does not list."""

from __future__ import annotations

import enum

import pytest

from recovery.domain.states import (
    ALLOWED,
    EpisodeStatus,
    IllegalMove,
    MessageStatus,
    PageStatus,
    TaskStatus,
    may_move,
    move,
    sources,
)


@pytest.mark.parametrize("machine", list(ALLOWED))
def test_every_state_of_a_machine_has_a_row_in_its_table(machine: type[enum.Enum]) -> None:
    table = ALLOWED[machine]

    assert set(table) == set(machine)
    assert all(type(target) is machine for targets in table.values() for target in targets)
    assert all(state not in table[state] for state in machine)  # a move changes the state


def test_move_returns_the_new_state_when_the_table_allows_it() -> None:
    assert move(MessageStatus.PENDING, MessageStatus.SENDING) is MessageStatus.SENDING
    assert move(TaskStatus.OPEN, TaskStatus.CLAIMED) is TaskStatus.CLAIMED
    assert move(PageStatus.ACTIVE, PageStatus.ACKNOWLEDGED) is PageStatus.ACKNOWLEDGED
    assert move(EpisodeStatus.OPEN, EpisodeStatus.CLOSED) is EpisodeStatus.CLOSED


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (MessageStatus.DELIVERED, MessageStatus.SENT),  # a late "sent" after "delivered"
        (MessageStatus.FAILED, MessageStatus.SENDING),  # a final text is never sent again
        (MessageStatus.PENDING, MessageStatus.DELIVERED),  # never skips the provider
        (MessageStatus.RECEIVED, MessageStatus.SENDING),  # an inbound text is never sent
        (MessageStatus.ROUTED, MessageStatus.RECEIVED),  # routed once
        (TaskStatus.DONE, TaskStatus.DONE),
        (PageStatus.ACKNOWLEDGED, PageStatus.ACTIVE),
        (EpisodeStatus.CLOSED, EpisodeStatus.CLOSED),
        (EpisodeStatus.OPEN, EpisodeStatus.OPEN),
    ],
)
def test_move_refuses_what_the_table_does_not_list(current: enum.Enum, new: enum.Enum) -> None:
    with pytest.raises(IllegalMove, match=f"{current.value} -> {new.value}"):
        move(current, new)  # type: ignore[type-var]


def test_move_refuses_a_state_of_another_machine() -> None:
    with pytest.raises(IllegalMove):
        move(TaskStatus.OPEN, EpisodeStatus.CLOSED)  # type: ignore[type-var]


def test_a_retry_is_its_own_state_that_only_a_claim_or_a_late_acceptance_leaves() -> None:
    assert may_move(MessageStatus.SENDING, MessageStatus.RETRYING)
    assert ALLOWED[MessageStatus][MessageStatus.RETRYING] == {
        MessageStatus.SENDING,
        MessageStatus.ACCEPTED,
    }
    assert sources(MessageStatus.SENDING) == [MessageStatus.PENDING, MessageStatus.RETRYING]


# The order a provider's reports may arrive in says nothing; the table only moves forward.
FORWARD = [MessageStatus.ACCEPTED, MessageStatus.SENT, MessageStatus.DELIVERED]


@pytest.mark.parametrize("later", range(len(FORWARD)))
def test_delivery_reports_only_move_a_text_forward(later: int) -> None:
    for earlier in range(later + 1):
        assert not may_move(FORWARD[later], FORWARD[earlier])
    for after in FORWARD[later + 1 :]:
        assert may_move(FORWARD[later], after)


def test_final_states_are_the_ones_with_no_way_out() -> None:
    finals = {state for table in ALLOWED.values() for state, out in table.items() if not out}

    assert finals == {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.DEAD_LETTER,
        MessageStatus.SUPPRESSED,
        MessageStatus.ROUTED,
        PageStatus.ACKNOWLEDGED,
    }


def test_only_undo_leads_out_of_done_and_closed_back_where_they_came_from() -> None:
    # services/undo.py is the one caller of these moves; everything else checks the state.
    assert ALLOWED[TaskStatus][TaskStatus.DONE] == {TaskStatus.OPEN, TaskStatus.CLAIMED}
    assert ALLOWED[EpisodeStatus][EpisodeStatus.CLOSED] == {EpisodeStatus.OPEN}
