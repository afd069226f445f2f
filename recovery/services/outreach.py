"""Outreach: send a stored text exactly once, retry what can succeed, record what happened.

The message row exists before the provider is called (intake wrote it). A worker first
claims it (pending -> sending) in its own short transaction, calls the provider with no
transaction open, then records the answer. The claim is a conditional UPDATE, so a second
worker, a re-dispatch by the sweeper or a redelivered task finds nothing to claim.

Nothing is sent twice on a guess. A send whose outcome we did not record (its worker died,
its request timed out or lost its connection, the database was away when the provider
answered) leaves the text in doubt (in_doubt_since); before that text is sent again the
provider is asked for the texts it created to that number since, and if ours is there its
id is recorded instead (a "reconciled" send).

A voice page's call (MessageKind.PAGE_CALL) is a row like a text and takes the same path:
claim, lease, retries, in-doubt reconciliation (against the provider's calls, not its
texts), delivery reports. Only SMS consent does not apply to it: a clinician who texted
STOP to the practice line still gets called for a page.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Table, case, func, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from recovery.crypto import PhiCipher
from recovery.db import utcnow
from recovery.domain.messages import (
    OPT_OUT_EXEMPT_KINDS,
    URGENT_KINDS,
    URGENT_VALIDITY_S,
    DeliveryOutcome,
    MessageKind,
    StatusOutcome,
    SuppressionReason,
    WaitReason,
    segments,
)
from recovery.domain.phones import mask
from recovery.domain.states import may_move, move, sources
from recovery.models import Direction, Episode, Message, MessageStatus, Practice
from recovery.services import paging, unreachable
from recovery.services.caps import Caps, over_cap
from recovery.services.consent import is_opted_out
from recovery.services.leases import LeaseKeeper
from recovery.services.send_rate import TokenBuckets
from recovery.sms.base import OutboundCall, OutboundSms, SendError, SmsProvider

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class DeliveryResult:
    message_id: int
    status: DeliveryOutcome
    # The message already had another provider id: this text reached the patient twice.
    duplicate: bool = False
    # THROTTLED: seconds until its number's bucket has its segments.
    wait_s: float = 0.0
    # A first text accepted: its episode's time to first text (for the metrics).
    time_to_first_text_ms: int | None = None


def backoff_s(attempts: int) -> float:
    """2, 4, 8 ... seconds, at most five minutes: a Twilio blip clears fast, an outage won't."""
    return min(2.0 ** max(attempts, 1), MAX_BACKOFF_S)


def next_requeue_at(now: datetime, created_at: datetime, grace: timedelta) -> datetime:
    """When the sweeper may queue a waiting row again: after `grace`, then once it has
    waited as long again as it had (the wait doubles). Texts and replies alike."""
    return now + max(grace, now - created_at)


@dataclass(frozen=True)
class SendPolicy:
    """How long a text may keep trying, how long a claim holds, and how long a send that
    may have reached the provider is given to show up there before we ask."""

    deadline: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(seconds=4)
    # A request that timed out may still be carried out by the provider: it is given as
    # long again as we waited for it (the provider timeout) before we ask whether it went.
    in_doubt_wait: timedelta = timedelta(seconds=3)
    # Tries before a temporary error (429, 5xx, a timeout) dead-letters the text: with the
    # backoff below, about ten minutes of trying (2 s ... 300 s, jittered).
    max_attempts: int = 10
    # Each wait is cut by up to this share at random, so that texts refused together
    # (a burst that hit a 429) do not all come back in the same second.
    jitter: float = 0.5
    rng: Callable[[], float] = random.random
    # Automated texts one number may get from a practice (services/caps.py).
    caps: Caps = Caps()

    def wait_s(self, attempts: int) -> float:
        return backoff_s(attempts) * (1.0 - self.jitter * self.rng())


