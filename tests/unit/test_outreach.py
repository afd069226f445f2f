"""Outreach: claim, send once, retry with backoff, record what the provider said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.calls import CallReport
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, Message, MessageStatus, OptOut
from recovery.services import outreach
from recovery.services.intake import record_call
from recovery.services.outreach import backoff_s, claim, deliver, due_for_dispatch, record_status
from recovery.sms.base import OutboundSms, SendError, SendResult

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
DEADLINE = timedelta(hours=6)
GRACE = timedelta(seconds=3)
STALE = timedelta(seconds=120)
CALLER = "+15125550199"
LINE = "+15125550100"
CALLBACK = "https://recovery.example.com/webhooks/twilio/sms/status"


class FakeProvider:
    """Records every text it is handed; raises the queued SendErrors first, in order."""

    name = "fake"

    def __init__(self, *errors: SendError) -> None:
        self.sent: list[OutboundSms] = []
        self.errors = list(errors)

    def send(self, sms: OutboundSms) -> SendResult:
        self.sent.append(sms)
        if self.errors:
            raise self.errors.pop(0)
        return SendResult(provider_sid=f"SM{len(self.sent):032d}")


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def queue_text(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    now: datetime = T0,
    caller: str = CALLER,
    call_id: str = "CA0001",
) -> int:
    """A missed call through intake, committed: its pending first text's id."""
    report = CallReport(
        provider="twilio",
        provider_call_id=call_id,
        caller_raw=caller,
        called_raw=LINE,
        answered=False,
        reason="no-answer",
        occurred_at=now,
    )
    with session_scope(sessions) as session:
        result = record_call(session, report, templates, now)
    assert result.message_id is not None
    return result.message_id


def load(sessions: sessionmaker[Session], message_id: int) -> Message:
    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message


def send(
    sessions: sessionmaker[Session], provider: FakeProvider, message_id: int, clock: Clock
) -> str:
    result = deliver(
        sessions, provider, message_id, status_callback=CALLBACK, deadline=DEADLINE, clock=clock
    )
    return result.status


