"""What staff see and do in the browser: the page link, the task queue, an episode's story.

Every function here takes the signed-in `Viewer`, checks they belong to the practice (an
admin belongs to all), and writes the audit row for what they saw or did, so a view
cannot forget to. A record of another practice is reported as not found: a user learns
nothing about other practices' pages or patients. Patients' words are decrypted here,
for the page being rendered, and never logged.

Times come back in the practice's time zone: the front desk in Chicago reads Chicago time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher, unseal
from recovery.domain.messages import MAX_STAFF_REPLY, MessageKind, StaffReplyRefusal
from recovery.domain.states import TASK_UNDONE
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    AuditAction,
    CallEvent,
    Direction,
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Message,
    MessageStatus,
    OptOut,
    Page,
    PageStatus,
    Practice,
    Task,
    TaskQueue,
    TaskStatus,
    UndoKind,
    User,
)
from recovery.services import conversation, outcomes, paging, undo
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.errors import NotAllowed, NotFound
from recovery.services.texts import line_called

log = logging.getLogger(__name__)

QUEUE_LABELS = {
    TaskQueue.BILLING: "Billing",
    TaskQueue.CARE_TEAM: "Care team",
    TaskQueue.FRONT_DESK: "Front desk",
}
REASON_LABELS = {
    TaskReason.BILLING: "Billing question",
    TaskReason.REFILL: "Prescription refill",
    TaskReason.UNCLEAR: "Reply not understood",
    TaskReason.BOOK: "Wants an appointment",
    TaskReason.CLINICAL: "Clinical question: nurse to call back",
    TaskReason.CALL_BACK: "Cannot be texted: call the patient",
}
OUTCOME_LABELS = {
    EpisodeOutcome.BOOKED: "Booked",
    EpisodeOutcome.RESOLVED: "Resolved",
    EpisodeOutcome.ESCALATED: "Escalated to on-call",
    EpisodeOutcome.OPTED_OUT: "Opted out",
    EpisodeOutcome.UNRECOVERED: "Unrecovered",
}
INTENT_LABELS = {
    "book": "Booking",
    "billing": "Billing",
    "refill": "Refill",
    "urgent": "Urgent",
    "clinical": "Clinical concern",
    "stop": "Stop",
    "start": "Start",
    "help": "Help",
    "ack": "Page acknowledgement",
    "unknown": "Not understood",
}
MESSAGE_KIND_LABELS = {
    MessageKind.FIRST_TEXT: "First text",
    MessageKind.NUDGE: "Follow-up",
    MessageKind.PAGE: "Page",
    MessageKind.PAGE_ACK: "Page confirmation",
    MessageKind.STAFF_REPLY: "Reply",
}
LANGUAGE_LABELS = {"en": "English", "es": "Spanish"}
REFUSAL_LABELS = {
    StaffReplyRefusal.EMPTY: "Write a reply first.",
    StaffReplyRefusal.TOO_LONG: f"Keep a reply under {MAX_STAFF_REPLY} characters (four texts).",
    StaffReplyRefusal.OPTED_OUT: "This patient texted STOP: no text can be sent to them "
    "until they text START.",
    StaffReplyRefusal.UNKNOWN_SAVED_REPLY: "That saved reply was removed.",
}
# How a text's delivery state reads to staff: "accepted" is provider talk for "sent".
DELIVERY_LABELS = {
    MessageStatus.PENDING: "queued",
    MessageStatus.RETRYING: "queued",
    MessageStatus.SENDING: "sending",
    MessageStatus.ACCEPTED: "sent",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.UNDELIVERED: "not delivered",
    MessageStatus.FAILED: "failed",
    MessageStatus.SUPPRESSED: "not sent (opted out)",
    MessageStatus.RECEIVED: "received",
    MessageStatus.ROUTED: "received",
}
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


# --- small helpers ---------------------------------------------------------------------


def display_phone(e164: str | None) -> str:
    """(512) 555-0199 for North American numbers, +44 20 7946 0958 for the rest."""
    if not e164:
        return "unknown number"
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


@dataclass(frozen=True)
class Clock:
    """The practice's wall clock, for turning stored UTC times into what staff read."""

    zone: ZoneInfo
    now: datetime  # in the practice's zone

    @classmethod
    def of(cls, practice: Practice, now: datetime) -> Clock:
        zone = ZoneInfo(practice.timezone)
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


