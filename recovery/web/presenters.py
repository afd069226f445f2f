"""What the staff pages render: the services' plain results, as staff read them.

recovery.services.staff and .queue return stored (UTC) times, enums and E.164 numbers;
here they become the practice's wall clock, words (recovery.web.labels), phone numbers
as people write them, and the CSS kinds the templates style by. Nothing here reads the
database or decides anything: the same result always reads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from recovery.domain.messages import MessageKind, StaffReplyRefusal
from recovery.domain.states import MessageStatus, TaskStatus
from recovery.models import TaskQueue
from recovery.services import conversation, undo
from recovery.services.queue import Filters, TaskBoard
from recovery.services.staff import (
    EpisodeDetail,
    PageDetail,
    PracticeRef,
    TaskItem,
    ThreadItem,
    Words,
)
from recovery.web.labels import (
    DELIVERY_LABELS,
    INTENT_LABELS,
    LANGUAGE_LABELS,
    MESSAGE_KIND_LABELS,
    OUTCOME_LABELS,
    QUEUE_LABELS,
    REASON_LABELS,
    REFUSAL_LABELS,
    display_phone,
)


@dataclass(frozen=True)
class Clock:
    """The practice's wall clock, for turning stored UTC times into what staff read."""

    zone: ZoneInfo
    now: datetime  # in the practice's zone

    @classmethod
    def of(cls, zone: ZoneInfo, now: datetime) -> Clock:
        return cls(zone, now.astimezone(zone))

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def maybe(self, at: datetime | None) -> datetime | None:
        return None if at is None else at.astimezone(self.zone)

    @property
    def label(self) -> str:
        """CST (Chicago): what the zone is called now, and where, short enough for a phone."""
        city = self.zone.key.rsplit("/", 1)[-1].replace("_", " ")
        return f"{self.now.strftime('%Z')} ({city})"


# --- a task --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    id: int
    episode_id: int
    queue: str
    queue_label: str
    reason_label: str
    status: str
    due_at: datetime
    overdue: bool
    patient_phone: str  # E.164, for the tel: link
    patient_display: str
    claimed_by: str | None
    claimed_at: datetime | None
    completed_at: datetime | None
    note: str | None
    mine: bool
    patient_replied_at: datetime | None = None
    ask_if_reached: bool = False  # see TaskItem
    assigned_name: str | None = None
    breached: bool = False
    escalated: bool = False


def task_row(task: TaskItem, clock: Clock) -> TaskRow:
    return TaskRow(
        id=task.id,
        episode_id=task.episode_id,
        queue=task.queue.value,
        queue_label=QUEUE_LABELS[task.queue],
        reason_label=REASON_LABELS[task.reason],
        status=task.status.value,
        due_at=clock.local(task.due_at),
        overdue=task.overdue,
        patient_phone=task.patient_phone,
        patient_display=display_phone(task.patient_phone),
        claimed_by=task.claimed_by,
        claimed_at=clock.maybe(task.claimed_at),
        completed_at=clock.maybe(task.completed_at),
        note=task.note,
        mine=task.mine,
        patient_replied_at=clock.maybe(task.patient_replied_at),
        ask_if_reached=task.ask_if_reached,
        assigned_name=task.assigned_name,
        breached=task.breached,
        escalated=task.escalated,
    )


# --- the queue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivePageRow:
    code: str
    episode_id: int
    since: datetime  # the patient's urgent reply
    patient_display: str


@dataclass(frozen=True)
class BoardView:
    """queue.TaskBoard with its rows and times as staff read them."""

    practice: PracticeRef
    timezone: str
    filters: Filters
    counts: dict[str, int]
    overdue: dict[str, int]
    mine_count: int
    tasks: list[TaskRow]
    done: list[TaskRow]
    pages: list[ActivePageRow]
    breached: int
    escalated_to_me: int
    people: list[tuple[int, str]]
    practices: list[PracticeRef]
    version: str
    undoable: dict[int, undo.UndoOffer]
    queues: list[str]

    @property
    def last_undo(self) -> undo.UndoOffer | None:
        return next(iter(self.undoable.values()), None)

    @property
    def open_total(self) -> int:
        return sum(self.counts.values())

    @property
    def overdue_total(self) -> int:
        return sum(self.overdue.values())

    @property
    def selected(self) -> str | None:
        return self.filters.queue.value if self.filters.queue else None

    @property
    def queue_tabs(self) -> list[tuple[str, str]]:
        """The queues this user works, as (value, label), in the enum's order."""
        return [(q.value, QUEUE_LABELS[q]) for q in TaskQueue if q.value in self.queues]

    @property
    def handover_queues(self) -> list[tuple[str, str]]:
        """A task may be handed to any queue, one the user does not work too."""
        return [(q.value, QUEUE_LABELS[q]) for q in TaskQueue]