def due(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    with session_scope(sessions) as session:
        return due_for_dispatch(session, now, grace=GRACE, stale_claim=STALE)


# --- deliver ---------------------------------------------------------------------------


def test_deliver_sends_once_and_records_the_provider_answer(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider()
    clock = Clock(T0 + timedelta(milliseconds=850))

    assert send(sessions, provider, message_id, clock) == "accepted"

    [sms] = provider.sent
    assert (sms.from_number, sms.to_number) == (LINE, CALLER)
    assert sms.body.startswith("Valley Family Clinic:")
    assert sms.status_callback == CALLBACK
    message = load(sessions, message_id)
    assert message.status is MessageStatus.ACCEPTED
    assert message.provider == "fake"
    assert message.provider_sid == f"SM{1:032d}"
    assert message.accepted_at == clock.now
    assert message.attempts == 1
    with sessions() as session:
        episode = session.get(Episode, message.episode_id)
        assert episode is not None
        assert episode.first_text_accepted_at == clock.now
        assert episode.time_to_first_text_ms == 850


def test_second_deliver_of_the_same_text_sends_nothing(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider()
    clock = Clock()

    assert send(sessions, provider, message_id, clock) == "accepted"
    assert send(sessions, provider, message_id, clock) == "not_claimed"

    assert len(provider.sent) == 1
    assert load(sessions, message_id).attempts == 1


def test_only_the_first_of_two_claims_wins(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)

    with session_scope(sessions) as session:
        first = claim(session, message_id, T0)
        assert first is not None
        assert first.status is MessageStatus.SENDING
        assert first.claimed_at == T0
        assert first.attempts == 1
    with session_scope(sessions) as session:
        assert claim(session, message_id, T0) is None

    assert load(sessions, message_id).attempts == 1


# --- retries ---------------------------------------------------------------------------


def test_transient_error_leaves_the_text_retrying_until_its_backoff(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("twilio 503", permanent=False, code=None))
    clock = Clock(T0 + timedelta(seconds=1))

    assert send(sessions, provider, message_id, clock) == "retry"

    message = load(sessions, message_id)
    assert message.status is MessageStatus.RETRYING
    assert message.attempts == 1
    assert message.next_attempt_at == clock.now + timedelta(seconds=backoff_s(1))
    assert message.requeue_at == message.next_attempt_at
    assert message.error_message == "twilio 503"


def test_retry_waits_for_its_backoff_time(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("twilio 429", permanent=False, code=20429))
    assert send(sessions, provider, message_id, Clock()) == "retry"
    retry_at = T0 + timedelta(seconds=2)

    with session_scope(sessions) as session:
        assert claim(session, message_id, retry_at - timedelta(milliseconds=1)) is None
    assert load(sessions, message_id).status is MessageStatus.RETRYING
    with session_scope(sessions) as session:
        assert claim(session, message_id, retry_at) is not None
    message = load(sessions, message_id)
    assert (message.status, message.attempts) == (MessageStatus.SENDING, 2)


def test_a_second_transient_error_doubles_the_wait(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(
        SendError("twilio 503", permanent=False), SendError("twilio 503", permanent=False)
    )
    clock = Clock()
    assert send(sessions, provider, message_id, clock) == "retry"
    clock.advance(2)
    assert send(sessions, provider, message_id, clock) == "retry"

    message = load(sessions, message_id)
    assert message.attempts == 2
    assert message.next_attempt_at == clock.now + timedelta(seconds=4)
    clock.advance(4)
    assert send(sessions, provider, message_id, clock) == "accepted"
    assert len(provider.sent) == 3


def test_backoff_doubles_from_two_seconds_and_caps_at_five_minutes() -> None:
    waits = [backoff_s(attempts) for attempts in range(1, 11)]

    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_s(50) == outreach.MAX_BACKOFF_S == 300


def test_permanent_error_fails_the_text_and_it_is_never_retried(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("invalid To number", permanent=True, code=21211))

    assert send(sessions, provider, message_id, Clock()) == "failed"

    message = load(sessions, message_id)
    assert message.status is MessageStatus.FAILED
    assert message.error_code == 21211
    assert message.provider_sid is None
    assert due(sessions, T0 + timedelta(days=1)) == []
    assert send(sessions, provider, message_id, Clock(T0 + timedelta(days=1))) == "not_claimed"
    assert len(provider.sent) == 1


def test_transient_error_past_the_deadline_fails_the_text(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("twilio 503", permanent=False, code=None))

    status = send(sessions, provider, message_id, Clock(T0 + DEADLINE + timedelta(seconds=1)))

    assert status == "failed"
    assert load(sessions, message_id).status is MessageStatus.FAILED
    assert due(sessions, T0 + timedelta(days=1)) == []


# --- the opt-out chokepoint ------------------------------------------------------------


def test_number_opted_out_after_queueing_is_suppressed_without_calling_the_provider(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    practice_id = load(sessions, message_id).practice_id
    with session_scope(sessions) as session:
        session.add(OptOut(practice_id=practice_id, phone=CALLER, opted_out_at=T0))
    provider = FakeProvider()

    assert send(sessions, provider, message_id, Clock()) == "suppressed"

    assert provider.sent == []
    message = load(sessions, message_id)
    assert message.status is MessageStatus.SUPPRESSED
    assert message.provider_sid is None
    assert due(sessions, T0 + timedelta(days=1)) == []


def test_number_that_opted_back_in_is_sent_to(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    practice_id = load(sessions, message_id).practice_id
    with session_scope(sessions) as session:
        session.add(OptOut(practice_id=practice_id, phone=CALLER, opted_out_at=T0, opted_in_at=T0))
    provider = FakeProvider()

    assert send(sessions, provider, message_id, Clock()) == "accepted"
    assert len(provider.sent) == 1


# --- the sweeper's query ---------------------------------------------------------------


def test_fresh_text_is_due_only_after_the_grace_period(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)

    assert due(sessions, T0 + GRACE - timedelta(milliseconds=1)) == []
    assert due(sessions, T0 + GRACE) == [message_id]


def test_retry_is_due_at_its_next_attempt_time(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("twilio 503", permanent=False))
    assert send(sessions, provider, message_id, Clock(T0 + timedelta(seconds=10))) == "retry"
    retry_at = load(sessions, message_id).next_attempt_at
    assert retry_at == T0 + timedelta(seconds=12)

    assert due(sessions, retry_at - timedelta(milliseconds=1)) == []
    assert due(sessions, retry_at) == [message_id]


def test_stale_sending_claim_becomes_a_retry_due_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    with session_scope(sessions) as session:
        assert claim(session, message_id, T0) is not None

    assert due(sessions, T0 + STALE - timedelta(seconds=1)) == []
    assert load(sessions, message_id).status is MessageStatus.SENDING

    later = T0 + STALE + timedelta(seconds=1)
    assert due(sessions, later) == [message_id]
    message = load(sessions, message_id)
    assert message.status is MessageStatus.RETRYING
    assert message.next_attempt_at == later
    # And the worker the sweeper queues can claim it again.
    with session_scope(sessions) as session:
        assert claim(session, message_id, later) is not None


def test_accepted_and_failed_texts_are_never_due(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    accepted = queue_text(sessions, templates, caller="+15125550199", call_id="CA1")
    failed = queue_text(sessions, templates, caller="+15125550198", call_id="CA2")
    pending = queue_text(sessions, templates, caller="+15125550197", call_id="CA3")
    assert send(sessions, FakeProvider(), accepted, Clock()) == "accepted"
    permanent = FakeProvider(SendError("landline", permanent=True, code=21614))
    assert send(sessions, permanent, failed, Clock()) == "failed"

    assert due(sessions, T0 + timedelta(days=1)) == [pending]


# --- status callbacks ------------------------------------------------------------------


@pytest.fixture
def accepted_sid(sessions: sessionmaker[Session], templates: SmsTemplates) -> str:
    message_id = queue_text(sessions, templates)
    assert send(sessions, FakeProvider(), message_id, Clock()) == "accepted"
    sid = load(sessions, message_id).provider_sid
    assert sid is not None
    return sid


def status_of(sessions: sessionmaker[Session], sid: str) -> Message:
    with sessions() as session:
        return session.scalars(select(Message).where(Message.provider_sid == sid)).one()


def report(
    sessions: sessionmaker[Session],
    sid: str,
    status: MessageStatus,
    error_code: int | None = None,
    at: datetime = T0,
) -> bool:
    with session_scope(sessions) as session:
        return record_status(session, sid, status, error_code, at)


def test_status_moves_forward_from_accepted_to_sent_to_delivered(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, accepted_sid, MessageStatus.SENT, at=T0 + timedelta(seconds=1))
    assert status_of(sessions, accepted_sid).status is MessageStatus.SENT

    delivered_at = T0 + timedelta(seconds=3)
    assert report(sessions, accepted_sid, MessageStatus.DELIVERED, at=delivered_at)
    message = status_of(sessions, accepted_sid)
    assert message.status is MessageStatus.DELIVERED
    assert message.delivered_at == delivered_at
    assert message.status_updated_at == delivered_at


def test_late_sent_callback_does_not_undo_delivered(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, accepted_sid, MessageStatus.DELIVERED, at=T0 + timedelta(seconds=2))
    assert report(sessions, accepted_sid, MessageStatus.SENT, at=T0 + timedelta(seconds=3))

    message = status_of(sessions, accepted_sid)
    assert message.status is MessageStatus.DELIVERED
    assert message.status_updated_at == T0 + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("final", "later"),
    [
        (MessageStatus.DELIVERED, MessageStatus.UNDELIVERED),
        (MessageStatus.UNDELIVERED, MessageStatus.DELIVERED),
        (MessageStatus.FAILED, MessageStatus.DELIVERED),
        (MessageStatus.UNDELIVERED, MessageStatus.ACCEPTED),
    ],
)
def test_final_status_never_changes(
    sessions: sessionmaker[Session],
    accepted_sid: str,
    final: MessageStatus,
    later: MessageStatus,
) -> None:
    assert report(sessions, accepted_sid, final)
    assert report(sessions, accepted_sid, later, error_code=30008)

    message = status_of(sessions, accepted_sid)
    assert message.status is final
    assert message.error_code is None


def test_status_for_an_unknown_sid_returns_false(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, "SM" + "f" * 32, MessageStatus.DELIVERED) is False
    assert status_of(sessions, accepted_sid).status is MessageStatus.ACCEPTED


def test_undelivered_status_records_the_carrier_error_code(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, accepted_sid, MessageStatus.UNDELIVERED, error_code=30007)

    message = status_of(sessions, accepted_sid)
    assert (message.status, message.error_code) == (MessageStatus.UNDELIVERED, 30007)


def test_repeated_final_status_adds_an_error_code_it_lacked(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, accepted_sid, MessageStatus.UNDELIVERED)
    assert status_of(sessions, accepted_sid).error_code is None

    assert report(sessions, accepted_sid, MessageStatus.UNDELIVERED, error_code=30003)
    assert status_of(sessions, accepted_sid).error_code == 30003


def test_a_text_the_sweeper_requeued_waits_as_long_again_before_the_next_requeue(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)

    assert due(sessions, T0 + GRACE) == [message_id]
    assert load(sessions, message_id).requeue_at == T0 + GRACE * 2
    # Still pending at the next sweeps (a backlog): not queued again, the queue would only
    # grow; once it has waited as long again it is, in case that task was lost too.
    assert due(sessions, T0 + GRACE + timedelta(seconds=2)) == []
    assert due(sessions, T0 + GRACE * 2) == [message_id]
    assert load(sessions, message_id).dispatched_at == T0 + GRACE * 2
    # Then the wait doubles: 6 s waited, so not before 12 s (once per grace would be 9 s).
    assert due(sessions, T0 + GRACE * 3) == []
    assert due(sessions, T0 + GRACE * 4 - timedelta(milliseconds=1)) == []
    assert due(sessions, T0 + GRACE * 4) == [message_id]
    message = load(sessions, message_id)
    assert (message.dispatched_at, message.requeue_at) == (T0 + GRACE * 4, T0 + GRACE * 8)
    assert message.next_attempt_at is None  # not a retry
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 0)


def test_a_text_waiting_a_minute_behind_a_backlog_is_requeued_about_five_times(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)

    # The product's beat: a sweep every 2 s. Once per grace it was 15 re-queues.
    requeued_at = [
        s for s in range(0, 61, 2) if due(sessions, T0 + timedelta(seconds=s)) == [message_id]
    ]

    assert requeued_at == [4, 8, 16, 32]


def test_a_lost_task_is_still_recovered_at_grace_by_a_sweep_each_second(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)

    # log2(60 / 3) ≈ 5 re-queues in a minute; once per grace it was 20.
    requeued_at = [
        s for s in range(0, 61) if due(sessions, T0 + timedelta(seconds=s)) == [message_id]
    ]

    assert requeued_at == [3, 6, 12, 24, 48]


def test_backing_off_one_text_does_not_hold_back_a_newly_lost_one(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    waiting = queue_text(sessions, templates, caller="+15125550199", call_id="CA1")
    assert due(sessions, T0 + GRACE) == [waiting]
    lost = queue_text(sessions, templates, T0 + GRACE, caller="+15125550198", call_id="CA2")

    # Ordered by requeue_at, when each became due: the lost one has waited longer
    # for this look than the backed-off one, so it comes first within a sweep's limit.
    assert due(sessions, T0 + GRACE * 2) == [lost, waiting]
    assert due(sessions, T0 + GRACE * 3) == [lost]  # waited 3 s: next at 6 s after its call
    assert due(sessions, T0 + GRACE * 4) == [waiting]


def test_a_retry_of_a_backed_off_text_is_due_at_its_own_time_then_each_grace(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    for s in (3, 6, 12):
        assert due(sessions, T0 + timedelta(seconds=s)) == [message_id]
    assert load(sessions, message_id).requeue_at == T0 + timedelta(seconds=24)
    provider = FakeProvider(SendError("twilio 503", permanent=False))
    assert send(sessions, provider, message_id, Clock(T0 + timedelta(seconds=13))) == "retry"
    retry_at = T0 + timedelta(seconds=15)
    assert load(sessions, message_id).next_attempt_at == retry_at

    # The sweeper's back-off of the fresh text does not delay the retry.
    assert due(sessions, retry_at - timedelta(milliseconds=1)) == []
    assert due(sessions, retry_at) == [message_id]
    assert load(sessions, message_id).next_attempt_at == retry_at  # the claim needs it
    # A waiting retry is queued again once per grace, as before.
    assert due(sessions, retry_at + GRACE - timedelta(milliseconds=1)) == []
    assert due(sessions, retry_at + GRACE) == [message_id]
    assert due(sessions, retry_at + GRACE * 2) == [message_id]
    with session_scope(sessions) as session:
        assert claim(session, message_id, retry_at + GRACE * 2) is not None


def test_a_stale_claim_of_a_backed_off_text_is_due_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    for s in (3, 6, 12, 24, 48):
        assert due(sessions, T0 + timedelta(seconds=s)) == [message_id]
    claimed_at = T0 + timedelta(seconds=50)
    with session_scope(sessions) as session:
        assert claim(session, message_id, claimed_at) is not None

    later = claimed_at + STALE + timedelta(seconds=1)
    assert due(sessions, later) == [message_id]
    message = load(sessions, message_id)
    assert (message.status, message.next_attempt_at) == (MessageStatus.RETRYING, later)
    with session_scope(sessions) as session:
        assert claim(session, message_id, later) is not None
