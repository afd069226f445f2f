"""Staff accounts: create them, check a password, and say who is signed in.

Passwords are hashed by werkzeug.security (scrypt, salted); only the hash is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from recovery.db import insert_unique
from recovery.models import AuditAction, Practice, Role, User
from recovery.models.user import fit_name
from recovery.services.audit import record

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
# Checked against when the email is unknown, so that a wrong email and a wrong password
# take the same time and an attacker cannot tell which addresses have accounts.
_DUMMY_HASH = generate_password_hash("not-a-real-password-0000")


class AccountError(ValueError):
    """The account cannot be created as asked; the message says why, for the CLI."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in user as the pages need them: plain values, no ORM session attached."""

    id: int
    email: str
    name: str
    role: Role
    practice_id: int | None
    practice_name: str | None
    practice_slug: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_take_pages(self) -> bool:
        # Taking a page stops the escalation to the clinicians on call: only someone who
        # can act on an urgent call may do it, not the front desk.
        return self.role in (Role.CLINICIAN, Role.MANAGER, Role.ADMIN)

    @property
    def can_see_reports(self) -> bool:
        # The recovery report is the practice's business figures: for whoever runs it.
        return self.role in (Role.MANAGER, Role.ADMIN)

    def may_see(self, practice_id: int) -> bool:
        return self.is_admin or self.practice_id == practice_id


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    role: Role,
    practice_slug: str | None,
) -> User:
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    if not name.strip():
        raise AccountError("a name is needed: it is shown on acknowledged pages and tasks")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    practice_id = None
    if practice_slug:
        practice = session.scalars(select(Practice).where(Practice.slug == practice_slug)).first()
        if practice is None:
            raise AccountError(f"no practice {practice_slug!r}")
        practice_id = practice.id
    elif role is not Role.ADMIN:
        raise AccountError("only an admin may have no practice: give --practice")
    user = User(
        email=email,
        name=fit_name(name.strip()),
        password_hash=generate_password_hash(password),
        role=role,
        practice_id=practice_id,
        active=True,
    )
    if not insert_unique(session, user):
        raise AccountError(f"a user {email} exists already")
    return user


def set_password(session: Session, email: str, password: str) -> User | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    user = session.scalars(select(User).where(User.email == normalize_email(email))).first()
    if user is not None:
        user.password_hash = generate_password_hash(password)
    return user


def set_active(session: Session, email: str, active: bool) -> User | None:
    user = session.scalars(select(User).where(User.email == normalize_email(email))).first()
    if user is not None:
        user.active = active
    return user


def list_users(session: Session) -> list[tuple[User, str | None]]:
    """Every user with their practice's slug (None for admins), by practice then email."""
    rows = session.execute(
        select(User, Practice.slug)
        .outerjoin(Practice, Practice.id == User.practice_id)
        .order_by(func.coalesce(Practice.slug, ""), User.email)
    ).all()
    return [(user, slug) for user, slug in rows]


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> Viewer | None:
    """The active user with this email and password, or None. The caller says nothing
    more specific to the person at the keyboard than "wrong email or password"."""
    user = session.scalars(select(User).where(User.email == normalize_email(email))).first()
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        record(session, user.id, AuditAction.LOGIN_FAILED, now=now)
        log.info("failed sign-in for user %s", user.id)
        return None
    record(session, user.id, AuditAction.LOGIN, now=now)
    return load_viewer(session, user.id)


def load_viewer(session: Session, user_id: int) -> Viewer | None:
    """The signed-in user, read again on every request: a deactivated user is out at once."""
    row = session.execute(
        select(User, Practice)
        .outerjoin(Practice, Practice.id == User.practice_id)
        .where(User.id == user_id, User.active.is_(True))
    ).first()
    if row is None:
        return None
    user, practice = row
    return Viewer(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        practice_id=user.practice_id,
        practice_name=practice.name if practice else None,
        practice_slug=practice.slug if practice else None,
    )
