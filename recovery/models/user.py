"""A staff user: who may sign in to the task queue, the page links and the timelines."""

from __future__ import annotations

import enum

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from recovery.db import Base, created_at, enum_column

# A person's name as shown on a claimed task or a taken page: one length for every column
# that holds one, and one function that makes a name fit it.
NAME_LENGTH = 100


def fit_name(name: str) -> str:
    return name[:NAME_LENGTH]


class Role(enum.Enum):
    STAFF = "staff"  # front desk, billing: works the task queue
    CLINICIAN = "clinician"  # nurses and doctors: also takes urgent pages
    MANAGER = "manager"  # the practice manager: everything a clinician may do
    ADMIN = "admin"  # IT: every practice (practice_id is empty)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-case: people type their address with whatever capitals they like.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    # None only for admins, who see every practice.
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id"), index=True)
    # A user who left is deactivated, never deleted: the audit trail keeps pointing at them.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
