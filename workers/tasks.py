"""Thin tasks: take ids, open their own session, call a service."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Ignore
from sqlalchemy.orm import Session, sessionmaker

from recovery import metrics
from recovery.config import TEMPLATES_DIR, Settings
from recovery.crypto import PhiCipher
from recovery.db import (
    DATABASE_AWAY,
    database_error_words,
    make_engine,
    make_session_factory,
    retry_while_database_away,
    session_scope,
    utcnow,
)
from recovery.domain.messages import DeliveryOutcome
from recovery.domain.templates import SmsTemplates
from recovery.services import breaches, dead_letters, outcomes, outreach, paging, replies
from recovery.services.caps import Caps
from recovery.services.leases import LeaseKeeper
from recovery.services.send_rate import MemoryBuckets, RedisBuckets, TokenBuckets
from recovery.sms import make_provider
from recovery.sms.base import SmsProvider
from recovery.sms.twilio import STATUS_CALLBACK_PATH, VOICE_PAGE_PATH, VOICE_PAGE_STATUS_PATH

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: Settings
    sessions: sessionmaker[Session]
    provider: SmsProvider
    templates: SmsTemplates
    cipher: PhiCipher
    leases: LeaseKeeper
    buckets: TokenBuckets = field(default_factory=MemoryBuckets)

    @property
    def send_policy(self) -> outreach.SendPolicy:
        settings = self.settings
        return outreach.SendPolicy(
            deadline=timedelta(seconds=settings.send_deadline_s),
            lease=timedelta(seconds=settings.claim_lease_s),
            in_doubt_wait=timedelta(seconds=settings.provider_timeout_s),
            max_attempts=settings.send_max_attempts,
            caps=Caps(per_day=settings.cap_per_day, per_week=settings.cap_per_week),
        )

    @property
    def status_callback(self) -> str | None:
        if self.settings.sms_provider != "twilio":
            return None
        return self.settings.public_base_url + STATUS_CALLBACK_PATH

    @property
    def call_webhooks(self) -> outreach.CallWebhooks:
        base = self.settings.public_base_url
        status = base + VOICE_PAGE_STATUS_PATH if self.settings.sms_provider == "twilio" else None
        return outreach.CallWebhooks(twiml=base + VOICE_PAGE_PATH, status=status)


class RecoveryTask(Task):
    """Builds the engine and provider on first use, in the worker process that runs the
    task: built in the parent before the fork, the children would share its sockets."""

    abstract = True

    @cached_property
    def resources(self) -> Resources:
        settings: Settings = self.app.conf["recovery_settings"]
        engine = make_engine(settings.effective_database_url)
        sessions = make_session_factory(engine)
        return Resources(
            settings,
            sessions,
            make_provider(settings),
            SmsTemplates(TEMPLATES_DIR / "sms"),
            PhiCipher.from_settings(settings),
            LeaseKeeper(sessions, timedelta(seconds=settings.claim_lease_s)),
            _buckets(settings),
        )

    # Periodic jobs give up at once while the database is away: the next run is seconds
    # off, and a pile of them waiting would hold the threads the texts need.
    waits_for_the_database = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The task, run again while the database is away (up to RECOVERY_DATABASE_WAIT_S
        for a text or a reply, which then goes the moment it is back); past that, a warning
        and no traceback per task: the row is committed, and the sweeper queues it again."""
        wait_s = self.resources.settings.database_wait_s if self.waits_for_the_database else 0
        try:
            return retry_while_database_away(
                lambda: super(RecoveryTask, self).__call__(*args, **kwargs), wait_s
            )
        except DATABASE_AWAY as exc:
            log.warning(
                "%s: database unavailable (%s); %s",
                self.name,
                database_error_words(exc),
                "the sweeper will queue it again"
                if self.waits_for_the_database
                else "the next run will do it",
            )
            raise Ignore() from exc


class PatientTask(RecoveryTask):
    """A text to send or a reply to route: a patient waits on it, so it waits out a
    database restart (each run is one claim or one transaction, safe to run again)."""

    abstract = True
    waits_for_the_database = True


def _buckets(settings: Settings) -> TokenBuckets:
    """Shared by every worker in Redis; the embedded default has one worker process."""
    if not settings.redis_url:
        return MemoryBuckets()
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
    return RedisBuckets(client)


