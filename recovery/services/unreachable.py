"""What a provider's error says about the number, and what we do about it.

Most refusals are about one attempt (a 429, a 5xx). A few are about the number itself,
and retrying would only fail again while the patient waits for nothing:

- 21610: the number replied STOP to the carrier. It is opted out here too, as if it had
  texted us STOP, and its episode ends opted out.
- 21211 (not a valid number) and 21614 (not a mobile: a landline): no text can reach it.
  It is marked not textable for the practice, and the episode becomes a front-desk
  call-back task: a landline caller is still a patient. Their next call gets the task,
  not a text.
- 30003-30008 on a first text (the carrier could not deliver it: handset off or gone,
  blocked, unknown, a landline, filtered): the patient never heard from us, so a person
  calls them back. The number is not marked: a handset that was off may be on tomorrow.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.db import insert_unique
from recovery.domain.messages import MessageKind, Unreachable, unreachable_reason
from recovery.domain.phones import mask
from recovery.domain.states import TASK_UNDONE, EpisodeStatus
from recovery.domain.tasks import FRONT_DESK_SLA, TaskReason
from recovery.models import (
    Direction,
    Episode,
    EpisodeOutcome,
    Message,
    Practice,
    Task,
    TaskQueue,
    UntextableNumber,
)
from recovery.services import outcomes
from recovery.services.consent import opt_out

log = logging.getLogger(__name__)


def on_provider_error(
    session: Session, message: Message, code: int | None, now: datetime
) -> Unreachable | None:
    """Act on what a refused send or a failed delivery report says about the number.
    Returns what it meant, or None when it was about the attempt only."""
    meaning = unreachable_reason(code)
    if meaning is None or message.direction is not Direction.OUTBOUND:
        return None
    if meaning is Unreachable.UNDELIVERED and message.kind is not MessageKind.FIRST_TEXT:
        return None
    episode = _patients_episode(session, message)
    if meaning is Unreachable.OPTED_OUT:
        opt_out(session, message.practice_id, message.to_number, now)
        if episode is not None and episode.status is EpisodeStatus.OPEN:
            outcomes.close_episode(episode, EpisodeOutcome.OPTED_OUT, now)
    else:
        if meaning is Unreachable.NOT_TEXTABLE:
            mark_untextable(session, message.practice_id, message.to_number, code, now)
        if episode is not None and episode.status is EpisodeStatus.OPEN:
            practice = session.get(Practice, message.practice_id)
            assert practice is not None
            open_call_back(session, practice, episode, now)
    log.warning(
        "message %s to %s: %s (provider error %s)",
        message.id,
        mask(message.to_number),
        meaning.value,
        code,
    )
    return meaning


def _patients_episode(session: Session, message: Message) -> Episode | None:
    """The episode whose patient this text was for (a page goes to a clinician)."""
    if message.episode_id is None or message.kind is MessageKind.PAGE:
        return None
    episode = session.get(Episode, message.episode_id)
    if episode is None or episode.caller != message.to_number:
        return None
    return episode


def is_untextable(session: Session, practice_id: int, number: str) -> bool:
    found = session.scalar(
        select(UntextableNumber.id).where(
            UntextableNumber.practice_id == practice_id, UntextableNumber.phone == number
        )
    )
    return found is not None


def mark_untextable(
    session: Session, practice_id: int, number: str, code: int | None, now: datetime
) -> None:
    # A unique key, not a check-then-insert: two texts to one landline may fail at once.
    insert_unique(
        session,
        UntextableNumber(practice_id=practice_id, phone=number, error_code=code, marked_at=now),
    )


def open_call_back(session: Session, practice: Practice, episode: Episode, now: datetime) -> Task:
    """One open call-back task per episode, for the front desk, due an hour into the
    next opening (as a reply nobody understood)."""
    existing = session.scalars(
        select(Task).where(
            Task.episode_id == episode.id,
            Task.reason == TaskReason.CALL_BACK,
            Task.status.in_(TASK_UNDONE),
        )
    ).first()
    if existing is not None:
        return existing
    hours = practice.business_hours()
    task = Task(
        practice_id=practice.id,
        episode_id=episode.id,
        queue=TaskQueue.FRONT_DESK,
        reason=TaskReason.CALL_BACK,
        due_at=hours.add_business_time(hours.next_opening(now), FRONT_DESK_SLA),
        created_at=now,
    )
    session.add(task)
    session.flush()
    return task
