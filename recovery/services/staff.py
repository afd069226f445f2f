"""What staff see and do in the browser: the page link, an episode's story, Mark booked.

Every function here takes the signed-in `Viewer`, checks they belong to the practice (an
admin belongs to all), and writes the audit row for what they saw or did, so a view
cannot forget to. A record of another practice is reported as not found: a user learns
nothing about other practices' pages or patients. Patients' words are decrypted here,
for the page being rendered, and never logged.

What comes back is plain: stored (UTC) times with the practice's zone, enums, intent
codes, E.164 numbers and ids. How they read to staff (labels, phone formats, the
practice's wall clock) is recovery.web.presenters'.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher, unseal
from recovery.domain.messages import MessageKind
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


def _ref(practice: Practice) -> PracticeRef:
    return PracticeRef(practice.id, practice.slug, practice.name)


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
    intent: str | None  # the intent code it was understood as; None before routing


def _patient_words(session: Session, cipher: PhiCipher, episode: Episode) -> list[Words]:
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
    return [Words(m.created_at, _decrypt(cipher, m), m.intent) for m in inbound]


def _decrypt(cipher: PhiCipher, message: Message) -> str:
    try:
        return cipher.decrypt(message.body_ciphertext or "")
    except ValueError:
        # A rotated key must not hide the rest of the page; staff see that text is missing.
        log.error("message %s cannot be decrypted with the current key", message.id)
        return "(this message cannot be decrypted: the encryption key has changed)"


# --- the page link ---------------------------------------------------------------------


@dataclass(frozen=True)
class PagedText:
    """One page text to a person on call."""

    to_number: str
    name: str | None  # of the roster, the on-call list or the manager; None: not named
    at: datetime
    status: MessageStatus


@dataclass(frozen=True)
class PageDetail:
    code: str
    active: bool
    practice: PracticeRef
    zone: ZoneInfo
    episode_id: int
    patient_phone: str  # E.164
    reply_received_at: datetime
    first_page_at: datetime | None
    next_escalation_at: datetime | None  # None once the page is no longer active
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    paged: list[PagedText]
    words: list[Words]
    can_take: bool


def _find_page(session: Session, viewer: Viewer, code: str) -> Page:
    page = session.scalars(select(Page).where(Page.code == code.strip().upper())).first()
    if page is None or not viewer.may_see(page.practice_id):
        raise NotFound
    return page


def view_page(
    session: Session, cipher: PhiCipher, viewer: Viewer, code: str, *, now: datetime
) -> PageDetail:
    page = _find_page(session, viewer, code)
    practice = practice_of(session, viewer, page.practice_id)
    episode = session.get(Episode, page.episode_id)
    assert episode is not None  # a foreign key
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
    return PageDetail(
        code=page.code,
        active=active,
        practice=_ref(practice),
        zone=ZoneInfo(practice.timezone),
        episode_id=episode.id,
        patient_phone=episode.caller,
        reply_received_at=page.reply_received_at,
        first_page_at=page.first_page_at,
        next_escalation_at=page.next_escalation_at if active else None,
        acknowledged_by=page.acknowledged_by,
        acknowledged_at=page.acknowledged_at,
        paged=[
            PagedText(m.to_number, names.get(m.to_number), m.created_at, m.status) for m in texts
        ],
        words=_patient_words(session, cipher, episode),
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


# --- a task, as the queue and a conversation list it -------------------------------------


@dataclass(frozen=True)
class TaskItem:
    id: int
    episode_id: int
    queue: TaskQueue
    reason: TaskReason
    status: TaskStatus
    created_at: datetime
    due_at: datetime
    overdue: bool  # not done, and past its due time
    patient_phone: str  # E.164
    claimed_by: str | None
    claimed_at: datetime | None
    completed_at: datetime | None
    note: str | None  # decrypted
    mine: bool  # claimed by the viewer, or (unclaimed) handed to them
    patient_replied_at: datetime | None = None
    # A "reply not understood" task nobody has answered the patient on yet: completing it
    # asks whether someone called them (else the episode is not counted resolved).
    ask_if_reached: bool = False
    assigned_name: str | None = None  # handed to this person (reassigned or escalated)
    breached: bool = False  # past its SLA: the manager was told
    escalated: bool = False  # past twice its SLA: on the manager's list


def is_mine(task: Task, viewer: Viewer) -> bool:
    """Claimed by the viewer; or, while nobody has claimed it, handed to them."""
    if task.status is TaskStatus.CLAIMED:
        return task.claimed_by == viewer.name
    return task.assigned_to == viewer.id


def task_item(
    task: Task,
    caller: str,
    viewer: Viewer,
    *,
    now: datetime,
    note: str | None,
    answered: bool = True,
    assigned_name: str | None = None,
) -> TaskItem:
    """`note`: the task's note, decrypted (tasks.note is stored encrypted)."""
    return TaskItem(
        id=task.id,
        episode_id=task.episode_id,
        queue=task.queue,
        reason=task.reason,
        status=task.status,
        created_at=task.created_at,
        due_at=task.due_at,
        overdue=task.status is not TaskStatus.DONE and task.due_at < now,
        patient_phone=caller,
        claimed_by=task.claimed_by,
        claimed_at=task.claimed_at,
        completed_at=task.completed_at,
        note=note,
        mine=is_mine(task, viewer),
        patient_replied_at=task.patient_replied_at,
        ask_if_reached=task.reason is TaskReason.UNCLEAR and not answered,
        assigned_name=assigned_name,
        breached=task.breached_at is not None,
        escalated=task.escalated_at is not None,
    )


