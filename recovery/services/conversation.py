"""A person texts the patient back from the conversation page.

The text is an ordinary outbound message: from the line the patient called, stored
pending before anything is sent, then claimed, sent and retried by `outreach.deliver`
like every other text, where opt-outs are enforced once more. What staff write may hold
PHI, so it is kept like a patient's words, only encrypted, and never logged; the audit row
names the message and the episode, not the words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher
from recovery.domain.messages import MAX_STAFF_REPLY, MessageKind, StaffReplyRefusal
from recovery.domain.phones import national_format
from recovery.domain.states import TASK_UNDONE
from recovery.domain.templates import SmsContext, render_saved_reply
from recovery.models import (
    AuditAction,
    Direction,
    Episode,
    EpisodeStatus,
    Message,
    MessageStatus,
    Practice,
    SavedReply,
    Task,
)
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.consent import is_opted_out
from recovery.services.errors import NotFound
from recovery.services.texts import line_called


@dataclass(frozen=True)
class ReplyResult:
    message_id: int | None  # the queued text, to dispatch after commit; None when refused
    refused: StaffReplyRefusal | None = None

    @property
    def sent(self) -> bool:
        return self.message_id is not None


@dataclass(frozen=True)
class SavedChoice:
    """A saved reply as the conversation page offers it: already rendered for this line."""

    id: int
    title: str
    text: str


def _episode(session: Session, viewer: Viewer, episode_id: int) -> tuple[Episode, Practice]:
    episode = session.get(Episode, episode_id)
    if episode is None or not viewer.may_see(episode.practice_id):
        raise NotFound
    practice = session.get(Practice, episode.practice_id)
    assert practice is not None  # a foreign key
    return episode, practice


def _context(practice: Practice, line: str) -> SmsContext:
    return SmsContext(practice_name=practice.name, practice_phone=national_format(line))


def saved_choices(session: Session, practice: Practice, episode: Episode) -> list[SavedChoice]:
    """The practice's saved replies, rendered with the number this patient knows."""
    line = line_called(session, practice, episode)
    rows = session.scalars(
        select(SavedReply)
        .where(SavedReply.practice_id == practice.id, SavedReply.active.is_(True))
        .order_by(SavedReply.title, SavedReply.id)
    )
    context = _context(practice, line)
    return [SavedChoice(r.id, r.title, render_saved_reply(r.body, context)) for r in rows]


def reply_target(session: Session, episode: Episode) -> Episode:
    """The episode a reply from this conversation's page belongs to: itself while open;
    once it has ended, the patient's later open conversation if there is one (they wrote
    again after it ended), so the reply answers what they wrote and clears its task."""
    if episode.status is EpisodeStatus.OPEN:
        return episode
    later = session.scalars(
        select(Episode)
        .where(
            Episode.practice_id == episode.practice_id,
            Episode.caller == episode.caller,
            Episode.status == EpisodeStatus.OPEN,
            Episode.opened_at >= episode.opened_at,
            Episode.id != episode.id,
        )
        .order_by(Episode.opened_at.desc(), Episode.id.desc())
        .limit(1)
    ).first()
    return later or episode


def send_reply(
    session: Session,
    cipher: PhiCipher,
    viewer: Viewer,
    episode_id: int,
    *,
    text: str,
    now: datetime,
    saved_reply_id: int | None = None,
) -> ReplyResult:
    """Queue the viewer's text to the episode's patient, or say why not.

    `saved_reply_id` with no text sends that saved reply as it is (the page without
    JavaScript); with text, the text was the saved reply edited, and the id is only
    recorded in the audit row.
    """
    episode, practice = _episode(session, viewer, episode_id)
    episode = reply_target(session, episode)
    line = line_called(session, practice, episode)
    words = text.strip()
    if not words and saved_reply_id is not None:
        saved = session.get(SavedReply, saved_reply_id)
        if saved is None or not saved.active or saved.practice_id != practice.id:
            return ReplyResult(None, StaffReplyRefusal.UNKNOWN_SAVED_REPLY)
        words = render_saved_reply(saved.body, _context(practice, line))
    if not words:
        return ReplyResult(None, StaffReplyRefusal.EMPTY)
    if len(words) > MAX_STAFF_REPLY:
        return ReplyResult(None, StaffReplyRefusal.TOO_LONG)
    if is_opted_out(session, practice.id, episode.caller):
        return ReplyResult(None, StaffReplyRefusal.OPTED_OUT)
    message = Message(
        practice_id=practice.id,
        episode_id=episode.id,
        direction=Direction.OUTBOUND,
        kind=MessageKind.STAFF_REPLY,
        from_number=line,
        to_number=episode.caller,
        body="",
        body_ciphertext=cipher.encrypt(words),
        sent_by=viewer.id,
        status=MessageStatus.PENDING,
        created_at=now,
        requeue_at=now,
    )
    session.add(message)
    session.flush()
    # Someone has answered the patient: their open tasks stop saying "patient replied".
    mark_patient_replied(session, episode.id, None)
    record(
        session,
        viewer.id,
        AuditAction.STAFF_REPLY,
        now=now,
        episode_id=episode.id,
        detail=f"message {message.id}"
        + (f"; saved reply {saved_reply_id}" if saved_reply_id is not None else ""),
    )
    return ReplyResult(message.id)


def answered(session: Session, episode_ids: set[int]) -> set[int]:
    """Of these episodes, those where a person has texted the patient (a reply that was
    not refused or lost: queued, on its way or delivered)."""
    if not episode_ids:
        return set()
    return set(
        session.scalars(
            select(Message.episode_id).where(
                Message.episode_id.in_(episode_ids),
                Message.kind == MessageKind.STAFF_REPLY,
                Message.status.not_in([MessageStatus.FAILED, MessageStatus.SUPPRESSED]),
            )
        )
    )


def mark_patient_replied(session: Session, episode_id: int, at: datetime | None) -> None:
    """The patient wrote again (`at`): their open tasks say so on the queue, until a
    person answers (None)."""
    session.execute(
        update(Task)
        .where(Task.episode_id == episode_id, Task.status.in_(TASK_UNDONE))
        .values(patient_replied_at=at)
        .execution_options(synchronize_session=False)
    )
