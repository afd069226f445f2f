"""Next task on real PostgreSQL: people pressing it at the same moment each get a different
task, and nobody waits for anyone (SELECT ... FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope, utcnow
from recovery.domain.tasks import TaskReason
from recovery.models import Episode, Practice, Role, Task, TaskQueue, TaskStatus, User
from recovery.schemas.practices import read_practices
from recovery.services import queue
from recovery.services.auth import Viewer
from recovery.services.practices import load_practices
from tests.conftest import PRACTICES_FILE

pytestmark = pytest.mark.integration


def _setup(sessions: sessionmaker[Session], tasks: int, people: int) -> list[Viewer]:
    now = utcnow()
    with session_scope(sessions) as session:
        session.execute(text("TRUNCATE audit_events, tasks, messages, pages, episodes CASCADE"))
        load_practices(session, read_practices(PRACTICES_FILE))
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        for n in range(tasks):
            episode = Episode(
                practice_id=valley.id,
                caller=f"+1512555{n:04d}",
                joinable=False,
                opened_at=now,
                last_call_at=now,
            )
            session.add(episode)
            session.flush()
            session.add(
                Task(
                    practice_id=valley.id,
                    episode_id=episode.id,
                    queue=TaskQueue.BILLING,
                    reason=TaskReason.BILLING,
                    due_at=now + timedelta(minutes=n),
                    created_at=now,
                )
            )
        viewers = []
        for n in range(people):
            user = User(
                email=f"desk{n}-{uuid.uuid4().hex[:6]}@valley.example",
                name=f"Desk {n}",
                password_hash="x",
                role=Role.STAFF,
                practice_id=valley.id,
                active=True,
            )
            session.add(user)
            session.flush()
            viewers.append(
                Viewer(
                    user.id, user.email, user.name, Role.STAFF, valley.id, valley.name, valley.slug
                )
            )
    return viewers


def _press_together(sessions: sessionmaker[Session], viewers: list[Viewer]) -> list[int | None]:
    """Everyone presses Next task, and each holds their transaction (and its row lock)
    open until all have their answer: with a plain FOR UPDATE the second would wait for
    the first to commit, which waits for the second, and the barrier breaks."""
    barrier = threading.Barrier(len(viewers))
    got: list[int | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def press(viewer: Viewer) -> None:
        try:
            with session_scope(sessions) as session:
                result = queue.next_task(session, viewer, now=utcnow())
                barrier.wait(timeout=20)
                with lock:
                    got.append(result.task_id if result else None)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=press, args=(v,)) for v in viewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return got


def test_two_people_pressing_next_task_at_once_get_two_different_tasks(
    sessions: sessionmaker[Session],
) -> None:
    viewers = _setup(sessions, tasks=3, people=2)

    got = _press_together(sessions, viewers)

    assert len(got) == 2 and None not in got and len(set(got)) == 2
    with sessions() as session:
        claimed = session.scalars(
            select(Task).where(Task.status == TaskStatus.CLAIMED).order_by(Task.due_at)
        ).all()
        # The two oldest-due tasks, one each.
        first_two = session.scalars(select(Task.id).order_by(Task.due_at).limit(2)).all()
    assert sorted(t.id for t in claimed) == sorted(first_two) == sorted(got)  # type: ignore[type-var]
    assert {t.claimed_by for t in claimed} == {"Desk 0", "Desk 1"}


def test_more_people_than_tasks_each_task_goes_to_exactly_one(
    sessions: sessionmaker[Session],
) -> None:
    viewers = _setup(sessions, tasks=4, people=7)

    got = _press_together(sessions, viewers)

    taken = [t for t in got if t is not None]
    assert len(taken) == 4 and len(set(taken)) == 4 and got.count(None) == 3
    with sessions() as session:
        assert session.scalar(select(Task.id).where(Task.status == TaskStatus.OPEN)) is None
