"""Caps: how many automated texts one number may get from a practice.

The texts we start to a patient (the first text after a missed call, the nudge) are
capped per number and practice, by default at the FCC healthcare exemption's one a day and
three a week (`RECOVERY_CAP_PER_DAY`, `RECOVERY_CAP_PER_WEEK`). A patient's own
conversation (the answers to their texts) and the 911 guidance are never capped: they
asked.

Enforced at the send chokepoint, in the claim's transaction, under a lock on the number
(PostgreSQL: a transaction advisory lock; SQLite has one writer at a time anyway): two
workers claiming two texts to one number at once count one after the other, and the
second sees the first's claim. A text over the cap is suppressed, not sent late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from recovery.domain.messages import CAPPED_KINDS
from recovery.domain.states import MessageStatus
from recovery.models import Message

# A text in these states went to the provider, is going now, or passed its cap and waits
# to try again (a 429, its number's send rate).
_COUNTED = (
    MessageStatus.SENDING,
    MessageStatus.RETRYING,
    MessageStatus.ACCEPTED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
)


@dataclass(frozen=True)
class Caps:
    per_day: int = 1
    per_week: int = 3


def over_cap(session: Session, message: Message, caps: Caps, now: datetime) -> bool:
    """True if sending `message` (claimed, in this transaction) would pass a cap."""
    if message.kind not in CAPPED_KINDS:
        return False
    _lock_number(session, message.practice_id, message.to_number)
    week_ago, day_ago = now - timedelta(days=7), now - timedelta(days=1)
    row = session.execute(
        select(
            func.count().filter(Message.claimed_at > day_ago),
            func.count(),
        ).where(
            Message.practice_id == message.practice_id,
            Message.to_number == message.to_number,
            Message.kind.in_(CAPPED_KINDS),
            Message.status.in_(_COUNTED),
            Message.claimed_at.is_not(None),
            Message.id != message.id,
            Message.claimed_at > week_ago,
        )
    ).one()
    today, this_week = int(row[0]), int(row[1])
    return today >= caps.per_day or this_week >= caps.per_week


def _lock_number(session: Session, practice_id: int, number: str) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"recovery:cap:{practice_id}:{number}"},
    )
