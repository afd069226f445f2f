"""Fire drills: the roster gets a TEST page, each answer is recorded once with its time,
and no episode, task or page is touched; a real page always wins a bare ACK."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.drills import DRILL_WINDOW, DrillAnswerOutcome, DrillRefusal
from recovery.domain.messages import MessageKind
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, Message, Page, PageStatus, Task
from recovery.models.drill import Drill, DrillAnswer
from recovery.services import drills
from tests.unit.test_paging import LEE, MAIN_LINE, RIVERA, T0, practice, start
from tests.unit.test_replies import after_missed_call, reply  # noqa: F401 - a fixture

STARTED = T0


def run_drill(sessions: sessionmaker[Session], templates: SmsTemplates) -> tuple[Drill, list[int]]:
    with session_scope(sessions) as session:
        started = drills.start_drill(
            session, templates, practice(session), started_by="Pat Okafor", now=STARTED
        )
        assert started.refusal is None and started.drill is not None
        return started.drill, started.message_ids


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def messages(sessions: sessionmaker[Session], ids: list[int]) -> list[Message]:
    with sessions() as session:
        return list(
            session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
        )


def result(sessions: sessionmaker[Session], drill: Drill, now=STARTED):  # type: ignore[no-untyped-def]
    with sessions() as session:
        stored = session.get(Drill, drill.id)
        assert stored is not None
        return drills.result(session, practice(session), stored, now)


def test_a_drill_texts_everyone_on_the_roster_at_once_a_page_marked_test(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    drill, ids = run_drill(sessions, templates)

    assert re.fullmatch(r"T\d{4}", drill.code)
    texts = messages(sessions, ids)
    assert [t.to_number for t in texts] == [RIVERA, LEE]
    for text in texts:
        assert text.kind is MessageKind.PAGE_DRILL and text.from_number == MAIN_LINE
        assert text.body.startswith("TEST ONLY, no patient is waiting: Valley Family Clinic")
        assert f"ACK {drill.code}" in text.body
        assert (text.page_id, text.episode_id) == (None, None)
    assert drill.ends_at == STARTED + DRILL_WINDOW
    assert drill.started_by == "Pat Okafor"
    # No page, no episode, no task.
    assert (count(sessions, Page), count(sessions, Episode), count(sessions, Task)) == (0, 0, 0)


def test_each_answer_is_recorded_once_with_its_seconds_and_confirmed(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    drill, _ = run_drill(sessions, templates)

    [confirmation] = reply(
        sessions, templates, f"ACK {drill.code}", STARTED + timedelta(seconds=42), sender=LEE
    )
    assert confirmation.kind is MessageKind.PAGE_DRILL_ACK and confirmation.to_number == LEE
    assert f"drill {drill.code} answered" in confirmation.body
    # Again, and a bare ACK: nothing more recorded, nothing more texted.
    assert (
        reply(
            sessions,
            templates,
            f"ack {drill.code.lower()}",
            STARTED + timedelta(seconds=50),
            sender=LEE,
        )
        == []
    )
    assert reply(sessions, templates, "ACK", STARTED + timedelta(seconds=55), sender=LEE) == []
    assert count(sessions, DrillAnswer) == 1

    shown = result(sessions, drill, STARTED + timedelta(minutes=1))
    assert shown.open and shown.answered == 1
    assert [(r.name, r.seconds, r.in_time) for r in shown.rows] == [
        ("Dr. Rivera", None, False),
        ("Nurse Lee", 42, True),
    ]
    assert (count(sessions, Page), count(sessions, Episode), count(sessions, Task)) == (0, 0, 0)


def test_a_bare_ack_answers_the_drill_and_an_answer_after_the_ack_timeout_is_late(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    drill, _ = run_drill(sessions, templates)

    [confirmation] = reply(
        sessions, templates, "ack", STARTED + timedelta(seconds=400), sender=RIVERA
    )

    assert confirmation.kind is MessageKind.PAGE_DRILL_ACK
    [rivera, _] = result(sessions, drill, STARTED + timedelta(minutes=7)).rows
    assert (rivera.seconds, rivera.in_time) == (400, False)  # valley-family's timeout: 300 s


def test_after_its_window_a_drill_records_nothing_and_reads_closed(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    drill, _ = run_drill(sessions, templates)
    late = STARTED + DRILL_WINDOW + timedelta(seconds=1)

    with session_scope(sessions) as session:
        answered = drills.answer(
            session, templates, practice(session), from_number=LEE, code=drill.code, now=late
        )
    assert answered is not None and answered.outcome is DrillAnswerOutcome.CLOSED
    assert count(sessions, DrillAnswer) == 0
    shown = result(sessions, drill, late)
    assert not shown.open and shown.answered == 0


def test_someone_not_on_the_drills_roster_cannot_answer_it(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    drill, _ = run_drill(sessions, templates)
    with session_scope(sessions) as session:
        answered = drills.answer(
            session,
            templates,
            practice(session),
            from_number="+15125550177",
            code=drill.code,
            now=STARTED,
        )
    assert answered is not None and answered.outcome is DrillAnswerOutcome.NOT_IN_DRILL
    assert count(sessions, DrillAnswer) == 0


def test_one_drill_at_a_time_and_none_without_a_roster(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    drill, _ = run_drill(sessions, templates)
    with session_scope(sessions) as session:
        again = drills.start_drill(
            session, templates, practice(session), started_by="x", now=STARTED
        )
        assert again.refusal is DrillRefusal.ALREADY_RUNNING and again.message_ids == []
        assert again.drill is not None and again.drill.id == drill.id
        empty = drills.start_drill(
            session, templates, practice(session, "never-open"), started_by="x", now=STARTED
        )
        assert empty.refusal is DrillRefusal.NO_ROSTER and empty.drill is None
    assert count(sessions, Drill) == 1


@pytest.mark.usefixtures("after_missed_call")
def test_a_bare_ack_takes_a_real_page_before_a_drill_and_a_drill_code_never_takes_a_page(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    from tests.unit.test_replies import FRIDAY_EVENING

    with session_scope(sessions) as session:
        drill = drills.start_drill(
            session, templates, practice(session), started_by="x", now=FRIDAY_EVENING
        ).drill
        assert drill is not None
    reply(sessions, templates, "URGENT", FRIDAY_EVENING)  # pages Rivera

    [answer] = reply(sessions, templates, f"ACK {drill.code}", FRIDAY_EVENING, sender=RIVERA)
    assert answer.kind is MessageKind.PAGE_DRILL_ACK
    with sessions() as session:
        assert session.scalars(select(Page)).one().status is PageStatus.ACTIVE

    [taken] = reply(sessions, templates, "ACK", FRIDAY_EVENING, sender=RIVERA)
    assert taken.kind is MessageKind.PAGE_ACK
    with sessions() as session:
        assert session.scalars(select(Page)).one().status is PageStatus.ACKNOWLEDGED
    assert count(sessions, DrillAnswer) == 1


def test_the_drill_does_not_touch_a_page_under_way(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    drill, _ = run_drill(sessions, templates)
    reply(sessions, templates, f"ACK {drill.code}", STARTED, sender=RIVERA)
    with sessions() as session:
        stored = session.get(Page, page.id)
        assert stored is not None and stored.status is PageStatus.ACTIVE