# --- an episode's story ----------------------------------------------------------------


@dataclass(frozen=True)
class CallFact:
    at: datetime
    called: str  # E.164 of the practice line
    reason: str  # why it was missed: no_answer, busy...


@dataclass(frozen=True)
class TextFact:
    """One text of the thread, in or out, to or from the patient or a person on call."""

    at: datetime
    inbound: bool
    patient: bool  # from the patient (inbound) or to them (outbound)
    kind: MessageKind
    status: MessageStatus
    intent: str | None  # an inbound text's intent code; None before routing
    # What staff may read of it here: the patient's words and a clinician's ACK decrypted,
    # our texts to the patient as sent; None for the rest (the page shows no words).
    body: str | None
    number: str  # the other party's: the patient's, or the on-call person's
    name: str | None  # the on-call person's, or the writer of a staff reply


@dataclass(frozen=True)
class PageFact:
    code: str
    created_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


@dataclass(frozen=True)
class ThreadItem:
    """One of the patient's conversations with the practice, as the thread lists them."""

    id: int
    opened_at: datetime
    began: datetime  # what opened it: the call, or a text stored before its episode
    call_count: int
    booking_clicked_at: datetime | None
    outcome: EpisodeOutcome | None  # None while open
    outcome_at: datetime | None
    current: bool  # the one this page is about


@dataclass(frozen=True)
class EpisodeDetail:
    id: int
    practice: PracticeRef
    zone: ZoneInfo
    patient_phone: str  # E.164
    open: bool
    outcome: EpisodeOutcome | None
    outcome_at: datetime | None
    intent: str | None  # the intent code
    opened_at: datetime
    call_count: int
    # What happened across the whole thread, each in the order stored.
    calls: list[CallFact]
    texts: list[TextFact]
    task_history: list[TaskItem]  # every task of the thread, done ones too
    pages: list[PageFact]
    open_tasks: list[int]
    active_pages: list[str]
    can_mark_booked: bool
    booking_clicked_at: datetime | None
    language: str  # the code: en, es
    opted_out_at: datetime | None  # texted STOP (and not START since)
    tasks: list[TaskItem]  # the open ones, soonest due first
    reply_from: str  # E.164 of the practice line a reply goes from
    saved_replies: list[conversation.SavedChoice] = field(default_factory=list)
    # The viewer's last Complete or Mark booked here that they can still take back.
    undo_offer: undo.UndoOffer | None = None
    # Every conversation of this patient with the practice, oldest first: the timeline
    # shows them as one thread (a text after one ended opens the next; see _thread).
    thread: list[ThreadItem] = field(default_factory=list)
    # This one has ended, and the patient's thread goes on in this open one.
    continues_in: int | None = None


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


def _text_fact(
    cipher: PhiCipher,
    m: Message,
    caller: str,
    names: dict[str, str],
    writers: dict[int, str],
) -> TextFact:
    inbound = m.direction is Direction.INBOUND
    number = m.from_number if inbound else m.to_number
    patient = number == caller
    body: str | None = None
    if inbound and (patient or m.intent == "ack"):
        # The patient's words; or the clinician's acknowledgement in their own words.
        body = _decrypt(cipher, m)
    elif not inbound and m.kind is MessageKind.STAFF_REPLY:
        body = _decrypt(cipher, m)
    elif not inbound and patient:
        body = m.body
    if not inbound and m.kind is MessageKind.STAFF_REPLY:
        name = writers.get(m.sent_by or 0)
    else:
        name = None if patient else names.get(number)
    return TextFact(m.created_at, inbound, patient, m.kind, m.status, m.intent, body, number, name)


