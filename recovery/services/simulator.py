"""The phone simulator's side of the conversation: the practice lines a visitor can call,
and what one phone number and one practice line have texted each other.

Only the simulator reads this, and the simulator exists only where texts are recorded
instead of sent (SMS_PROVIDER=console): it shows a patient's own phone, words and all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher
from recovery.domain.messages import MessageKind
from recovery.models import CallEvent, Direction, Message, MessageStatus, Practice, PracticeNumber
from recovery.services.admin import Person

log = logging.getLogger(__name__)

THREAD_LIMIT = 100
# What a phone has in its inbox: the provider took the text. Queued, failed or suppressed
# texts never reach it.
RECEIVED_BY_THE_PHONE = frozenset(
    {MessageStatus.ACCEPTED, MessageStatus.SENT, MessageStatus.DELIVERED}
)


@dataclass(frozen=True)
class Line:
    number: str
    practice_name: str
    practice_slug: str
    timezone: str
    # Who an URGENT reply pages first: the simulator shows their phone too.
    first_on_call: Person | None = None


@dataclass(frozen=True)
class Bubble:
    id: int
    at: datetime  # in the practice's zone
    mine: bool  # written on the simulated phone
    text: str
    status: str  # delivery state of what the practice sent; "" for what the phone sent
    kind: str


def practice_lines(session: Session) -> list[Line]:
    rows = session.execute(
        select(
            PracticeNumber.number,
            Practice.name,
            Practice.slug,
            Practice.timezone,
            Practice.on_call,
        )
        .join(Practice, Practice.id == PracticeNumber.practice_id)
        .order_by(Practice.name, PracticeNumber.position)
    ).all()
    return [
        Line(number, name, slug, tz, _first(on_call)) for number, name, slug, tz, on_call in rows
    ]


def _first(on_call: list[dict[str, Any]] | None) -> Person | None:
    return Person.of(on_call[0]) if on_call else None


def line_called_last(session: Session, caller: str) -> str | None:
    """The practice line this number last called or texted: where its next text goes."""
    call = session.execute(
        select(CallEvent.occurred_at, CallEvent.called)
        .where(CallEvent.caller == caller)
        .order_by(CallEvent.occurred_at.desc(), CallEvent.id.desc())
        .limit(1)
    ).first()
    text = session.execute(
        select(Message.created_at, Message.to_number)
        .where(Message.direction == Direction.INBOUND, Message.from_number == caller)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    ).first()
    latest = max((row for row in (call, text) if row is not None), key=lambda r: r[0], default=None)
    return None if latest is None else str(latest[1])


def thread(
    session: Session, cipher: PhiCipher, line: Line, phone: str, *, limit: int = THREAD_LIMIT
) -> list[Bubble]:
    """The texts between `phone` and the practice `line`, oldest first."""
    zone = ZoneInfo(line.timezone)
    rows = list(
        session.scalars(
            select(Message)
            .where(
                or_(
                    and_(Message.from_number == phone, Message.to_number == line.number),
                    and_(Message.from_number == line.number, Message.to_number == phone),
                )
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )
    bubbles = []
    for m in reversed(rows):
        if m.direction is Direction.INBOUND:
            text = _words(cipher, m)
            bubbles.append(Bubble(m.id, m.created_at.astimezone(zone), True, text, "", m.kind))
        elif m.status in RECEIVED_BY_THE_PHONE:
            # What staff wrote may hold PHI, so it is kept encrypted like the patient's
            # words and its body is "": the phone shows what the provider was given.
            text = _words(cipher, m) if m.kind is MessageKind.STAFF_REPLY else m.body
            status = m.status.value
            bubbles.append(Bubble(m.id, m.created_at.astimezone(zone), False, text, status, m.kind))
    return bubbles


def _words(cipher: PhiCipher, message: Message) -> str:
    try:
        return cipher.decrypt(message.body_ciphertext or "")
    except ValueError:
        return "(cannot be decrypted with the current key)"
