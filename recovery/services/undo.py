"""Undo: a mis-clicked Complete or Mark booked, put back within minutes.

Complete and Mark booked end things: a task leaves the queue, and a conversation gets its
outcome (resolved, booked), which counts in the manager's recovery rate. A wrong click
there must be cheap to take back, or staff stop trusting the buttons. So each of them
writes an `UndoableAction` in its own transaction, holding the task and the episode as they
were just before; `undo` restores exactly that, and writes the audit row.

The rules:
* only the person who did it, within `window` (Settings.undo_window_s, 5 min by default),
  and once;
* only while nothing else moved the task or the episode on since (the task was not
  completed again, the booking system did not book it, the conversation did not end another
  way): the action's own timestamps are compared, under row locks taken in the same order
  as Complete takes them (task, then episode), so an undo and a concurrent action serialise;
* the moves are the ones recovery.domain.states lists for undo: DONE -> the task's
  previous state, CLOSED -> OPEN for the episode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.domain.states import EpisodeStatus, TaskStatus, move
from recovery.models import (
    AuditAction,
    Episode,
    EpisodeOutcome,
    Task,
    UndoableAction,
    UndoKind,
)
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.errors import NotFound

# The default; the edges pass Settings.undo_window_s.
UNDO_WINDOW = timedelta(minutes=5)


class UndoRefusal(enum.Enum):
    TOO_LATE = "too_late"  # the window has passed
    ALREADY_UNDONE = "already_undone"  # a second click, or another tab
    CHANGED_SINCE = "changed_since"  # the task or the conversation moved on since


@dataclass(frozen=True)
class Snapshot:
    """The task and the episode just before an action, read under their row locks."""

    task_status: TaskStatus | None
    task_claimed_by: str | None
    task_claimed_at: datetime | None
    task_note: str | None
    episode_status: EpisodeStatus
    episode_outcome: EpisodeOutcome | None
    episode_outcome_at: datetime | None
    episode_joinable: bool

    @classmethod
    def of(cls, episode: Episode, task: Task | None = None) -> Snapshot:
        return cls(
            task.status if task else None,
            task.claimed_by if task else None,
            task.claimed_at if task else None,
            task.note if task else None,
            episode.status,
            episode.outcome,
            episode.outcome_at,
            episode.joinable,
        )

    def episode_changed(self, episode: Episode) -> bool:
        return (self.episode_status, self.episode_outcome, self.episode_outcome_at) != (
            episode.status,
            episode.outcome,
            episode.outcome_at,
        )


def remember(
    session: Session,
    viewer: Viewer,
    kind: UndoKind,
    before: Snapshot,
    *,
    episode: Episode,
    task: Task | None = None,
    now: datetime,
) -> UndoableAction:
    """Keep what `kind` just changed, in the action's own transaction."""
    changed = before.episode_changed(episode)
    action = UndoableAction(
        kind=kind,
        practice_id=episode.practice_id,
        user_id=viewer.id,
        episode_id=episode.id,
        task_id=task.id if task else None,
        done_at=now,
        task_status=before.task_status,
        task_claimed_by=before.task_claimed_by,
        task_claimed_at=before.task_claimed_at,
        task_note=before.task_note,
        episode_status=before.episode_status if changed else None,
        episode_outcome=before.episode_outcome if changed else None,
        episode_outcome_at=before.episode_outcome_at if changed else None,
        episode_joinable=before.episode_joinable if changed else None,
    )
    session.add(action)
    session.flush()
    return action


@dataclass(frozen=True)
class UndoOffer:
    id: int
    kind: UndoKind
    episode_id: int
    task_id: int | None
    done_at: datetime  # in the zone asked for
    until: datetime  # the last moment Undo works, in the zone asked for


