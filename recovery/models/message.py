"""A text message, outbound or inbound, with its delivery state."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, enum_column, phone
from recovery.domain.messages import MessageKind


class MessageStatus(enum.Enum):
    PENDING = "pending"  # stored, waiting for a worker (or for its retry time)
    SENDING = "sending"  # claimed by one worker, which is calling the provider now
    ACCEPTED = "accepted"  # the provider took it and gave us its id (Twilio: queued)
    SENT = "sent"  # the provider handed it to the carrier
    DELIVERED = "delivered"  # final: the handset has it
    UNDELIVERED = "undelivered"  # final: the carrier refused it (error_code says why)
    FAILED = "failed"  # final: never sent (permanent provider error or gave up retrying)
    SUPPRESSED = "suppressed"  # final: not sent on purpose (opted out after it was queued)
    RECEIVED = "received"  # inbound: a patient's text


# Status callbacks only move a message forward along this order. The final states share
# the top rank: once final, a late or out-of-order callback changes nothing.
STATUS_RANK = {
    MessageStatus.PENDING: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.ACCEPTED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.SUPPRESSED: 4,
    MessageStatus.RECEIVED: 4,
}


class Direction(enum.Enum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"), index=True)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    kind: Mapped[MessageKind] = mapped_column(enum_column(MessageKind))
    from_number: Mapped[phone]
    to_number: Mapped[phone]
    body: Mapped[str] = mapped_column(Text)  # outbound only: PHI-free by construction
    # An inbound text may hold PHI: kept only encrypted (recovery.crypto), body stays "".
    body_ciphertext: Mapped[str | None] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(16))  # inbound: what we understood
    intent_evidence: Mapped[str | None] = mapped_column(String(100))
    page_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id"), index=True)
    # A text a staff member wrote (kind "staff_reply"): who. Its words may hold PHI, so
    # they are kept like a patient's, only in body_ciphertext.
    sent_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A retry (attempts > 0): when it may be sent again. A fresh text or an unrouted
    # inbound reply: when the sweeper may queue it again, the wait doubling each time
    # (outreach.due_for_dispatch, replies.unrouted); a fresh text's claim ignores it.
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    # When the sweeper last queued a task for it (its first task seemed lost).
    dispatched_at: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[created_at]
    accepted_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    status_updated_at: Mapped[datetime | None]