# Twilio's date_created has whole seconds and its clock is not ours: a text it created
# just after our claim can carry a time just before it.
CLOCK_SLACK = timedelta(seconds=30)
# A database that is away when the provider has just answered: how often, and after how
# long, the answer is written again before the lease lapses and reconciliation takes over.
RECORD_RETRY_S = (0.25, 0.5, 1.0, 2.0)


def claim(session: Session, message_id: int, now: datetime, lease: timedelta) -> Message | None:
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
        .values(
            status=MessageStatus.SENDING,
            claimed_at=now,
            lease_until=now + lease,
            attempts=Message.attempts + 1,
        )
        .returning(Message)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).first()


@dataclass(frozen=True)
class CallWebhooks:
    """Our webhooks a voice page's call needs: what it says (and the digit pressed), and
    how it ended. Each carries the message id, as a text's status callback does."""

    twiml: str
    status: str | None = None


def status_callback_for(base: str | None, message_id: int) -> str | None:
    """Our message id rides in the StatusCallback URL: a delivery report for a provider id
    we never recorded still says which text it belongs to (a lost answer, or a second send)."""
    return None if base is None else f"{base}?message_id={message_id}"


def deliver(
    sessions: sessionmaker[Session],
    provider: SmsProvider,
    message_id: int,
    *,
    status_callback: str | None,
    policy: SendPolicy = SendPolicy(),
    keeper: LeaseKeeper | None = None,
    clock: Callable[[], datetime] = utcnow,
    cipher: PhiCipher | None = None,
    buckets: TokenBuckets | None = None,
    call_webhooks: CallWebhooks | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """`cipher` opens what a person wrote (a staff reply is stored only encrypted);
    `buckets` hold each sending number to its practice's send rate (`sleep` waits an
    urgent text's turn); `call_webhooks` are where a voice page's call asks what to say."""
    now = clock()
    with sessions.begin() as session:
        message = claim(session, message_id, now, policy.lease)
        if message is None:
            return DeliveryResult(message_id, DeliveryOutcome.NOT_CLAIMED)
        # The send chokepoint: whatever queued this text, an opted-out number never gets it.
        # STOP is consent to texts: a voice page still rings (it is no text).
        opted_out = (
            message.kind not in OPT_OUT_EXEMPT_KINDS
            and not message.kind.is_call
            and is_opted_out(session, message.practice_id, message.to_number)
        )
        # A text in doubt to a number that opted out since may have reached them before
        # the STOP: the provider is asked below, and it is recorded if it went, else held.
        if opted_out and message.in_doubt_since is None:
            _suppress_opted_out(session, message, now)
            return DeliveryResult(message_id, DeliveryOutcome.SUPPRESSED)
        # A text in doubt was counted when it was first claimed, and may be out already.
        if message.in_doubt_since is None and over_cap(session, message, policy.caps, now):
            _suppress(message, SuppressionReason.CAPPED, now)
            log.info(
                "message %s to %s: over its cap, not sent", message_id, mask(message.to_number)
            )
            return DeliveryResult(message_id, DeliveryOutcome.SUPPRESSED)
        try:
            body = _body(message, cipher)
        except ValueError:
            # A key that changed since it was written: no retry can ever send it.
            message.status = move(message.status, MessageStatus.FAILED)
            message.error_message = "cannot decrypt the text: the encryption key has changed"
            message.status_updated_at = now
            return DeliveryResult(message_id, DeliveryOutcome.FAILED)
        urgent = message.kind in URGENT_KINDS
        slot_s = 0.0
        outbound: OutboundSms | OutboundCall
        if message.kind.is_call:
            # A call spends no SMS segments: the send rate is a text's.
            hooks = call_webhooks or CallWebhooks(twiml="")
            outbound = OutboundCall(
                message.from_number,
                message.to_number,
                f"{hooks.twiml}?message_id={message_id}" if hooks.twiml else "",
                body,
                status_callback_for(hooks.status, message_id),
            )
        else:
            # A text in doubt takes its tokens again: it may turn out not to have gone, and
            # then it goes now (a reconciled text wastes them: slower, never faster).
            if buckets is not None and not opted_out:
                wait = _wait_for_rate(session, buckets, message, body, now, urgent)
                if wait > 0 and not urgent:
                    return DeliveryResult(message_id, DeliveryOutcome.THROTTLED, wait_s=wait)
                # An urgent text has its tokens reserved: it goes when they fall due.
                slot_s = wait
                if slot_s > 0:
                    message.next_attempt_at = now + timedelta(seconds=slot_s)
            outbound = OutboundSms(
                message.from_number,
                message.to_number,
                body,
                status_callback_for(status_callback, message_id),
                validity_period_s=URGENT_VALIDITY_S if urgent else None,
            )
        created_at, kind, episode_id = message.created_at, message.kind, message.episode_id
        claimed_at, in_doubt_since = now, message.in_doubt_since

    attempt = _Attempt(message_id, claimed_at, created_at, policy)
    held = keeper.holding(message_id, claimed_at) if keeper else nullcontext()
    outcome = DeliveryOutcome.ACCEPTED
    with held:
        if slot_s > 0:
            # Seconds at most (only urgent texts reserve ahead of it), with the lease renewed.
            sleep(slot_s)
        try:
            sid = None
            if in_doubt_since is not None:
                if isinstance(outbound, OutboundCall):
                    sid = already_called(sessions, provider, outbound, in_doubt_since)
                else:
                    sid = already_sent(sessions, provider, outbound, in_doubt_since)
                if sid is None and opted_out:
                    return _suppress_unsent(sessions, message_id, clock())
                if sid is None and keeper is not None:
                    keeper.renew_now()  # the lookup took some of the lease; the send needs it
            if sid is None:
                if isinstance(outbound, OutboundCall):
                    sid = provider.call(outbound).provider_sid
                else:
                    sid = provider.send(outbound).provider_sid
            else:
                outcome = DeliveryOutcome.RECONCILED
        except SendError as exc:
            return _record_failure(sessions, attempt, exc, clock())
        duplicate, ttft_ms = _record_with_retries(
            sessions,
            attempt,
            provider.name,
            sid,
            clock,
            episode_id if kind is MessageKind.FIRST_TEXT else None,
        )
    if duplicate:
        log.error("message %s went out twice: a second provider id %s", message_id, sid)
    elif outcome is DeliveryOutcome.RECONCILED:
        log.warning(
            "message %s to %s had gone out already (%s): recorded, not sent again",
            message_id,
            mask(outbound.to_number),
            sid,
        )
    else:
        log.info(
            "message %s to %s accepted by %s", message_id, mask(outbound.to_number), provider.name
        )
    return DeliveryResult(message_id, outcome, duplicate=duplicate, time_to_first_text_ms=ttft_ms)


def _suppress(message: Message, reason: SuppressionReason, now: datetime) -> None:
    """Not sent on purpose, and never later: the claim ends here."""
    message.status = move(message.status, MessageStatus.SUPPRESSED)
    message.error_message = reason.value
    message.status_updated_at = now
    message.lease_until = None


def _suppress_opted_out(session: Session, message: Message, now: datetime) -> None:
    _suppress(message, SuppressionReason.OPTED_OUT, now)
    paging.page_text_unreached(session, message, now)  # a page to a clinician who said STOP


def _suppress_unsent(
    sessions: sessionmaker[Session], message_id: int, now: datetime
) -> DeliveryResult:
    """A text in doubt that the provider never had, to a number that opted out since."""
    with sessions.begin() as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.status is not MessageStatus.SENDING:
            return DeliveryResult(message_id, DeliveryOutcome.NOT_CLAIMED)  # no longer ours
        _suppress_opted_out(session, message, now)
    log.info("message %s: opted out while in doubt, never sent: held", message_id)
    return DeliveryResult(message_id, DeliveryOutcome.SUPPRESSED)


def _wait_for_rate(
    session: Session,
    buckets: TokenBuckets,
    message: Message,
    body: str,
    now: datetime,
    urgent: bool,
) -> float:
    """Take the text's segments from its number's bucket; if they are not there yet, put
    the claimed text back to wait for them (not an attempt: the provider never saw it).
    An urgent text is not put back: its tokens are reserved, it waits for them here."""
    rate = session.scalar(
        select(Practice.send_rate_per_s).where(Practice.id == message.practice_id)
    )
    wait = buckets.take(
        message.from_number, segments(body), float(rate or 1.0), now.timestamp(), urgent=urgent
    )
    if wait > 0 and not urgent:
        message.status = move(message.status, MessageStatus.RETRYING)
        message.error_message = WaitReason.SEND_RATE.value  # not a refusal: says why it waits
        message.attempts -= 1
        message.lease_until = None
        message.next_attempt_at = now + timedelta(seconds=wait)
        # The worker queues it for that moment; the sweeper is the safety net.
        message.requeue_at = message.next_attempt_at + timedelta(seconds=RATE_REQUEUE_SLACK_S)
    return wait


# A throttled text is queued again by its worker for the moment its tokens are there; the
# sweeper queues it only if that task was lost.
RATE_REQUEUE_SLACK_S = 5.0


@dataclass(frozen=True)
class _Attempt:
    message_id: int
    claimed_at: datetime
    created_at: datetime
    policy: SendPolicy


def already_sent(
    sessions: sessionmaker[Session], provider: SmsProvider, sms: OutboundSms, since: datetime
) -> str | None:
    """The provider id of this text if the provider has it already, else None.

    The same words to the same number since the first doubtful attempt, and not a text we
    have recorded for another message (a patient may be sent the same menu twice)."""
    found = provider.find_sent(sms.from_number, sms.to_number, since - CLOCK_SLACK)
    same = [t for t in found if _same_words(t.body, sms.body)]
    return _oldest_unrecorded(sessions, [(t.provider_sid, t.created_at) for t in same])


def already_called(
    sessions: sessionmaker[Session], provider: SmsProvider, call: OutboundCall, since: datetime
) -> str | None:
    """The provider id of this call if the provider placed it already: a call from the
    practice's number to this clinician since the first doubtful attempt that no message
    of ours has recorded. A call has no words to compare; two calls to one clinician that
    are in doubt at the same moment may each adopt the other's id, which still records
    every call placed once and places none twice."""
    found = provider.find_calls(call.from_number, call.to_number, since - CLOCK_SLACK)
    return _oldest_unrecorded(sessions, [(c.provider_sid, c.created_at) for c in found])


def _oldest_unrecorded(
    sessions: sessionmaker[Session], candidates: list[tuple[str, datetime]]
) -> str | None:
    """Of what the provider has, the oldest whose id no message of ours carries yet."""
    if not candidates:
        return None
    with sessions() as session:
        taken = set(
            session.scalars(
                select(Message.provider_sid).where(
                    Message.provider_sid.in_([sid for sid, _ in candidates])
                )
            )
        )
    free = sorted((c for c in candidates if c[0] not in taken), key=lambda c: c[1])
    return free[0][0] if free else None


def _same_words(theirs: str, ours: str) -> bool:
    return theirs.replace("\r\n", "\n").strip() == ours.replace("\r\n", "\n").strip()


def _record_with_retries(
    sessions: sessionmaker[Session],
    attempt: _Attempt,
    provider: str,
    provider_sid: str,
    clock: Callable[[], datetime],
    ttft_episode_id: int | None,
) -> tuple[bool, int | None]:
    """Write the provider's answer, again if the database is briefly away: this answer is
    the only proof the text went, and losing it costs a lookup at the provider later.
    Returns (went out twice, the episode's time to first text if this set it)."""
    for pause in (*RECORD_RETRY_S, None):
        try:
            with sessions.begin() as session:
                return _record_acceptance(
                    session,
                    attempt.message_id,
                    provider,
                    provider_sid,
                    clock(),
                    ttft_episode_id,
                    attempt.created_at,
                )
        except (OperationalError, InterfaceError):
            if pause is None:
                # The lease lapses; the sweeper marks the text in doubt and whoever claims
                # it next finds this provider id in the provider's list.
                log.error(
                    "message %s: accepted as %s but not recorded (database unavailable)",
                    attempt.message_id,
                    provider_sid,
                )
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


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
) -> tuple[bool, int | None]:
    """Two plain UPDATEs on the tables, no read, no ORM bulk machinery (which was a seventh
    of the worker's CPU under load): the provider took the text. Only a message the table
    lets into accepted moves (sending, or retrying: the sweeper may have taken back a
    lapsed claim meanwhile); nothing moves back. Returns True when the message already had
    a different provider id: the same text went out twice."""
    messages = cast(Table, Message.__table__)
    not_yet = messages.c.status.in_([s.value for s in sources(MessageStatus.ACCEPTED)])
    result = _execute(
        session,
        update(messages)
        .where(
            messages.c.id == message_id,
            or_(messages.c.provider_sid.is_(None), messages.c.provider_sid == provider_sid),
        )
        .values(
            provider=provider,
            provider_sid=provider_sid,
            accepted_at=done,
            status=case((not_yet, MessageStatus.ACCEPTED.value), else_=messages.c.status),
            status_updated_at=case((not_yet, done), else_=messages.c.status_updated_at),
        ),
    )
    if result.rowcount == 0:
        return True, None
    ttft_ms = None
    if ttft_episode_id is not None:
        # Measured from the call this text answers (its message was written as the call
        # was recorded), which for a new episode is the moment it opened.
        episodes = cast(Table, Episode.__table__)
        ttft = round((done - created_at).total_seconds() * 1000)
        first = _execute(
            session,
            update(episodes)
            .where(episodes.c.id == ttft_episode_id, episodes.c.first_text_accepted_at.is_(None))
            .values(first_text_accepted_at=done, time_to_first_text_ms=ttft),
        )
        ttft_ms = ttft if first.rowcount == 1 else None
    return False, ttft_ms