@shared_task(name="recovery.send_text", base=PatientTask, bind=True)
def send_text(self: RecoveryTask, message_id: int) -> str:
    res = self.resources
    result = outreach.deliver(
        res.sessions,
        res.provider,
        message_id,
        status_callback=res.status_callback,
        policy=res.send_policy,
        keeper=res.leases,
        cipher=res.cipher,
        buckets=res.buckets,
        call_webhooks=res.call_webhooks,
    )
    metrics.TEXTS.labels(status=result.status.value).inc()
    if result.status is DeliveryOutcome.RETRY:
        metrics.SENDS_RETRIED.inc()
    elif result.status is DeliveryOutcome.RECONCILED:
        metrics.SENDS_RECONCILED.inc()
    if result.time_to_first_text_ms is not None:
        metrics.TIME_TO_FIRST_TEXT.observe(result.time_to_first_text_ms / 1000)
    if result.status is DeliveryOutcome.THROTTLED:
        # Its number's send rate: queued again for when its segments are there.
        send_text.apply_async(args=[message_id], countdown=result.wait_s)
    # A retry is not scheduled here: a retrying row carries its requeue_at, and the
    # sweeper (a database query every few seconds) re-queues it, surviving any restart.
    return result.status


@shared_task(name="recovery.sweep", base=RecoveryTask, bind=True)
def sweep(self: RecoveryTask) -> int:
    res = self.resources
    settings = res.settings
    now = utcnow()
    grace = timedelta(seconds=settings.sweep_grace_s)
    with session_scope(res.sessions) as session:
        due = outreach.due_for_dispatch(session, now, grace=grace)
        lost_replies = replies.unrouted(session, now, grace=grace)
    _dispatch(due)
    for message_id in lost_replies:
        handle_reply.delay(message_id)
    metrics.SWEEPER_REQUEUES.inc(len(due) + len(lost_replies))
    if due or lost_replies:
        log.info("sweeper re-queued %d text(s), %d reply(ies)", len(due), len(lost_replies))
    return len(due) + len(lost_replies)


def _dispatch(message_ids: list[int]) -> None:
    """Queue texts after their transaction committed; a failure leaves them to the sweeper."""
    for message_id in message_ids:
        send_text.delay(message_id)


@shared_task(name="recovery.handle_reply", base=PatientTask, bind=True)
def handle_reply(self: RecoveryTask, message_id: int) -> str:
    res = self.resources
    with session_scope(res.sessions) as session:
        result = replies.handle_reply(
            session,
            res.templates,
            res.cipher,
            message_id,
            now=utcnow(),
            public_base_url=res.settings.public_base_url,
        )
    _dispatch(result.message_ids)
    return result.intent


@shared_task(name="recovery.escalate_pages", base=RecoveryTask, bind=True)
def escalate_pages(self: RecoveryTask) -> int:
    res = self.resources
    with session_scope(res.sessions) as session:
        queued = paging.escalate_due(
            session, res.templates, now=utcnow(), public_base_url=res.settings.public_base_url
        )
    _dispatch(queued)
    return len(queued)


@shared_task(name="recovery.follow_up", base=RecoveryTask, bind=True)
def follow_up(self: RecoveryTask) -> int:
    """Close episodes whose reply window passed, and send the one allowed nudge."""
    res = self.resources
    now = utcnow()
    with session_scope(res.sessions) as session:
        closed = outcomes.sweep_unrecovered(session, now)
        nudges = outcomes.due_nudges(session, res.templates, now)
    _dispatch(nudges)
    if closed:
        log.info("%d episode(s) closed unrecovered", len(closed))
    return len(closed) + len(nudges)


@shared_task(name="recovery.breach_sweep", base=RecoveryTask, bind=True)
def breach_sweep(self: RecoveryTask) -> int:
    """Tasks past their due time: the manager's text, the unclaimed clinical task's page,
    and past twice the SLA the manager's list; each once (services/breaches.py)."""
    res = self.resources
    with session_scope(res.sessions) as session:
        swept = breaches.sweep(
            session, res.templates, now=utcnow(), public_base_url=res.settings.public_base_url
        )
    _dispatch(swept.message_ids)
    if swept.count:
        log.info(
            "breach sweep: %d task(s) breached, %d paged, %d escalated",
            len(swept.breached),
            len(swept.paged),
            len(swept.escalated),
        )
    return swept.count


@shared_task(name="recovery.dead_letters", base=RecoveryTask, bind=True)
def dead_letter_sweep(self: RecoveryTask) -> int:
    """Texts whose retries ran out: a call-back task each, one text to the manager."""
    res = self.resources
    with session_scope(res.sessions) as session:
        alerts = dead_letters.sweep(
            session, res.templates, now=utcnow(), public_base_url=res.settings.public_base_url
        )
    _dispatch(alerts)
    return len(alerts)
