"""Outreach: claim, send once, retry with backoff, record what the provider said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.messages import MessageKind, StatusOutcome, SuppressionReason
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, Message, MessageStatus, OptOut
from recovery.services import outreach
from recovery.services.leases import LeaseKeeper
from recovery.services.outreach import (
    SendPolicy,
    backoff_s,
    claim,
    deliver,
    due_for_dispatch,
    record_status,
)
from recovery.sms.base import OutboundSms, SendError, SendResult, SentText
from tests.support.factories import missed_call

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
DEADLINE = timedelta(hours=6)
GRACE = timedelta(seconds=3)
LEASE = timedelta(seconds=7)
# No jitter here: the waits are the backoff's own (test_dead_letters.py covers the jitter).
POLICY = SendPolicy(
    deadline=DEADLINE, lease=LEASE, in_doubt_wait=timedelta(seconds=5), rng=lambda: 0.0
)
CALLER = "+15125550199"
LINE = "+15125550100"
APPLIED = StatusOutcome.APPLIED
CALLBACK = "https://recovery.example.com/webhooks/twilio/sms/status"


class FakeProvider:
    """Records every text it is handed; raises the queued SendErrors first, in order.

    `remote` is what the provider itself holds (its message list): every text it took,
    and the text of a request that failed in doubt (it went, but the answer was lost)."""

    name = "fake"

    def __init__(self, *errors: SendError) -> None:
        self.sent: list[OutboundSms] = []
        self.errors = list(errors)
        self.remote: list[SentText] = []
        self.lookups = 0
        self.lookup_error: SendError | None = None
        self.created_at = T0

    def send(self, sms: OutboundSms) -> SendResult:
        self.sent.append(sms)
        sid = f"SM{len(self.sent):032d}"
        error = self.errors.pop(0) if self.errors else None
        if error is None or error.in_doubt:
            self.remote.append(SentText(sid, sms.body, self.created_at))
        if error is not None:
            raise error
        return SendResult(provider_sid=sid)

    def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
        self.lookups += 1
        if self.lookup_error is not None:
            raise self.lookup_error
        return [t for t in reversed(self.remote) if t.created_at >= since]


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
    with session_scope(sessions) as session:
        result = missed_call(session, templates, at=now, caller=caller, call_id=call_id)
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
        sessions, provider, message_id, status_callback=CALLBACK, policy=POLICY, clock=clock
    )
    return result.status


def due(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    with session_scope(sessions) as session:
        return due_for_dispatch(session, now, grace=GRACE)


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
    assert sms.status_callback == f"{CALLBACK}?message_id={message_id}"
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
        first = claim(session, message_id, T0, LEASE)
        assert first is not None
        assert first.status is MessageStatus.SENDING
        assert first.claimed_at == T0
        assert first.attempts == 1
    with session_scope(sessions) as session:
        assert claim(session, message_id, T0, LEASE) is None

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
        assert claim(session, message_id, retry_at - timedelta(milliseconds=1), LEASE) is None
    assert load(sessions, message_id).status is MessageStatus.RETRYING
    with session_scope(sessions) as session:
        assert claim(session, message_id, retry_at, LEASE) is not None
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


def test_transient_error_past_the_deadline_dead_letters_the_text(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("twilio 503", permanent=False, code=None))

    status = send(sessions, provider, message_id, Clock(T0 + DEADLINE + timedelta(seconds=1)))

    assert status == "dead_letter"
    assert load(sessions, message_id).status is MessageStatus.DEAD_LETTER
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


def _in_doubt_then_opted_out(
    sessions: sessionmaker[Session], templates: SmsTemplates, provider: FakeProvider
) -> int:
    """A text whose send timed out (it may have left), then the patient's STOP."""
    message_id = queue_text(sessions, templates)
    assert send(sessions, provider, message_id, Clock(T0)) == "retry"
    practice_id = load(sessions, message_id).practice_id
    with session_scope(sessions) as session:
        session.add(
            OptOut(practice_id=practice_id, phone=CALLER, opted_out_at=T0 + timedelta(seconds=2))
        )
    return message_id


