"""An undoable staff action: what Complete or Mark booked changed, so Undo can put it back.

A row is written in the transaction of the action itself, holding the state of the task
and the episode just before it; Undo (recovery.services.undo) restores that state, once,
within the undo window, and only while nothing else has changed them since.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, enum_column
from recovery.domain.states import EpisodeStatus, TaskStatus
from recovery.models.episode import EpisodeOutcome
from recovery.models.user import NAME_LENGTH


class UndoKind(enum.Enum):
    COMPLETE_TASK = "complete_task"  # a task marked done (and its episode resolved, maybe)
    MARK_BOOKED = "mark_booked"  # an episode marked booked from the conversation page


class UndoableAction(Base):
    __tablename__ = "undoable_actions"
    # The question of every queue and conversation page: this user's recent actions.
    __table_args__ = (Index("ix_undoable_actions_user_id_done_at", "user_id", "done_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[UndoKind] = mapped_column(enum_column(UndoKind))
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))  # who did it, and may undo
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    done_at: Mapped[datetime]
    undone_at: Mapped[datetime | None]  # set once: an action is undone at most once

    # The task before Complete (COMPLETE_TASK only).
    task_status: Mapped[TaskStatus | None] = mapped_column(enum_column(TaskStatus))
    task_claimed_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    task_claimed_at: Mapped[datetime | None]
    task_note: Mapped[str | None] = mapped_column(Text)  # encrypted, as tasks.note

    # The episode before the action, when the action changed it (closed it, or turned
    # UNRECOVERED into BOOKED); all None when the episode was left as it was.
    episode_status: Mapped[EpisodeStatus | None] = mapped_column(enum_column(EpisodeStatus))
    episode_outcome: Mapped[EpisodeOutcome | None] = mapped_column(enum_column(EpisodeOutcome))
    episode_outcome_at: Mapped[datetime | None]
    episode_joinable: Mapped[bool | None] = mapped_column(Boolean)
