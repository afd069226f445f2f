"""Thin tasks: take ids, open their own session, call a service."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from celery import Task
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.db import make_engine, make_session_factory, session_scope, utcnow
from recovery.services import outreach
from recovery.sms import make_provider
from recovery.sms.base import SmsProvider
from recovery.sms.twilio import STATUS_CALLBACK_PATH
from workers.celery_app import app

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: Settings
    sessions: sessionmaker[Session]
    provider: SmsProvider

    @property
    def status_callback(self) -> str | None:
        if self.settings.sms_provider != "twilio":
            return None
        return self.settings.public_base_url + STATUS_CALLBACK_PATH


class RecoveryTask(Task):
    """Builds the engine and provider on first use, in the worker process that runs the
    task: built in the parent before the fork, the children would share its sockets."""

    abstract = True

    @cached_property
    def resources(self) -> Resources:
        settings: Settings = self.app.conf["recovery_settings"]
        engine = make_engine(settings.effective_database_url)
        return Resources(settings, make_session_factory(engine), make_provider(settings))


@app.task(name="recovery.send_text", base=RecoveryTask, bind=True)
def send_text(self: RecoveryTask, message_id: int) -> str:
    res = self.resources
    result = outreach.deliver(
        res.sessions,
        res.provider,
        message_id,
        status_callback=res.status_callback,
        deadline=timedelta(seconds=res.settings.send_deadline_s),
    )
    # A retry is not scheduled here: the message row carries next_attempt_at, and the
    # sweeper (a database query every few seconds) re-queues it, surviving any restart.
    return result.status


@app.task(name="recovery.sweep", base=RecoveryTask, bind=True)
def sweep(self: RecoveryTask) -> int:
    res = self.resources
    settings = res.settings
    with session_scope(res.sessions) as session:
        due = outreach.due_for_dispatch(
            session,
            utcnow(),
            grace=timedelta(seconds=settings.sweep_grace_s),
            stale_claim=timedelta(seconds=settings.stale_claim_s),
        )
    for message_id in due:
        send_text.delay(message_id)
    if due:
        log.info("sweeper re-queued %d text(s)", len(due))
    return len(due)
