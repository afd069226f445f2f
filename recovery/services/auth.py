"""Staff accounts: create them, check a password and a second factor, say who is signed in,
and end their sessions.

Passwords are hashed with argon2id (argon2-cffi); hashes of an older scheme (werkzeug's
scrypt, from before) still verify and are replaced by argon2 at that user's next sign-in.
Managers and admins also give a TOTP code (recovery.services.totp).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from recovery.db import insert_unique
from recovery.models import AuditAction, Practice, Role, User
from recovery.models.user import fit_name
from recovery.services.audit import record

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
# Who must give a second factor: the roles that see every patient of a practice (or of all).
SECOND_FACTOR_ROLES = frozenset({Role.MANAGER, Role.ADMIN})

_hasher = PasswordHasher()
# Checked against when the email is unknown, so that a wrong email and a wrong password
# take the same time and an attacker cannot tell which addresses have accounts. Made on
# first use, not at import: argon2 is slow on purpose.
_dummy_hash: str | None = None


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
    session_version: int = 0
    totp_enrolled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_take_pages(self) -> bool:
        # Taking a page stops the escalation to the clinicians on call: only someone who
        # can act on an urgent call may do it, not the front desk.
        return self.role in (Role.CLINICIAN, Role.MANAGER, Role.ADMIN)

    @property
    def needs_second_factor(self) -> bool:
        return self.role in SECOND_FACTOR_ROLES or self.totp_enrolled

    @property
    def can_see_reports(self) -> bool:
        # The recovery report is the practice's business figures: for whoever runs it.
        return self.role in (Role.MANAGER, Role.ADMIN)

    def may_see(self, practice_id: int) -> bool:
        return self.is_admin or self.practice_id == practice_id


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if stored_hash.startswith("$argon2"):
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    # A hash from before argon2 (werkzeug's scrypt or pbkdf2): still good for one sign-in.
    return check_password_hash(stored_hash, password)


def _needs_rehash(stored_hash: str) -> bool:
    return not stored_hash.startswith("$argon2") or _hasher.check_needs_rehash(stored_hash)


def _check_password_of_nobody(password: str) -> None:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("not-a-real-password-0000")
    verify_password(_dummy_hash, password)


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


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
    _check_password_rules(password)
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
        password_hash=hash_password(password),
        role=role,
        practice_id=practice_id,
        active=True,
        session_version=0,
        recovery_codes="",
    )
    if not insert_unique(session, user):
        raise AccountError(f"a user {email} exists already")
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == normalize_email(email))).first()


def end_sessions(user: User) -> None:
    """Every session cookie this user holds stops working at its next request."""
    user.session_version = (user.session_version or 0) + 1


def set_password(session: Session, email: str, password: str) -> User | None:
    _check_password_rules(password)
    user = find_user(session, email)
    if user is not None:
        user.password_hash = hash_password(password)
        # Whoever knew the old password may be signed in with it somewhere.
        end_sessions(user)
    return user


def set_active(session: Session, email: str, active: bool) -> User | None:
    user = find_user(session, email)
    if user is not None:
        user.active = active
        end_sessions(user)
    return user


def sign_out_everywhere(session: Session, user_id: int) -> None:
    user = session.get(User, user_id)
    if user is not None:
        end_sessions(user)


def reset_second_factor(session: Session, email: str) -> User | None:
    """For a lost phone with no recovery code left: the user enrols again at next sign-in."""
    user = find_user(session, email)
    if user is not None:
        user.totp_secret = None
        user.totp_last_step = None
        user.recovery_codes = ""
        end_sessions(user)
    return user


def has_active_user(session: Session) -> bool:
    """Whether anyone at all can sign in. While no one can (a fresh install), the sign-in
    and landing pages say how to create the first account; once anyone can, they say
    nothing about the accounts to a signed-out visitor."""
    return session.scalar(select(User.id).where(User.active.is_(True)).limit(1)) is not None


def list_users(session: Session) -> list[tuple[User, str | None]]:
    """Every user with their practice's slug (None for admins), by practice then email."""
    rows = session.execute(
        select(User, Practice.slug)
        .outerjoin(Practice, Practice.id == User.practice_id)
        .order_by(func.coalesce(Practice.slug, ""), User.email)
    ).all()
    return [(user, slug) for user, slug in rows]


def _described(email: str) -> str:
    # An unknown email is named in the audit row so an admin can see what was tried, but
    # only if it looks like one: people type their password into the email field too.
    email = normalize_email(email)
    if "@" in email and len(email) <= 254 and " " not in email:
        return f"unknown email {email}"
    return "unknown email (not an address)"


def authenticate(
    session: Session, email: str, password: str, *, now: datetime, client: str = ""
) -> Viewer | None:
    """The active user with this email and password, or None. The caller says nothing
    more specific to the person at the keyboard than "wrong email or password"; the audit
    log tells the account's owner and the admins what happened.

    A right password is not yet a sign-in: the caller records LOGIN (record_sign_in) once
    the second factor, where one is needed, is given too."""
    where = f"from {client}" if client else ""
    user = find_user(session, email)
    if user is None:
        _check_password_of_nobody(password)
        record(
            session, None, AuditAction.LOGIN_FAILED, now=now, detail=_join(_described(email), where)
        )
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        record(session, user.id, AuditAction.LOGIN_FAILED, now=now, detail=where)
        log.info("failed sign-in for user %s", user.id)
        return None
    if _needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return load_viewer(session, user.id)


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def record_sign_in(session: Session, user_id: int, *, now: datetime, client: str = "") -> None:
    record(session, user_id, AuditAction.LOGIN, now=now, detail=f"from {client}" if client else "")


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
        session_version=user.session_version or 0,
        totp_enrolled=user.totp_secret is not None,
    )