def board_view(board: TaskBoard) -> BoardView:
    clock = Clock.of(board.zone, board.now)
    return BoardView(
        practice=board.practice,
        timezone=clock.label,
        filters=board.filters,
        counts=board.counts,
        overdue=board.overdue,
        mine_count=board.mine_count,
        tasks=[task_row(t, clock) for t in board.tasks],
        done=[task_row(t, clock) for t in board.done],
        pages=[
            ActivePageRow(p.code, p.episode_id, clock.local(p.since), display_phone(p.caller))
            for p in board.pages
        ],
        breached=board.breached,
        escalated_to_me=board.escalated_to_me,
        people=board.people,
        practices=board.practices,
        version=board.version,
        undoable=board.undoable,
        queues=board.queues,
    )


# --- the page link -------------------------------------------------------------------------


@dataclass(frozen=True)
class PagedPerson:
    name: str
    at: datetime
    status: str  # the text's delivery state, as staff say it: queued, sent, delivered...
    failed: bool


@dataclass(frozen=True)
class PageView:
    code: str
    active: bool
    practice: PracticeRef
    timezone: str
    episode_id: int
    patient_phone: str  # E.164, for the tel: link
    patient_display: str
    reply_received_at: datetime
    first_page_at: datetime | None
    next_escalation_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    paged: list[PagedPerson]
    words: list[Words]
    can_take: bool


def page_view(page: PageDetail, *, now: datetime) -> PageView:
    clock = Clock.of(page.zone, now)
    return PageView(
        code=page.code,
        active=page.active,
        practice=page.practice,
        timezone=clock.label,
        episode_id=page.episode_id,
        patient_phone=page.patient_phone,
        patient_display=display_phone(page.patient_phone),
        reply_received_at=clock.local(page.reply_received_at),
        first_page_at=clock.maybe(page.first_page_at),
        next_escalation_at=clock.maybe(page.next_escalation_at),
        acknowledged_by=page.acknowledged_by,
        acknowledged_at=clock.maybe(page.acknowledged_at),
        paged=[
            PagedPerson(
                text.name or display_phone(text.to_number),
                clock.local(text.at),
                DELIVERY_LABELS[text.status],
                text.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED),
            )
            for text in page.paged
        ],
        words=[
            Words(clock.local(w.at), w.text, INTENT_LABELS.get(w.intent or "")) for w in page.words
        ],
        can_take=page.can_take,
    )


# --- an episode's story --------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # call, text_out, text_in, staff_text, task, page, outcome, thread: styles by it
    title: str
    body: str | None = None
    meta: str | None = None
    episode_id: int | None = None  # a "thread" entry: the other conversation it links to


# At the same moment, the story reads in this order: where a conversation begins, the
# call, what the patient wrote, our answer, the task or page it became, the texts to
# staff, and the outcome last.
_ENTRY_ORDER = {
    "thread": -1,
    "call": 0,
    "text_in": 1,
    "text_out": 2,
    "staff_reply": 2,
    "task": 3,
    "page": 4,
    "staff_text": 5,
}


@dataclass(frozen=True)
class ThreadLink:
    """One of the patient's conversations with the practice, as the thread lists them."""

    id: int
    opened_at: datetime
    outcome: str | None  # None while open
    current: bool  # the one this page is about


@dataclass(frozen=True)
class EpisodeView:
    id: int
    practice: PracticeRef
    timezone: str
    patient_phone: str
    patient_display: str
    open: bool
    outcome: str | None
    outcome_at: datetime | None
    intent: str | None
    opened_at: datetime
    call_count: int
    timeline: list[Entry]
    open_tasks: list[int]
    active_pages: list[str]
    can_mark_booked: bool
    booking_clicked_at: datetime | None
    language: str = "English"
    opted_out_at: datetime | None = None
    tasks: list[TaskRow] = field(default_factory=list)
    reply_from: str = ""
    saved_replies: list[conversation.SavedChoice] = field(default_factory=list)
    undo_offer: undo.UndoOffer | None = None
    thread: list[ThreadLink] = field(default_factory=list)
    continues_in: int | None = None

    @property
    def reply_blocked(self) -> str | None:
        """Why the reply box is closed, in words for the page; None when it is open."""
        if self.opted_out_at is not None:
            return REFUSAL_LABELS[StaffReplyRefusal.OPTED_OUT]
        return None


def episode_view(episode: EpisodeDetail, *, now: datetime) -> EpisodeView:
    clock = Clock.of(episode.zone, now)
    return EpisodeView(
        id=episode.id,
        practice=episode.practice,
        timezone=clock.label,
        patient_phone=episode.patient_phone,
        patient_display=display_phone(episode.patient_phone),
        open=episode.open,
        outcome=OUTCOME_LABELS[episode.outcome] if episode.outcome else None,
        outcome_at=clock.maybe(episode.outcome_at),
        intent=INTENT_LABELS.get(episode.intent) if episode.intent else None,
        opened_at=clock.local(episode.opened_at),
        call_count=episode.call_count,
        timeline=timeline(episode, clock),
        open_tasks=episode.open_tasks,
        active_pages=episode.active_pages,
        can_mark_booked=episode.can_mark_booked,
        booking_clicked_at=clock.maybe(episode.booking_clicked_at),
        language=LANGUAGE_LABELS.get(episode.language, episode.language),
        opted_out_at=clock.maybe(episode.opted_out_at),
        tasks=[task_row(t, clock) for t in episode.tasks],
        reply_from=display_phone(episode.reply_from),
        saved_replies=episode.saved_replies,
        undo_offer=episode.undo_offer,
        thread=[
            ThreadLink(
                e.id,
                clock.local(e.opened_at),
                OUTCOME_LABELS[e.outcome] if e.outcome else None,
                e.current,
            )
            for e in episode.thread
        ],
        continues_in=episode.continues_in,
    )


