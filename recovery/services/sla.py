"""SLA breaches: a task past its due time is the manager's business, once.

A beat job (workers.tasks.sla_sweep) runs `sweep_breaches` every few seconds. A task still
open or claimed at its due time is *breached*: the sweep claims it by setting
`breached_at` (a conditional column, read FOR UPDATE SKIP LOCKED, so two overlapping ticks
cannot both take one task), texts the practice's manager about it, and hands it to every
hook once (none is registered yet: an unclaimed clinical task is paged by its own sweep,
services/breaches.py, which keeps the page on the task). A task still not done
at twice its SLA (due + (due - created)) is *escalated*: it moves to the manager's own
list (`assigned_to` the practice's first active manager) and their queue says so.

Plain functions on a Session; the caller dispatches the returned message ids after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.domain.messages import MessageKind
from recovery.domain.phones import mask
from recovery.domain.states import TASK_UNDONE
from recovery.domain.templates import SmsTemplates
from recovery.models import Practice, Role, Task, User
from recovery.services.texts import queue_text

log = logging.getLogger(__name__)

QUEUE_PATH = "/tasks"

# Called once for each newly breached task, inside the sweep's transaction; returns the ids
# of texts it queued (dispatched with the sweep's own after the commit).
BreachHook = Callable[[Session, Task, datetime], list[int]]


@dataclass
class BreachSweep:
    breached: list[int] = field(default_factory=list)  # tasks newly past their due time
    escalated: list[int] = field(default_factory=list)  # newly past twice their SLA
    message_ids: list[int] = field(default_factory=list)  # texts to dispatch after commit


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


def sweep_breaches(
    session: Session,
    templates: SmsTemplates,
    *,
    now: datetime,
    public_base_url: str,
    hooks: Sequence[BreachHook] = (),
    limit: int = 200,
) -> BreachSweep:
    result = BreachSweep()
    newly = session.scalars(
        select(Task)
        .where(Task.status.in_(TASK_UNDONE), Task.breached_at.is_(None), Task.due_at <= now)
        .order_by(Task.due_at, Task.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for task in newly:
        task.breached_at = now
        result.breached.append(task.id)
        practice = session.get(Practice, task.practice_id)
        assert practice is not None  # a foreign key
        manager_phone = (practice.manager or {}).get("phone")
        if manager_phone:
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
        else:
            log.info("task %s breached its SLA; the practice has no manager to text", task.id)
        for hook in hooks:
            result.message_ids.extend(hook(session, task, now))

    # Escalation candidates are the breached, not yet escalated tasks: a short list (the
    # overdue work of the moment), so twice-the-SLA is computed here, where SQLite, which
    # has no timestamp arithmetic, can run it too.
    late = session.scalars(
        select(Task)
        .where(
            Task.status.in_(TASK_UNDONE), Task.breached_at.is_not(None), Task.escalated_at.is_(None)
        )
        .order_by(Task.due_at, Task.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for task in late:
        if now < twice_sla_at(task):
            continue
        task.escalated_at = now
        manager = practice_manager(session, task.practice_id)
        if manager is not None:
            task.assigned_to = manager.id
        result.escalated.append(task.id)
        log.info("task %s is past twice its SLA: on the manager's list", task.id)
    return result
