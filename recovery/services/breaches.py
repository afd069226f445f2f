"""Breaches: tasks nobody took in time.

A clinical concern (a symptom, no red flag) is a care-team task due minutes after the
reply, at any hour. If nobody has claimed it by then, it is paged like an urgent reply:
the same chain (roster one by one, then everyone and the manager, until someone
acknowledges), with its own page text. Each task is paged once: the page's id is kept on
the task in the same transaction, and overlapping sweeps skip each other's rows.

Runs in the caller's transaction; the returned message ids are dispatched after commit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.domain.pages import PageReason
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, Practice, Task, TaskStatus
from recovery.services.paging import start_page

log = logging.getLogger(__name__)


def page_overdue_clinical_tasks(
    session: Session,
    templates: SmsTemplates,
    *,
    now: datetime,
    public_base_url: str,
    limit: int = 100,
) -> list[int]:
    tasks = session.scalars(
        select(Task)
        .where(
            Task.reason == TaskReason.CLINICAL,
            Task.status == TaskStatus.OPEN,
            Task.page_id.is_(None),
            Task.due_at <= now,
        )
        .order_by(Task.due_at, Task.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    message_ids: list[int] = []
    for task in tasks:
        practice = session.get(Practice, task.practice_id)
        episode = session.get(Episode, task.episode_id)
        assert practice is not None and episode is not None  # foreign keys
        try:
            # One task that cannot be paged (a broken template) must not hold up the others;
            # it stays unpaged and the next sweep tries again.
            with session.begin_nested():
                result = start_page(
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
                task.page_id = result.page.id
                message_ids += result.message_ids
        except Exception:
            log.exception("task %s: could not page its breach; tried again next sweep", task.id)
            continue
        log.warning(
            "clinical task %s (practice %s) unclaimed %s after its due time: page %s",
            task.id,
            practice.slug,
            now - task.due_at,
            result.page.code,
        )
    return message_ids
