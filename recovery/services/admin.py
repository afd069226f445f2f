"""Administration in the browser: users, the on-call roster and saved replies.

A manager administers their own practice; an admin every practice. Every change is
audited by reference (user ids, roles, counts), never by phone number or words. The
command line (`recovery users ...`) keeps working beside this: both write the same rows.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.db import insert_unique
from recovery.domain.change import Changed
from recovery.domain.phones import national_format, parse_number
from recovery.domain.templates import (
    SmsContext,
    TemplateError,
    check_saved_reply,
    render_saved_reply,
)
from recovery.models import (
    AuditAction,
    PasswordLink,
    Practice,
    Role,
    SavedReply,
    User,
)
from recovery.models.user import fit_name
from recovery.services.audit import record
from recovery.services.auth import MIN_PASSWORD_LENGTH, Viewer, hash_password, normalize_email
from recovery.services.errors import NotAllowed, NotFound

LINK_LIFETIME = timedelta(days=3)
MAX_ROSTER = 20
MAX_SAVED_REPLIES = 50


class Invalid(ValueError):
    """What was typed cannot be saved; the message says why, for the form."""


# A refusal of the pages themselves too, not only of a change: the front desk that opens
# /admin/users has changed nothing.
ONLY_MANAGERS = (
    "Administration (users, the on-call roster, saved replies) is for the practice's "
    "manager or an administrator."
)


def may_administer(viewer: Viewer) -> bool:
    return viewer.role in (Role.MANAGER, Role.ADMIN)


def _practice(session: Session, viewer: Viewer, practice_id: int) -> Practice:
    if not may_administer(viewer):
        raise NotAllowed(ONLY_MANAGERS)
    practice = session.get(Practice, practice_id)
    if practice is None or not viewer.may_see(practice_id):
        raise NotFound
    return practice


def practice_by_slug(session: Session, viewer: Viewer, slug: str | None) -> Practice:
    """The practice an admin chose (the first by name by default), or a manager's own."""
    if not may_administer(viewer):
        raise NotAllowed(ONLY_MANAGERS)
    if viewer.is_admin:
        query = select(Practice).order_by(Practice.name)
        if slug:
            query = query.where(Practice.slug == slug)
        practice = session.scalars(query).first()
    else:
        practice = session.get(Practice, viewer.practice_id) if viewer.practice_id else None
    if practice is None:
        raise NotFound
    return practice


def roles_for(viewer: Viewer) -> list[Role]:
    """The roles this user may hand out: a manager cannot make an admin."""
    roles = [Role.STAFF, Role.CLINICIAN, Role.MANAGER]
    return [*roles, Role.ADMIN] if viewer.is_admin else roles


# --- users -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    role: Role
    active: bool
    invited: bool  # has not chosen a password yet
    is_me: bool


def list_users(
    session: Session, viewer: Viewer, practice: Practice, *, now: datetime
) -> list[UserRow]:
    _practice(session, viewer, practice.id)
    users = session.scalars(
        select(User).where(User.practice_id == practice.id).order_by(User.name, User.email)
    ).all()
    pending = set(
        session.scalars(
            select(PasswordLink.user_id).where(
                PasswordLink.used_at.is_(None),
                PasswordLink.user_id.in_([u.id for u in users]),
            )
        )
    )
    record(session, viewer.id, AuditAction.VIEW_USERS, now=now, detail=f"practice {practice.slug}")
    return [
        UserRow(
            u.id,
            u.email,
            u.name,
            u.role,
            u.active,
            u.id in pending and u.password_hash.startswith("!"),
            u.id == viewer.id,
        )
        for u in users
    ]


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Invitation:
    user_id: int
    email: str
    token: str  # shown once, in the link; only its hash is stored
    expires_at: datetime


