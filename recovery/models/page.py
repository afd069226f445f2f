"""An urgent page: on-call staff are texted in roster order until one acknowledges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, enum_column
from recovery.domain.pages import PageReason
from recovery.domain.states import PageStatus
from recovery.models.user import NAME_LENGTH


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (Index("ix_pages_status_next_escalation_at", "status", "next_escalation_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    # The reference a clinician quotes in "ACK <code>"; no PHI, short enough to type.
    code: Mapped[str] = mapped_column(String(8), unique=True)
    status: Mapped[PageStatus] = mapped_column(enum_column(PageStatus), default=PageStatus.ACTIVE)
    reason: Mapped[PageReason] = mapped_column(
        enum_column(PageReason), default=PageReason.URGENT, server_default=PageReason.URGENT.value
    )
    # Who is paged, in order, frozen when the page starts: a roster edit mid-page must not
    # skip or repeat anyone. Each entry: {"name", "phone"}.
    roster: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # Position of the next person to page in the current pass; pass 0 walks the roster
    # one by one, later passes page everyone (and the manager) at once.
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    round: Mapped[int] = mapped_column(Integer, default=0)
    reply_received_at: Mapped[datetime]  # the patient's urgent reply: latency starts here
    first_page_at: Mapped[datetime | None]
    next_escalation_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[created_at]
