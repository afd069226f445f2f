"""Consent: STOP is honoured at once and for good, until START."""

from __future__ import annotations

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
