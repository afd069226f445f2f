"""Fire drills: text the on-call roster a clearly marked TEST page and learn who answers,
and how fast, before a real emergency asks.

A drill is its own record (`drills`, `drill_answers`), never a page: it opens and closes
no episode, creates no task, does not escalate, and nothing that counts pages (reports,
the queue's urgent list, the page link) sees it. Its code starts with "T" while a real
page's is digits only, so "ACK T1234" can only answer a drill and "ACK 1234" only a real
page; a bare "ACK" takes the sender's real page first and answers a drill only when the
sender holds none (`replies` asks `paging` before it asks here).

Everyone on the roster is texted at once: a drill asks each person whether they would
answer, not whether the chain would reach someone. Each person's first ACK within
DRILL_WINDOW is recorded once (a unique constraint), with the seconds since the drill
began; the manager reads them on the drill's page.

Runs in the caller's transaction; returned message ids are dispatched after commit.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.db import insert_unique
from recovery.domain.drills import (
    DRILL_CODE_PREFIX,
    DRILL_WINDOW,
    DrillAnswerOutcome,
    DrillRefusal,
    is_drill_code,
)
from recovery.domain.messages import MessageKind
from recovery.domain.phones import mask, parse_number
from recovery.domain.templates import SmsTemplates
from recovery.models import AuditAction, Practice
from recovery.models.drill import Drill, DrillAnswer
from recovery.models.user import fit_name
from recovery.services.admin import may_administer
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.errors import NotAllowed, NotFound
from recovery.services.texts import queue_text

log = logging.getLogger(__name__)

CODE_DIGITS = (4, 6)  # "T" + 4 digits, then 7 characters once those keep colliding
CODE_TRIES = 25


@dataclass(frozen=True)
class StartedDrill:
    drill: Drill | None
    refusal: DrillRefusal | None
    message_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DrillAck:
    drill: Drill | None
    outcome: DrillAnswerOutcome
    message_ids: list[int] = field(default_factory=list)


def start_drill(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    *,
    started_by: str,
    now: datetime,
) -> StartedDrill:
    """Text everyone on the practice's roster the TEST page. One drill at a time per
    practice: a second one while the first is open would mix their answers."""
    running = open_drill(session, practice, now)
    if running is not None:
        return StartedDrill(running, DrillRefusal.ALREADY_RUNNING)
    roster = [
        {"name": str(e["name"]), "phone": str(e["phone"])}
        for e in practice.on_call
        if e.get("phone")
    ]
    if not roster:
        return StartedDrill(None, DrillRefusal.NO_ROSTER)
    drill = _insert_drill(
        session,
        practice_id=practice.id,
        started_by=fit_name(started_by),
        roster=roster,
        started_at=now,
        ends_at=now + DRILL_WINDOW,
    )
    message_ids = [
        queue_text(
            session,
            templates,
            practice,
            to=person["phone"],
            kind=MessageKind.PAGE_DRILL,
            now=now,
            reference=drill.code,
        ).id
        for person in roster
    ]
    log.info(
        "drill %s (%s) started by %s: texting %s",
        drill.id,
        drill.code,
        drill.started_by,
        ", ".join(mask(p["phone"]) for p in roster),
    )
    return StartedDrill(drill, None, message_ids)


def open_drill(session: Session, practice: Practice, now: datetime) -> Drill | None:
    return session.scalars(
        select(Drill)
        .where(Drill.practice_id == practice.id, Drill.ends_at > now)
        .order_by(Drill.started_at.desc())
        .limit(1)
    ).first()


def answer(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    *,
    from_number: str,
    code: str | None,
    now: datetime,
) -> DrillAck | None:
    """A clinician's ACK for a drill: "ACK T1234", or a bare "ACK" while they are in an
    open drill (the caller has made sure they hold no real page). None: this ACK is
    nothing to do with a drill."""
    sender = parse_number(from_number).e164 or from_number
    if is_drill_code(code):
        assert code is not None
        drill = session.scalars(
            select(Drill).where(Drill.practice_id == practice.id, Drill.code == code.upper())
        ).first()
        if drill is None or not _in_roster(drill, sender):
            return DrillAck(None, DrillAnswerOutcome.NOT_IN_DRILL)
    elif code is None:
        drill = open_drill(session, practice, now)
        if drill is None or not _in_roster(drill, sender):
            return None
    else:
        return None  # a real page's code: not ours
    if now > drill.ends_at:
        return DrillAck(drill, DrillAnswerOutcome.CLOSED)
    answered = DrillAnswer(
        drill_id=drill.id, phone=sender, name=_name(drill, sender), answered_at=now
    )
    if not insert_unique(session, answered):
        return DrillAck(drill, DrillAnswerOutcome.ALREADY_ANSWERED)
    confirmation = queue_text(
        session,
        templates,
        practice,
        to=sender,
        kind=MessageKind.PAGE_DRILL_ACK,
        now=now,
        reference=drill.code,
    )
    log.info(
        "drill %s (%s) answered by %s after %s",
        drill.id,
        drill.code,
        mask(sender),
        now - drill.started_at,
    )
    return DrillAck(drill, DrillAnswerOutcome.RECORDED, [confirmation.id])


def _in_roster(drill: Drill, sender: str) -> bool:
    return any(person["phone"] == sender for person in drill.roster)


def _name(drill: Drill, sender: str) -> str:
    for person in drill.roster:
        if person["phone"] == sender:
            return fit_name(str(person["name"]))
    return mask(sender)


# --- for a manager in the browser -------------------------------------------------------

ONLY_MANAGERS = "Only the practice's manager or an administrator can run a fire drill."


def run(
    session: Session, templates: SmsTemplates, viewer: Viewer, practice: Practice, *, now: datetime
) -> StartedDrill:
    """The roster page's button: a manager (or an admin) starts a drill; audited."""
    if not may_administer(viewer) or not viewer.may_see(practice.id):
        raise NotAllowed(ONLY_MANAGERS)
    started = start_drill(session, templates, practice, started_by=viewer.name, now=now)
    if started.refusal is None and started.drill is not None:
        record(
            session, viewer.id, AuditAction.RUN_DRILL, now=now, detail=f"drill {started.drill.code}"
        )
    return started