def _record_failure(
    sessions: sessionmaker[Session], attempt: _Attempt, exc: SendError, now: datetime
) -> DeliveryResult:
    policy = attempt.policy
    with sessions.begin() as session:
        message = session.get(Message, attempt.message_id)
        assert message is not None
        message.error_code = exc.code
        message.error_message = str(exc)[:500]
        message.status_updated_at = now
        message.lease_until = None
        if exc.in_doubt and message.in_doubt_since is None:
            message.in_doubt_since = attempt.claimed_at
        gave_up = message.attempts >= policy.max_attempts
        if exc.permanent or gave_up or now - attempt.created_at >= policy.deadline:
            final = MessageStatus.FAILED if exc.permanent else MessageStatus.DEAD_LETTER
            message.status = move(message.status, final)
            outcome = DeliveryOutcome.FAILED if exc.permanent else DeliveryOutcome.DEAD_LETTER
            paging.page_text_unreached(session, message, now)
            if exc.permanent and not message.kind.is_call:
                # 21610, 21211, 21614: about the number, not this attempt. (A text's codes:
                # a landline that cannot take a text can take a voice page's call.)
                unreachable.on_provider_error(session, message, exc.code, now)
        else:
            message.status = move(message.status, MessageStatus.RETRYING)
            wait = timedelta(seconds=policy.wait_s(message.attempts))
            if exc.in_doubt:
                wait = max(wait, policy.in_doubt_wait)
            message.next_attempt_at = now + wait
            message.requeue_at = message.next_attempt_at  # no worker will ask: the sweeper
            outcome = DeliveryOutcome.RETRY
        attempts = message.attempts
    log.warning(
        "message %s: provider refused (%s, attempt %s%s): %s",
        attempt.message_id,
        outcome,
        attempts,
        ", in doubt" if exc.in_doubt else "",
        exc,
    )
    return DeliveryResult(attempt.message_id, outcome)


