"""A fire drill: the on-call roster texted a clearly marked TEST page, and who answered.

Not a page: no episode, no task, no escalation, and nothing that counts pages (reports,
the queue's urgent list) sees one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, phone
from recovery.models.user import NAME_LENGTH


class Drill(Base):
    __tablename__ = "drills"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    # "T" and digits: what the drill text asks to be quoted in "ACK <code>".
    code: Mapped[str] = mapped_column(String(8), unique=True)
    started_by: Mapped[str] = mapped_column(String(NAME_LENGTH))  # a name, or the CLI
    # Who was texted, frozen at the start, each {"name", "phone"}: the result lists them
    # all, answered or not, whatever the roster becomes.
    roster: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    started_at: Mapped[datetime]
    ends_at: Mapped[datetime]  # answers after this are not recorded
    created_at: Mapped[created_at]


class DrillAnswer(Base):
    """One person's first answer to a drill; the unique pair keeps it first and only."""

    __tablename__ = "drill_answers"
    __table_args__ = (UniqueConstraint("drill_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id"), index=True)
    phone: Mapped[phone]
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    answered_at: Mapped[datetime]
