"""Queueing a text: render a template for a practice and store it as a pending message.

Every outbound text goes through here and then through `outreach.deliver`, the send
chokepoint where opt-outs are enforced.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.domain.messages import MessageKind
from recovery.domain.phones import national_format
from recovery.domain.templates import SmsContext, SmsTemplates
from recovery.models import CallEvent, Direction, Episode, Message, MessageStatus, Practice


def queue_text(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    *,
    to: str,
    kind: MessageKind,
    now: datetime,
    template: str | None = None,
    language: str = "en",
    from_number: str | None = None,
    episode_id: int | None = None,
    page_id: int | None = None,
    link: str = "",
    callback_time: str = "",
    reference: str = "",
) -> Message:
    line = from_number or practice.main_number
    context = SmsContext(
        practice_name=practice.name,
        practice_phone=national_format(line),
        link=link,
        callback_time=callback_time,
        reference=reference,
    )
    message = Message(
        practice_id=practice.id,
        episode_id=episode_id,
        page_id=page_id,
        direction=Direction.OUTBOUND,
        kind=kind,
        from_number=line,
        to_number=to,
        body=templates.render(template or kind.template, context, language),
        status=MessageStatus.PENDING,
        created_at=now,
        requeue_at=now,
    )
    session.add(message)
    session.flush()
    return message


def line_called(session: Session, practice: Practice, episode: Episode) -> str:
    """The line the patient dialled (or, texting out of the blue, first wrote to), so a
    later text comes from the number they know."""
    called = session.scalar(
        select(CallEvent.called)
        .where(CallEvent.episode_id == episode.id)
        .order_by(CallEvent.occurred_at, CallEvent.id)
        .limit(1)
    ) or session.scalar(
        select(Message.to_number)
        .where(Message.episode_id == episode.id, Message.direction == Direction.INBOUND)
        .order_by(Message.created_at, Message.id)
        .limit(1)
    )
    # A line since removed from the practice would text from a number that is not theirs.
    if called and called in {n.number for n in practice.numbers}:
        return called
    return practice.main_number
