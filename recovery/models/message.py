"""A text message, outbound or inbound, with its delivery state."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, enum_column, phone
from recovery.domain.messages import MessageKind
from recovery.domain.states import MessageStatus


class Direction(enum.Enum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_requeue_at", "status", "requeue_at"),)

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
    # What matched ("red_flag:chest pain"): the patient's words again, so encrypted too.
    intent_evidence: Mapped[str | None] = mapped_column(Text)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id"), index=True)
    # A text a staff member wrote (kind "staff_reply"): who. Its words may hold PHI, so
    # they are kept like a patient's, only in body_ciphertext.
    sent_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set once, when the dead-letter sweep alerted the manager about this text.
    dead_letter_alerted_at: Mapped[datetime | None]
    # RETRYING only: not before then may a worker attempt it again (its backoff).
    next_attempt_at: Mapped[datetime | None]
    # A row waiting for a worker (pending, retrying, received): when the sweeper queues a
    # task for it again, in case the one it has was lost (outreach.due_for_dispatch,
    # replies.unrouted). The wait doubles each time.
    requeue_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    # While sending: the worker's claim holds until then (renewed while its request is in
    # flight); past it, the worker is presumed dead and the sweeper takes the text back.
    lease_until: Mapped[datetime | None]
    # The claim of the first attempt that may have reached the provider without our
    # recording its answer (a lapsed lease, a timeout, a dropped connection, a database
    # error after the provider answered). Set, the provider is asked before any re-send
    # whether a text created since then went out (outreach.already_sent); never cleared.
    in_doubt_since: Mapped[datetime | None]
    # When the sweeper last queued a task for it.
    dispatched_at: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[created_at]
    accepted_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    status_updated_at: Mapped[datetime | None]