def viewed(session: Session, viewer: Viewer, drill_id: int) -> tuple[Drill, Practice]:
    """A drill's result, for its practice's manager or an admin."""
    drill = session.get(Drill, drill_id)
    if drill is None or not viewer.may_see(drill.practice_id):
        raise NotFound
    if not may_administer(viewer):
        raise NotAllowed(ONLY_MANAGERS)
    practice = session.get(Practice, drill.practice_id)
    assert practice is not None  # a foreign key
    return drill, practice


# --- the result a manager reads ---------------------------------------------------------


@dataclass(frozen=True)
class DrillRow:
    name: str
    answered_at: datetime | None
    seconds: int | None  # from the drill's start to the answer
    in_time: bool  # answered within the practice's ACK timeout: a real page would be theirs


@dataclass(frozen=True)
class DrillResult:
    drill: Drill
    open: bool
    rows: list[DrillRow]  # in roster order
    answered: int
    ack_timeout_s: int


def result(session: Session, practice: Practice, drill: Drill, now: datetime) -> DrillResult:
    answers = {
        a.phone: a
        for a in session.scalars(select(DrillAnswer).where(DrillAnswer.drill_id == drill.id))
    }
    rows = []
    for person in drill.roster:
        found = answers.get(person["phone"])
        seconds = round((found.answered_at - drill.started_at).total_seconds()) if found else None
        rows.append(
            DrillRow(
                str(person["name"]),
                found.answered_at if found else None,
                seconds,
                seconds is not None and seconds <= practice.ack_timeout_s,
            )
        )
    return DrillResult(drill, now <= drill.ends_at, rows, len(answers), practice.ack_timeout_s)


def recent(session: Session, practice: Practice, limit: int = 5) -> list[Drill]:
    return list(
        session.scalars(
            select(Drill)
            .where(Drill.practice_id == practice.id)
            .order_by(Drill.started_at.desc(), Drill.id.desc())
            .limit(limit)
        )
    )


# --- codes ------------------------------------------------------------------------------


def _insert_drill(session: Session, **fields: object) -> Drill:
    """A fresh code: a query finds a free one, the unique constraint settles a race."""
    for _ in range(5):
        drill = Drill(code=_free_code(session), **fields)
        if insert_unique(session, drill):
            return drill
    raise RuntimeError("no drill code could be inserted")


def _free_code(session: Session) -> str:
    for digits in CODE_DIGITS:
        for _ in range(CODE_TRIES):
            code = f"{DRILL_CODE_PREFIX}{secrets.randbelow(10**digits):0{digits}d}"
            if session.scalar(select(Drill.id).where(Drill.code == code)) is None:
                return code
    raise RuntimeError("no free drill code")  # pragma: no cover: 10**6 codes
