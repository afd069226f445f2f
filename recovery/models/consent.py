"""Whether a number may and can be texted: opt-outs (a number that said STOP gets no text
of any kind from that practice) and numbers no text can reach (invalid, or a landline)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, phone


class OptOut(Base):
    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("practice_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    phone: Mapped[phone]
    opted_out_at: Mapped[created_at]
    # Set by START; the row stays so the history of consent is kept.
    opted_in_at: Mapped[datetime | None]


class UntextableNumber(Base):
    """The provider said no text can reach this number (Twilio 21211 not a valid number,
    21614 not a mobile): the practice's calls from it become call-back tasks, not texts."""

    __tablename__ = "untextable_numbers"
    __table_args__ = (UniqueConstraint("practice_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    phone: Mapped[phone]
    error_code: Mapped[int | None] = mapped_column(Integer)
    marked_at: Mapped[created_at]