def _new_link(session: Session, user: User, by: int | None, now: datetime) -> tuple[str, datetime]:
    # A new link makes the older ones of this user useless: only the latest one works.
    session.execute(
        update(PasswordLink)
        .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    expires = now + LINK_LIFETIME
    session.add(
        PasswordLink(
            user_id=user.id,
            token_hash=hash_link_token(token),
            created_by=by,
            created_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    return token, expires


def invite(
    session: Session,
    viewer: Viewer,
    practice: Practice,
    *,
    email: str,
    name: str,
    role: Role,
    now: datetime,
) -> Invitation:
    """A new user of the practice, with no password until they follow their link."""
    _practice(session, viewer, practice.id)
    if role not in roles_for(viewer) or role is Role.ADMIN:
        raise Invalid(
            "Invite managers, clinicians and staff here; admins are made on the command line."
        )
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise Invalid(f"{email or 'That'} is not an email address.")
    if not name.strip():
        raise Invalid("A name is needed: it is shown on claimed tasks and taken pages.")
    user = User(
        email=email,
        name=fit_name(name.strip()),
        # "!" can never be a werkzeug hash: nobody signs in until they choose a password.
        password_hash="!" + secrets.token_hex(16),
        role=role,
        practice_id=practice.id,
        active=True,
        created_at=now,
    )
    if not insert_unique(session, user):
        raise Invalid(f"{email} already has an account.")
    token, expires = _new_link(session, user, viewer.id, now)
    record(
        session,
        viewer.id,
        AuditAction.INVITE_USER,
        now=now,
        detail=f"user {user.id}; role {role.value}; practice {practice.slug}",
    )
    return Invitation(user.id, email, token, expires)


def new_password_link(
    session: Session, viewer: Viewer, user_id: int, *, now: datetime
) -> Invitation:
    """A fresh one-time link for a user who lost theirs (or forgot their password)."""
    user = _user(session, viewer, user_id)
    token, expires = _new_link(session, user, viewer.id, now)
    record(session, viewer.id, AuditAction.INVITE_USER, now=now, detail=f"user {user.id}; new link")
    return Invitation(user.id, user.email, token, expires)


def _user(session: Session, viewer: Viewer, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.practice_id is None:
        raise NotFound
    _practice(session, viewer, user.practice_id)
    return user


def change_role(
    session: Session, viewer: Viewer, user_id: int, role: Role, *, now: datetime
) -> Changed[User]:
    user = _user(session, viewer, user_id)
    if role is Role.ADMIN or role not in roles_for(viewer):
        raise Invalid("That role cannot be given here.")
    if user.id == viewer.id:
        raise Invalid("You cannot change your own role: ask another manager or an admin.")
    if user.role is role:
        return Changed(user, False)
    before = user.role
    user.role = role
    record(
        session,
        viewer.id,
        AuditAction.CHANGE_ROLE,
        now=now,
        detail=f"user {user.id}; {before.value} -> {role.value}",
    )
    return Changed(user, True)


def set_active(
    session: Session, viewer: Viewer, user_id: int, active: bool, *, now: datetime
) -> Changed[User]:
    """Deactivate (signed out everywhere at once: every request reads `active`) or
    bring back a user. Never deleted: the audit trail points at them."""
    user = _user(session, viewer, user_id)
    if user.id == viewer.id and not active:
        raise Invalid("You cannot deactivate yourself.")
    if user.active is active:
        return Changed(user, False)
    user.active = active
    action = AuditAction.REACTIVATE_USER if active else AuditAction.DEACTIVATE_USER
    record(session, viewer.id, action, now=now, detail=f"user {user.id}")
    return Changed(user, True)


@dataclass(frozen=True)
class LinkHolder:
    user_id: int
    email: str
    name: str


def _live_link(session: Session, token: str, now: datetime) -> PasswordLink | None:
    link = session.scalars(
        select(PasswordLink)
        .where(PasswordLink.token_hash == hash_link_token(token))
        .with_for_update()
    ).first()
    if link is None or link.used_at is not None or link.expires_at <= now:
        return None
    return link


def link_holder(session: Session, token: str, *, now: datetime) -> LinkHolder | None:
    link = _live_link(session, token, now)
    user = session.get(User, link.user_id) if link else None
    if user is None or not user.active:
        return None
    return LinkHolder(user.id, user.email, user.name)


def redeem(session: Session, token: str, password: str, *, now: datetime) -> LinkHolder | None:
    """Choose a password through a one-time link; None if the link is used up or old."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.")
    link = _live_link(session, token, now)
    user = session.get(User, link.user_id) if link else None
    if link is None or user is None or not user.active:
        return None
    link.used_at = now
    user.password_hash = hash_password(password)
    record(session, user.id, AuditAction.SET_PASSWORD, now=now, detail=f"link {link.id}")
    return LinkHolder(user.id, user.email, user.name)


# --- the on-call roster ------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    name: str
    phone: str

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Person:
        """One entry of a practice's on_call list (JSON: a name and an E.164 phone)."""
        return cls(str(entry.get("name", "")), str(entry.get("phone", "")))


@dataclass(frozen=True)
class Roster:
    practice_id: int
    practice_slug: str
    practice_name: str
    on_call: list[Person]
    manager: Person | None
    edited_in_browser: bool


def roster(session: Session, viewer: Viewer, practice: Practice) -> Roster:
    _practice(session, viewer, practice.id)
    manager = practice.manager or {}
    return Roster(
        practice.id,
        practice.slug,
        practice.name,
        [Person.of(p) for p in practice.on_call],
        Person(str(manager["name"]), str(manager["phone"])) if manager.get("phone") else None,
        practice.roster_edited_at is not None,
    )


def _person(name: str, phone: str, what: str) -> dict[str, Any]:
    name = name.strip()
    number = parse_number(phone).e164
    if not name:
        raise Invalid(f"{what}: a name is needed (it is shown on taken pages).")
    if number is None:
        raise Invalid(f"{what}: {phone.strip() or 'no number'} is not a phone number.")
    return {"name": fit_name(name), "phone": number}


def save_roster(
    session: Session,
    viewer: Viewer,
    practice_id: int,
    *,
    on_call: list[tuple[str, str]],
    manager: tuple[str, str] | None,
    now: datetime,
) -> Changed[Roster]:
    """The order clinicians are paged in, and the manager paged with everyone when nobody
    acknowledges. A page already under way keeps the roster it started with; the next
    page uses this one."""
    practice = _practice(session, viewer, practice_id)
    people = [
        _person(name, phone, f"On call #{n}")
        for n, (name, phone) in enumerate(on_call, 1)
        if name.strip() or phone.strip()
    ]
    if not people:
        raise Invalid("Keep at least one person on call: an urgent page must reach someone.")
    if len(people) > MAX_ROSTER:
        raise Invalid(f"At most {MAX_ROSTER} people on call.")
    numbers = [p["phone"] for p in people]
    if len(set(numbers)) != len(numbers):
        raise Invalid("The same phone number is on the roster twice.")
    boss = _person(*manager, "Manager") if manager and any(v.strip() for v in manager) else None
    if people == list(practice.on_call) and boss == practice.manager:
        return Changed(roster(session, viewer, practice), False)
    practice.on_call = people
    practice.manager = boss
    practice.roster_edited_at = now
    record(
        session,
        viewer.id,
        AuditAction.EDIT_ROSTER,
        now=now,
        detail=f"practice {practice.slug}; {len(people)} on call; "
        f"manager {'set' if boss else 'none'}",
    )
    session.flush()
    return Changed(roster(session, viewer, practice), True)


# --- saved replies -----------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    id: int
    title: str
    body: str  # the template, as the manager wrote it
    preview: str  # as a patient who called the main number gets it


def _preview(practice: Practice, body: str) -> str:
    context = SmsContext(
        practice_name=practice.name, practice_phone=national_format(practice.main_number)
    )
    return render_saved_reply(body, context)


def saved_replies(session: Session, viewer: Viewer, practice_id: int) -> list[Saved]:
    """Every staff member of the practice may use them; only managers edit them."""
    if not viewer.may_see(practice_id):
        raise NotFound
    practice = session.get(Practice, practice_id)
    if practice is None:
        raise NotFound
    rows = session.scalars(
        select(SavedReply)
        .where(SavedReply.practice_id == practice_id, SavedReply.active.is_(True))
        .order_by(SavedReply.title, SavedReply.id)
    )
    return [Saved(r.id, r.title, r.body, _preview(practice, r.body)) for r in rows]


def _checked(title: str, body: str) -> tuple[str, str]:
    title = title.strip()[:80]
    body = body.strip()
    if not title or not body:
        raise Invalid("A saved reply needs a title and a text.")
    if len(body) > 1000:
        raise Invalid("Keep a saved reply under 1,000 characters (about six texts).")
    try:
        check_saved_reply(title, body)
    except TemplateError as exc:
        raise Invalid(str(exc)) from None
    return title, body


def add_saved_reply(
    session: Session, viewer: Viewer, practice_id: int, *, title: str, body: str, now: datetime
) -> Saved:
    practice = _practice(session, viewer, practice_id)
    title, body = _checked(title, body)
    count = len(saved_replies(session, viewer, practice.id))
    if count >= MAX_SAVED_REPLIES:
        raise Invalid(f"At most {MAX_SAVED_REPLIES} saved replies.")
    row = SavedReply(practice_id=practice.id, title=title, body=body, active=True, created_at=now)
    session.add(row)
    session.flush()
    record(
        session,
        viewer.id,
        AuditAction.EDIT_SAVED_REPLIES,
        now=now,
        detail=f"practice {practice.slug}; added {row.id}",
    )
    return Saved(row.id, row.title, row.body, _preview(practice, row.body))


def edit_saved_reply(
    session: Session, viewer: Viewer, reply_id: int, *, title: str, body: str, now: datetime
) -> Changed[Saved]:
    """The same checks as adding one; unchanged words are not a change (nor audited)."""
    row = session.get(SavedReply, reply_id)
    if row is None or not row.active:
        raise NotFound
    practice = _practice(session, viewer, row.practice_id)
    title, body = _checked(title, body)
    changed = (title, body) != (row.title, row.body)
    if changed:
        row.title, row.body = title, body
        record(
            session,
            viewer.id,
            AuditAction.EDIT_SAVED_REPLIES,
            now=now,
            detail=f"practice {practice.slug}; edited {row.id}",
        )
    return Changed(Saved(row.id, row.title, row.body, _preview(practice, row.body)), changed)


def remove_saved_reply(
    session: Session, viewer: Viewer, reply_id: int, *, now: datetime
) -> Changed[int]:
    row = session.get(SavedReply, reply_id)
    if row is None:
        raise NotFound
    practice = _practice(session, viewer, row.practice_id)
    if not row.active:
        return Changed(row.id, False)
    row.active = False
    record(
        session,
        viewer.id,
        AuditAction.EDIT_SAVED_REPLIES,
        now=now,
        detail=f"practice {practice.slug}; removed {row.id}",
    )
    return Changed(row.id, True)
