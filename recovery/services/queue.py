"""The task queue staff live in: one list by due time, Next task, claim, unclaim, complete.

Like recovery.services.staff, every function takes the signed-in `Viewer`, refuses other
practices' records as not found, writes the audit row for what was seen or done, and
returns plain results (recovery.web.presenters says them as staff read them).

* The board is one list across the practice's queues, soonest due first (so overdue work
  is on top), with the queues as filters, "mine" (claimed by or handed to the viewer) and
  "overdue only"; the tasks completed in the last day; the active urgent pages for those
  who can take them; and, for a manager, the tasks past their SLA.
* **Next task** claims the oldest-due unclaimed task with SELECT ... FOR UPDATE SKIP
  LOCKED: two people pressing it together lock two different rows, so they get two
  different tasks, and neither waits for the other.
* `board_version` is what the live page polls: a digest of what the board shows, read
  without decrypting or auditing anything, so a poll that finds nothing new costs one
  small query and writes no audit row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher, seal, unseal
from recovery.domain.states import TASK_UNDONE, move
from recovery.domain.tasks import TaskReason
from recovery.models import (
    AuditAction,
    Episode,
    Page,
    PageStatus,
    Practice,
    Role,
    Task,
    TaskQueue,
    TaskStatus,
    UndoKind,
    User,
)
from recovery.models.user import fit_name
from recovery.services import conversation, outcomes, undo
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.errors import NotAllowed, NotFound
from recovery.services.staff import (
    PracticeRef,
    TaskItem,
    is_mine,
    practice_of,
    practices_for,
    task_item,
)

RECENTLY_DONE = timedelta(hours=24)

# Which queues each role works: what its board lists and counts, and what its Next task and
# Claim take. The one place this is decided. A task handed to a person (Hand over, or past
# twice its SLA to the manager) is theirs whatever its queue.
QUEUES_BY_ROLE: Mapping[Role, frozenset[TaskQueue]] = {
    # The front desk covers billing and the care team's refill calls in a small clinic.
    Role.STAFF: frozenset(TaskQueue),
    # Nurses and doctors: the care team's work, and the front desk's when a patient needs a
    # person; billing questions are not theirs to answer.
    Role.CLINICIAN: frozenset({TaskQueue.CARE_TEAM, TaskQueue.FRONT_DESK}),
    Role.MANAGER: frozenset(TaskQueue),
    Role.ADMIN: frozenset(TaskQueue),
}


def works(viewer: Viewer, task: Task) -> bool:
    """The task is on the viewer's board: a queue their role works, or handed to them."""
    return task.queue in QUEUES_BY_ROLE[viewer.role] or task.assigned_to == viewer.id


@dataclass(frozen=True)
class Filters:
    queue: TaskQueue | None = None  # None: every queue
    mine: bool = False  # claimed by the viewer, or handed to them
    overdue: bool = False  # past their due time only

    @classmethod
    def parse(cls, queue: str | None, mine: str | None, overdue: str | None) -> Filters:
        """?queue=billing&mine=1&overdue=1; an unknown queue means every queue."""
        try:
            chosen = TaskQueue(queue) if queue else None
        except ValueError:
            chosen = None
        return cls(chosen, mine == "1", overdue == "1")

    def args(self) -> dict[str, str]:
        """The query string that keeps these filters, for links and the live poll."""
        out = {}
        if self.queue is not None:
            out["queue"] = self.queue.value
        if self.mine:
            out["mine"] = "1"
        if self.overdue:
            out["overdue"] = "1"
        return out


@dataclass(frozen=True)
class ActivePage:
    code: str
    episode_id: int
    since: datetime  # the patient's urgent reply
    caller: str  # E.164


@dataclass(frozen=True)
class TaskBoard:
    practice: PracticeRef
    zone: ZoneInfo  # the practice's
    now: datetime
    filters: Filters
    counts: dict[str, int]  # open and claimed tasks per queue, whatever the filter
    overdue: dict[str, int]  # of those, past their due time
    mine_count: int
    tasks: list[TaskItem]  # one list, soonest due first
    done: list[TaskItem]
    pages: list[ActivePage]  # for those who can take a page; empty for the rest
    breached: int  # for a manager: open tasks past their SLA
    escalated_to_me: int  # for a manager: past twice their SLA, on their list
    people: list[tuple[int, str]] = field(default_factory=list)  # who a task can go to
    practices: list[PracticeRef] = field(default_factory=list)  # an admin's choice
    version: str = ""
    # The viewer's own Completes they can still take back, newest first (task id -> offer).
    undoable: dict[int, undo.UndoOffer] = field(default_factory=dict)
    queues: list[str] = field(default_factory=list)  # the queues the viewer's role works


