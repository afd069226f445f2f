"""Intake: a phone system reports a call; store it once, join or open an episode, queue the text.

Everything here happens in the caller's transaction and calls no provider: the webhook
commits the call and its pending first text together, then enqueues.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher, seal_payload
from recovery.db import insert_unique
from recovery.domain.calls import CallReport, SkipReason, screen_call
from recovery.domain.messages import MessageKind
from recovery.domain.phones import mask, parse_number
from recovery.domain.templates import SmsTemplates
from recovery.models import CallEvent, Episode, Message, Practice
from recovery.services import unreachable
from recovery.services.consent import is_opted_out
from recovery.services.practices import (
    PracticeDirectory,
    find_practice_by_forward_to,
    find_practice_by_number,
)
from recovery.services.texts import queue_text

log = logging.getLogger(__name__)


class UnknownNumber(LookupError):
    """No practice owns the number that was called."""


@dataclass(frozen=True)
class IntakeResult:
    duplicate: bool
    call_id: int | None = None
    practice_id: int | None = None
    episode_id: int | None = None
    skip_reason: SkipReason | None = None
    message_id: int | None = None  # the first text to enqueue once committed


def find_practice(
    session: Session, report: CallReport, directory: PracticeDirectory | None = None
) -> Practice:
    called = parse_number(report.called_raw).e164
    practice = None
    if called:
        practice = (
            directory.by_number(called) if directory else find_practice_by_number(session, called)
        )
    if practice is None and called and report.called_is_forward_target:
        practice = find_practice_by_forward_to(session, called)
    if practice is None:
        raise UnknownNumber(f"no practice owns {mask(called or report.called_raw)}")
    return practice


def record_call(
    session: Session,
    report: CallReport,
    templates: SmsTemplates,
    now: datetime,
    practice: Practice | None = None,
    *,
    cipher: PhiCipher,
) -> IntakeResult:
    """`cipher` seals what the phone system told us about the caller (their number, name
    and town in the raw payload) before it is stored."""
    practice = practice or find_practice(session, report)
    caller = parse_number(report.caller_raw)
    own_numbers = {n.number for n in practice.numbers} | (
        {practice.forward_to} if practice.forward_to else set()
    )
    screening = screen_call(report, caller, own_numbers, practice.blocked_numbers)
    called = parse_number(report.called_raw).e164
    # The text goes out from the line the patient dialled, so the reply lands where they
    # expect; a forwarded leg names the desk phone instead, so fall back to the main line.
    line = called if called in {n.number for n in practice.numbers} else practice.main_number

    call = CallEvent(
        practice_id=practice.id,
        provider=report.provider,
        provider_call_id=report.provider_call_id,
        caller=caller.e164,
        caller_raw=report.caller_raw[:64],
        called=line,
        disposition=screening.disposition,
        reason=screening.reason[:32],
        skip_reason=screening.skip_reason,
        occurred_at=report.occurred_at,
        received_at=now,
        raw_payload=seal_payload(cipher, report.raw_payload),
    )
    if not insert_unique(session, call):
        # The provider retried, or sent the same call to two endpoints: already handled.
        return IntakeResult(duplicate=True, practice_id=practice.id)

    if screening.skip_reason is not None or caller.e164 is None:
        log.info(
            "call %s from %s: %s, no text (%s)",
            call.id,
            mask(caller.e164 or report.caller_raw),
            screening.disposition.value,
            screening.skip_reason,
        )
        return IntakeResult(False, call.id, practice.id, skip_reason=screening.skip_reason)

    episode, joined = join_or_open_episode(session, practice, caller.e164, now)
    call.episode_id = episode.id
    if unreachable.is_untextable(session, practice.id, caller.e164):
        # An invalid number or a landline (the provider told us so): no text, whether or
        # not this call joins an episode; the voice answer asks them to call back, and a
        # person at the front desk calls them (one task per episode).
        call.skip_reason = SkipReason.NOT_TEXTABLE
        unreachable.open_call_back(session, practice, episode, now)
        return IntakeResult(False, call.id, practice.id, episode.id, SkipReason.NOT_TEXTABLE)
    if joined and _has_first_text(session, episode.id):
        call.skip_reason = SkipReason.JOINED_EPISODE
        return IntakeResult(False, call.id, practice.id, episode.id, SkipReason.JOINED_EPISODE)
    # A new episode, or one whose earlier calls got no text (the caller had opted out and
    # has opted back in since): this call is the one to answer.

    if is_opted_out(session, practice.id, caller.e164):
        call.skip_reason = SkipReason.OPTED_OUT
        return IntakeResult(False, call.id, practice.id, episode.id, SkipReason.OPTED_OUT)

    message = queue_text(
        session,
        templates,
        practice,
        to=caller.e164,
        kind=MessageKind.FIRST_TEXT,
        now=now,
        from_number=line,
        episode_id=episode.id,
    )
    return IntakeResult(False, call.id, practice.id, episode.id, None, message.id)


def _has_first_text(session: Session, episode_id: int) -> bool:
    found = session.scalar(
        select(Message.id).where(
            Message.episode_id == episode_id, Message.kind == MessageKind.FIRST_TEXT
        )
    )
    return found is not None


def join_or_open_episode(
    session: Session, practice: Practice, caller: str, now: datetime, *, is_call: bool = True
) -> tuple[Episode, bool]:
    """The caller's current episode at this practice, or a new one. A call joins an episode
    opened within the practice's window; a text (is_call=False) joins without counting."""
    window = timedelta(hours=practice.episode_window_h)
    for _ in range(3):
        # FOR UPDATE: two calls from one caller at once queue here instead of both joining
        # a stale episode or both opening one.
        current = session.scalars(
            select(Episode)
            .where(
                Episode.practice_id == practice.id,
                Episode.caller == caller,
                Episode.joinable.is_(True),
            )
            .with_for_update()
        ).first()
        if current is not None and current.opened_at > now - window:
            if is_call:
                current.call_count += 1
                current.last_call_at = now
            return current, True
        if current is not None:
            current.joinable = False  # its window has passed: this call starts a new one
            session.flush()
        episode = Episode(
            practice_id=practice.id,
            caller=caller,
            opened_at=now,
            last_call_at=now,
            call_count=1 if is_call else 0,
            reply_deadline_at=now + timedelta(hours=practice.reply_window_h),
        )
        if not insert_unique(session, episode):
            continue  # another call opened it a moment ago: join that one
        return episode, False
    raise RuntimeError("could not open or join an episode")  # pragma: no cover