def test_a_text_in_doubt_that_reached_them_before_their_stop_is_recorded_not_suppressed(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    # The provider carried out the timed-out request: the patient has the text, and
    # replied STOP to it. What left is recorded under its id, not called suppressed.
    provider = FakeProvider(SendError("read timeout", permanent=False, in_doubt=True))
    message_id = _in_doubt_then_opted_out(sessions, templates, provider)
    retry_at = load(sessions, message_id).next_attempt_at

    assert send(sessions, provider, message_id, Clock(retry_at)) == "reconciled"
    assert len(provider.sent) == 1
    message = load(sessions, message_id)
    assert (message.status, message.provider_sid) == (MessageStatus.ACCEPTED, f"SM{1:032d}")


def test_a_text_in_doubt_that_never_left_is_held_once_they_opted_out(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    provider = FakeProvider(SendError("read timeout", permanent=False, in_doubt=True))
    message_id = _in_doubt_then_opted_out(sessions, templates, provider)
    provider.sent.clear()
    provider.remote.clear()  # the provider never had it after all
    retry_at = load(sessions, message_id).next_attempt_at

    assert send(sessions, provider, message_id, Clock(retry_at)) == "suppressed"
    assert provider.lookups == 1
    assert provider.sent == []
    message = load(sessions, message_id)
    assert (message.status, message.provider_sid) == (MessageStatus.SUPPRESSED, None)
    assert message.error_message == SuppressionReason.OPTED_OUT.value
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
        assert claim(session, message_id, T0, LEASE) is not None

    assert due(sessions, T0 + LEASE - timedelta(seconds=1)) == []
    assert load(sessions, message_id).status is MessageStatus.SENDING

    later = T0 + LEASE + timedelta(seconds=1)
    assert due(sessions, later) == [message_id]
    message = load(sessions, message_id)
    assert message.status is MessageStatus.RETRYING
    assert message.next_attempt_at == later
    # And the worker the sweeper queues can claim it again.
    with session_scope(sessions) as session:
        assert claim(session, message_id, later, LEASE) is not None


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
    message_id: int | None = None,
) -> StatusOutcome:
    with session_scope(sessions) as session:
        return record_status(session, sid, status, error_code, at, message_id)


def test_status_moves_forward_from_accepted_to_sent_to_delivered(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert (
        report(sessions, accepted_sid, MessageStatus.SENT, at=T0 + timedelta(seconds=1)) is APPLIED
    )
    assert status_of(sessions, accepted_sid).status is MessageStatus.SENT

    delivered_at = T0 + timedelta(seconds=3)
    assert report(sessions, accepted_sid, MessageStatus.DELIVERED, at=delivered_at) is APPLIED
    message = status_of(sessions, accepted_sid)
    assert message.status is MessageStatus.DELIVERED
    assert message.delivered_at == delivered_at
    assert message.status_updated_at == delivered_at


def test_late_sent_callback_does_not_undo_delivered(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert (
        report(sessions, accepted_sid, MessageStatus.DELIVERED, at=T0 + timedelta(seconds=2))
        is APPLIED
    )
    assert (
        report(sessions, accepted_sid, MessageStatus.SENT, at=T0 + timedelta(seconds=3)) is APPLIED
    )

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
    assert report(sessions, accepted_sid, final) is APPLIED
    assert report(sessions, accepted_sid, later, error_code=30008) is APPLIED

    message = status_of(sessions, accepted_sid)
    assert message.status is final
    assert message.error_code is None


def test_status_for_an_unknown_sid_is_unknown(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, "SM" + "f" * 32, MessageStatus.DELIVERED) is StatusOutcome.UNKNOWN
    assert status_of(sessions, accepted_sid).status is MessageStatus.ACCEPTED


def test_undelivered_status_records_the_carrier_error_code(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, accepted_sid, MessageStatus.UNDELIVERED, error_code=30007) is APPLIED

    message = status_of(sessions, accepted_sid)
    assert (message.status, message.error_code) == (MessageStatus.UNDELIVERED, 30007)


def test_repeated_final_status_adds_an_error_code_it_lacked(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    assert report(sessions, accepted_sid, MessageStatus.UNDELIVERED) is APPLIED
    assert status_of(sessions, accepted_sid).error_code is None

    assert report(sessions, accepted_sid, MessageStatus.UNDELIVERED, error_code=30003) is APPLIED
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
        assert claim(session, message_id, retry_at + GRACE * 2, LEASE) is not None


def test_a_stale_claim_of_a_backed_off_text_is_due_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    for s in (3, 6, 12, 24, 48):
        assert due(sessions, T0 + timedelta(seconds=s)) == [message_id]
    claimed_at = T0 + timedelta(seconds=50)
    with session_scope(sessions) as session:
        assert claim(session, message_id, claimed_at, LEASE) is not None

    later = claimed_at + LEASE + timedelta(seconds=1)
    assert due(sessions, later) == [message_id]
    message = load(sessions, message_id)
    assert (message.status, message.next_attempt_at) == (MessageStatus.RETRYING, later)
    with session_scope(sessions) as session:
        assert claim(session, message_id, later, LEASE) is not None


# --- send once: leases, texts in doubt, reconciliation ---------------------------------


def test_a_claim_is_a_lease_taken_back_only_once_it_lapses(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    with session_scope(sessions) as session:
        assert claim(session, message_id, T0, LEASE) is not None
    assert load(sessions, message_id).lease_until == T0 + LEASE

    assert due(sessions, T0 + LEASE - timedelta(milliseconds=1)) == []
    assert load(sessions, message_id).status is MessageStatus.SENDING
    assert due(sessions, T0 + LEASE + timedelta(milliseconds=1)) == [message_id]
    message = load(sessions, message_id)
    # Its worker may have sent it before dying: in doubt from that claim on.
    assert (message.status, message.in_doubt_since) == (MessageStatus.RETRYING, T0)


def test_a_dead_workers_text_that_went_out_is_recorded_not_sent_again(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider()
    # A worker claimed it, the provider took it, and the worker died before recording.
    with session_scope(sessions) as session:
        message = claim(session, message_id, T0, LEASE)
        assert message is not None
        body = message.body
    provider.remote.append(SentText("SM" + "a" * 32, body, T0 + timedelta(seconds=1)))
    lapsed = T0 + LEASE + timedelta(seconds=1)
    assert due(sessions, lapsed) == [message_id]

    assert send(sessions, provider, message_id, Clock(lapsed)) == "reconciled"
    assert provider.sent == []
    message = load(sessions, message_id)
    assert (message.status, message.provider_sid) == (MessageStatus.ACCEPTED, "SM" + "a" * 32)
    assert message.attempts == 2


def test_a_dead_workers_text_that_never_left_is_sent(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    with session_scope(sessions) as session:
        assert claim(session, message_id, T0, LEASE) is not None
    lapsed = T0 + LEASE + timedelta(seconds=1)
    assert due(sessions, lapsed) == [message_id]

    provider = FakeProvider()
    assert send(sessions, provider, message_id, Clock(lapsed)) == "accepted"
    assert provider.lookups == 1
    assert len(provider.sent) == 1


def test_a_timeout_puts_the_text_in_doubt_and_its_retry_asks_before_sending(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    # The request timed out, but the provider carried it out.
    provider = FakeProvider(SendError("read timeout", permanent=False, in_doubt=True))
    assert send(sessions, provider, message_id, Clock(T0)) == "retry"
    message = load(sessions, message_id)
    assert message.in_doubt_since == T0
    # Given as long as the provider timeout to land there before we ask (not 2 s).
    assert message.next_attempt_at == T0 + POLICY.in_doubt_wait

    assert send(sessions, provider, message_id, Clock(message.next_attempt_at)) == "reconciled"
    assert len(provider.sent) == 1
    assert load(sessions, message_id).provider_sid == f"SM{1:032d}"


def test_a_refusal_is_not_in_doubt_and_its_retry_does_not_ask(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("twilio 429", permanent=False, code=20429))
    assert send(sessions, provider, message_id, Clock(T0)) == "retry"
    retry_at = load(sessions, message_id).next_attempt_at
    assert load(sessions, message_id).in_doubt_since is None
    assert send(sessions, provider, message_id, Clock(retry_at)) == "accepted"
    assert provider.lookups == 0


def test_a_text_in_doubt_is_never_sent_blind_while_the_provider_cannot_say(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider(SendError("read timeout", permanent=False, in_doubt=True))
    assert send(sessions, provider, message_id, Clock(T0)) == "retry"
    provider.lookup_error = SendError("twilio unreachable", permanent=False)
    retry_at = load(sessions, message_id).next_attempt_at
    assert send(sessions, provider, message_id, Clock(retry_at)) == "retry"
    assert len(provider.sent) == 1  # only the first, doubtful one
    message = load(sessions, message_id)
    assert (message.status, message.in_doubt_since) == (MessageStatus.RETRYING, T0)


def test_the_same_words_recorded_for_another_text_are_not_taken_for_this_one(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    earlier = queue_text(sessions, templates, call_id="CA1")
    provider = FakeProvider()
    assert send(sessions, provider, earlier, Clock(T0)) == "accepted"
    # The same words to the same caller again (a menu sent twice), in doubt after a lapse.
    with sessions.begin() as session:
        first = session.get(Message, earlier)
        assert first is not None
        again = Message(
            practice_id=first.practice_id,
            episode_id=first.episode_id,
            direction=first.direction,
            kind=MessageKind.REPROMPT,
            from_number=first.from_number,
            to_number=first.to_number,
            body=first.body,
            status=MessageStatus.PENDING,
            created_at=T0 + timedelta(seconds=2),
        )
        session.add(again)
        session.flush()
        later = again.id
    with session_scope(sessions) as session:
        assert claim(session, later, T0 + timedelta(seconds=2), LEASE) is not None
    lapsed = T0 + timedelta(seconds=2) + LEASE + timedelta(seconds=1)
    assert later in due(sessions, lapsed)

    assert send(sessions, provider, later, Clock(lapsed)) == "accepted"
    assert len(provider.sent) == 2


def test_the_status_callback_carries_our_message_id(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    provider = FakeProvider()
    send(sessions, provider, message_id, Clock(T0))
    assert provider.sent[0].status_callback == f"{CALLBACK}?message_id={message_id}"


def test_a_report_names_a_text_whose_answer_was_never_recorded_and_its_id_is_kept(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id = queue_text(sessions, templates)
    with session_scope(sessions) as session:
        assert claim(session, message_id, T0, LEASE) is not None
    sid = "SM" + "b" * 32
    outcome = report(sessions, sid, MessageStatus.SENT, at=T0, message_id=message_id)
    assert outcome is StatusOutcome.ADOPTED
    message = load(sessions, message_id)
    assert (message.status, message.provider_sid) == (MessageStatus.SENT, sid)
    # Its lease is no reason to take it back any more.
    assert due(sessions, T0 + LEASE * 2) == []


def test_a_second_provider_id_for_one_text_is_reported_as_a_duplicate(
    sessions: sessionmaker[Session], accepted_sid: str
) -> None:
    message_id = status_of(sessions, accepted_sid).id
    second = "SM" + "c" * 32
    outcome = report(sessions, second, MessageStatus.DELIVERED, message_id=message_id)
    assert outcome is StatusOutcome.DUPLICATE
    message = load(sessions, message_id)
    assert (message.provider_sid, message.status) == (accepted_sid, MessageStatus.ACCEPTED)


def test_a_lease_keeper_renews_its_own_claims_only(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    mine = queue_text(sessions, templates, call_id="CA1")
    theirs = queue_text(sessions, templates, call_id="CA2", caller="+15125550177")
    with session_scope(sessions) as session:
        assert claim(session, mine, T0, LEASE) is not None
        assert claim(session, theirs, T0, LEASE) is not None
    clock = Clock(T0 + timedelta(seconds=5))
    keeper = LeaseKeeper(sessions, LEASE, clock=clock)
    # "theirs" lapsed and was claimed again by another worker: our claimed_at is stale.
    with keeper.holding(mine, T0), keeper.holding(theirs, T0 - timedelta(seconds=9)):
        keeper.renew_now()
    assert load(sessions, mine).lease_until == clock.now + LEASE
    assert load(sessions, theirs).lease_until == T0 + LEASE


def test_a_dead_worker_makes_every_fresh_text_due_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    # A fresh text re-queued for the third time waits as long again as it has waited...
    waiting = queue_text(sessions, templates, call_id="CA1")
    for s in (3, 6, 12):
        assert due(sessions, T0 + timedelta(seconds=s)) == [waiting]
    # ...but its task may have died with a worker whose lease on another text lapsed.
    claimed = queue_text(sessions, templates, call_id="CA2", caller="+15125550177")
    with session_scope(sessions) as session:
        assert claim(session, claimed, T0 + timedelta(seconds=12), LEASE) is not None
    lapsed = T0 + timedelta(seconds=12) + LEASE + timedelta(seconds=1)
    assert sorted(due(sessions, lapsed)) == sorted([waiting, claimed])
