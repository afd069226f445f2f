"""The breach sweep, for every task: past due it texts the manager once; past twice its
SLA it moves to the manager's own list. (Its clinical page: tests/unit/test_breaches.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.messages import MessageKind
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, Practice, Task, TaskStatus, User
from recovery.services import breaches
from tests.e2e import scenario
from tests.e2e.scenario import Scenario

MANAGER_PHONE = "+15125550120"
BASE = "https://recovery.example.com"


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    built = scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())
    with session_scope(sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        valley.manager = {"name": "Pat Kim", "phone": MANAGER_PHONE}
    scenario.add_manager(sessions, built.users, "boss@valley.example")
    return built


def sweep(
    sessions: sessionmaker[Session], templates: SmsTemplates, now: datetime
) -> breaches.BreachSweep:
    with session_scope(sessions) as session:
        return breaches.sweep(session, templates, now=now, public_base_url=BASE)


def breach_texts(sessions: sessionmaker[Session]) -> list[Message]:
    with sessions() as session:
        return list(session.scalars(select(Message).where(Message.kind == MessageKind.SLA_BREACH)))


def test_an_overdue_task_texts_the_manager_once(
    world: Scenario, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    now = utcnow()
    first = sweep(sessions, templates, now)
    again = sweep(sessions, templates, now + timedelta(seconds=5))

    assert first.breached == [world.unclear_task_id]  # the scenario's overdue task
    assert first.paged == [] and first.escalated == []  # not clinical; not twice late yet
    assert again.breached == [] and again.message_ids == []
    [text] = breach_texts(sessions)
    assert text.to_number == MANAGER_PHONE and first.message_ids == [text.id]
    assert f"task {world.unclear_task_id} is past its due time" in text.body
    assert "Valley Family Clinic" in text.body and BASE + "/tasks" in text.body
    assert scenario.UNCLEAR_CALLER[-4:] not in text.body  # no patient data


def test_a_done_task_never_breaches(
    world: Scenario, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with session_scope(sessions) as session:
        task = session.get(Task, world.unclear_task_id)
        assert task is not None
        task.status = TaskStatus.DONE

    assert sweep(sessions, templates, utcnow()).breached == []
    assert breach_texts(sessions) == []


def test_every_task_breaches_at_its_due_time_and_escalates_at_twice_its_sla(
    world: Scenario, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with sessions() as session:
        billing = session.get(Task, world.billing_task_id)
        assert billing is not None
        due, twice = billing.due_at, breaches.twice_sla_at(billing)
        manager = session.scalars(select(User).where(User.email == "boss@valley.example")).one()

    assert (
        world.billing_task_id not in sweep(sessions, templates, due - timedelta(minutes=1)).breached
    )
    assert world.billing_task_id in sweep(sessions, templates, due).breached
    before = sweep(sessions, templates, twice - timedelta(minutes=1))
    assert world.billing_task_id not in before.escalated
    at_twice = sweep(sessions, templates, twice)

    assert world.billing_task_id in at_twice.escalated
    assert world.billing_task_id not in sweep(sessions, templates, twice).escalated
    with sessions() as session:
        billing = session.get(Task, world.billing_task_id)
        assert billing is not None
        assert billing.assigned_to == manager.id and billing.escalated_at == twice
