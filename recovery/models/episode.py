"""An episode: one caller's missed calls to one practice within a window, and their outcome."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, enum_column, phone
from recovery.domain.states import EpisodeStatus


class EpisodeOutcome(enum.Enum):
    BOOKED = "booked"  # the patient booked a visit
    RESOLVED = "resolved"  # staff completed the task it became
    ESCALATED = "escalated"  # urgent, and a clinician acknowledged the page
    OPTED_OUT = "opted_out"  # the patient said STOP
    UNRECOVERED = "unrecovered"  # no reply or no outcome within the practice's window


class Episode(Base):
    __tablename__ = "episodes"
    __table_args__ = (
        # At most one episode per caller and practice accepts new calls. Two different calls
        # from the same caller arriving together race on this index, not on a SELECT.
        Index(
            "uq_episodes_joinable_caller",
            "practice_id",
            "caller",
            unique=True,
            postgresql_where=text("joinable"),
            sqlite_where=text("joinable"),
        ),
        # The recovery report reads one practice's episodes over a period; carrying the
        # outcome and time-to-first-text in the index answers it from the index alone
        # (measured on 1,000,000 episodes: 71.8 -> 3.0 ms a practice-quarter, 438 -> 129 ms
        # all practices over a year; bench/README.md). The report also reads intent and
        # call_count (a missed-call episode has a call), so they are carried too.
        Index(
            "ix_episodes_practice_id_opened_at",
            "practice_id",
            "opened_at",
            postgresql_include=["outcome", "time_to_first_text_ms", "intent", "call_count"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    caller: Mapped[phone]
    status: Mapped[EpisodeStatus] = mapped_column(
        enum_column(EpisodeStatus), default=EpisodeStatus.OPEN
    )
    joinable: Mapped[bool] = mapped_column(Boolean, default=True)
    opened_at: Mapped[created_at]
    last_call_at: Mapped[datetime]
    call_count: Mapped[int] = mapped_column(Integer, default=1)
    # Set when the first text is accepted by the provider; a column, not a guess, so the
    # manager's time-to-first-text report is one query.
    first_text_accepted_at: Mapped[datetime | None]
    time_to_first_text_ms: Mapped[int | None] = mapped_column(Integer)
    # The conversation: what the patient asked for and in which language.
    intent: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2), default="en")
    unclear_replies: Mapped[int] = mapped_column(Integer, default=0)
    last_reply_at: Mapped[datetime | None]
    nudged_at: Mapped[datetime | None]
    # Without a reply by then the episode ends unrecovered (the practice's reply window).
    reply_deadline_at: Mapped[datetime | None]
    # The tracked booking link /b/<token>; the booking system echoes it back as `ref`.
    booking_token: Mapped[str | None] = mapped_column(String(32), unique=True)
    booking_clicked_at: Mapped[datetime | None]
    # The booking system's confirmation, kept even when it could not end the episode (an
    # urgent page was still open on it: the clinician's acknowledgement ends it instead).
    booking_confirmed_at: Mapped[datetime | None]
    outcome: Mapped[EpisodeOutcome | None] = mapped_column(enum_column(EpisodeOutcome))
    outcome_at: Mapped[datetime | None]