@dataclass(frozen=True)
class PracticeRef:
    id: int
    slug: str
    name: str


def practices_for(session: Session, viewer: Viewer) -> list[PracticeRef]:
    query = select(Practice).order_by(Practice.name)
    if not viewer.is_admin:
        query = query.where(Practice.id == viewer.practice_id)
    return [PracticeRef(p.id, p.slug, p.name) for p in session.scalars(query)]


def practice_of(session: Session, viewer: Viewer, practice_id: int) -> Practice:
    if not viewer.may_see(practice_id):
        raise NotFound
    practice = session.get(Practice, practice_id)
    if practice is None:
        raise NotFound
    return practice


def _people_by_phone(practice: Practice, page: Page) -> dict[str, str]:
    names: dict[str, str] = {}
    people = [*practice.on_call, *([practice.manager] if practice.manager else []), *page.roster]
    for person in people:
        if person.get("phone") and person.get("name"):
            names[str(person["phone"])] = str(person["name"])
    return names


@dataclass(frozen=True)
class Words:
    """One thing the patient wrote, decrypted for this page only."""

    at: datetime
    text: str
    intent: str | None


def _patient_words(
    session: Session, cipher: PhiCipher, episode: Episode, clock: Clock
) -> list[Words]:
    # Only the patient's: a clinician's "ACK 4821" joins the episode too, and is theirs.
    inbound = session.scalars(
        select(Message)
        .where(
            Message.episode_id == episode.id,
            Message.direction == Direction.INBOUND,
            Message.from_number == episode.caller,
        )
        .order_by(Message.created_at, Message.id)
    )
    return [
        Words(clock.local(m.created_at), _decrypt(cipher, m), INTENT_LABELS.get(m.intent or ""))
        for m in inbound
    ]


def _decrypt(cipher: PhiCipher, message: Message) -> str:
    try:
        return cipher.decrypt(message.body_ciphertext or "")
    except ValueError:
        # A rotated key must not hide the rest of the page; staff see that text is missing.
        log.error("message %s cannot be decrypted with the current key", message.id)
        return "(this message cannot be decrypted: the encryption key has changed)"


# --- the page link ---------------------------------------------------------------------


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


def _find_page(session: Session, viewer: Viewer, code: str) -> Page:
    page = session.scalars(select(Page).where(Page.code == code.strip().upper())).first()
    if page is None or not viewer.may_see(page.practice_id):
        raise NotFound
    return page


def view_page(
    session: Session, cipher: PhiCipher, viewer: Viewer, code: str, *, now: datetime
) -> PageView:
    page = _find_page(session, viewer, code)
    practice = practice_of(session, viewer, page.practice_id)
    episode = session.get(Episode, page.episode_id)
    assert episode is not None  # a foreign key
    clock = Clock.of(practice, now)
    names = _people_by_phone(practice, page)
    texts = session.scalars(
        select(Message)
        .where(Message.page_id == page.id, Message.kind == MessageKind.PAGE)
        .order_by(Message.created_at, Message.id)
    )
    record(
        session,
        viewer.id,
        AuditAction.VIEW_PAGE,
        now=now,
        episode_id=episode.id,
        detail=f"page {page.code}",
    )
    active = page.status is PageStatus.ACTIVE
    return PageView(
        code=page.code,
        active=active,
        practice=PracticeRef(practice.id, practice.slug, practice.name),
        timezone=clock.label,
        episode_id=episode.id,
        patient_phone=episode.caller,
        patient_display=display_phone(episode.caller),
        reply_received_at=clock.local(page.reply_received_at),
        first_page_at=clock.maybe(page.first_page_at),
        next_escalation_at=clock.maybe(page.next_escalation_at) if active else None,
        acknowledged_by=page.acknowledged_by,
        acknowledged_at=clock.maybe(page.acknowledged_at),
        paged=[
            PagedPerson(
                names.get(m.to_number, display_phone(m.to_number)),
                clock.local(m.created_at),
                DELIVERY_LABELS[m.status],
                m.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED),
            )
            for m in texts
        ],
        words=_patient_words(session, cipher, episode, clock),
        can_take=active and viewer.can_take_pages,
    )


