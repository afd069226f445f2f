"""Outreach: send a stored text exactly once, retry what can succeed, record what happened.

The message row exists before the provider is called (intake wrote it). A worker first
claims it (pending or retrying -> sending) in its own short transaction, calls the provider with no
transaction open, then records the answer. The claim is a conditional UPDATE, so a second
worker, a re-dispatch by the sweeper or a redelivered task finds nothing to claim.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Table, case, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery.crypto import PhiCipher
from recovery.db import utcnow
from recovery.domain.messages import (
    OPT_OUT_EXEMPT_KINDS,
    DeliveryOutcome,
    MessageKind,
    SuppressionReason,
)
from recovery.domain.phones import mask
from recovery.domain.states import may_move, move, sources
from recovery.models import Episode, Message, MessageStatus
from recovery.services import paging
from recovery.services.consent import is_opted_out
from recovery.sms.base import OutboundSms, SendError, SmsProvider

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class DeliveryResult:
    message_id: int
    status: DeliveryOutcome


def backoff_s(attempts: int) -> float:
    """2, 4, 8 ... seconds, at most five minutes: a Twilio blip clears fast, an outage won't."""
    return min(2.0 ** max(attempts, 1), MAX_BACKOFF_S)


def next_requeue_at(now: datetime, created_at: datetime, grace: timedelta) -> datetime:
    """When the sweeper may queue a waiting row again: after `grace`, then once it has
    waited as long again as it had (the wait doubles). Texts and replies alike."""
    return now + max(grace, now - created_at)


def claim(session: Session, message_id: int, now: datetime) -> Message | None:
    # The conditional UPDATE hands back the claimed row itself (RETURNING): no second
    # round trip to read what was just claimed, on every text.
    return session.scalars(
        update(Message)
        .where(
            Message.id == message_id,
            Message.status.in_(sources(MessageStatus.SENDING)),
            # A fresh text goes at once; a retry waits for its time.
            or_(Message.status == MessageStatus.PENDING, Message.next_attempt_at <= now),
        )
        .values(status=MessageStatus.SENDING, claimed_at=now, attempts=Message.attempts + 1)
        .returning(Message)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).first()


def deliver(
    sessions: sessionmaker[Session],
    provider: SmsProvider,
    message_id: int,
    *,
    status_callback: str | None,
    deadline: timedelta,
    clock: Callable[[], datetime] = utcnow,
    cipher: PhiCipher | None = None,
) -> DeliveryResult:
    """`cipher` opens what a person wrote (a staff reply is stored only encrypted)."""
    now = clock()
    with sessions.begin() as session:
        message = claim(session, message_id, now)
        if message is None:
            return DeliveryResult(message_id, DeliveryOutcome.NOT_CLAIMED)
        # The send chokepoint: whatever queued this text, an opted-out number never gets it.
        if message.kind not in OPT_OUT_EXEMPT_KINDS and is_opted_out(
            session, message.practice_id, message.to_number
        ):
            message.status = move(message.status, MessageStatus.SUPPRESSED)
            message.error_message = SuppressionReason.OPTED_OUT.value
            message.status_updated_at = now
            paging.page_text_unreached(session, message, now)
            return DeliveryResult(message_id, DeliveryOutcome.SUPPRESSED)
        try:
            body = _body(message, cipher)
        except ValueError:
            # A key that changed since it was written: no retry can ever send it.
            message.status = move(message.status, MessageStatus.FAILED)
            message.error_message = "cannot decrypt the text: the encryption key has changed"
            message.status_updated_at = now
            return DeliveryResult(message_id, DeliveryOutcome.FAILED)
        sms = OutboundSms(message.from_number, message.to_number, body, status_callback)
        created_at, kind, episode_id = message.created_at, message.kind, message.episode_id

    try:
        result = provider.send(sms)
    except SendError as exc:
        return _record_failure(sessions, message_id, exc, created_at, deadline, clock())

    done = clock()
    with sessions.begin() as session:
        _record_acceptance(
            session,
            message_id,
            provider.name,
            result.provider_sid,
            done,
            episode_id if kind is MessageKind.FIRST_TEXT else None,
            created_at,
        )
    log.info("message %s to %s accepted by %s", message_id, mask(sms.to_number), provider.name)
    return DeliveryResult(message_id, DeliveryOutcome.ACCEPTED)


def _body(message: Message, cipher: PhiCipher | None) -> str:
    if message.kind is not MessageKind.STAFF_REPLY:
        return message.body
    if cipher is None:
        raise RuntimeError("a staff reply is encrypted: deliver() needs the PHI cipher")
    return cipher.decrypt(message.body_ciphertext or "")


def _record_acceptance(
    session: Session,
    message_id: int,
    provider: str,
    provider_sid: str,
    done: datetime,
    ttft_episode_id: int | None,
    created_at: datetime,
) -> None:
    """Two plain UPDATEs on the tables, no read, no ORM bulk machinery (which was a seventh
    of the worker's CPU under load): the provider took the text. Only a message the table
    lets into accepted moves (sending, or retrying: the sweeper may have reset a slow
    claim meanwhile); nothing moves back."""
    messages = cast(Table, Message.__table__)
    not_yet = messages.c.status.in_([s.value for s in sources(MessageStatus.ACCEPTED)])
    session.execute(
        update(messages)
        .where(messages.c.id == message_id)
        .values(
            provider=provider,
            provider_sid=provider_sid,
            accepted_at=done,
            status=case((not_yet, MessageStatus.ACCEPTED.value), else_=messages.c.status),
            status_updated_at=case((not_yet, done), else_=messages.c.status_updated_at),
        )
    )
    if ttft_episode_id is not None:
        # Measured from the call this text answers (its message was written as the call
        # was recorded), which for a new episode is the moment it opened.
        episodes = cast(Table, Episode.__table__)
        session.execute(
            update(episodes)
            .where(episodes.c.id == ttft_episode_id, episodes.c.first_text_accepted_at.is_(None))
            .values(
                first_text_accepted_at=done,
                time_to_first_text_ms=round((done - created_at).total_seconds() * 1000),
            )
        )