def offers(
    session: Session,
    viewer: Viewer,
    *,
    practice_id: int,
    now: datetime,
    window: timedelta,
    zone: tzinfo,
    episode_id: int | None = None,
) -> list[UndoOffer]:
    """The viewer's actions at this practice they can still undo, newest first."""
    query = (
        select(UndoableAction)
        .where(
            UndoableAction.user_id == viewer.id,
            UndoableAction.practice_id == practice_id,
            UndoableAction.undone_at.is_(None),
            UndoableAction.done_at > now - window,
        )
        .order_by(UndoableAction.done_at.desc(), UndoableAction.id.desc())
        .limit(20)
    )
    if episode_id is not None:
        query = query.where(UndoableAction.episode_id == episode_id)
    found = []
    for action in session.scalars(query):
        task = session.get(Task, action.task_id) if action.task_id else None
        episode = session.get(Episode, action.episode_id)
        if episode is None or not _still_as_left(action, task, episode):
            continue
        found.append(
            UndoOffer(
                action.id,
                action.kind,
                action.episode_id,
                action.task_id,
                action.done_at.astimezone(zone),
                (action.done_at + window).astimezone(zone),
            )
        )
    return found


@dataclass(frozen=True)
class UndoResult:
    kind: UndoKind
    episode_id: int
    task_id: int | None
    refused: UndoRefusal | None = None

    @property
    def undone(self) -> bool:
        return self.refused is None


def _still_as_left(action: UndoableAction, task: Task | None, episode: Episode) -> bool:
    """Nothing moved the task or the episode on since the action."""
    if action.kind is UndoKind.COMPLETE_TASK:
        if (
            task is None
            or task.status is not TaskStatus.DONE
            or task.completed_at != action.done_at
        ):
            return False
        if action.episode_status is None:
            # Completing it left the conversation open; if it has ended since (another
            # task, a booking), reopening this task would leave work on a closed episode.
            return episode.status is EpisodeStatus.OPEN
    elif episode.outcome is not EpisodeOutcome.BOOKED:
        return False
    return action.episode_status is None or episode.outcome_at == action.done_at


def undo(
    session: Session, viewer: Viewer, action_id: int, *, now: datetime, window: timedelta
) -> UndoResult:
    action = session.get(UndoableAction, action_id, with_for_update=True, populate_existing=True)
    if action is None or action.user_id != viewer.id or not viewer.may_see(action.practice_id):
        raise NotFound
    result = UndoResult(action.kind, action.episode_id, action.task_id)
    if action.undone_at is not None:
        return UndoResult(
            action.kind, action.episode_id, action.task_id, UndoRefusal.ALREADY_UNDONE
        )
    if now > action.done_at + window:
        return UndoResult(action.kind, action.episode_id, action.task_id, UndoRefusal.TOO_LATE)
    # Task first, then episode: the order Complete locks them in, so the two cannot deadlock.
    task = (
        session.get(Task, action.task_id, with_for_update=True, populate_existing=True)
        if action.task_id
        else None
    )
    episode = session.get(Episode, action.episode_id, with_for_update=True, populate_existing=True)
    assert episode is not None  # a foreign key
    if not _still_as_left(action, task, episode):
        return UndoResult(action.kind, action.episode_id, action.task_id, UndoRefusal.CHANGED_SINCE)

    if task is not None and action.task_status is not None:
        task.status = move(task.status, action.task_status)
        task.claimed_by = action.task_claimed_by
        task.claimed_at = action.task_claimed_at
        task.note = action.task_note
        task.completed_at = None
    if action.episode_status is not None:
        if episode.status is not action.episode_status:
            episode.status = move(episode.status, action.episode_status)
        episode.outcome = action.episode_outcome
        episode.outcome_at = action.episode_outcome_at
        if episode.status is EpisodeStatus.OPEN and action.episode_joinable:
            # A later call may have opened the caller's next episode meanwhile; only one
            # episode per caller takes new calls (uq_episodes_joinable_caller).
            episode.joinable = not _another_joinable(session, episode)
    action.undone_at = now
    audit = (
        AuditAction.UNDO_COMPLETE_TASK
        if action.kind is UndoKind.COMPLETE_TASK
        else AuditAction.UNDO_MARK_BOOKED
    )
    target = f"task {action.task_id}" if action.task_id else f"episode {action.episode_id}"
    record(session, viewer.id, audit, now=now, episode_id=episode.id, detail=target)
    return result


def _another_joinable(session: Session, episode: Episode) -> bool:
    other = session.scalar(
        select(Episode.id).where(
            Episode.practice_id == episode.practice_id,
            Episode.caller == episode.caller,
            Episode.joinable.is_(True),
            Episode.id != episode.id,
        )
    )
    return other is not None
