"""Replies: a patient (or an on-call clinician) texts the practice line; understand, route.

The webhook only stores the text (encrypted) and queues `handle_reply`; everything here
runs in the worker, in one transaction, and returns the texts to dispatch after commit.
Routing follows the product's table: BOOK gets a tracked link, BILLING and REFILL become
staff tasks with SLA due times, URGENT gets the 911 guidance first and then a live page,
a clinical concern (a symptom, no red flag) gets the 911 sentence and a care-team task
due within minutes (paged when nobody claims it in time), STOP/START/HELP are honoured
at once, and a reply we do not understand gets one re-prompt before it becomes a
front-desk task.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher
from recovery.db import insert_unique
from recovery.domain.drills import DrillAnswerOutcome, is_drill_code
from recovery.domain.intents import Classification, Intent, classify, evidence_kind
from recovery.domain.messages import MessageKind
from recovery.domain.pages import AckProblem
from recovery.domain.phones import mask, parse_number
from recovery.domain.states import TASK_UNDONE, move
from recovery.domain.tasks import FRONT_DESK_SLA, TaskReason
from recovery.domain.templates import SmsTemplates, callback_phrase
from recovery.models import (
    Direction,
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Message,
    MessageStatus,
    OptOut,
    Practice,
    Task,
    TaskQueue,
)
from recovery.services import conversation, drills, outcomes, paging
from recovery.services.consent import opt_out
from recovery.services.intake import UnknownNumber, join_or_open_episode
from recovery.services.outreach import next_requeue_at
from recovery.services.practices import find_practice_by_number
from recovery.services.texts import queue_text

log = logging.getLogger(__name__)

BOOKING_PATH = "/b/"
# Requests that keep their own answer when they also name a symptom; the care team's
# task is added beside it. Not STOP (honoured and nothing else), not URGENT or CLINICAL
# (they are the care team already).
_CONCERN_BESIDE = frozenset({Intent.BOOK, Intent.BILLING, Intent.REFILL})


@dataclass(frozen=True)
class InboundResult:
    duplicate: bool
    message_id: int | None = None


@dataclass
class RouteResult:
    intent: str
    message_ids: list[int] = field(default_factory=list)


def record_inbound(
    session: Session,
    cipher: PhiCipher,
    *,
    provider_sid: str,
    from_raw: str,
    to_raw: str,
    body: str,
    now: datetime,
) -> InboundResult:
    """Store an inbound text once (unique on the provider's id), its words encrypted."""
    to = parse_number(to_raw).e164
    practice = find_practice_by_number(session, to) if to else None
    if practice is None or to is None:
        raise UnknownNumber(f"no practice owns {mask(to or to_raw)}")
    sender = parse_number(from_raw).e164
    if sender is None:
        raise ValueError("the sender's number is not a valid phone number")
    message = Message(
        practice_id=practice.id,
        direction=Direction.INBOUND,
        kind=MessageKind.REPLY,
        from_number=sender,
        to_number=to,
        body="",
        body_ciphertext=cipher.encrypt(body),
        status=MessageStatus.RECEIVED,
        provider_sid=provider_sid,
        created_at=now,
        status_updated_at=now,
    )
    if not insert_unique(session, message):
        return InboundResult(duplicate=True)
    return InboundResult(duplicate=False, message_id=message.id)


def handle_reply(
    session: Session,
    templates: SmsTemplates,
    cipher: PhiCipher,
    message_id: int,
    *,
    now: datetime,
    public_base_url: str,
) -> RouteResult:
    inbound = session.get(Message, message_id, with_for_update=True)
    if inbound is None or inbound.direction is not Direction.INBOUND:
        return RouteResult("missing")
    if inbound.status is not MessageStatus.RECEIVED:
        return RouteResult(inbound.intent or "")  # a redelivered task: already routed
    practice = session.get(Practice, inbound.practice_id)
    assert practice is not None
    text = cipher.decrypt(inbound.body_ciphertext or "")
    understood = classify(text)
    # Routed in this transaction, whatever follows: a failure rolls it back to received.
    inbound.status = move(inbound.status, MessageStatus.ROUTED)
    inbound.status_updated_at = now
    inbound.intent = understood.intent.value
    # What matched ("red_flag:chest pain") repeats the patient's words: sealed like them.
    inbound.intent_evidence = cipher.encrypt(understood.evidence[:100])

    if understood.intent is Intent.ACK and paging.may_acknowledge(
        session, practice, inbound.from_number
    ):
        return _acknowledge(session, templates, practice, inbound, understood, now, public_base_url)

    episode = _conversation(session, practice, inbound.from_number, now)
    inbound.episode_id = episode.id
    episode.last_reply_at = now
    conversation.mark_patient_replied(session, episode.id, now)
    episode.language = understood.language
    router = Router(session, templates, practice, episode, inbound, now, public_base_url)
    result = router.route(understood)
    log.info(
        "reply %s from %s: %s (%s)",
        message_id,
        mask(inbound.from_number),
        result.intent,
        evidence_kind(understood.evidence),
    )
    return result


def _conversation(session: Session, practice: Practice, caller: str, now: datetime) -> Episode:
    """The episode a reply belongs to: the caller's latest open one at this practice; a
    patient who texts out of the blue is a patient too, and gets one of their own."""
    episode = session.scalars(
        select(Episode)
        .where(
            Episode.practice_id == practice.id,
            Episode.caller == caller,
            Episode.status == EpisodeStatus.OPEN,
        )
        .order_by(Episode.opened_at.desc())
        .limit(1)
        # Locked, so the unrecovered sweep cannot close it while this reply adds work.
        .with_for_update()
    ).first()
    if episode is not None:
        return episode
    episode, _ = join_or_open_episode(session, practice, caller, now, is_call=False)
    return episode


def _acknowledge(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    inbound: Message,
    understood: Classification,
    now: datetime,
    public_base_url: str,
) -> RouteResult:
    if is_drill_code(understood.ack_code):
        # "ACK T1234" can only be a drill's: never a patient's page.
        answered = _answer_drill(session, templates, practice, inbound, understood.ack_code, now)
        assert answered is not None  # a drill's code always gets a drill's answer
        return answered
    result = paging.acknowledge(
        session,
        templates,
        practice,
        from_number=inbound.from_number,
        code=understood.ack_code,
        now=now,
        public_base_url=public_base_url,
    )
    if result.problem is AckProblem.NO_OPEN_PAGE and understood.ack_code is None:
        # A bare ACK from someone with no real page open: their drill's, if they are in one.
        answered = _answer_drill(session, templates, practice, inbound, None, now)
        if answered is not None:
            return answered
    if result.page is not None:
        inbound.episode_id = result.page.episode_id
    ids = list(result.message_ids)
    if result.problem is not None and result.problem.needs_answer:
        ids.append(
            queue_text(
                session,
                templates,
                practice,
                to=inbound.from_number,
                kind=MessageKind.ACK_PROBLEM,
                now=now,
            ).id
        )
        log.warning("ACK from %s not applied: %s", mask(inbound.from_number), result.problem)
    return RouteResult("ack", ids)


def _answer_drill(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    inbound: Message,
    code: str | None,
    now: datetime,
) -> RouteResult | None:
    answered = drills.answer(
        session, templates, practice, from_number=inbound.from_number, code=code, now=now
    )
    if answered is None:
        return None
    ids = list(answered.message_ids)
    if answered.outcome in (DrillAnswerOutcome.CLOSED, DrillAnswerOutcome.NOT_IN_DRILL):
        # Told, as for a page: nobody should believe an answer counted that did not.
        problem = queue_text(
            session,
            templates,
            practice,
            to=inbound.from_number,
            kind=MessageKind.ACK_PROBLEM,
            now=now,
        )
        ids.append(problem.id)
        log.info("drill ACK from %s not recorded: %s", mask(inbound.from_number), answered.outcome)
    return RouteResult("ack", ids)


class Router:
    """One reply's routing: each intent is a method that queues texts and records work."""

    def __init__(
        self,
        session: Session,
        templates: SmsTemplates,
        practice: Practice,
        episode: Episode,
        inbound: Message,
        now: datetime,
        public_base_url: str,
    ) -> None:
        self.session = session
        self.templates = templates
        self.practice = practice
        self.episode = episode
        self.inbound = inbound
        self.now = now
        self.public_base_url = public_base_url
        self.result = RouteResult("unknown")

    def route(self, understood: Classification) -> RouteResult:
        intent = understood.intent
        self.result.intent = intent.value
        handler = {
            Intent.STOP: self.stop,
            Intent.START: self.start,
            Intent.HELP: self.help,
            Intent.URGENT: self.urgent,
            Intent.CLINICAL: self.clinical,
            Intent.BOOK: self.book,
            Intent.BILLING: self.billing,
            Intent.REFILL: self.refill,
        }.get(intent, self.unclear)
        if intent not in (Intent.STOP, Intent.START, Intent.HELP, Intent.UNKNOWN, Intent.ACK):
            self.episode.intent = intent.value
        handler()
        if understood.concerns and intent in _CONCERN_BESIDE:
            # "my back hurts, can I come in": the link, and a nurse's call beside it.
            self.clinical_task()
        return self.result

    # --- texts -----------------------------------------------------------------------

    def reply(self, kind: MessageKind, *, link: str = "", callback_time: str = "") -> None:
        message = queue_text(
            self.session,
            self.templates,
            self.practice,
            to=self.inbound.from_number,
            kind=kind,
            now=self.now,
            language=self.episode.language,
            from_number=self.inbound.to_number,  # answer from the line they wrote to
            episode_id=self.episode.id,
            link=link,
            callback_time=callback_time,
        )
        self.result.message_ids.append(message.id)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.practice.timezone))

    def callback_time(self, due: datetime) -> str:
        return callback_phrase(self.local(due), self.local(self.now), self.episode.language)

    # --- intents ---------------------------------------------------------------------

    def stop(self) -> None:
        opt_out(self.session, self.practice.id, self.inbound.from_number, self.now)
        outcomes.close_episode(self.episode, EpisodeOutcome.OPTED_OUT, self.now)
        self.reply(MessageKind.STOP)

    def start(self) -> None:
        opt_out = self.session.scalars(
            select(OptOut).where(
                OptOut.practice_id == self.practice.id,
                OptOut.phone == self.inbound.from_number,
                OptOut.opted_in_at.is_(None),
            )
        ).first()
        if opt_out is None and self.talking_with_a_person():
            # Never opted out, and someone asked them a question ("reply YES or NO"): YES
            # answers that person, it is no re-subscription to confirm.
            return
        if opt_out is not None:
            opt_out.opted_in_at = self.now
        self.session.flush()
        self.reply(MessageKind.START)

    def help(self) -> None:
        self.reply(MessageKind.HELP)

    def urgent(self) -> None:
        # The patient's 911 guidance is queued (and so dispatched) before the page.
        self.reply(MessageKind.URGENT)
        page = paging.start_page(
            self.session,
            self.templates,
            self.practice,
            self.episode,
            reply_received_at=self.inbound.created_at,
            now=self.now,
            public_base_url=self.public_base_url,
        )
        self.result.message_ids.extend(page.message_ids)

    def clinical(self) -> None:
        self.clinical_task()
        self.reply(MessageKind.CLINICAL)

    def clinical_task(self) -> Task:
        """Due by the clock, not business hours: a clinical question after hours goes to
        on-call, who are paged if nobody claims it by then (breaches.sweep)."""
        due = self.now + timedelta(minutes=self.practice.clinical_callback_min)
        return self.task(TaskQueue.CARE_TEAM, TaskReason.CLINICAL, due)

    def book(self) -> None:
        if not self.practice.booking_url:
            self.front_desk_task(TaskReason.BOOK)
            return
        if self.episode.booking_token is None:
            self.episode.booking_token = secrets.token_urlsafe(12)
        self.reply(
            MessageKind.BOOK, link=self.public_base_url + BOOKING_PATH + self.episode.booking_token
        )

    def billing(self) -> None:
        hours = self.practice.business_hours()
        due = hours.next_business_day_due(self.now, timedelta(hours=self.practice.billing_sla_h))
        task = self.task(TaskQueue.BILLING, TaskReason.BILLING, due)
        self.reply(MessageKind.BILLING, callback_time=self.callback_time(task.due_at))

    def refill(self) -> None:
        hours = self.practice.business_hours()
        cutoff = time.fromisoformat(self.practice.refill_cutoff)
        due = hours.same_business_day_due(
            self.now, cutoff, timedelta(hours=self.practice.refill_sla_h)
        )
        task = self.task(TaskQueue.CARE_TEAM, TaskReason.REFILL, due)
        self.reply(MessageKind.REFILL, callback_time=self.callback_time(task.due_at))

    def unclear(self) -> None:
        self.result.intent = "unknown"
        if self.talking_with_a_person():
            # What the patient writes back answers the person who texted them (their task
            # says "Patient replied"), not a menu they failed: the menu again, or "someone
            # will get back to you", read as a robot cutting into the conversation.
            return
        self.episode.unclear_replies += 1
        if self.episode.unclear_replies == 1:
            self.reply(MessageKind.REPROMPT)
        elif self.episode.unclear_replies == 2:
            self.front_desk_task(TaskReason.UNCLEAR)
        # A third unclear reply already has a person assigned: no more automated texts.

    def talking_with_a_person(self) -> bool:
        """Someone at the practice has texted this patient and their task is still open."""
        if not conversation.answered(self.session, {self.episode.id}):
            return False
        open_task = self.session.scalar(
            select(Task.id)
            .where(Task.episode_id == self.episode.id, Task.status.in_(TASK_UNDONE))
            .limit(1)
        )
        return open_task is not None

    def front_desk_task(self, reason: TaskReason) -> None:
        hours = self.practice.business_hours()
        due = hours.add_business_time(hours.next_opening(self.now), FRONT_DESK_SLA)
        task = self.task(TaskQueue.FRONT_DESK, reason, due)
        self.reply(MessageKind.HANDOFF, callback_time=self.callback_time(task.due_at))

    def task(self, queue: TaskQueue, reason: TaskReason, due: datetime) -> Task:
        """One open task per queue per episode: asking twice does not double the work.
        A clinical task is its own: an open refill task must not hide a symptom."""
        query = select(Task).where(
            Task.episode_id == self.episode.id,
            Task.queue == queue,
            Task.status.in_(TASK_UNDONE),
        )
        if reason is TaskReason.CLINICAL:
            query = query.where(Task.reason == TaskReason.CLINICAL)
        else:
            query = query.where(Task.reason != TaskReason.CLINICAL)
        existing = self.session.scalars(query).first()
        if existing is not None:
            return existing
        task = Task(
            practice_id=self.practice.id,
            episode_id=self.episode.id,
            queue=queue,
            reason=reason,
            due_at=due,
            created_at=self.now,
        )
        self.session.add(task)
        self.session.flush()
        return task


