"""Consent: STOP is honoured at once and for good, until START."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.models import OptOut


def is_opted_out(session: Session, practice_id: int, number: str) -> bool:
    found = session.scalar(
        select(OptOut.id).where(
            OptOut.practice_id == practice_id,
            OptOut.phone == number,
            OptOut.opted_in_at.is_(None),
        )
    )
    return found is not None


def opt_out(session: Session, practice_id: int, number: str, now: datetime) -> None:
    """STOP: opted out from now on (again, if they had opted back in)."""
    row = session.scalars(
        select(OptOut).where(OptOut.practice_id == practice_id, OptOut.phone == number)
    ).first()
    if row is None:
        session.add(OptOut(practice_id=practice_id, phone=number, opted_out_at=now))
    else:
        row.opted_out_at, row.opted_in_at = now, None
