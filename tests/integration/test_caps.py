"""Caps, enforced atomically: many workers claiming texts to one number at once, on
PostgreSQL, send exactly as many as the cap allows."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import TEMPLATES_DIR
from recovery.db import session_scope
from recovery.domain.messages import DeliveryOutcome, MessageKind, SuppressionReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, MessageStatus, Practice
from recovery.schemas.practices import read_practices
from recovery.services import texts
from recovery.services.caps import Caps
from recovery.services.outreach import SendPolicy, deliver
from recovery.services.practices import load_practices
from recovery.sms.base import OutboundSms, SendResult, SentText
from tests.conftest import PRACTICES_FILE
from tests.integration.conftest import TABLES

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
PATIENT = "+15125550199"
WORKERS = 8
_SIDS = itertools.count(1)  # one provider id per text across the module


class SlowProvider:
    """Thread-safe; each send takes a little while, so the claims overlap."""

    name = "slow"

    def __init__(self) -> None:
        self.sent: list[OutboundSms] = []
        self._lock = threading.Lock()

    def send(self, sms: OutboundSms) -> SendResult:
        threading.Event().wait(0.05)
        with self._lock:
            self.sent.append(sms)
            return SendResult(provider_sid=f"SM{next(_SIDS):032d}")

    def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
        return []


@pytest.fixture
def clean_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with sessions.begin() as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        # No web process loaded them here (the stack's does on start): safe to repeat.
        load_practices(session, read_practices(PRACTICES_FILE))
    return sessions


def queue(sessions: sessionmaker[Session], kind: MessageKind, n: int) -> list[int]:
    templates = SmsTemplates(TEMPLATES_DIR / "sms")
    with session_scope(sessions) as session:
        practice = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        return [
            texts.queue_text(session, templates, practice, to=PATIENT, kind=kind, now=T0).id
            for _ in range(n)
        ]


def deliver_at_once(
    sessions: sessionmaker[Session], ids: list[int], caps: Caps, now: datetime
) -> list[DeliveryOutcome]:
    provider = SlowProvider()
    policy = SendPolicy(caps=caps)
    start = threading.Barrier(len(ids))
    outcomes: dict[int, DeliveryOutcome] = {}

    def run(message_id: int) -> None:
        start.wait()
        result = deliver(
            sessions, provider, message_id, status_callback=None, policy=policy, clock=lambda: now
        )
        outcomes[message_id] = result.status

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return [outcomes[i] for i in ids]


def test_eight_workers_at_once_send_one_automated_text_a_day(
    clean_sessions: sessionmaker[Session],
) -> None:
    ids = queue(clean_sessions, MessageKind.FIRST_TEXT, WORKERS)

    outcomes = deliver_at_once(clean_sessions, ids, Caps(per_day=1, per_week=3), T0)

    assert sorted(outcomes) == sorted(
        [DeliveryOutcome.ACCEPTED] + [DeliveryOutcome.SUPPRESSED] * (WORKERS - 1)
    )
    with clean_sessions() as session:
        suppressed = session.scalars(
            select(Message).where(Message.status == MessageStatus.SUPPRESSED)
        ).all()
        assert {m.error_message for m in suppressed} == {SuppressionReason.CAPPED.value}


def test_the_week_cap_holds_across_days_and_under_concurrency(
    clean_sessions: sessionmaker[Session],
) -> None:
    caps = Caps(per_day=2, per_week=3)
    day_one = queue(clean_sessions, MessageKind.NUDGE, 4)
    assert deliver_at_once(clean_sessions, day_one, caps, T0).count(DeliveryOutcome.ACCEPTED) == 2
    day_two = queue(clean_sessions, MessageKind.FIRST_TEXT, 4)
    later = T0 + timedelta(days=1, hours=1)
    assert (
        deliver_at_once(clean_sessions, day_two, caps, later).count(DeliveryOutcome.ACCEPTED) == 1
    )


def test_a_patients_own_conversation_and_urgent_guidance_are_not_capped(
    clean_sessions: sessionmaker[Session],
) -> None:
    caps = Caps(per_day=1, per_week=1)
    assert deliver_at_once(
        clean_sessions, queue(clean_sessions, MessageKind.FIRST_TEXT, 1), caps, T0
    ) == [DeliveryOutcome.ACCEPTED]
    answers = queue(clean_sessions, MessageKind.BOOK, 2) + queue(
        clean_sessions, MessageKind.URGENT, 2
    )

    assert deliver_at_once(clean_sessions, answers, caps, T0) == [DeliveryOutcome.ACCEPTED] * 4
