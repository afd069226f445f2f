"""A practice (a clinic) and the phone numbers patients call it on."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recovery.db import Base, created_at, phone

if TYPE_CHECKING:
    from recovery.domain.hours import BusinessHours


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    forward_to: Mapped[phone | None]
    ring_timeout_s: Mapped[int] = mapped_column(Integer, default=20)
    hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)
    booking_url: Mapped[str | None] = mapped_column(String(500))
    visit_value: Mapped[int] = mapped_column(Integer, default=0)
    on_call: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    blocked_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Repeat missed calls from one caller within this many hours join one episode.
    episode_window_h: Mapped[int] = mapped_column(Integer, default=12)
    # Routing and follow-up policy (see the practices file's documentation).
    billing_sla_h: Mapped[int] = mapped_column(Integer, default=4)
    refill_sla_h: Mapped[int] = mapped_column(Integer, default=2)
    refill_cutoff: Mapped[str] = mapped_column(String(5), default="15:00")
    ack_timeout_s: Mapped[int] = mapped_column(Integer, default=300)
    # A clinical concern (a symptom, no red flag): a nurse calls back within this many
    # minutes, by the clock, not business hours; unclaimed by then, it is paged.
    clinical_callback_min: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # Segments a second each of its numbers may send (a US long code: 1); see send_rate.
    send_rate_per_s: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    manager: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"name", "phone"}
    reply_window_h: Mapped[int] = mapped_column(Integer, default=24)
    nudge_after_h: Mapped[int] = mapped_column(Integer, default=4)
    quiet_hours: Mapped[str] = mapped_column(String(11), default="21:00-08:00")
    # Set when a manager edited the on-call roster or the manager to page in the browser:
    # from then on the browser owns them, and loading the practices file leaves them be.
    roster_edited_at: Mapped[datetime | None]
    # What this practice's booking system or PBX signs generic webhooks with; a request
    # signed with it acts on this practice only (services/webhook_secrets.py). A rotated
    # secret stays valid until previous_webhook_secret_until.
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(128))
    previous_webhook_secret_until: Mapped[datetime | None]
    created_at: Mapped[created_at]

    numbers: Mapped[list[PracticeNumber]] = relationship(
        back_populates="practice", cascade="all, delete-orphan", order_by="PracticeNumber.position"
    )

    @property
    def main_number(self) -> str:
        return min(self.numbers, key=lambda n: n.position).number

    def business_hours(self) -> BusinessHours:
        from recovery.domain.hours import BusinessHours

        return BusinessHours.parse(self.timezone, self.hours, self.holidays)


class PracticeNumber(Base):
    """A line patients call. A number belongs to one practice: that is how a webhook finds it."""

    __tablename__ = "practice_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    number: Mapped[phone] = mapped_column(unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # 0 is the main number

    practice: Mapped[Practice] = relationship(back_populates="numbers")
