"""Replies routed through the service, on SQLite, with time set by the test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.crypto import PhiCipher
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    EpisodeOutcome,
    Message,
    OptOut,
    Page,
    Practice,
    Task,
    TaskQueue,
)
from recovery.services.intake import UnknownNumber
from recovery.services.replies import handle_reply, record_inbound, unrouted
from tests.conftest import PHI_KEY
from tests.support.factories import missed_call

PATIENT = "+15125550199"
LINE = "+15125550100"
BASE = "https://recovery.example.com"
# Friday 27 November 2026, 18:30 in Chicago.
FRIDAY_EVENING = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
CIPHER = PhiCipher([PHI_KEY])


def call(
    session: Session, templates: SmsTemplates, now: datetime, sid: str = "CA" + "1" * 32
) -> None:
    missed_call(session, templates, at=now, caller=PATIENT, called=LINE, call_id=sid)


def reply(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    text: str,
    now: datetime,
    sender: str = PATIENT,
    sid: str | None = None,
) -> list[Message]:
    """Store and route one text; return the texts it queued."""
    with sessions.begin() as session:
        stored = record_inbound(
            session,
            CIPHER,
            provider_sid=sid or f"SM{abs(hash((text, sender, now))):032x}"[:34],
            from_raw=sender,
            to_raw=LINE,
            body=text,
            now=now,
        )
        assert stored.message_id is not None
        result = handle_reply(
            session, templates, CIPHER, stored.message_id, now=now, public_base_url=BASE
        )
        queued = [session.get(Message, i) for i in result.message_ids]
        return [m for m in queued if m is not None]


@pytest.fixture
def after_missed_call(sessions: sessionmaker[Session], templates: SmsTemplates) -> None:
    with sessions.begin() as session:
        call(session, templates, FRIDAY_EVENING)


@pytest.mark.usefixtures("after_missed_call")
def test_friday_evening_billing_is_due_monday_noon_and_the_reply_says_so(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "question about my bill", FRIDAY_EVENING)

    assert "Monday at 12:00 PM" in answer.body
    assert answer.to_number == PATIENT and answer.from_number == LINE
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert task.queue is TaskQueue.BILLING
        assert task.due_at == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)


@pytest.mark.usefixtures("after_missed_call")
def test_friday_evening_refill_is_due_monday_morning(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "my meds ran out", FRIDAY_EVENING)
    assert "Monday at 10:00 AM" in answer.body
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert task.queue is TaskQueue.CARE_TEAM
        assert task.due_at == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


@pytest.mark.usefixtures("after_missed_call")
def test_asking_twice_makes_one_task(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    reply(sessions, templates, "BILLING", FRIDAY_EVENING)
    reply(sessions, templates, "billing question", FRIDAY_EVENING.replace(minute=45))
    with sessions() as session:
        assert len(session.scalars(select(Task)).all()) == 1


@pytest.mark.usefixtures("after_missed_call")
def test_spanish_reply_is_answered_in_spanish(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "necesito una cita", FRIDAY_EVENING)
    assert "haga su cita" in answer.body
    assert "/b/" in answer.body


@pytest.mark.usefixtures("after_missed_call")
def test_urgent_queues_the_911_guidance_before_the_page(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    queued = reply(sessions, templates, "I can't breathe", FRIDAY_EVENING)

    assert [m.kind for m in queued] == ["urgent", "page"]
    assert "911" in queued[0].body and queued[0].to_number == PATIENT
    assert queued[1].to_number == "+15125550111"
    with sessions() as session:
        assert session.scalars(select(Page)).one().episode_id == queued[0].episode_id


@pytest.mark.usefixtures("after_missed_call")
def test_stop_opts_out_closes_the_episode_and_confirms(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "Stop. Thank you", FRIDAY_EVENING)
    assert answer.kind == "stop" and "unsubscribed" in answer.body
    with sessions() as session:
        assert session.scalars(select(OptOut)).one().opted_in_at is None
        message = session.get(Message, answer.id)
        assert message is not None and message.episode_id is not None
    [start] = reply(sessions, templates, "START", FRIDAY_EVENING.replace(minute=50))
    assert "subscribed again" in start.body
    with sessions() as session:
        assert session.scalars(select(OptOut)).one().opted_in_at is not None


@pytest.mark.usefixtures("after_missed_call")
def test_stop_closes_the_episode_opted_out(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "STOP", FRIDAY_EVENING)
    with sessions() as session:
        message = session.get(Message, answer.id)
        assert message is not None and message.episode_id is not None
        from recovery.models import Episode

        episode = session.get(Episode, message.episode_id)
        assert episode is not None and episode.outcome is EpisodeOutcome.OPTED_OUT


@pytest.mark.usefixtures("after_missed_call")
def test_cancel_my_appointment_is_a_booking_not_an_opt_out(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "cancel my appointment", FRIDAY_EVENING)
    assert answer.kind == "book"
    with sessions() as session:
        assert session.scalars(select(OptOut)).all() == []


@pytest.mark.usefixtures("after_missed_call")
def test_unclear_twice_reprompts_once_then_hands_off_then_goes_quiet(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    first = reply(sessions, templates, "who is this", FRIDAY_EVENING)
    second = reply(sessions, templates, "huh", FRIDAY_EVENING.replace(minute=40))
    third = reply(sessions, templates, "??", FRIDAY_EVENING.replace(minute=50))

    assert [m.kind for m in first] == ["reprompt"]
    assert [m.kind for m in second] == ["handoff"]
    assert third == []
    with sessions() as session:
        assert session.scalars(select(Task)).one().queue is TaskQueue.FRONT_DESK


def test_reply_is_stored_encrypted_and_a_duplicate_is_ignored(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        first = record_inbound(
            session,
            CIPHER,
            provider_sid="SM" + "a" * 32,
            from_raw=PATIENT,
            to_raw=LINE,
            body="my chest hurts",
            now=FRIDAY_EVENING,
        )
        second = record_inbound(
            session,
            CIPHER,
            provider_sid="SM" + "a" * 32,
            from_raw=PATIENT,
            to_raw=LINE,
            body="my chest hurts",
            now=FRIDAY_EVENING,
        )
    assert first.duplicate is False and second.duplicate is True
    with sessions() as session:
        stored = session.scalars(select(Message)).one()
        assert stored.body == ""
        assert stored.body_ciphertext is not None and "chest" not in stored.body_ciphertext
        assert CIPHER.decrypt(stored.body_ciphertext) == "my chest hurts"


def test_reply_to_a_number_no_practice_owns_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(UnknownNumber):
        record_inbound(
            session,
            CIPHER,
            provider_sid="SM" + "b" * 32,
            from_raw=PATIENT,
            to_raw="+14155550100",
            body="hi",
            now=FRIDAY_EVENING,
        )


def test_a_reply_never_routed_is_found_by_the_sweeper(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    from datetime import timedelta

    with sessions.begin() as session:
        stored = record_inbound(
            session,
            CIPHER,
            provider_sid="SM" + "c" * 32,
            from_raw=PATIENT,
            to_raw=LINE,
            body="BOOK",
            now=FRIDAY_EVENING,
        )
    later = FRIDAY_EVENING + timedelta(seconds=5)
    with sessions() as session:
        assert unrouted(session, later, grace=timedelta(seconds=3)) == [stored.message_id]
        assert unrouted(session, FRIDAY_EVENING, grace=timedelta(seconds=3)) == []


def _stored_reply(
    sessions: sessionmaker[Session], sid_char: str
) -> tuple[int, Callable[[float], list[int]]]:
    """A BOOK reply stored Friday evening and never routed, and a sweep `seconds` later."""
    with sessions.begin() as session:
        stored = record_inbound(
            session,
            CIPHER,
            provider_sid="SM" + sid_char * 32,
            from_raw=PATIENT,
            to_raw=LINE,
            body="BOOK",
            now=FRIDAY_EVENING,
        )
    assert stored.message_id is not None

    def sweep(seconds: float) -> list[int]:
        with sessions.begin() as session:
            moment = FRIDAY_EVENING + timedelta(seconds=seconds)
            return unrouted(session, moment, grace=timedelta(seconds=3))

    return stored.message_id, sweep


def test_a_reply_never_routed_is_requeued_with_a_doubling_wait(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id, sweep = _stored_reply(sessions, "e")

    # A sweep every 2 s (the product's beat) used to queue it at each: 29 times in 60 s.
    requeued_at = [s for s in range(0, 61, 2) if sweep(s) == [message_id]]

    assert requeued_at == [4, 8, 16, 32]
    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert message.dispatched_at == FRIDAY_EVENING + timedelta(seconds=32)
        assert message.requeue_at == FRIDAY_EVENING + timedelta(seconds=64)


def test_a_lost_reply_is_requeued_at_grace_then_not_before_twice_its_wait(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    message_id, sweep = _stored_reply(sessions, "f")

    assert sweep(2.999) == []
    assert sweep(3) == [message_id]
    assert sweep(5.999) == []
    assert sweep(6) == [message_id]
    assert sweep(9) == []  # once per grace would queue it again here
    assert sweep(11.999) == []
    assert sweep(12) == [message_id]


def test_rerouting_a_routed_reply_does_nothing(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with sessions.begin() as session:
        call(session, templates, FRIDAY_EVENING)
        stored = record_inbound(
            session,
            CIPHER,
            provider_sid="SM" + "d" * 32,
            from_raw=PATIENT,
            to_raw=LINE,
            body="REFILL",
            now=FRIDAY_EVENING,
        )
        assert stored.message_id is not None
        first = handle_reply(
            session, templates, CIPHER, stored.message_id, now=FRIDAY_EVENING, public_base_url=BASE
        )
        again = handle_reply(
            session, templates, CIPHER, stored.message_id, now=FRIDAY_EVENING, public_base_url=BASE
        )
    assert len(first.message_ids) == 1 and again.message_ids == []


@pytest.mark.usefixtures("after_missed_call")
def test_urgent_from_an_opted_out_patient_still_gets_the_911_guidance_and_pages(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    from recovery.services.outreach import SendPolicy, deliver
    from recovery.sms.base import OutboundSms, SendResult, SentText

    class Recorder:
        name = "recorder"
        sent: list[OutboundSms] = []

        def send(self, sms: OutboundSms) -> SendResult:
            self.sent.append(sms)
            return SendResult(provider_sid=f"SM{len(self.sent):032d}")

        def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
            return []

    reply(sessions, templates, "STOP", FRIDAY_EVENING)
    queued = reply(sessions, templates, "BILLING", FRIDAY_EVENING.replace(minute=40))
    queued += reply(sessions, templates, "chest pain", FRIDAY_EVENING.replace(minute=45))
    provider = Recorder()
    outcome = {
        m.kind: deliver(
            sessions, provider, m.id, status_callback=None, policy=SendPolicy(timedelta(hours=1))
        ).status
        for m in queued
    }
    # The billing answer is a text we would start: suppressed. The 911 guidance answers
    # the patient's own urgent text: it goes, and so does the clinician's page.
    assert outcome == {"billing": "suppressed", "urgent": "accepted", "page": "accepted"}


@pytest.mark.usefixtures("after_missed_call")
def test_a_clinician_taken_off_the_roster_can_still_ack_the_page_they_were_sent(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    from recovery.models import PageStatus, Practice

    [_, page_text] = reply(sessions, templates, "URGENT", FRIDAY_EVENING)
    code = page_text.body.split("Ref ")[1][:4]
    with sessions.begin() as session:
        practice = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        practice.on_call = [{"name": "Nurse Lee", "phone": "+15125550112"}]

    reply(
        sessions, templates, f"ACK {code}", FRIDAY_EVENING.replace(minute=35), sender="+15125550111"
    )

    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.status is PageStatus.ACKNOWLEDGED
        assert page.acknowledged_by == "Dr. Rivera"


@pytest.mark.usefixtures("after_missed_call")
def test_a_patient_writing_ack_is_not_taken_for_a_clinician(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "ack", FRIDAY_EVENING)
    assert answer.kind == "reprompt"


@pytest.mark.usefixtures("after_missed_call")
def test_a_symptom_gets_the_911_sentence_and_a_care_team_task_due_in_30_minutes(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    # Friday 18:30 in Chicago: after hours, and the task is still due by the clock.
    [answer] = reply(sessions, templates, "my back has been hurting for a week", FRIDAY_EVENING)

    assert answer.kind == "clinical" and answer.to_number == PATIENT
    assert "call 911" in answer.body and "nurse" in answer.body
    assert "hurting" not in answer.body  # the patient's words never leave in a text
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert (task.queue, task.reason) == (TaskQueue.CARE_TEAM, TaskReason.CLINICAL)
        assert task.due_at == FRIDAY_EVENING + timedelta(minutes=30)
        assert session.scalars(select(Page)).all() == []  # not until nobody claims it


@pytest.mark.usefixtures("after_missed_call")
def test_the_callback_minutes_are_the_practices_setting(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with sessions.begin() as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        valley.clinical_callback_min = 10
    reply(sessions, templates, "I have a fever and a cough", FRIDAY_EVENING)
    with sessions() as session:
        assert session.scalars(select(Task)).one().due_at == FRIDAY_EVENING + timedelta(minutes=10)


@pytest.mark.usefixtures("after_missed_call")
def test_a_spanish_symptom_is_answered_in_spanish(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "me duele mucho la rodilla", FRIDAY_EVENING)
    assert answer.kind == "clinical"
    assert "911" in answer.body and "enfermera" in answer.body


@pytest.mark.usefixtures("after_missed_call")
def test_a_booking_that_mentions_a_symptom_gets_the_link_and_a_task_beside_it(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    [answer] = reply(sessions, templates, "my back hurts, can I come in", FRIDAY_EVENING)

    assert answer.kind == "book" and "/b/" in answer.body
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert task.reason is TaskReason.CLINICAL
        assert task.due_at == FRIDAY_EVENING + timedelta(minutes=30)


@pytest.mark.usefixtures("after_missed_call")
def test_a_refill_task_does_not_hide_a_symptom_and_a_second_symptom_adds_no_task(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    reply(sessions, templates, "REFILL", FRIDAY_EVENING)
    reply(sessions, templates, "also my knee is swollen", FRIDAY_EVENING.replace(minute=35))
    reply(sessions, templates, "and it hurts", FRIDAY_EVENING.replace(minute=40))
    with sessions() as session:
        reasons = sorted(t.reason.value for t in session.scalars(select(Task)))
        assert reasons == ["clinical", "refill"]


@pytest.mark.usefixtures("after_missed_call")
def test_no_reply_naming_a_symptom_gets_the_menu_again(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    for minute, text in enumerate(["I feel sick", "tengo gripa", "my ankle is twisted"]):
        queued = reply(sessions, templates, text, FRIDAY_EVENING.replace(minute=31 + minute))
        assert [m.kind for m in queued] == ["clinical"], text
