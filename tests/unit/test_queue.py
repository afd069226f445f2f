"""The live queue: one list by due time with queue, "mine" and "overdue only" filters,
Next task, unclaim, the poll that answers 204 while nothing changed, urgent pages for
those who can take them, and the manager's SLA banner."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import AuditEvent, Role, Task, TaskQueue, TaskStatus, User
from recovery.services import breaches, queue
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.test_staff_pages import sign_in, text_of

MANAGER = "boss@valley.example"


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    built = scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())
    scenario.add_manager(sessions, built.users, MANAGER)
    return built


def task(sessions: sessionmaker[Session], task_id: int) -> Task:
    with sessions() as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def audits(sessions: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_one_list_across_queues_soonest_due_first_overdue_on_top(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, world.users.desk)

    body = text_of(client.get("/tasks"))

    unclear = body.index(f'id="task-{world.unclear_task_id}"')
    billing = body.index(f'id="task-{world.billing_task_id}"')
    refill = body.index(f'id="task-{world.refill_task_id}"')
    assert unclear < min(billing, refill)  # the overdue one
    assert "Overdue 40 min" in body.split(f'id="task-{world.unclear_task_id}"')[1][:600]
    assert 'data-live-count="3"' in body and 'data-live-url="/tasks/live"' in body


def test_overdue_only_and_mine_filter_the_list(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    overdue = text_of(client.get("/tasks?overdue=1"))
    assert f'id="task-{world.unclear_task_id}"' in overdue
    assert f'id="task-{world.billing_task_id}"' not in overdue
    assert "Nothing waiting for you" in text_of(client.get("/tasks?mine=1"))

    client.post(f"/tasks/{world.refill_task_id}/claim", data={"csrf_token": token})

    mine = text_of(client.get("/tasks?mine=1"))
    assert f'id="task-{world.refill_task_id}"' in mine
    assert f'id="task-{world.billing_task_id}"' not in mine
    [view] = [e for e in audits(sessions, "view_tasks") if "; mine" in e.detail][-1:]
    assert "555" not in view.detail


def test_next_task_claims_the_oldest_due_unclaimed_task_then_the_next(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    first = client.post("/tasks/next", data={"csrf_token": token, "next": "/tasks"})
    second = client.post("/tasks/next", data={"csrf_token": token, "next": "/tasks"})

    assert first.headers["Location"] == f"/tasks#task-{world.unclear_task_id}"
    claimed = task(sessions, world.unclear_task_id)
    assert claimed.status is TaskStatus.CLAIMED and claimed.claimed_by == "Dana Front"
    taken = int(second.headers["Location"].rsplit("-", 1)[1])
    assert taken in (world.billing_task_id, world.refill_task_id)
    assert [e.detail for e in audits(sessions, "claim_task")][0].endswith("; next task")


def test_next_task_in_one_queue_and_when_nothing_waits(
    client: FlaskClient, world: Scenario
) -> None:
    token = sign_in(client, world.users.desk)

    billing = client.post("/tasks/next", data={"csrf_token": token, "queue": "billing"})
    empty = client.post(
        "/tasks/next", data={"csrf_token": token, "queue": "billing"}, follow_redirects=True
    )

    assert billing.headers["Location"].endswith(f"#task-{world.billing_task_id}")
    assert "Nothing is waiting" in text_of(empty)


def test_next_task_never_takes_another_practices_work(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.other)

    response = client.post("/tasks/next", data={"csrf_token": token})

    assert response.headers["Location"].endswith(f"#task-{world.other_task_id}")
    assert task(sessions, world.billing_task_id).status is TaskStatus.OPEN
    assert (
        client.post(
            f"/tasks/{world.billing_task_id}/unclaim", data={"csrf_token": token}
        ).status_code
        == 404
    )


def test_the_claimer_can_unclaim_and_a_colleague_cannot(
    app: object, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    nurse = app.test_client()  # type: ignore[attr-defined]
    desk = app.test_client()  # type: ignore[attr-defined]
    nurse_token = sign_in(nurse, world.users.nurse)
    desk_token = sign_in(desk, world.users.desk)
    nurse.post(f"/tasks/{world.refill_task_id}/claim", data={"csrf_token": nurse_token})

    refused = desk.post(f"/tasks/{world.refill_task_id}/unclaim", data={"csrf_token": desk_token})
    assert refused.status_code == 403
    assert task(sessions, world.refill_task_id).claimed_by == "Nurse Lee"

    done = nurse.post(
        f"/tasks/{world.refill_task_id}/unclaim",
        data={"csrf_token": nurse_token},
        follow_redirects=True,
    )
    assert "Task given back to the queue." in text_of(done)
    back = task(sessions, world.refill_task_id)
    assert back.status is TaskStatus.OPEN and back.claimed_by is None
    [event] = audits(sessions, "unclaim_task")
    assert event.detail == f"task {world.refill_task_id}"


def test_the_live_poll_answers_204_until_something_changes(
    app: object, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    watcher = app.test_client()  # type: ignore[attr-defined]
    desk = app.test_client()  # type: ignore[attr-defined]
    sign_in(watcher, world.users.nurse)
    token = sign_in(desk, world.users.desk)
    first = watcher.get("/tasks/live", headers={"X-Requested-With": "live"})
    version = first.headers["X-Live-Version"]
    views = len(audits(sessions, "view_tasks"))

    quiet = watcher.get(
        "/tasks/live", headers={"X-Requested-With": "live", "X-Live-Version": version}
    )
    assert quiet.status_code == 204 and quiet.get_data() == b""
    assert len(audits(sessions, "view_tasks")) == views  # nothing shown, nothing audited

    desk.post(f"/tasks/{world.refill_task_id}/claim", data={"csrf_token": token})
    changed = watcher.get(
        "/tasks/live", headers={"X-Requested-With": "live", "X-Live-Version": version}
    )
    assert changed.status_code == 200 and changed.headers["X-Live-Version"] != version
    assert "Dana Front claimed it" in text_of(changed)
    assert "<html" not in text_of(changed)  # a fragment, not a page


def test_active_urgent_pages_are_on_the_queue_for_those_who_can_take_them(
    app: object, world: Scenario
) -> None:
    nurse = app.test_client()  # type: ignore[attr-defined]
    desk = app.test_client()  # type: ignore[attr-defined]
    sign_in(nurse, world.users.nurse)
    sign_in(desk, world.users.desk)

    board = text_of(nurse.get("/tasks"))
    assert "Urgent pages not taken" in board and f"Page {world.page_code}" in board
    assert f'action="/p/{world.page_code}/ack"' in board
    assert "Urgent pages not taken" not in text_of(desk.get("/tasks"))


def test_a_manager_sees_the_sla_banner_after_a_breach(
    app: object,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
) -> None:
    with session_scope(sessions) as session:
        breaches.sweep(session, templates, now=utcnow(), public_base_url="https://x.example")
    manager = app.test_client()  # type: ignore[attr-defined]
    desk = app.test_client()  # type: ignore[attr-defined]
    sign_in(manager, MANAGER)
    sign_in(desk, world.users.desk)

    assert "1 task past its due time." in text_of(manager.get("/tasks"))
    assert "past its due time." not in text_of(desk.get("/tasks"))


def test_a_task_handed_to_a_person_waits_on_their_list_and_for_their_next_task(
    app: object, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    desk = app.test_client()  # type: ignore[attr-defined]
    nurse = app.test_client()  # type: ignore[attr-defined]
    desk_token = sign_in(desk, world.users.desk)
    nurse_token = sign_in(nurse, world.users.nurse)
    with sessions() as session:
        lee = session.scalars(select(User).where(User.email == world.users.nurse)).one()
    desk.post(f"/tasks/{world.billing_task_id}/claim", data={"csrf_token": desk_token})

    handed = desk.post(
        f"/tasks/{world.billing_task_id}/reassign",
        data={"csrf_token": desk_token, "queue": "care_team", "user": str(lee.id)},
    )

    assert handed.status_code == 302
    assert "Task handed over to Care team, for Nurse Lee." in text_of(desk.get("/tasks"))
    moved = task(sessions, world.billing_task_id)
    assert moved.queue is TaskQueue.CARE_TEAM and moved.assigned_to == lee.id
    assert moved.status is TaskStatus.OPEN and moved.claimed_by is None
    assert f'id="task-{world.billing_task_id}"' in text_of(nurse.get("/tasks?mine=1"))
    [event] = audits(sessions, "reassign_task")
    assert event.detail == f"task {world.billing_task_id}; to queue care_team, user {lee.id}"
    # Dana's Next task skips it (it is Nurse Lee's now).
    for _ in range(3):
        desk.post("/tasks/next", data={"csrf_token": desk_token})
    assert task(sessions, world.billing_task_id).status is TaskStatus.OPEN
    nurse.post("/tasks/next", data={"csrf_token": nurse_token})
    assert task(sessions, world.billing_task_id).claimed_by == "Nurse Lee"


def test_a_task_cannot_be_handed_to_another_practices_user(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    with sessions() as session:
        olga = session.scalars(select(User).where(User.email == world.users.other)).one()

    response = client.post(
        f"/tasks/{world.billing_task_id}/reassign", data={"csrf_token": token, "user": str(olga.id)}
    )

    assert response.status_code == 404
    assert task(sessions, world.billing_task_id).assigned_to is None


def test_each_role_works_the_queues_of_its_table_and_what_is_handed_to_it(
    app: object, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    assert queue.QUEUES_BY_ROLE[Role.STAFF] == set(TaskQueue)
    assert queue.QUEUES_BY_ROLE[Role.CLINICIAN] == {TaskQueue.CARE_TEAM, TaskQueue.FRONT_DESK}
    nurse = app.test_client()  # type: ignore[attr-defined]
    desk = app.test_client()  # type: ignore[attr-defined]
    nurse_token = sign_in(nurse, world.users.nurse)
    desk_token = sign_in(desk, world.users.desk)

    board = text_of(nurse.get("/tasks"))
    assert f'id="task-{world.billing_task_id}"' not in board  # billing is not a nurse's
    assert f'id="task-{world.refill_task_id}"' in board
    assert f'id="task-{world.unclear_task_id}"' in board
    assert "queue=billing" not in board and 'data-live-count="2"' in board
    assert f'id="task-{world.billing_task_id}"' in text_of(desk.get("/tasks"))
    refused = nurse.post(f"/tasks/{world.billing_task_id}/claim", data={"csrf_token": nurse_token})
    assert refused.status_code == 403 and "not yours to work" in text_of(refused)
    for _ in range(3):
        nurse.post("/tasks/next", data={"csrf_token": nurse_token})
    assert task(sessions, world.billing_task_id).status is TaskStatus.OPEN

    # Handed to her by name, a billing task is hers after all.
    with sessions() as session:
        lee = session.scalars(select(User).where(User.email == world.users.nurse)).one()
    desk.post(
        f"/tasks/{world.billing_task_id}/reassign",
        data={"csrf_token": desk_token, "user": str(lee.id)},
    )
    assert f'id="task-{world.billing_task_id}"' in text_of(nurse.get("/tasks?mine=1"))
    nurse.post(f"/tasks/{world.billing_task_id}/claim", data={"csrf_token": nurse_token})
    assert task(sessions, world.billing_task_id).claimed_by == "Nurse Lee"
