"""A clinical concern nobody claims by its due time is paged like an urgent reply, once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.messages import MessageKind
from recovery.domain.pages import PageReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, Page, PageStatus, Task, TaskStatus
from recovery.services import breaches
from recovery.services.paging import acknowledge, escalate_due
from tests.unit.test_paging import practice
from tests.unit.test_replies import BASE, FRIDAY_EVENING, call, reply

DUE = FRIDAY_EVENING + timedelta(minutes=30)
RIVERA, LEE = "+15125550111", "+15125550112"
MANAGER = "+15125550120"


def sweep(sessions: sessionmaker[Session], templates: SmsTemplates, now: datetime) -> list[str]:
    """Run the breach sweep; return who its pages go to (the manager's breach texts are
    tests/unit/test_sla.py's)."""
    with session_scope(sessions) as session:
        ids = breaches.sweep(session, templates, now=now, public_base_url=BASE).message_ids
        pages = select(Message).where(Message.id.in_(ids), Message.kind == MessageKind.PAGE)
        return [m.to_number for m in session.scalars(pages)]


@pytest.fixture
def clinical_task(sessions: sessionmaker[Session], templates: SmsTemplates) -> None:
    with sessions.begin() as session:
        call(session, templates, FRIDAY_EVENING)
    reply(sessions, templates, "my back has been hurting for a week", FRIDAY_EVENING)


@pytest.mark.usefixtures("clinical_task")
def test_an_unclaimed_clinical_task_is_paged_at_its_due_time_and_only_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    assert sweep(sessions, templates, DUE - timedelta(seconds=1)) == []

    assert sweep(sessions, templates, DUE) == [RIVERA]
    assert sweep(sessions, templates, DUE + timedelta(seconds=2)) == []
    assert sweep(sessions, templates, DUE + timedelta(hours=1)) == []

    with sessions() as session:
        page = session.scalars(select(Page)).one()
        task = session.scalars(select(Task)).one()
        assert page.reason is PageReason.CLINICAL_OVERDUE and task.page_id == page.id
        assert page.reply_received_at == task.created_at  # latency counts from the reply
        [text] = session.scalars(select(Message).where(Message.kind == "page")).all()
        assert "clinical question" in text.body and page.code in text.body
        assert "hurting" not in text.body and "+1512555019" not in text.body


@pytest.mark.usefixtures("clinical_task")
def test_one_sweep_texts_the_manager_and_pages_the_unclaimed_clinical_task_once_each(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with session_scope(sessions) as session:
        practice(session).manager = {"name": "Pat Kim", "phone": MANAGER}
    with session_scope(sessions) as session:
        first = breaches.sweep(session, templates, now=DUE, public_base_url=BASE)
        [task_id] = first.breached
        assert first.paged == [task_id]
        texts = session.scalars(select(Message).where(Message.id.in_(first.message_ids)))
        assert sorted((m.kind.value, m.to_number) for m in texts) == [
            ("page", RIVERA),
            ("sla_breach", MANAGER),
        ]
    with session_scope(sessions) as session:
        again = breaches.sweep(
            session, templates, now=DUE + timedelta(seconds=2), public_base_url=BASE
        )
        assert (again.breached, again.paged, again.message_ids) == ([], [], [])


@pytest.mark.usefixtures("clinical_task")
def test_a_page_that_cannot_start_is_tried_again_and_keeps_the_manager_s_text(
    sessions: sessionmaker[Session], templates: SmsTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a template that does not render")

    monkeypatch.setattr(breaches, "start_page", broken)
    with session_scope(sessions) as session:
        practice(session).manager = {"name": "Pat Kim", "phone": MANAGER}
    with session_scope(sessions) as session:
        failed = breaches.sweep(session, templates, now=DUE, public_base_url=BASE)
        assert failed.paged == [] and len(failed.breached) == 1
        assert len(failed.message_ids) == 1  # the manager's text stands
    monkeypatch.undo()

    assert sweep(sessions, templates, DUE + timedelta(seconds=2)) == [RIVERA]


@pytest.mark.usefixtures("clinical_task")
def test_the_breach_page_escalates_down_the_same_chain(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    sweep(sessions, templates, DUE)
    with session_scope(sessions) as session:
        ids = escalate_due(
            session, templates, now=DUE + timedelta(seconds=300), public_base_url=BASE
        )
        assert [session.get(Message, i).to_number for i in ids] == [LEE]  # type: ignore[union-attr]


@pytest.mark.usefixtures("clinical_task")
def test_whoever_takes_the_breach_page_has_the_task(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    sweep(sessions, templates, DUE)
    with session_scope(sessions) as session:
        code = session.scalars(select(Page)).one().code
        result = acknowledge(
            session,
            templates,
            practice(session),
            from_number=RIVERA,
            code=code,
            now=DUE + timedelta(minutes=1),
            public_base_url=BASE,
        )
        assert result.problem is None
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        task = session.scalars(select(Task)).one()
        assert page.status is PageStatus.ACKNOWLEDGED
        assert (task.status, task.claimed_by) == (TaskStatus.CLAIMED, "Dr. Rivera")


@pytest.mark.usefixtures("clinical_task")
@pytest.mark.parametrize("status", [TaskStatus.CLAIMED, TaskStatus.DONE])
def test_a_task_taken_in_time_is_never_paged(
    sessions: sessionmaker[Session], templates: SmsTemplates, status: TaskStatus
) -> None:
    with session_scope(sessions) as session:
        session.scalars(select(Task)).one().status = status
    assert sweep(sessions, templates, DUE + timedelta(minutes=5)) == []
    with sessions() as session:
        assert session.scalars(select(Page)).all() == []


@pytest.mark.usefixtures("clinical_task")
def test_an_episode_already_paged_keeps_its_one_chain(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    reply(sessions, templates, "now I can't breathe", FRIDAY_EVENING.replace(minute=40))
    assert sweep(sessions, templates, DUE) == []  # no second chain to the same people
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.reason is PageReason.URGENT
        assert session.scalars(select(Task)).one().page_id == page.id


def test_refills_and_billing_are_not_paged(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with sessions.begin() as session:
        call(session, templates, FRIDAY_EVENING)
    reply(sessions, templates, "REFILL", FRIDAY_EVENING)
    assert sweep(sessions, templates, FRIDAY_EVENING + timedelta(days=7)) == []


@pytest.mark.usefixtures("clinical_task")
def test_an_urgent_page_taken_before_the_due_time_takes_the_clinical_task_too(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    reply(sessions, templates, "now I can't breathe", FRIDAY_EVENING.replace(minute=40))
    reply(sessions, templates, "ACK", FRIDAY_EVENING.replace(minute=41), sender=RIVERA)
    assert sweep(sessions, templates, DUE) == []
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert (task.status, task.claimed_by) == (TaskStatus.CLAIMED, "Dr. Rivera")
        assert len(session.scalars(select(Page)).all()) == 1
