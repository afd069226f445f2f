"""A staff user: who may sign in to the task queue, the page links and the timelines."""

from __future__ import annotations

import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
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
    # Every session cookie carries the version it was issued under; bumping it (sign-out,
    # a new password, deactivation, an admin's "sign out everywhere") ends them all at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The TOTP second factor: the shared secret, encrypted with the PHI key (it is as good
    # as the phone it was scanned into), and the last 30-second step used, so that a code
    # seen over someone's shoulder cannot be replayed within its minute.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # One-time recovery codes for a lost phone: SHA-256 of each unused code, space-separated
    # (the codes are random 50-bit strings, so a fast hash is enough).
    recovery_codes: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[created_at]
