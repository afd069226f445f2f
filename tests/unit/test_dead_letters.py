"""Dead letters: a temporary error retried with jittered backoff a bounded number of times,
then the text is dead-lettered, the patient gets a call-back task on the front desk's
queue, and the manager one text per sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.messages import DeliveryOutcome, MessageKind
from recovery.domain.states import MessageStatus, may_move
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, Practice, Task, TaskQueue
from recovery.services import dead_letters
from recovery.services.outreach import SendPolicy, backoff_s, deliver
from recovery.sms.base import SendError
from tests.support.factories import missed_call
from tests.unit.test_outreach import CALLBACK, Clock, FakeProvider

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
MANAGER = "+15125550120"
BASE = "https://recovery.example.com"


@pytest.fixture(autouse=True)
def manager(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        valley.manager = {"name": "Pat Kim", "phone": MANAGER}


def pending_first_text(
    sessions: sessionmaker[Session], templates: SmsTemplates, caller: str
) -> int:
    with session_scope(sessions) as session:
        result = missed_call(session, templates, at=T0, caller=caller)
    assert result.message_id is not None
    return result.message_id


def try_until_done(
    sessions: sessionmaker[Session], provider: FakeProvider, message_id: int, policy: SendPolicy
) -> tuple[list[DeliveryOutcome], list[float]]:
    """Every attempt, each at the moment its backoff allows; the outcomes and the waits."""
    clock = Clock(T0)
    outcomes, waits = [], []
    while True:
        result = deliver(
            sessions, provider, message_id, status_callback=CALLBACK, policy=policy, clock=clock
        )
        outcomes.append(result.status)
        if result.status is not DeliveryOutcome.RETRY:
            return outcomes, waits
        with sessions() as session:
            message = session.get(Message, message_id)
            assert message is not None and message.next_attempt_at is not None
            waits.append((message.next_attempt_at - clock.now).total_seconds())
            clock.now = message.next_attempt_at


def test_a_429_that_never_clears_is_retried_a_bounded_number_of_times_then_dead_lettered(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = pending_first_text(sessions, templates, "+15125550199")
    provider = FakeProvider(*[SendError("twilio 429", permanent=False, code=20429)] * 50)
    policy = SendPolicy(max_attempts=6)

    outcomes, waits = try_until_done(sessions, provider, message_id, policy)

    assert outcomes == [DeliveryOutcome.RETRY] * 5 + [DeliveryOutcome.DEAD_LETTER]
    assert len(provider.sent) == 6
    # Exponential, jittered: each wait within [half, all] of 2, 4, 8 ... seconds.
    for attempt, wait in enumerate(waits, start=1):
        assert backoff_s(attempt) / 2 <= wait <= backoff_s(attempt)
    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None and message.status is MessageStatus.DEAD_LETTER
    assert not any(may_move(MessageStatus.DEAD_LETTER, s) for s in MessageStatus)


def test_the_jitter_spreads_texts_refused_together() -> None:
    draws = iter([0.0, 0.5, 1.0])
    policy = SendPolicy(rng=lambda: next(draws))

    assert [policy.wait_s(3) for _ in range(3)] == [8.0, 6.0, 4.0]


def test_a_dead_letter_puts_a_call_back_on_the_queue_and_texts_the_manager_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    ids = [pending_first_text(sessions, templates, f"+1512555030{i}") for i in range(3)]
    provider = FakeProvider(*[SendError("twilio 503", permanent=False)] * 50)
    for message_id in ids:
        try_until_done(sessions, provider, message_id, SendPolicy(max_attempts=2))

    with session_scope(sessions) as session:
        alerts = dead_letters.sweep(
            session, templates, now=T0 + timedelta(minutes=1), public_base_url=BASE
        )
    with session_scope(sessions) as session:
        again = dead_letters.sweep(
            session, templates, now=T0 + timedelta(minutes=2), public_base_url=BASE
        )

    assert len(alerts) == 1 and again == []
    with sessions() as session:
        alert = session.get(Message, alerts[0])
        assert alert is not None
        assert (alert.kind, alert.to_number, alert.status) == (
            MessageKind.DEAD_LETTER,
            MANAGER,
            MessageStatus.PENDING,
        )
        assert "3 text(s)" in alert.body and BASE + "/tasks" in alert.body
        assert "+1512555030" not in alert.body  # no patient data in the manager's text
        tasks = session.scalars(select(Task)).all()
        assert sorted(t.episode_id for t in tasks) == [1, 2, 3]
        assert {(t.queue, t.reason) for t in tasks} == {
            (TaskQueue.FRONT_DESK, TaskReason.CALL_BACK)
        }


def test_an_alert_that_dies_itself_alerts_nobody(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = pending_first_text(sessions, templates, "+15125550199")
    provider = FakeProvider(*[SendError("twilio 503", permanent=False)] * 50)
    try_until_done(sessions, provider, message_id, SendPolicy(max_attempts=1))
    with session_scope(sessions) as session:
        [alert_id] = dead_letters.sweep(session, templates, now=T0, public_base_url=BASE)
    try_until_done(sessions, provider, alert_id, SendPolicy(max_attempts=1))

    with session_scope(sessions) as session:
        assert dead_letters.sweep(session, templates, now=T0, public_base_url=BASE) == []
