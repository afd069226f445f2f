"""The breach sweep on real PostgreSQL: overlapping sweeps (a slow tick and the next, or
two beat processes by mistake) text the manager exactly once per breached task and page an
unclaimed clinical task once (SELECT ... FOR UPDATE SKIP LOCKED and the marks on the row)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import TEMPLATES_DIR
from recovery.db import make_engine, make_session_factory, session_scope, utcnow
from recovery.domain.messages import MessageKind
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, Message, Page, Practice, Task, TaskQueue
from recovery.schemas.practices import read_practices
from recovery.services import breaches
from recovery.services.practices import load_practices
from tests.conftest import PRACTICES_FILE
from tests.integration.conftest import fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sessions() -> Iterator[sessionmaker[Session]]:
    """A database of its own: the session's stack runs its own beat and would sweep these
    tasks first (that overlap is real too, but then these sweeps' results say nothing)."""
    with fresh_database() as url:
        engine = make_engine(url)
        yield make_session_factory(engine)
        engine.dispose()


BASE = "https://recovery.example.com"
MANAGER = "+15125550120"
TEMPLATES = SmsTemplates(TEMPLATES_DIR / "sms")


def _overdue_tasks(sessions: sessionmaker[Session], count: int, *, clinical: int = 0) -> None:
    now = utcnow()
    with session_scope(sessions) as session:
        session.execute(text("TRUNCATE audit_events, tasks, messages, pages, episodes CASCADE"))
        load_practices(session, read_practices(PRACTICES_FILE))
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        valley.manager = {"name": "Pat Kim", "phone": MANAGER}
        for n in range(count):
            episode = Episode(
                practice_id=valley.id,
                caller=f"+1512555{n:04d}",
                joinable=False,
                opened_at=now - timedelta(hours=2),
                last_call_at=now - timedelta(hours=2),
            )
            session.add(episode)
            session.flush()
            is_clinical = n < clinical
            session.add(
                Task(
                    practice_id=valley.id,
                    episode_id=episode.id,
                    queue=TaskQueue.CARE_TEAM if is_clinical else TaskQueue.BILLING,
                    reason=TaskReason.CLINICAL if is_clinical else TaskReason.BILLING,
                    due_at=now - timedelta(minutes=1 + n),
                    created_at=now - timedelta(hours=1),
                )
            )


def _counts(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as session:
        breach_texts = session.scalar(
            select(func.count()).where(Message.kind == MessageKind.SLA_BREACH)
        )
        distinct_tasks = session.scalar(
            select(func.count(func.distinct(Message.body))).where(
                Message.kind == MessageKind.SLA_BREACH
            )
        )
        pages = session.scalar(select(func.count()).select_from(Page))
        return breach_texts or 0, distinct_tasks or 0, pages or 0


def test_a_sweep_that_overlaps_a_running_one_skips_its_tasks_and_texts_nobody_twice(
    sessions: sessionmaker[Session],
) -> None:
    _overdue_tasks(sessions, 5, clinical=1)
    now = utcnow()

    with session_scope(sessions) as first:
        running = breaches.sweep(first, TEMPLATES, now=now, public_base_url=BASE)
        assert len(running.breached) == 5 and len(running.paged) == 1
        # The first sweep has not committed: its rows are locked, and the overlapping sweep
        # neither waits for them nor takes them.
        with session_scope(sessions) as second:
            overlapping = breaches.sweep(second, TEMPLATES, now=now, public_base_url=BASE)
            assert overlapping.count == 0 and overlapping.message_ids == []
    with session_scope(sessions) as third:
        after = breaches.sweep(
            third, TEMPLATES, now=now + timedelta(seconds=2), public_base_url=BASE
        )
        assert after.count == 0

    assert _counts(sessions) == (5, 5, 1)


def test_many_sweeps_at_once_text_the_manager_exactly_once_per_task(
    sessions: sessionmaker[Session],
) -> None:
    tasks, sweepers = 40, 4
    _overdue_tasks(sessions, tasks, clinical=3)
    barrier = threading.Barrier(sweepers)
    results: list[breaches.BreachSweep] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            with session_scope(sessions) as session:
                swept = breaches.sweep(session, TEMPLATES, now=utcnow(), public_base_url=BASE)
            with lock:
                results.append(swept)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(sweepers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not errors, errors
    breached = [task_id for swept in results for task_id in swept.breached]
    paged = [task_id for swept in results for task_id in swept.paged]
    assert len(breached) == len(set(breached)) == tasks
    assert len(paged) == len(set(paged)) == 3
    assert _counts(sessions) == (tasks, tasks, 3)