def _chosen_practice(
    session: Session, viewer: Viewer, practice_slug: str | None
) -> tuple[Practice, list[PracticeRef]]:
    """The practice whose queue is shown: the viewer's; an admin picks (the first by name
    when none is asked for)."""
    choices = practices_for(session, viewer)
    chosen = next((p for p in choices if p.slug == practice_slug), None) or (
        choices[0] if choices else None
    )
    if chosen is None:
        raise NotFound
    return practice_of(session, viewer, chosen.id), choices


def _sees_sla(viewer: Viewer) -> bool:
    return viewer.role in (Role.MANAGER, Role.ADMIN)


def board_version(
    session: Session, viewer: Viewer, *, now: datetime, practice_slug: str | None = None
) -> str:
    """A digest of everything the board shows, to answer a live poll "nothing new"."""
    practice, _ = _chosen_practice(session, viewer, practice_slug)
    rows = session.execute(
        select(
            Task.id,
            Task.status,
            Task.claimed_by,
            Task.assigned_to,
            Task.queue,
            Task.due_at,
            Task.patient_replied_at,
            Task.breached_at,
            Task.completed_at,
        )
        .where(
            Task.practice_id == practice.id,
            or_(Task.status.in_(TASK_UNDONE), Task.completed_at >= now - RECENTLY_DONE),
        )
        .order_by(Task.id)
    ).all()
    pages = session.scalars(
        select(Page.code).where(Page.practice_id == practice.id, Page.status == PageStatus.ACTIVE)
    ).all()
    # The minute is part of it: "due in 5 min" and "overdue" change with the clock.
    digest = hashlib.sha256(
        repr((now.replace(second=0, microsecond=0), [tuple(r) for r in rows], pages)).encode()
    )
    return digest.hexdigest()[:16]


def task_board(
    session: Session,
    viewer: Viewer,
    cipher: PhiCipher,
    *,
    now: datetime,
    filters: Filters = Filters(),
    practice_slug: str | None = None,
    undo_window: timedelta = undo.UNDO_WINDOW,
) -> TaskBoard:
    practice, choices = _chosen_practice(session, viewer, practice_slug)
    zone = ZoneInfo(practice.timezone)
    open_rows = session.execute(
        select(Task, Episode.caller)
        .join(Episode, Episode.id == Task.episode_id)
        .where(Task.practice_id == practice.id, Task.status.in_(TASK_UNDONE))
        .order_by(Task.due_at, Task.id)
    ).all()
    done_rows = session.execute(
        select(Task, Episode.caller)
        .join(Episode, Episode.id == Task.episode_id)
        .where(
            Task.practice_id == practice.id,
            Task.status == TaskStatus.DONE,
            Task.completed_at >= now - RECENTLY_DONE,
        )
        .order_by(Task.completed_at.desc(), Task.id.desc())
    ).all()

    open_rows = [row for row in open_rows if works(viewer, row[0])]
    done_rows = [row for row in done_rows if works(viewer, row[0])]
    counts = {q.value: 0 for q in TaskQueue}
    overdue = {q.value: 0 for q in TaskQueue}
    for task, _ in open_rows:
        counts[task.queue.value] += 1
        overdue[task.queue.value] += task.due_at < now

    def shown(task: Task) -> bool:
        return (
            (filters.queue is None or task.queue is filters.queue)
            and (not filters.mine or is_mine(task, viewer))
            and (not filters.overdue or task.due_at < now)
        )

    visible = [(t, c) for t, c in open_rows if shown(t)]
    answered = conversation.answered(
        session, {t.episode_id for t, _ in visible if t.reason is TaskReason.UNCLEAR}
    )
    people = _people(session, practice.id)
    names = dict(people)
    tasks = [
        task_item(
            t,
            c,
            viewer,
            now=now,
            note=unseal(cipher, t.note),
            answered=t.episode_id in answered,
            assigned_name=names.get(t.assigned_to or 0),
        )
        for t, c in visible
    ]
    done_visible = [
        (t, c) for t, c in done_rows if filters.queue is None or t.queue is filters.queue
    ]
    done = [task_item(t, c, viewer, now=now, note=unseal(cipher, t.note)) for t, c in done_visible]
    pages = _active_pages(session, practice) if viewer.can_take_pages else []

    seen = sorted(
        {t.episode_id for t, _ in [*visible, *done_visible]} | {p.episode_id for p in pages}
    )
    record(
        session,
        viewer.id,
        AuditAction.VIEW_TASKS,
        now=now,
        detail=f"practice {practice.slug}; queue {filters.queue.value if filters.queue else 'all'}"
        f"{'; mine' if filters.mine else ''}{'; overdue' if filters.overdue else ''}; "
        f"episodes {','.join(map(str, seen)) or 'none'}",
    )
    return TaskBoard(
        practice=PracticeRef(practice.id, practice.slug, practice.name),
        zone=zone,
        now=now,
        filters=filters,
        counts=counts,
        overdue=overdue,
        mine_count=sum(is_mine(t, viewer) for t, _ in open_rows),
        tasks=tasks,
        done=done,
        pages=pages,
        breached=sum(t.breached_at is not None for t, _ in open_rows) if _sees_sla(viewer) else 0,
        escalated_to_me=sum(
            t.escalated_at is not None and t.assigned_to == viewer.id for t, _ in open_rows
        ),
        people=people,
        practices=choices if viewer.is_admin else [],
        queues=[q.value for q in TaskQueue if q in QUEUES_BY_ROLE[viewer.role]],
        version=board_version(session, viewer, now=now, practice_slug=practice.slug),
        undoable={
            offer.task_id: offer
            for offer in undo.offers(
                session,
                viewer,
                practice_id=practice.id,
                now=now,
                window=undo_window,
                zone=zone,
            )
            if offer.kind is UndoKind.COMPLETE_TASK and offer.task_id is not None
        },
    )


