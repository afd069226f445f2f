"""The state machines: what each state of a message, task, page and episode means, and the
only moves between them.

Each machine is one enum with a comment per state and one `ALLOWED` table; `move()` is the
one way a service changes a state, and it refuses anything the table does not list
(rapidpro's temba/msgs/models.py keeps its message states the same way). A bulk UPDATE
that cannot call move() per row guards its WHERE with `sources(new)`, the states the
table lets into `new`, so a row only ever moves along the table there too.

States are stored by value (`enum_column`): a state reads as itself in psql and in a log.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar


class MessageStatus(enum.Enum):
    # Outbound: a text we send.
    PENDING = "pending"  # stored, waiting for its first worker (its first attempt)
    RETRYING = "retrying"  # an attempt failed and may succeed: waits for next_attempt_at
    SENDING = "sending"  # claimed by one worker under a lease (lease_until): calling the provider
    ACCEPTED = "accepted"  # the provider took it and gave us its id (Twilio: queued)
    SENT = "sent"  # the provider handed it to the carrier
    DELIVERED = "delivered"  # final: the handset has it
    UNDELIVERED = "undelivered"  # final: the carrier refused it (error_code says why)
    FAILED = "failed"  # final: never sent (a permanent provider error)
    # final: temporary errors (429, 5xx, timeouts) that never cleared, after every retry
    # or past the delivery deadline: the manager is alerted and a person calls the patient.
    DEAD_LETTER = "dead_letter"
    SUPPRESSED = "suppressed"  # final: not sent on purpose (opted out after it was queued)
    # Inbound: a text a patient (or a clinician) sent us.
    RECEIVED = "received"  # stored, not yet understood: waits for handle_reply
    ROUTED = "routed"  # final: understood (intent) and acted on, in one transaction


# A provider's delivery report moves a text forward only, whatever order reports arrive in
# (delivered before sent is common): each state lists only states after it.
_REPORTED = {
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
}

MESSAGE_ALLOWED: Mapping[MessageStatus, frozenset[MessageStatus]] = {
    MessageStatus.PENDING: frozenset({MessageStatus.SENDING}),
    MessageStatus.RETRYING: frozenset(
        # A slow worker's acceptance may land after the sweeper reset its stale claim.
        {MessageStatus.SENDING, MessageStatus.ACCEPTED}
    ),
    MessageStatus.SENDING: frozenset(
        {
            MessageStatus.ACCEPTED,
            MessageStatus.RETRYING,  # a temporary error, or a worker that died mid-send
            MessageStatus.FAILED,  # a permanent error
            MessageStatus.DEAD_LETTER,  # a temporary error, once the retries are used up
            MessageStatus.SUPPRESSED,  # the send chokepoint found an opt-out
        }
    ),
    MessageStatus.ACCEPTED: frozenset(_REPORTED),
    MessageStatus.SENT: frozenset(_REPORTED - {MessageStatus.SENT}),
    MessageStatus.DELIVERED: frozenset(),
    MessageStatus.UNDELIVERED: frozenset(),
    MessageStatus.FAILED: frozenset(),
    MessageStatus.DEAD_LETTER: frozenset(),
    MessageStatus.SUPPRESSED: frozenset(),
    MessageStatus.RECEIVED: frozenset({MessageStatus.ROUTED}),
    MessageStatus.ROUTED: frozenset(),
}


class TaskStatus(enum.Enum):
    OPEN = "open"  # waiting for someone to take it
    CLAIMED = "claimed"  # a staff member is on it
    DONE = "done"  # completed, and the episode resolved if it was its last work


TASK_ALLOWED: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OPEN: frozenset({TaskStatus.CLAIMED, TaskStatus.DONE}),
    # Unclaim gives a claimed task back to the queue (queue.unclaim).
    TaskStatus.CLAIMED: frozenset({TaskStatus.DONE, TaskStatus.OPEN}),
    # Only Undo (services/undo.py), minutes after a mis-click on Complete, and only by the
    # person who clicked: the task goes back to the state it was completed from.
    TaskStatus.DONE: frozenset({TaskStatus.OPEN, TaskStatus.CLAIMED}),
}

# Work still to do: what the queue lists, what an SLA can breach, what a patient's reply marks.
TASK_UNDONE: tuple[TaskStatus, ...] = (TaskStatus.OPEN, TaskStatus.CLAIMED)


class PageStatus(enum.Enum):
    ACTIVE = "active"  # paging: the next escalation is due at next_escalation_at
    ACKNOWLEDGED = "acknowledged"  # final: a clinician has it


PAGE_ALLOWED: Mapping[PageStatus, frozenset[PageStatus]] = {
    PageStatus.ACTIVE: frozenset({PageStatus.ACKNOWLEDGED}),
    PageStatus.ACKNOWLEDGED: frozenset(),
}


class EpisodeStatus(enum.Enum):
    OPEN = "open"  # waiting on the patient or on staff
    CLOSED = "closed"  # has its one outcome; a later call opens a new episode


EPISODE_ALLOWED: Mapping[EpisodeStatus, frozenset[EpisodeStatus]] = {
    EpisodeStatus.OPEN: frozenset({EpisodeStatus.CLOSED}),
    # Only Undo (services/undo.py) of the staff action that closed it (Complete of its last
    # task, Mark booked), within minutes: a sweep or a patient never reopens an episode.
    EpisodeStatus.CLOSED: frozenset({EpisodeStatus.OPEN}),
}


ALLOWED: Mapping[type[enum.Enum], Mapping[enum.Enum, frozenset[enum.Enum]]] = {
    MessageStatus: MESSAGE_ALLOWED,  # type: ignore[dict-item]
    TaskStatus: TASK_ALLOWED,  # type: ignore[dict-item]
    PageStatus: PAGE_ALLOWED,  # type: ignore[dict-item]
    EpisodeStatus: EPISODE_ALLOWED,  # type: ignore[dict-item]
}

S = TypeVar("S", MessageStatus, TaskStatus, PageStatus, EpisodeStatus)


class IllegalMove(ValueError):
    """A service asked for a move its machine's table does not list: a bug, not bad input."""

    def __init__(self, current: enum.Enum, new: enum.Enum) -> None:
        machine = type(current).__name__
        super().__init__(f"{machine}: {current.value} -> {new.value} is not an allowed move")
        self.current, self.new = current, new


def may_move(current: S, new: S) -> bool:
    return new in ALLOWED[type(current)][current]


def move(current: S, new: S) -> S:
    """`new`, if the machine allows current -> new; otherwise IllegalMove."""
    if type(new) is not type(current) or not may_move(current, new):
        raise IllegalMove(current, new)
    return new


def sources(new: S) -> list[S]:
    """Every state the table lets move into `new`: the WHERE of a conditional UPDATE."""
    table = ALLOWED[type(new)]
    return [state for state in type(new) if new in table[state]]