def episode_version(session: Session, viewer: Viewer, episode_id: int) -> str:
    """A digest of what the conversation page's timeline shows, to answer its live poll
    "nothing new": the same thread as view_episode, read without a word decrypted and
    without an audit row (a poll is not a view; what it then shows is one)."""
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise NotFound
    practice_of(session, viewer, episode.practice_id)
    thread = _thread(session, episode)
    ids = [e.id for e in thread]
    messages = session.execute(
        select(Message.id, Message.status, Message.episode_id)
        .where(Message.episode_id.in_(ids))
        .order_by(Message.id)
    ).all()
    tasks = session.execute(
        select(
            Task.id,
            Task.status,
            Task.queue,
            Task.claimed_by,
            Task.assigned_to,
            Task.completed_at,
            Task.patient_replied_at,
        )
        .where(Task.episode_id.in_(ids))
        .order_by(Task.id)
    ).all()
    pages = session.execute(
        select(Page.id, Page.status, Page.round, Page.acknowledged_at)
        .where(Page.episode_id.in_(ids))
        .order_by(Page.id)
    ).all()
    calls = session.scalars(
        select(CallEvent.id).where(CallEvent.episode_id.in_(ids)).order_by(CallEvent.id)
    ).all()
    episodes = [(e.id, e.status, e.outcome) for e in thread]
    digest = hashlib.sha256(
        repr(
            (
                episodes,
                [tuple(r) for r in messages],
                [tuple(r) for r in tasks],
                [tuple(r) for r in pages],
                calls,
            )
        ).encode()
    )
    return digest.hexdigest()[:16]


def view_episode(
    session: Session,
    cipher: PhiCipher,
    viewer: Viewer,
    episode_id: int,
    *,
    now: datetime,
    undo_window: timedelta = undo.UNDO_WINDOW,
) -> EpisodeDetail:
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise NotFound
    practice = practice_of(session, viewer, episode.practice_id)
    zone = ZoneInfo(practice.timezone)
    thread = _thread(session, episode)
    ids = [e.id for e in thread]

    calls = [
        CallFact(call.occurred_at, call.called, call.reason)
        for call in session.scalars(select(CallEvent).where(CallEvent.episode_id.in_(ids)))
    ]
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
    texts = [_text_fact(cipher, m, episode.caller, names, writers) for m in messages]

    tasks = list(session.scalars(select(Task).where(Task.episode_id.in_(ids))))
    answered = conversation.answered(session, set(ids))
    items = {
        t.id: task_item(
            t,
            episode.caller,
            viewer,
            now=now,
            note=unseal(cipher, t.note),
            answered=t.episode_id in answered,
        )
        for t in tasks
    }

    # A conversation begins with what opened it: the reply is stored when it arrives, its
    # episode a moment later when the worker routes it.
    began = {e.id: e.opened_at for e in thread}
    for m in messages:
        if m.episode_id is not None and m.created_at < began[m.episode_id]:
            began[m.episode_id] = m.created_at

    active_pages = [p.code for p in pages if p.status is PageStatus.ACTIVE]
    open_tasks = sorted(
        (t for t in tasks if t.status in TASK_UNDONE), key=lambda t: (t.due_at, t.id)
    )
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
    return EpisodeDetail(
        id=episode.id,
        practice=_ref(practice),
        zone=zone,
        patient_phone=episode.caller,
        open=episode.status is EpisodeStatus.OPEN,
        outcome=episode.outcome,
        outcome_at=episode.outcome_at,
        intent=episode.intent or None,
        opened_at=episode.opened_at,
        call_count=episode.call_count,
        calls=calls,
        texts=texts,
        task_history=list(items.values()),
        pages=[PageFact(p.code, p.created_at, p.acknowledged_by, p.acknowledged_at) for p in pages],
        open_tasks=[t.id for t in tasks if t.status in TASK_UNDONE],
        active_pages=active_pages,
        can_mark_booked=_bookable(episode, bool(active_pages)),
        booking_clicked_at=episode.booking_clicked_at,
        language=episode.language,
        opted_out_at=opted_out_at,
        tasks=[items[t.id] for t in open_tasks],
        reply_from=line_called(session, practice, reply_to),
        saved_replies=conversation.saved_choices(session, practice, reply_to),
        undo_offer=next(
            iter(
                undo.offers(
                    session,
                    viewer,
                    practice_id=practice.id,
                    now=now,
                    window=undo_window,
                    zone=zone,
                    episode_id=episode.id,
                )
            ),
            None,
        ),
        thread=[
            ThreadItem(
                e.id,
                e.opened_at,
                began[e.id],
                e.call_count,
                e.booking_clicked_at,
                e.outcome,
                e.outcome_at,
                e.id == episode.id,
            )
            for e in thread
        ],
        continues_in=later_open[-1]
        if later_open and episode.status is EpisodeStatus.CLOSED
        else None,
    )


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