def _people(session: Session, practice_id: int) -> list[tuple[int, str]]:
    """The practice's active staff, a task can be handed to any of them."""
    rows = session.execute(
        select(User.id, User.name)
        .where(User.practice_id == practice_id, User.active.is_(True))
        .order_by(User.name, User.id)
    )
    return [(user_id, name) for user_id, name in rows]


def _active_pages(session: Session, practice: Practice) -> list[ActivePage]:
    rows = session.execute(
        select(Page, Episode.caller)
        .join(Episode, Episode.id == Page.episode_id)
        .where(Page.practice_id == practice.id, Page.status == PageStatus.ACTIVE)
        .order_by(Page.reply_received_at, Page.id)
    ).all()
    return [ActivePage(p.code, p.episode_id, p.reply_received_at, caller) for p, caller in rows]


# --- actions ----------------------------------------------------------------------------


def _find_task(session: Session, viewer: Viewer, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None or not viewer.may_see(task.practice_id):
        raise NotFound
    return task


@dataclass(frozen=True)
class TaskResult:
    task_id: int
    changed: bool
    status: TaskStatus
    claimed_by: str | None
    # Completed, but nobody reached the patient: the episode was not counted resolved.
    unreached: bool = False
    # Handed over: the queue it is in now, and the person it waits for, if one.
    queue: TaskQueue | None = None
    assigned_name: str | None = None


def _result(task: Task, changed: bool, *, unreached: bool = False) -> TaskResult:
    return TaskResult(task.id, changed, task.status, task.claimed_by, unreached)


def _audit(
    session: Session,
    viewer: Viewer,
    action: AuditAction,
    task: Task,
    now: datetime,
    extra: str = "",
) -> None:
    record(
        session,
        viewer.id,
        action,
        now=now,
        episode_id=task.episode_id,
        detail=f"task {task.id}{extra}",
    )


def claim(session: Session, viewer: Viewer, task_id: int, *, now: datetime) -> TaskResult:
    """The viewer takes an open task. One already claimed stays with whoever has it."""
    found = _find_task(session, viewer, task_id)
    if not works(viewer, found):
        raise NotAllowed(
            f"The {found.queue.value.replace('_', ' ')} queue is not yours to work: "
            "hand the task over to someone whose it is."
        )
    result = outcomes.claim_task(session, task_id, by=viewer.name, now=now)
    if result is None:
        raise NotFound
    if result.changed:
        _audit(session, viewer, AuditAction.CLAIM_TASK, result.value, now)
    return _result(result.value, result.changed)


def next_task(
    session: Session,
    viewer: Viewer,
    *,
    now: datetime,
    filters: Filters = Filters(),
    practice_slug: str | None = None,
) -> TaskResult | None:
    """**Next task**: claim the oldest-due unclaimed task (in the chosen queue) for the
    viewer, skipping rows another Next task holds locked; None when nothing is waiting.
    A task handed to someone else waits for them."""
    practice, _ = _chosen_practice(session, viewer, practice_slug)
    query = (
        select(Task)
        .where(
            Task.practice_id == practice.id,
            Task.status == TaskStatus.OPEN,
            or_(Task.assigned_to.is_(None), Task.assigned_to == viewer.id),
            or_(Task.queue.in_(QUEUES_BY_ROLE[viewer.role]), Task.assigned_to == viewer.id),
        )
        .order_by(Task.due_at, Task.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if filters.queue is not None:
        query = query.where(Task.queue == filters.queue)
    task = session.scalars(query).first()
    if task is None:
        return None
    task.status = move(task.status, TaskStatus.CLAIMED)
    task.claimed_by = fit_name(viewer.name)
    task.claimed_at = now
    _audit(session, viewer, AuditAction.CLAIM_TASK, task, now, "; next task")
    return _result(task, True)


def unclaim(session: Session, viewer: Viewer, task_id: int, *, now: datetime) -> TaskResult:
    """Give a claimed task back to the queue: its claimer, or a manager, may."""
    task = _find_task(session, viewer, task_id)
    task = session.get(Task, task_id, with_for_update=True, populate_existing=True) or task
    if task.status is not TaskStatus.CLAIMED:
        return _result(task, False)
    if task.claimed_by != viewer.name and not _sees_sla(viewer):
        raise NotAllowed(
            f"{task.claimed_by} has this task; only they or a manager can give it back."
        )
    task.status = move(task.status, TaskStatus.OPEN)
    task.claimed_by = None
    task.claimed_at = None
    _audit(session, viewer, AuditAction.UNCLAIM_TASK, task, now)
    return _result(task, True)


def reassign(
    session: Session,
    viewer: Viewer,
    task_id: int,
    *,
    now: datetime,
    to_queue: TaskQueue | None = None,
    to_user: int | None = None,
) -> TaskResult:
    """Hand a task over: to another queue, or to a person of the practice (it waits on
    their "mine" list, unclaimed, and Next task keeps it for them). A done task stays."""
    _find_task(session, viewer, task_id)
    task = session.get(Task, task_id, with_for_update=True, populate_existing=True)
    assert task is not None
    if task.status is TaskStatus.DONE:
        return _result(task, False)
    changes = []
    if to_queue is not None and to_queue is not task.queue:
        task.queue = to_queue
        changes.append(f"queue {to_queue.value}")
    if to_user is not None:
        person = session.get(User, to_user)
        if person is None or not person.active or person.practice_id != task.practice_id:
            raise NotFound
        held_by_them = task.status is TaskStatus.CLAIMED and task.claimed_by == person.name
        if task.assigned_to != person.id or (
            task.status is TaskStatus.CLAIMED and not held_by_them
        ):
            task.assigned_to = person.id
            if task.status is TaskStatus.CLAIMED and not held_by_them:
                task.status = move(task.status, TaskStatus.OPEN)
                task.claimed_by = None
                task.claimed_at = None
            changes.append(f"user {person.id}")
    if changes:
        _audit(session, viewer, AuditAction.REASSIGN_TASK, task, now, "; to " + ", ".join(changes))
    person = session.get(User, task.assigned_to) if task.assigned_to is not None else None
    return replace(
        _result(task, bool(changes)),
        queue=task.queue,
        assigned_name=person.name if person is not None else None,
    )


def complete(
    session: Session,
    viewer: Viewer,
    task_id: int,
    cipher: PhiCipher,
    *,
    note: str | None,
    now: datetime,
    called: bool = False,
) -> TaskResult:
    """The task is done (a colleague may complete a task someone else claimed: covering
    for each other is normal at a front desk, and the audit row says who did).

    A "reply not understood" task asks for nothing but contact: done without a staff reply
    to the patient and without `called` (the viewer says they phoned), the patient never
    heard from a person, and the episode is not counted resolved. Billing and refill tasks
    are the call itself: completing one says the patient was reached."""
    _find_task(session, viewer, task_id)
    # Locked before they are read for Undo, task then episode (complete_task's order).
    found = session.get(Task, task_id, with_for_update=True, populate_existing=True)
    assert found is not None
    episode = session.get(Episode, found.episode_id, with_for_update=True, populate_existing=True)
    assert episode is not None  # a foreign key
    before = undo.Snapshot.of(episode, found)
    reached = (
        found.reason is not TaskReason.UNCLEAR
        or called
        or found.episode_id in conversation.answered(session, {found.episode_id})
    )
    note = (note or "").strip()[:2000] or None
    # What staff write about a patient is PHI like the patient's own words: stored sealed.
    result = outcomes.complete_task(
        session, task_id, by=viewer.name, note=seal(cipher, note), now=now, reached_patient=reached
    )
    if result is None:
        raise NotFound
    task = result.value
    if result.changed:
        _audit(
            session,
            viewer,
            AuditAction.COMPLETE_TASK,
            task,
            now,
            ("; with a note" if note else "") + ("" if reached else "; patient not reached"),
        )
        undo.remember(
            session, viewer, UndoKind.COMPLETE_TASK, before, episode=episode, task=task, now=now
        )
    return _result(task, result.changed, unreached=result.changed and not reached)
