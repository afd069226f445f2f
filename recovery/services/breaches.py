"""Breaches: a task past its due time, and what happens to it, each once.

One beat job (workers.tasks.breach_sweep) runs `sweep` every few seconds, and one loop
takes every task that has something due:

* **breached**: still open or claimed at its due time. The sweep marks `breached_at` and
  texts the practice's manager (no patient data, a link to the overdue queue), and the
  manager's queue shows a banner. `breached_at` is never cleared: one text per task.
* **paged**: a clinical concern (a symptom, no red flag) is a care-team task due minutes
  after the reply, at any hour; if nobody has claimed it by then it is paged like an urgent
  reply, with the same chain (roster one by one, then everyone and the manager, until
  someone acknowledges) and its own page text. The page's id is kept on the task: paged
  once. A page that cannot start (a broken template) leaves the task unpaged, and the
  next sweep tries again without holding up the others.
* **escalated**: still not done at twice its SLA (due + (due - created)): it moves to the
  list of the practice's first active manager account (`assigned_to`), once
  (`escalated_at`).

The rows are read FOR UPDATE SKIP LOCKED, so two overlapping sweeps (a slow tick and the
next, or two beat processes by mistake) take disjoint tasks and nothing is done twice.
Runs in the caller's transaction; the returned message ids are dispatched after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, or_, select
from sqlalchemy.orm import Session

from recovery.domain.messages import MessageKind
from recovery.domain.pages import PageReason
from recovery.domain.phones import mask
from recovery.domain.states import TASK_UNDONE
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, Practice, Role, Task, TaskStatus, User
from recovery.services.paging import start_page
from recovery.services.texts import queue_text

log = logging.getLogger(__name__)

QUEUE_PATH = "/tasks"


@dataclass
class BreachSweep:
    breached: list[int] = field(default_factory=list)  # tasks newly past their due time
    paged: list[int] = field(default_factory=list)  # clinical tasks newly paged
    escalated: list[int] = field(default_factory=list)  # newly past twice their SLA
    message_ids: list[int] = field(default_factory=list)  # texts to dispatch after commit

    @property
    def count(self) -> int:
        return len(self.breached) + len(self.paged) + len(self.escalated)


def twice_sla_at(task: Task) -> datetime:
    """When a task has waited twice as long as it was given."""
    return task.due_at + (task.due_at - task.created_at)


def practice_manager(session: Session, practice_id: int) -> User | None:
    """The manager whose own list an escalated task joins: the practice's first active
    manager account (the roster's `manager` is a phone number to page, not a login)."""
    return session.scalars(
        select(User)
        .where(User.practice_id == practice_id, User.role == Role.MANAGER, User.active.is_(True))
        .order_by(User.id)
        .limit(1)
    ).first()


def _unpaged_clinical() -> ColumnElement[bool]:
    return and_(
        Task.reason == TaskReason.CLINICAL,
        Task.status == TaskStatus.OPEN,
        Task.page_id.is_(None),
    )


def sweep(
    session: Session,
    templates: SmsTemplates,
    *,
    now: datetime,
    public_base_url: str,
    limit: int = 400,
) -> BreachSweep:
    result = BreachSweep()
    # Everything that may have something due: not yet breached, a clinical task not yet
    # paged, or breached and not yet escalated. The last is the overdue work of the moment,
    # so twice-the-SLA is computed below, where SQLite, which has no timestamp arithmetic,
    # can run it too; and since most of those are not due yet, the new breaches and pages
    # come first, so that a long overdue list cannot fill `limit` and hold them up.
    news = or_(Task.breached_at.is_(None), _unpaged_clinical())
    due = session.scalars(
        select(Task)
        .where(
            Task.status.in_(TASK_UNDONE),
            Task.due_at <= now,
            or_(news, Task.escalated_at.is_(None)),
        )
        .order_by(case((news, 0), else_=1), Task.due_at, Task.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for task in due:
        practice = session.get(Practice, task.practice_id)
        assert practice is not None  # a foreign key
        if task.breached_at is None:
            _breach(session, templates, practice, task, now, public_base_url, result)
        if (
            task.reason is TaskReason.CLINICAL
            and task.status is TaskStatus.OPEN
            and task.page_id is None
        ):
            _page(session, templates, practice, task, now, public_base_url, result)
        if task.escalated_at is None and now >= twice_sla_at(task):
            _escalate(session, task, now, result)
    return result


def _breach(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    task: Task,
    now: datetime,
    public_base_url: str,
    result: BreachSweep,
) -> None:
    task.breached_at = now
    result.breached.append(task.id)
    manager_phone = (practice.manager or {}).get("phone")
    if not manager_phone:
        log.info("task %s breached its SLA; the practice has no manager to text", task.id)
        return
    text = queue_text(
        session,
        templates,
        practice,
        to=str(manager_phone),
        kind=MessageKind.SLA_BREACH,
        now=now,
        link=public_base_url + QUEUE_PATH + "?overdue=1",
        reference=str(task.id),
    )
    result.message_ids.append(text.id)
    log.info("task %s breached its SLA; manager %s texted", task.id, mask(manager_phone))


def _page(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    task: Task,
    now: datetime,
    public_base_url: str,
    result: BreachSweep,
) -> None:
    episode = session.get(Episode, task.episode_id)
    assert episode is not None  # a foreign key
    try:
        # One task that cannot be paged must not hold up the others, nor undo their
        # breach texts: it stays unpaged and the next sweep tries again.
        with session.begin_nested():
            started = start_page(
                session,
                templates,
                practice,
                episode,
                reply_received_at=task.created_at,
                now=now,
                public_base_url=public_base_url,
                reason=PageReason.CLINICAL_OVERDUE,
            )
            # An episode already paged (the patient also wrote URGENT) keeps its page:
            # the task joins it, and whoever takes that page takes the task.
            task.page_id = started.page.id
    except Exception:
        log.exception("task %s: could not page its breach; tried again next sweep", task.id)
        return
    result.paged.append(task.id)
    result.message_ids += started.message_ids
    log.warning(
        "clinical task %s (practice %s) unclaimed %s after its due time: page %s",
        task.id,
        practice.slug,
        now - task.due_at,
        started.page.code,
    )


def _escalate(session: Session, task: Task, now: datetime, result: BreachSweep) -> None:
    task.escalated_at = now
    manager = practice_manager(session, task.practice_id)
    if manager is not None:
        task.assigned_to = manager.id
    result.escalated.append(task.id)
    log.info("task %s is past twice its SLA: on the manager's list", task.id)