@dataclass(frozen=True)
class TakeResult:
    taken: bool  # False: someone had taken it already
    acknowledged_by: str | None


def take_page(
    session: Session, templates: SmsTemplates, viewer: Viewer, code: str, *, now: datetime
) -> TakeResult:
    """ "I'm taking this": the page is acknowledged by the viewer, its escalation stops and
    its episode ends ESCALATED. Taking a page someone already took changes nothing."""
    _find_page(session, viewer, code)
    if not viewer.can_take_pages:
        raise NotAllowed("Only clinicians and managers can take an urgent page.")
    result = paging.acknowledge_by_link(
        session, templates, code=code, staff_name=viewer.name, now=now
    )
    if result is None:
        raise NotFound
    page = result.value
    if result.changed:
        record(
            session,
            viewer.id,
            AuditAction.ACK_PAGE,
            now=now,
            episode_id=page.episode_id,
            detail=f"page {page.code}",
        )
    return TakeResult(result.changed, page.acknowledged_by)


# --- the task queue --------------------------------------------------------------------


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
    patient_phone: str
    patient_display: str
    claimed_by: str | None
    claimed_at: datetime | None
    completed_at: datetime | None
    note: str | None
    mine: bool
    patient_replied_at: datetime | None = None
    # A "reply not understood" task nobody has answered the patient on yet: completing it
    # asks whether someone called them (else the episode is not counted resolved).
    ask_if_reached: bool = False
    assigned_name: str | None = None  # handed to this person (reassigned or escalated)
    breached: bool = False  # past its SLA: the manager was told
    escalated: bool = False  # past twice its SLA: on the manager's list


def task_row(
    task: Task,
    caller: str,
    clock: Clock,
    viewer: Viewer,
    *,
    note: str | None,
    answered: bool = True,
    assigned_name: str | None = None,
) -> TaskRow:
    """`note`: the task's note, decrypted (tasks.note is stored encrypted)."""
    return TaskRow(
        id=task.id,
        episode_id=task.episode_id,
        queue=task.queue.value,
        queue_label=QUEUE_LABELS[task.queue],
        reason_label=REASON_LABELS[task.reason],
        status=task.status.value,
        due_at=clock.local(task.due_at),
        overdue=task.status is not TaskStatus.DONE and task.due_at < clock.now,
        patient_phone=caller,
        patient_display=display_phone(caller),
        claimed_by=task.claimed_by,
        claimed_at=clock.maybe(task.claimed_at),
        completed_at=clock.maybe(task.completed_at),
        note=note,
        mine=task.claimed_by == viewer.name
        if task.status is TaskStatus.CLAIMED
        else task.assigned_to == viewer.id,
        patient_replied_at=clock.maybe(task.patient_replied_at),
        ask_if_reached=task.reason is TaskReason.UNCLEAR and not answered,
        assigned_name=assigned_name,
        breached=task.breached_at is not None,
        escalated=task.escalated_at is not None,
    )


# --- an episode's story ----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # call, text_out, text_in, staff_text, task, page, outcome, thread: styles by it
    title: str
    body: str | None = None
    meta: str | None = None
    episode_id: int | None = None  # a "thread" entry: the other conversation it links to


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
    opted_out_at: datetime | None = None  # texted STOP (and not START since)
    tasks: list[TaskRow] = field(default_factory=list)  # the open ones, soonest due first
    reply_from: str = ""  # the practice line a reply goes from, as staff read it
    saved_replies: list[conversation.SavedChoice] = field(default_factory=list)
    # The viewer's last Complete or Mark booked here that they can still take back.
    undo_offer: undo.UndoOffer | None = None
    # Every conversation of this patient with the practice, oldest first: the timeline
    # shows them as one thread (a text after one ended opens the next; see _thread).
    thread: list[ThreadLink] = field(default_factory=list)
    # This one has ended, and the patient's thread goes on in this open one.
    continues_in: int | None = None

    @property
    def reply_blocked(self) -> str | None:
        """Why the reply box is closed, in words for the page; None when it is open."""
        if self.opted_out_at is not None:
            return REFUSAL_LABELS[StaffReplyRefusal.OPTED_OUT]
        return None


