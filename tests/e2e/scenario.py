"""A morning at Valley Family Clinic, built through the real services: missed calls, the
patients' replies, the tasks and the urgent page they became, and the staff who sign in.

The unit tests of the staff pages and the browser tests both start from it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import generate_password_hash

from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import Page, Practice, Role, SavedReply, Task, TaskQueue, User
from recovery.services.auth import SECOND_FACTOR_ROLES
from recovery.services.replies import handle_reply, record_inbound
from tests.support.factories import missed_call

PASSWORD = "correct horse battery"
# The admin's authenticator app: managers and admins sign in with a TOTP code too.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
LINE = "+15125550100"  # valley-family's main number
OTHER_LINE = "+16175550100"  # always-open's
URGENT_CALLER = "+15125550199"
BILLING_CALLER = "+15125550188"
REFILL_CALLER = "+15125550177"
UNCLEAR_CALLER = "+15125550166"
OTHER_CALLER = "+16175550123"
URGENT_WORDS = "My dad has chest pain and can't breathe well, what do we do?"
BASE_URL = "https://recovery.example.com"


@dataclass(frozen=True)
class Users:
    nurse: str = "nurse@valley.example"  # clinician at valley-family
    desk: str = "desk@valley.example"  # front desk at valley-family
    other: str = "desk@always-open.example"  # front desk at another practice
    admin: str = "it@recovery.example"  # every practice


@dataclass(frozen=True)
class Scenario:
    users: Users
    page_code: str
    urgent_episode_id: int
    billing_task_id: int
    refill_task_id: int
    billing_episode_id: int
    unclear_task_id: int
    other_task_id: int


@functools.cache
def _password_hash() -> str:
    return generate_password_hash(PASSWORD)


def _sid(prefix: str, seed: str) -> str:
    return prefix + hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


def missed_call_and_reply(
    session: Session,
    templates: SmsTemplates,
    cipher: PhiCipher,
    *,
    caller: str,
    line: str,
    words: list[str],
    at: datetime,
) -> None:
    missed_call(
        session, templates, at=at, caller=caller, called=line, call_id=_sid("CA", f"{caller}{at}")
    )
    for n, text in enumerate(words):
        when = at + timedelta(minutes=2 + n)
        patient_writes(session, templates, cipher, caller=caller, line=line, text=text, at=when)


def patient_writes(
    session: Session,
    templates: SmsTemplates,
    cipher: PhiCipher,
    *,
    caller: str,
    line: str,
    text: str,
    at: datetime,
) -> None:
    """A patient's text to the line, recorded and routed as the webhook and worker do."""
    stored = record_inbound(
        session,
        cipher,
        provider_sid=_sid("SM", f"{caller}{at}{text}"),
        from_raw=caller,
        to_raw=line,
        body=text,
        now=at,
    )
    assert stored.message_id is not None
    handle_reply(session, templates, cipher, stored.message_id, now=at, public_base_url=BASE_URL)


def add_manager(sessions: sessionmaker[Session], users: Users, email: str) -> None:
    """A manager at Valley Family, signing in with the scenario's password and code."""
    with session_scope(sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        desk = session.scalars(select(User).where(User.email == users.desk)).one()
        ada = session.scalars(select(User).where(User.email == users.admin)).one()
        session.add(
            User(
                email=email,
                name="Pat Kim",
                password_hash=desk.password_hash,
                role=Role.MANAGER,
                practice_id=valley.id,
                active=True,
                totp_secret=ada.totp_secret,  # managers sign in with a code too
            )
        )


def add_saved_reply(sessions: sessionmaker[Session]) -> None:
    """Valley Family's one saved reply, "Please call us", as a manager would add it."""
    with session_scope(sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        session.add(
            SavedReply(
                practice_id=valley.id,
                title="Please call us",
                body="{{ practice_name }}: we tried to reach you. "
                "Please call {{ practice_phone }}.",
                active=True,
                created_at=utcnow(),
            )
        )


def build(
    sessions: sessionmaker[Session], templates: SmsTemplates, cipher: PhiCipher, now: datetime
) -> Scenario:
    users = Users()
    with session_scope(sessions) as session:
        for email, name, role, slug in [
            (users.nurse, "Nurse Lee", Role.CLINICIAN, "valley-family"),
            (users.desk, "Dana Front", Role.STAFF, "valley-family"),
            (users.other, "Olga Other", Role.STAFF, "always-open"),
            (users.admin, "Ada Admin", Role.ADMIN, None),
        ]:
            # One hash for everyone, made once: password hashes are slow on purpose, and
            # the tests of create_user itself go through the command line. Werkzeug's
            # scrypt, as before argon2: every sign-in in the tests upgrades one.
            practice_id = session.scalars(select(Practice.id).where(Practice.slug == slug)).first()
            session.add(
                User(
                    email=email,
                    name=name,
                    password_hash=_password_hash(),
                    role=role,
                    practice_id=practice_id,
                    active=True,
                    totp_secret=cipher.encrypt(TOTP_SECRET)
                    if role in SECOND_FACTOR_ROLES
                    else None,
                )
            )
        start = now - timedelta(hours=3)
        missed_call_and_reply(
            session,
            templates,
            cipher,
            caller=BILLING_CALLER,
            line=LINE,
            words=["BILLING"],
            at=start,
        )
        missed_call_and_reply(
            session,
            templates,
            cipher,
            caller=REFILL_CALLER,
            line=LINE,
            words=["I need a refill of my blood pressure meds"],
            at=start + timedelta(minutes=40),
        )
        missed_call_and_reply(
            session,
            templates,
            cipher,
            caller=OTHER_CALLER,
            line=OTHER_LINE,
            words=["question about my bill"],
            at=start + timedelta(minutes=50),
        )
        missed_call_and_reply(
            session,
            templates,
            cipher,
            caller=UNCLEAR_CALLER,
            line=LINE,
            words=["hello??", "is this about my dog"],
            at=start + timedelta(minutes=55),
        )
        missed_call_and_reply(
            session,
            templates,
            cipher,
            caller=URGENT_CALLER,
            line=LINE,
            words=[URGENT_WORDS],
            at=now - timedelta(minutes=6),
        )
        page = session.scalars(select(Page)).one()
        valley = session.scalars(select(Practice.id).where(Practice.slug == "valley-family")).one()
        tasks = {
            (t.practice_id == valley, t.queue): t
            for t in session.scalars(select(Task).order_by(Task.id))
        }
        # The front desk has not got to this one: it is 40 minutes overdue whatever the
        # practice's hours make of today.
        unclear = tasks[True, TaskQueue.FRONT_DESK]
        unclear.due_at = now - timedelta(minutes=40)
        billing = tasks[True, TaskQueue.BILLING]
        refill = tasks[True, TaskQueue.CARE_TEAM]
        other = tasks[False, TaskQueue.BILLING]
        return Scenario(
            users=users,
            page_code=page.code,
            urgent_episode_id=page.episode_id,
            billing_task_id=billing.id,
            refill_task_id=refill.id,
            billing_episode_id=billing.episode_id,
            unclear_task_id=unclear.id,
            other_task_id=other.id,
        )
