"""A call event: one call a phone system told us about, stored once per provider call id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, enum_column, phone
from recovery.domain.calls import CallDisposition, SkipReason

__all__ = ["CallDisposition", "CallEvent"]


class CallEvent(Base):
    __tablename__ = "call_events"
    # The unique key is what makes webhooks idempotent: a retried or concurrent duplicate
    # fails the insert instead of racing a check-then-insert.
    # The report counts a practice's answered and missed calls over a period.
    __table_args__ = (
        UniqueConstraint("provider", "provider_call_id"),
        Index("ix_call_events_practice_id_occurred_at", "practice_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_call_id: Mapped[str] = mapped_column(String(128))
    caller: Mapped[phone | None]  # E.164, or None when withheld or invalid
    caller_raw: Mapped[str] = mapped_column(String(64))
    called: Mapped[phone]  # the practice line the patient dialled
    disposition: Mapped[CallDisposition] = mapped_column(enum_column(CallDisposition))
    reason: Mapped[str] = mapped_column(String(32))  # no-answer, busy, after_hours, own_number...
    # Why no text went out for this call, when none did (withheld, opted_out, joined_episode...)
    skip_reason: Mapped[SkipReason | None] = mapped_column(enum_column(SkipReason))
    occurred_at: Mapped[datetime]
    received_at: Mapped[created_at]
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"), index=True)
    # As posted, for audit; what names the caller (From, Caller, CallerName, a Body, any
    # field we do not know) is sealed in one encrypted field (recovery.crypto.seal_payload).
    raw_payload: Mapped[dict[str, Any]] = mapped_column(JSON)