def _writers(session: Session, user_ids: set[int]) -> dict[int, str]:
    """Who wrote each staff reply, by user id (a deactivated user keeps their name)."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(user_ids)))
    return {user_id: name for user_id, name in rows}


def _bookable(episode: Episode, has_active_page: bool) -> bool:
    # While a page is live the patient may be in danger: a booking must not end the
    # episode (and with it what staff see) before a clinician has taken the page.
    if has_active_page:
        return False
    if episode.status is EpisodeStatus.OPEN:
        return True
    # A late booking through our link still counts (outcomes.confirm_booking's rule).
    return episode.outcome is EpisodeOutcome.UNRECOVERED and episode.booking_token is not None


# A patient who has called for years has a long story; the page shows the latest.
THREAD_LIMIT = 20


def _thread(session: Session, episode: Episode) -> list[Episode]:
    """The patient's conversations with the practice, oldest first, this one included.

    One caller's number at one practice is one patient thread, as in any inbox. Episodes
    stay separate underneath, because each missed call gets its own outcome (the recovery
    rate counts calls): a text after an episode ended opens a new one (replies._conversation),
    and this is where the two are read as one conversation again.
    """
    latest = list(
        session.scalars(
            select(Episode)
            .where(Episode.practice_id == episode.practice_id, Episode.caller == episode.caller)
            .order_by(Episode.opened_at.desc(), Episode.id.desc())
            .limit(THREAD_LIMIT)
        )
    )
    if episode not in latest:
        latest.append(episode)
    return sorted(latest, key=lambda e: (e.opened_at, e.id))


def view_episode(
    session: Session,
    cipher: PhiCipher,
    viewer: Viewer,
    episode_id: int,
    *,
    now: datetime,
    undo_window: timedelta = undo.UNDO_WINDOW,
) -> EpisodeView:
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise NotFound
    practice = practice_of(session, viewer, episode.practice_id)
    clock = Clock.of(practice, now)
    timeline: list[Entry] = []
    thread = _thread(session, episode)
    ids = [e.id for e in thread]

    for call in session.scalars(select(CallEvent).where(CallEvent.episode_id.in_(ids))):
        timeline.append(
            Entry(
                clock.local(call.occurred_at),
                "call",
                "Missed call",
                meta=f"to {display_phone(call.called)} · {call.reason.replace('_', ' ')}",
            )
        )

    pages = list(session.scalars(select(Page).where(Page.episode_id.in_(ids))))
    names: dict[str, str] = {}
    for page in pages:
        names.update(_people_by_phone(practice, page))
    messages = list(
        session.scalars(
            select(Message)
            .where(Message.episode_id.in_(ids))
            .order_by(Message.created_at, Message.id)
        )
    )
    writers = _writers(session, {m.sent_by for m in messages if m.sent_by is not None})
    for m in messages:
        at = clock.local(m.created_at)
        if m.direction is Direction.INBOUND:
            if m.from_number != episode.caller:
                who = names.get(m.from_number, display_phone(m.from_number))
                if m.intent == "ack":
                    # The clinician's acknowledgement, in their own words ("ACK 4821"):
                    # theirs, not the patient's.
                    timeline.append(
                        Entry(
                            at,
                            "staff_text",
                            f"{who} answered the page by text",
                            _decrypt(cipher, m),
                            "on-call acknowledgement",
                        )
                    )
                else:
                    timeline.append(
                        Entry(at, "staff_text", f"Text from {who}", meta="on-call reply")
                    )
                continue
            intent = INTENT_LABELS.get(m.intent or "", "not routed yet")
            timeline.append(
                Entry(at, "text_in", "Patient wrote", _decrypt(cipher, m), f"understood: {intent}")
            )
        elif m.kind is MessageKind.STAFF_REPLY:
            who = writers.get(m.sent_by or 0, "Staff")
            timeline.append(
                Entry(
                    at,
                    "staff_reply",
                    f"{who} replied",
                    _decrypt(cipher, m),
                    DELIVERY_LABELS[m.status],
                )
            )
        elif m.to_number == episode.caller:
            kind = MESSAGE_KIND_LABELS.get(m.kind, "Text")
            label = DELIVERY_LABELS[m.status]
            timeline.append(Entry(at, "text_out", f"{kind} to patient", m.body, label))
        else:
            who = names.get(m.to_number, display_phone(m.to_number))
            kind = MESSAGE_KIND_LABELS.get(m.kind, "Text")
            timeline.append(
                Entry(at, "staff_text", f"{kind} to {who}", None, DELIVERY_LABELS[m.status])
            )

    tasks = list(session.scalars(select(Task).where(Task.episode_id.in_(ids))))
    for task in tasks:
        label = f"{QUEUE_LABELS[task.queue]} task: {REASON_LABELS[task.reason]}"
        due = clock.local(task.due_at).strftime("%a %b %-d, %-I:%M %p")
        timeline.append(Entry(clock.local(task.created_at), "task", label, meta=f"due {due}"))
        if task.claimed_at and task.claimed_by and task.status is TaskStatus.CLAIMED:
            timeline.append(
                Entry(clock.local(task.claimed_at), "task", f"Claimed by {task.claimed_by}")
            )
        if task.completed_at:
            timeline.append(
                Entry(
                    clock.local(task.completed_at),
                    "task",
                    f"Completed by {task.claimed_by or 'staff'}",
                    unseal(cipher, task.note),
                )
            )

    for page in pages:
        timeline.append(
            Entry(clock.local(page.created_at), "page", f"Urgent page {page.code} started")
        )
        if page.acknowledged_at:
            timeline.append(
                Entry(
                    clock.local(page.acknowledged_at),
                    "page",
                    f"Page {page.code} taken by {page.acknowledged_by}",
                )
            )

    # A conversation begins with what opened it: the reply is stored when it arrives, its
    # episode a moment later when the worker routes it.
    began = {e.id: e.opened_at for e in thread}
    for m in messages:
        if m.episode_id is not None and m.created_at < began[m.episode_id]:
            began[m.episode_id] = m.created_at
    for earlier, one in zip([None, *thread], thread, strict=False):
        timeline.extend(_episode_marks(one, earlier, episode, clock, began[one.id]))
    timeline.sort(key=lambda e: (e.at, _ENTRY_ORDER.get(e.kind, 9)))

    active_pages = [p.code for p in pages if p.status is PageStatus.ACTIVE]
    open_tasks = sorted(
        (t for t in tasks if t.status in TASK_UNDONE), key=lambda t: (t.due_at, t.id)
    )
    answered = conversation.answered(session, set(ids))
    later_open = [e.id for e in thread if e.status is EpisodeStatus.OPEN and e.id != episode.id]
    reply_to = conversation.reply_target(session, episode)
    opted_out_at = session.scalar(
        select(OptOut.opted_out_at).where(
            OptOut.practice_id == practice.id,
            OptOut.phone == episode.caller,
            OptOut.opted_in_at.is_(None),
        )
    )
    record(
        session,
        viewer.id,
        AuditAction.VIEW_EPISODE,
        now=now,
        episode_id=episode.id,
        detail=f"episode {episode.id}"
        + (f"; thread {','.join(map(str, ids))}" if len(ids) > 1 else ""),
    )
    return EpisodeView(
        id=episode.id,
        practice=PracticeRef(practice.id, practice.slug, practice.name),
        timezone=clock.label,
        patient_phone=episode.caller,
        patient_display=display_phone(episode.caller),
        open=episode.status is EpisodeStatus.OPEN,
        outcome=OUTCOME_LABELS[episode.outcome] if episode.outcome else None,
        outcome_at=clock.maybe(episode.outcome_at),
        intent=INTENT_LABELS.get(episode.intent or "") if episode.intent else None,
        opened_at=clock.local(episode.opened_at),
        call_count=episode.call_count,
        timeline=timeline,
        open_tasks=[t.id for t in tasks if t.status in TASK_UNDONE],
        active_pages=active_pages,
        can_mark_booked=_bookable(episode, bool(active_pages)),
        booking_clicked_at=clock.maybe(episode.booking_clicked_at),
        language=LANGUAGE_LABELS.get(episode.language, episode.language),
        opted_out_at=clock.maybe(opted_out_at),
        tasks=[
            task_row(
                t,
                episode.caller,
                clock,
                viewer,
                note=unseal(cipher, t.note),
                answered=t.episode_id in answered,
            )
            for t in open_tasks
        ],
        reply_from=display_phone(line_called(session, practice, reply_to)),
        saved_replies=conversation.saved_choices(session, practice, reply_to),
        undo_offer=next(
            iter(
                undo.offers(
                    session,
                    viewer,
                    practice_id=practice.id,
                    now=now,
                    window=undo_window,
                    zone=clock.zone,
                    episode_id=episode.id,
                )
            ),
            None,
        ),
        thread=[
            ThreadLink(
                e.id,
                clock.local(e.opened_at),
                OUTCOME_LABELS[e.outcome] if e.outcome else None,
                e.id == episode.id,
            )
            for e in thread
        ],
        continues_in=later_open[-1]
        if later_open and episode.status is EpisodeStatus.CLOSED
        else None,
    )


def _episode_marks(
    one: Episode, earlier: Episode | None, current: Episode, clock: Clock, began: datetime
) -> list[Entry]:
    """Where each conversation of the thread starts and ends, and its booking link tap."""
    marks = []
    if earlier is not None:
        how = "the patient called again" if one.call_count else "the patient texted"
        marks.append(
            Entry(
                clock.local(began),
                "thread",
                f"Conversation #{one.id} began: {how}",
                meta="this conversation" if one.id == current.id else None,
                episode_id=None if one.id == current.id else one.id,
            )
        )
    if one.booking_clicked_at:
        marks.append(
            Entry(clock.local(one.booking_clicked_at), "text_in", "Opened the booking link")
        )
    if one.outcome is not None and one.outcome_at is not None:
        whose = "" if one.id == current.id else f" of #{one.id}"
        marks.append(
            Entry(
                clock.local(one.outcome_at),
                "outcome",
                f"Outcome{whose}: {OUTCOME_LABELS[one.outcome]}",
            )
        )
    return marks


def mark_booked(session: Session, viewer: Viewer, episode_id: int, *, now: datetime) -> bool:
    """Staff booked the patient (on the phone, at the desk): the episode ends BOOKED.

    Through the booking link's token when the episode has one, so the rules for late
    bookings are the booking system's; else an open episode is closed BOOKED. True when
    the episode is booked now (or was already); False when its story ended another way.
    """
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise NotFound
    practice_of(session, viewer, episode.practice_id)
    # Locked before it is read for Undo; the booking webhook locks it the same way.
    session.get(Episode, episode_id, with_for_update=True, populate_existing=True)
    before = undo.Snapshot.of(episode)
    active_page = session.scalars(
        select(Page.id).where(Page.episode_id == episode.id, Page.status == PageStatus.ACTIVE)
    ).first()
    if active_page is not None:
        raise NotAllowed("An urgent page is still active: a clinician must take it first.")
    if episode.outcome is EpisodeOutcome.BOOKED:
        return True
    booked = False
    if episode.booking_token:
        booked = outcomes.confirm_booking(session, now=now, token=episode.booking_token) is not None
    elif episode.status is EpisodeStatus.OPEN:
        booked = outcomes.close_episode(episode, EpisodeOutcome.BOOKED, now)
    if booked:
        record(
            session,
            viewer.id,
            AuditAction.MARK_BOOKED,
            now=now,
            episode_id=episode.id,
            detail=f"episode {episode.id}",
        )
        undo.remember(session, viewer, UndoKind.MARK_BOOKED, before, episode=episode, now=now)
    return booked