def unrouted(session: Session, now: datetime, grace: timedelta, limit: int = 500) -> list[int]:
    """Replies stored but never routed (their task was lost with Redis or a worker): the
    sweeper queues them again. handle_reply is idempotent, so a late original is harmless.

    First after `grace`, then the wait doubles (requeue_at = now + max(grace, now -
    created_at)): a reply waiting behind a backlog is not lost, and queuing it at every
    sweep (every 2 s) only grew the queue, as the same re-queuing of texts did (24,195
    extra tasks for 6,000 texts at 100 calls/s).
    """
    rows = session.execute(
        select(Message.id, Message.created_at)
        .where(
            Message.status == MessageStatus.RECEIVED,
            Message.created_at <= now - grace,
            Message.requeue_at.is_(None) | (Message.requeue_at <= now),
        )
        .order_by(Message.created_at)
        .limit(limit)
    ).all()
    if rows:
        # Per row, computed here: SQLite has no timestamp arithmetic.
        session.execute(
            update(Message)
            .where(Message.status == MessageStatus.RECEIVED)
            .execution_options(synchronize_session=False),
            [
                {
                    "id": row.id,
                    "requeue_at": next_requeue_at(now, row.created_at, grace),
                    "dispatched_at": now,
                }
                for row in rows
            ],
        )
    return [row.id for row in rows]