def timeline(episode: EpisodeDetail, clock: Clock) -> list[Entry]:
    """The whole thread's story, oldest first: calls, texts, tasks, pages and outcomes."""
    entries: list[Entry] = []
    for call in episode.calls:
        entries.append(
            Entry(
                clock.local(call.at),
                "call",
                "Missed call",
                meta=f"to {display_phone(call.called)} · {call.reason.replace('_', ' ')}",
            )
        )

    for text in episode.texts:
        at = clock.local(text.at)
        who = text.name or display_phone(text.number)
        if text.inbound and not text.patient:
            if text.intent == "ack":
                # The clinician's acknowledgement, in their own words ("ACK 4821"): theirs,
                # not the patient's.
                entries.append(
                    Entry(
                        at,
                        "staff_text",
                        f"{who} answered the page by text",
                        text.body,
                        "on-call acknowledgement",
                    )
                )
            else:
                entries.append(Entry(at, "staff_text", f"Text from {who}", meta="on-call reply"))
        elif text.inbound:
            intent = INTENT_LABELS.get(text.intent or "", "not routed yet")
            entries.append(
                Entry(at, "text_in", "Patient wrote", text.body, f"understood: {intent}")
            )
        elif text.kind is MessageKind.STAFF_REPLY:
            entries.append(
                Entry(
                    at,
                    "staff_reply",
                    f"{text.name or 'Staff'} replied",
                    text.body,
                    DELIVERY_LABELS[text.status],
                )
            )
        elif text.patient:
            kind = MESSAGE_KIND_LABELS.get(text.kind, "Text")
            entries.append(
                Entry(at, "text_out", f"{kind} to patient", text.body, DELIVERY_LABELS[text.status])
            )
        else:
            kind = MESSAGE_KIND_LABELS.get(text.kind, "Text")
            entries.append(
                Entry(at, "staff_text", f"{kind} to {who}", None, DELIVERY_LABELS[text.status])
            )

    for task in episode.task_history:
        label = f"{QUEUE_LABELS[task.queue]} task: {REASON_LABELS[task.reason]}"
        due = clock.local(task.due_at).strftime("%a %b %-d, %-I:%M %p")
        entries.append(Entry(clock.local(task.created_at), "task", label, meta=f"due {due}"))
        if task.claimed_at and task.claimed_by and task.status is TaskStatus.CLAIMED:
            entries.append(
                Entry(clock.local(task.claimed_at), "task", f"Claimed by {task.claimed_by}")
            )
        if task.completed_at:
            entries.append(
                Entry(
                    clock.local(task.completed_at),
                    "task",
                    f"Completed by {task.claimed_by or 'staff'}",
                    task.note,
                )
            )

    for page in episode.pages:
        entries.append(
            Entry(clock.local(page.created_at), "page", f"Urgent page {page.code} started")
        )
        if page.acknowledged_at:
            entries.append(
                Entry(
                    clock.local(page.acknowledged_at),
                    "page",
                    f"Page {page.code} taken by {page.acknowledged_by}",
                )
            )

    for earlier, one in zip([None, *episode.thread], episode.thread, strict=False):
        entries.extend(_episode_marks(one, earlier, clock))
    entries.sort(key=lambda e: (e.at, _ENTRY_ORDER.get(e.kind, 9)))
    return entries


def _episode_marks(one: ThreadItem, earlier: ThreadItem | None, clock: Clock) -> list[Entry]:
    """Where each conversation of the thread starts and ends, and its booking link tap."""
    marks = []
    if earlier is not None:
        how = "the patient called again" if one.call_count else "the patient texted"
        marks.append(
            Entry(
                clock.local(one.began),
                "thread",
                f"Conversation #{one.id} began: {how}",
                meta="this conversation" if one.current else None,
                episode_id=None if one.current else one.id,
            )
        )
    if one.booking_clicked_at:
        marks.append(
            Entry(clock.local(one.booking_clicked_at), "text_in", "Opened the booking link")
        )
    if one.outcome is not None and one.outcome_at is not None:
        whose = "" if one.current else f" of #{one.id}"
        marks.append(
            Entry(
                clock.local(one.outcome_at),
                "outcome",
                f"Outcome{whose}: {OUTCOME_LABELS[one.outcome]}",
            )
        )
    return marks