def due_for_dispatch(
    session: Session, now: datetime, grace: timedelta, limit: int = 500
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
    again once per `grace` while it waits. A claim whose lease lapsed belongs to a worker
    that died mid-send: it becomes a retry due at once, and in doubt: that worker may have
    sent it, so the provider is asked before it is sent again.
    """
    stale = _execute(
        session,
        update(Message)
        .where(Message.status == MessageStatus.SENDING, Message.lease_until < now)
        .values(
            status=move(MessageStatus.SENDING, MessageStatus.RETRYING),
            next_attempt_at=now,
            requeue_at=now,
            lease_until=None,
            in_doubt_since=func.coalesce(Message.in_doubt_since, Message.claimed_at),
        )
        .execution_options(synchronize_session=False),
    )
    if stale.rowcount:
        log.warning("%s message(s) lost their worker mid-send; re-queued", stale.rowcount)
        # A worker died: the tasks it had taken and not yet claimed a text for died with
        # it (Redis returns them only after its visibility timeout, an hour). A fresh
        # text's next re-queue may be as far off as its age, so every fresh text is due
        # now, once: a second task for a text already claimed finds nothing to claim.
        session.execute(
            update(Message)
            .where(Message.status == MessageStatus.PENDING)
            .values(requeue_at=now)
            .execution_options(synchronize_session=False)
        )
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
    message_id: int | None = None,
) -> StatusOutcome:
    """Apply a provider's delivery report.

    Callbacks arrive out of order (delivered before sent is common), so a report only ever
    moves a message forward; a final state is never changed. `message_id` is ours, from
    the StatusCallback URL: a report for a provider id we never recorded names its text,
    which either never got its answer written (the id is adopted) or already has another
    id (the same text went out twice: reported, and the report is not applied to it).
    """
    message = session.scalars(
        select(Message).where(Message.provider_sid == provider_sid).with_for_update()
    ).first()
    outcome = StatusOutcome.APPLIED
    if message is None:
        if message_id is None:
            return StatusOutcome.UNKNOWN
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.direction is not Direction.OUTBOUND:
            return StatusOutcome.UNKNOWN
        if message.provider_sid is not None:
            log.error(
                "message %s went out twice: provider ids %s and %s",
                message_id,
                message.provider_sid,
                provider_sid,
            )
            return StatusOutcome.DUPLICATE
        if not may_move(message.status, MessageStatus.ACCEPTED):
            return StatusOutcome.UNKNOWN  # not sent by us yet: not ours to adopt
        log.warning("message %s: provider id %s learned from its report", message_id, provider_sid)
        message.status = move(message.status, MessageStatus.ACCEPTED)
        message.provider_sid = provider_sid
        message.accepted_at = message.accepted_at or now
        outcome = StatusOutcome.ADOPTED
    if may_move(message.status, status):
        message.status = move(message.status, status)
    elif not (
        # The same state again, but the report adds the carrier's error code we lacked.
        status == message.status and error_code and not message.error_code
    ):
        return outcome
    message.status_updated_at = now
    message.lease_until = None
    if error_code:
        message.error_code = error_code
    if status == MessageStatus.DELIVERED:
        message.delivered_at = now
    paging.page_text_unreached(session, message, now)
    if status in (MessageStatus.UNDELIVERED, MessageStatus.FAILED):
        # 30003-30008 on a first text: the patient never heard from us; a person calls.
        unreachable.on_provider_error(session, message, message.error_code, now)
    return outcome


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

    def ping(self) -> None:
        """Raises unless the queue answers now."""