def _record_failure(
    sessions: sessionmaker[Session],
    message_id: int,
    exc: SendError,
    created_at: datetime,
    deadline: timedelta,
    now: datetime,
) -> DeliveryResult:
    with sessions.begin() as session:
        message = session.get(Message, message_id)
        assert message is not None
        message.error_code = exc.code
        message.error_message = str(exc)[:500]
        message.status_updated_at = now
        if exc.permanent or now - created_at >= deadline:
            message.status = move(message.status, MessageStatus.FAILED)
            outcome = DeliveryOutcome.FAILED
            paging.page_text_unreached(session, message, now)
        else:
            message.status = move(message.status, MessageStatus.RETRYING)
            message.next_attempt_at = now + timedelta(seconds=backoff_s(message.attempts))
            message.requeue_at = message.next_attempt_at  # no worker will ask: the sweeper
            outcome = DeliveryOutcome.RETRY
        attempts = message.attempts
    log.warning(
        "message %s: provider refused (%s, attempt %s): %s", message_id, outcome, attempts, exc
    )
    return DeliveryResult(message_id, outcome)


def due_for_dispatch(
    session: Session, now: datetime, grace: timedelta, stale_claim: timedelta, limit: int = 500
) -> list[int]:
    """The sweeper's query: texts that should be with a worker and may not be.

    A fresh text normally reaches a worker through the task the webhook queued; after
    `grace` we assume that task was lost (Redis down at webhook time, a worker killed) and
    queue it again. After that the wait doubles: a text is queued again once it has waited
    as long again as it had when last queued (requeue_at = now + max(grace, now -
    created_at)). Behind a backlog a text waits in the queue, not lost: re-queuing at every
    sweep cost 24,195 extra tasks for 6,000 texts at 100 calls/s, and once per grace still
    ~20,000; now a 60 s wait is re-queued about 5 times, while a task lost at webhook time
    is still recovered at grace.

    A retry is due at its next_attempt_at (a failed attempt sets requeue_at to it), then
    again once per `grace` while it waits. A claim older than `stale_claim` belongs to a
    worker that died mid-send: it becomes a retry due at once, accepting the small chance of
    a second text over the certainty of none.
    """
    stale = _execute(
        session,
        update(Message)
        .where(Message.status == MessageStatus.SENDING, Message.claimed_at < now - stale_claim)
        .values(
            status=move(MessageStatus.SENDING, MessageStatus.RETRYING),
            next_attempt_at=now,
            requeue_at=now,
        )
        .execution_options(synchronize_session=False),
    )
    if stale.rowcount:
        log.warning("%s message(s) were stuck in sending; re-queued", stale.rowcount)
    waiting = sources(MessageStatus.SENDING)
    rows = session.execute(
        select(Message.id, Message.status, Message.created_at)
        .where(
            Message.status.in_(waiting),
            Message.requeue_at <= now,  # queue_text sets it at creation
            or_(Message.status != MessageStatus.PENDING, Message.created_at <= now - grace),
        )
        .order_by(Message.requeue_at)
        .limit(limit)
    ).all()
    due = [row.id for row in rows]
    # Computed here, not in SQL: SQLite has no timestamp arithmetic. Each only while still
    # in the state it was read in: a worker that claimed and failed it meanwhile set its own.
    for status in waiting:
        again = [
            {
                "id": row.id,
                "dispatched_at": now,
                "requeue_at": (
                    next_requeue_at(now, row.created_at, grace)
                    if status is MessageStatus.PENDING
                    else now + grace
                ),
            }
            for row in rows
            if row.status is status
        ]
        if again:
            session.execute(
                update(Message)
                .where(Message.status == status)
                .execution_options(synchronize_session=False),
                again,
            )
    return due


def record_status(
    session: Session,
    provider_sid: str,
    status: MessageStatus,
    error_code: int | None,
    now: datetime,
) -> bool:
    """Apply a provider's delivery report. Returns False for a message we do not know.

    Callbacks arrive out of order (delivered before sent is common), so a report only ever
    moves a message forward; a final state is never changed.
    """
    message = session.scalars(
        select(Message).where(Message.provider_sid == provider_sid).with_for_update()
    ).first()
    if message is None:
        return False
    if may_move(message.status, status):
        message.status = move(message.status, status)
    elif not (
        # The same state again, but the report adds the carrier's error code we lacked.
        status == message.status and error_code and not message.error_code
    ):
        return True
    message.status_updated_at = now
    if error_code:
        message.error_code = error_code
    if status == MessageStatus.DELIVERED:
        message.delivered_at = now
    paging.page_text_unreached(session, message, now)
    return True


def _execute(session: Session, statement: Any) -> CursorResult[Any]:
    """An UPDATE whose rowcount we need (the claim is only ours when it is exactly 1)."""
    return cast(CursorResult[Any], session.execute(statement))


class Dispatcher(Protocol):
    """Hands a stored text to whatever sends it (a Celery queue, or inline in tests).

    It may fail (the broker is down): the text is committed already and the sweeper will
    find it, so a caller logs the failure and carries on.
    """

    def send_text(self, message_id: int) -> None: ...

    def handle_reply(self, message_id: int) -> None: ...
