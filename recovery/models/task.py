"""A staff task: something a person must do for a patient, in a queue, with an SLA."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, enum_column
from recovery.domain.states import TaskStatus
from recovery.domain.tasks import TaskReason
from recovery.models.user import NAME_LENGTH


class TaskQueue(enum.Enum):
    BILLING = "billing"  # billing questions: next business day
    CARE_TEAM = "care_team"  # refills: same business day; clinical concerns: minutes
    FRONT_DESK = "front_desk"  # replies we could not understand twice


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_queue_status_due_at", "practice_id", "queue", "status", "due_at"),
        # The SLA sweep's question, every tick: open tasks past due not yet alerted.
        Index("ix_tasks_status_breached_at_due_at", "status", "breached_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    queue: Mapped[TaskQueue] = mapped_column(enum_column(TaskQueue))
    reason: Mapped[TaskReason] = mapped_column(enum_column(TaskReason))
    status: Mapped[TaskStatus] = mapped_column(enum_column(TaskStatus), default=TaskStatus.OPEN)
    due_at: Mapped[datetime]
    created_at: Mapped[created_at]
    claimed_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    claimed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # What staff wrote on completing it, about a patient: encrypted (recovery.crypto).
    note: Mapped[str | None] = mapped_column(Text)
    # The page started because nobody claimed this (clinical) task by its due time: set
    # once, so a task is paged exactly once.
    page_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id"))
    # The patient wrote again while the task was open, and no one has answered since: the
    # queue says so. A staff reply from the conversation page clears it.
    patient_replied_at: Mapped[datetime | None]
    # The SLA sweep's claim: set once, when it first finds the task past due and alerts the
    # manager (recovery.services.breaches). Never cleared, so the alert goes out once.
    breached_at: Mapped[datetime | None]
    # Past twice its SLA: moved to the manager's own list (assigned_to).
    escalated_at: Mapped[datetime | None]
    # A person the task is handed to (reassigned, or escalated to the manager): on their
    # "mine" list whoever claims it.
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
