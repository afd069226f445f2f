"""Caps on automated texts per number (SQLite here; the concurrency proof runs on
PostgreSQL in tests/integration/test_caps.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.messages import DeliveryOutcome, MessageKind, SuppressionReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, Practice
from recovery.services import texts
from recovery.services.caps import Caps
from recovery.services.outreach import SendPolicy, deliver
from recovery.sms.base import OutboundSms, SendResult
from tests.unit.test_outreach import CALLBACK, FakeProvider

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
PATIENT = "+15125550199"


class Provider(FakeProvider):
    """One provider id per text across the whole test (each send() makes a new one)."""

    issued = 0

    def send(self, sms: OutboundSms) -> SendResult:
        Provider.issued += 1
        self.sent.append(sms)
        return SendResult(provider_sid=f"SM{Provider.issued:032d}")


def send(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    kind: MessageKind,
    at: datetime,
    caps: Caps = Caps(),
    slug: str = "valley-family",
) -> DeliveryOutcome:
    with session_scope(sessions) as session:
        practice = session.scalars(select(Practice).where(Practice.slug == slug)).one()
        message_id = texts.queue_text(
            session, templates, practice, to=PATIENT, kind=kind, now=at
        ).id
    result = deliver(
        sessions,
        Provider(),
        message_id,
        status_callback=CALLBACK,
        policy=SendPolicy(caps=caps),
        clock=lambda: at,
    )
    return result.status


def test_a_second_automated_text_the_same_day_is_not_sent(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    assert send(sessions, templates, MessageKind.FIRST_TEXT, T0) is DeliveryOutcome.ACCEPTED
    nudge = send(sessions, templates, MessageKind.NUDGE, T0 + timedelta(hours=4))

    assert nudge is DeliveryOutcome.SUPPRESSED
    with sessions() as session:
        last = session.scalars(select(Message).order_by(Message.id.desc())).first()
        assert last is not None and last.error_message == SuppressionReason.CAPPED.value
    # A day later the day's cap is free again.
    assert (
        send(sessions, templates, MessageKind.NUDGE, T0 + timedelta(hours=24, seconds=1))
        is DeliveryOutcome.ACCEPTED
    )


def test_three_a_week(sessions: sessionmaker[Session], templates: SmsTemplates) -> None:
    days = [
        send(sessions, templates, MessageKind.FIRST_TEXT, T0 + timedelta(days=d)) for d in range(5)
    ]

    assert days == [DeliveryOutcome.ACCEPTED] * 3 + [DeliveryOutcome.SUPPRESSED] * 2
    assert (
        send(sessions, templates, MessageKind.FIRST_TEXT, T0 + timedelta(days=7, seconds=1))
        is DeliveryOutcome.ACCEPTED
    )


def test_the_caps_are_configurable(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    caps = Caps(per_day=2, per_week=2)
    sent = [send(sessions, templates, MessageKind.FIRST_TEXT, T0, caps) for _ in range(3)]

    assert sent == [DeliveryOutcome.ACCEPTED] * 2 + [DeliveryOutcome.SUPPRESSED]


def test_answers_to_the_patient_and_urgent_guidance_are_not_capped(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    assert send(sessions, templates, MessageKind.FIRST_TEXT, T0) is DeliveryOutcome.ACCEPTED
    for kind in (MessageKind.BOOK, MessageKind.BILLING, MessageKind.URGENT, MessageKind.HELP):
        assert send(sessions, templates, kind, T0) is DeliveryOutcome.ACCEPTED


def test_each_practice_has_its_own_cap(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    assert send(sessions, templates, MessageKind.FIRST_TEXT, T0) is DeliveryOutcome.ACCEPTED
    assert (
        send(sessions, templates, MessageKind.FIRST_TEXT, T0, slug="always-open")
        is DeliveryOutcome.ACCEPTED
    )
