"""Undo of Complete and Mark booked: back to exactly where it was, by who did it, within
the window, once, and only while nothing else has moved the task or the call on."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    AuditEvent,
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Task,
    TaskQueue,
    TaskStatus,
    UndoableAction,
    UndoKind,
    User,
)
from recovery.services import undo
from recovery.services.auth import load_viewer
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.test_staff_pages import sign_in, text_of


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    return scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())


def state(sessions: sessionmaker[Session], task_id: int) -> tuple[Task, Episode]:
    with sessions() as session:
        task = session.get(Task, task_id)
        assert task is not None
        episode = session.get(Episode, task.episode_id)
        assert episode is not None
        return task, episode


def last_action(sessions: sessionmaker[Session]) -> UndoableAction:
    with sessions() as session:
        action = session.scalars(select(UndoableAction).order_by(UndoableAction.id.desc())).first()
        assert action is not None
        return action


def audits(sessions: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_undo_of_complete_puts_an_open_task_back_and_reopens_the_call_it_resolved(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(
        f"/tasks/{world.billing_task_id}/complete", data={"csrf_token": token, "note": "called"}
    )
    done, resolved = state(sessions, world.billing_task_id)
    assert done.status is TaskStatus.DONE and resolved.outcome is EpisodeOutcome.RESOLVED
    action = last_action(sessions)
    assert action.kind is UndoKind.COMPLETE_TASK and action.task_id == world.billing_task_id

    board = text_of(client.get("/tasks"))
    assert "You completed" in board and f'action="/undo/{action.id}"' in board
    # The number reads in its own brackets, (512) 555-0188: not inside another pair.
    said = re.search(r"You completed (.*?) at ", re.sub(r"<[^>]+>", "", board))
    assert said is not None and said.group(1) == "Billing question for (512) 555-0188"

    response = client.post(f"/undo/{action.id}", data={"csrf_token": token, "next": "/tasks"})

    assert response.status_code == 302 and response.headers["Location"] == "/tasks"
    task, episode = state(sessions, world.billing_task_id)
    assert task.status is TaskStatus.OPEN
    assert (task.claimed_by, task.claimed_at, task.completed_at, task.note) == (
        None,
        None,
        None,
        None,
    )
    assert episode.status is EpisodeStatus.OPEN and episode.outcome is None
    assert episode.outcome_at is None and episode.joinable  # takes the caller's next call
    [event] = audits(sessions, "undo_complete_task")
    assert event.detail == f"task {world.billing_task_id}"
    assert event.episode_id == episode.id
    page = text_of(client.get("/tasks"))
    assert "the task is back on the queue" in page
    assert f'id="task-{world.billing_task_id}"' in page and "You completed" not in page


def test_undo_of_complete_gives_a_claimed_task_back_to_whoever_had_claimed_it(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/tasks/{world.refill_task_id}/claim", data={"csrf_token": token})
    claimed, _ = state(sessions, world.refill_task_id)
    client.post(f"/tasks/{world.refill_task_id}/complete", data={"csrf_token": token})

    client.post(f"/undo/{last_action(sessions).id}", data={"csrf_token": token})

    task, _ = state(sessions, world.refill_task_id)
    assert task.status is TaskStatus.CLAIMED
    assert (task.claimed_by, task.claimed_at) == ("Dana Front", claimed.claimed_at)
    assert task.completed_at is None


def test_undo_of_mark_booked_reopens_the_call(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/episodes/{world.billing_episode_id}/book", data={"csrf_token": token})
    action = last_action(sessions)
    assert action.kind is UndoKind.MARK_BOOKED and action.task_id is None
    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "You marked this call booked" in page and f'action="/undo/{action.id}"' in page

    client.post(f"/undo/{action.id}", data={"csrf_token": token})

    with sessions() as session:
        episode = session.get(Episode, world.billing_episode_id)
        assert episode is not None
        assert episode.status is EpisodeStatus.OPEN and episode.outcome is None
    [event] = audits(sessions, "undo_mark_booked")
    assert event.detail == f"episode {world.billing_episode_id}"
    again = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "You marked this call booked" not in again and "Mark booked" in again


def test_undo_is_refused_after_the_window_and_a_second_time(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/tasks/{world.billing_task_id}/complete", data={"csrf_token": token})
    client.post(f"/tasks/{world.refill_task_id}/complete", data={"csrf_token": token})
    refill, billing = last_action(sessions), last_action(sessions).id - 1
    with session_scope(sessions) as session:
        desk = session.scalars(select(User).where(User.email == world.users.desk)).one()
        viewer = load_viewer(session, desk.id)
        assert viewer is not None
        late = refill.done_at + undo.UNDO_WINDOW + timedelta(seconds=1)
        refused = undo.undo(session, viewer, refill.id, now=late, window=undo.UNDO_WINDOW)
        assert refused.refused is undo.UndoRefusal.TOO_LATE
        shown = undo.offers(
            session,
            viewer,
            practice_id=desk.practice_id or 0,
            now=late,
            window=undo.UNDO_WINDOW,
            zone=UTC,
        )
        assert [o.id for o in shown] == []
    assert state(sessions, world.refill_task_id)[0].status is TaskStatus.DONE

    client.post(f"/undo/{billing}", data={"csrf_token": token})
    twice = client.post(f"/undo/{billing}", data={"csrf_token": token}, follow_redirects=True)

    assert "That was undone already." in text_of(twice)
    assert len(audits(sessions, "undo_complete_task")) == 1


def test_only_who_did_it_may_undo_it(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/tasks/{world.billing_task_id}/complete", data={"csrf_token": token})
    action = last_action(sessions)
    client.post("/logout", data={"csrf_token": token})

    nurse = sign_in(client, world.users.nurse)
    assert "You completed" not in text_of(client.get("/tasks"))
    response = client.post(f"/undo/{action.id}", data={"csrf_token": nurse})

    assert response.status_code == 404
    assert state(sessions, world.billing_task_id)[0].status is TaskStatus.DONE


def test_undo_is_refused_when_the_call_ended_since_through_another_task(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    # Two tasks on one call: completing the first leaves the call open; a colleague's
    # completing the second resolves it. Reopening the first would leave work on a call
    # that is over, so that undo is refused, and nothing changes.
    with session_scope(sessions) as session:
        first = session.get(Task, world.billing_task_id)
        assert first is not None
        second = Task(
            practice_id=first.practice_id,
            episode_id=first.episode_id,
            queue=TaskQueue.FRONT_DESK,
            reason=TaskReason.BOOK,
            due_at=first.due_at,
        )
        session.add(second)
        session.flush()
        second_id = second.id
    token = sign_in(client, world.users.desk)
    client.post(f"/tasks/{world.billing_task_id}/complete", data={"csrf_token": token})
    first_undo = last_action(sessions)
    assert first_undo.episode_status is None  # the call stayed open
    client.post(f"/tasks/{second_id}/complete", data={"csrf_token": token})
    assert state(sessions, second_id)[1].outcome is EpisodeOutcome.RESOLVED

    refused = client.post(
        f"/undo/{first_undo.id}", data={"csrf_token": token}, follow_redirects=True
    )

    assert "It cannot be undone" in text_of(refused)
    task, episode = state(sessions, world.billing_task_id)
    assert task.status is TaskStatus.DONE and episode.outcome is EpisodeOutcome.RESOLVED
    # The second Complete is still undoable, and undoing it reopens the call.
    client.post(f"/undo/{last_action(sessions).id}", data={"csrf_token": token})
    assert state(sessions, second_id)[1].status is EpisodeStatus.OPEN


def test_a_done_task_cannot_be_claimed_now_that_done_may_move_back(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/tasks/{world.billing_task_id}/complete", data={"csrf_token": token})

    response = client.post(
        f"/tasks/{world.billing_task_id}/claim", data={"csrf_token": token}, follow_redirects=True
    )

    assert "already completed" in text_of(response)
    assert state(sessions, world.billing_task_id)[0].status is TaskStatus.DONE
