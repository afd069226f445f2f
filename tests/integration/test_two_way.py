"""The two-way loop over the real stack: a reply is understood, routed, paged, closed."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.models import (
    Episode,
    EpisodeOutcome,
    Message,
    OptOut,
    Page,
    PageStatus,
    Task,
    TaskQueue,
)
from tests.conftest import generic_request, unique_sid
from tests.integration.conftest import Clock
from tests.integration.helpers import (
    dial_form,
    post_sms,
    post_twilio,
    settle,
    texts_to,
    wait_for_text_to,
)
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

PATIENT = "+15125550199"
DR_RIVERA = "+15125550111"
NURSE_LEE = "+15125550112"
DIAL = "/webhooks/twilio/voice/dial-status"
# Friday 27 November 2026, 18:30 in Chicago (CST, UTC-6): the practice is closed until
# Monday 08:00 (Monday hours 08:00-12:00 and 13:00-17:00 in tests/fixtures/practices.yaml).
FRIDAY_EVENING = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)


def missed_call(stack: Stack, twilio: TwilioDouble) -> None:
    assert post_twilio(stack, DIAL, dial_form()).status_code == 200
    wait_for_text_to(twilio, PATIENT, "sorry we missed your call")


def wait_for(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def episode(sessions: sessionmaker[Session]) -> Episode:
    with sessions() as session:
        return session.scalars(select(Episode).order_by(Episode.id.desc())).first()  # type: ignore[return-value]


def test_book_gets_a_tracked_link_and_a_booking_confirmation_closes_it_booked(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    missed_call(stack, twilio)
    response = post_sms(stack, "Book please")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")

    body = wait_for_text_to(twilio, PATIENT, "book your visit")
    link = re.search(r"(http://\S+/b/\S+)", body)
    assert link is not None, body
    clicked = requests.get(link.group(1), allow_redirects=False, timeout=5)
    assert clicked.status_code == 302
    assert clicked.headers["Location"].startswith("https://book.example.com/valley-family?ref=")
    token = link.group(1).rsplit("/", 1)[1]

    payload, headers = generic_request({"ref": token})
    confirmed = requests.post(
        stack.base_url + "/webhooks/bookings", data=payload, headers=headers, timeout=5
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "booked"
    booked = episode(sessions)
    assert booked.outcome is EpisodeOutcome.BOOKED
    assert booked.booking_clicked_at is not None


@pytest.mark.parametrize(
    ("reply", "queue", "due", "phrase"),
    [
        # Billing: the next business day's opening (Monday 08:00) plus the 4 h SLA.
        (
            "question about my bill",
            TaskQueue.BILLING,
            datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
            "Monday at 12:00 PM",
        ),
        # Refill after the 15:00 cut-off: next business morning plus the 2 h SLA.
        (
            "REFILL",
            TaskQueue.CARE_TEAM,
            datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
            "Monday at 10:00 AM",
        ),
    ],
)
def test_friday_evening_billing_and_refill_become_tasks_due_monday(
    stack: Stack,
    twilio: TwilioDouble,
    sessions: sessionmaker[Session],
    clock: Clock,
    reply: str,
    queue: TaskQueue,
    due: datetime,
    phrase: str,
) -> None:
    clock.set(FRIDAY_EVENING)
    missed_call(stack, twilio)
    post_sms(stack, reply)

    text = wait_for_text_to(twilio, PATIENT, phrase)
    assert "Valley Family Clinic" in text
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert task.queue is queue
        assert task.due_at == due


def test_urgent_replies_911_then_pages_escalates_and_stops_on_ack(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session], clock: Clock
) -> None:
    missed_call(stack, twilio)
    post_sms(stack, "my dad has chest pain")

    guidance = wait_for_text_to(twilio, PATIENT, "call 911")
    page_text = wait_for_text_to(twilio, DR_RIVERA, "URGENT Valley Family Clinic")
    # The patient's guidance is queued (and dispatched) first; the two then travel in
    # parallel, because the page must never wait on the patient's text succeeding.
    with sessions() as session:
        kinds = [m.kind for m in session.scalars(select(Message).order_by(Message.id))]
    assert kinds.index("urgent") < kinds.index("page")
    # The clinician's page carries no patient data.
    assert PATIENT not in page_text and "chest" not in page_text
    assert guidance
    code = re.search(r"Ref (\d{4})", page_text)
    assert code is not None

    time.sleep(1.0)
    assert texts_to(twilio, NURSE_LEE) == []  # not before the ack timeout
    clock.advance(301)  # five minutes pass, as far as every process can tell
    wait_for_text_to(twilio, NURSE_LEE, f"Ref {code.group(1)}")

    post_sms(stack, f"ACK {code.group(1)}", sender=NURSE_LEE)
    wait_for_text_to(twilio, NURSE_LEE, "is yours")
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.status is PageStatus.ACKNOWLEDGED
        assert page.acknowledged_by == "Nurse Lee"
    assert episode(sessions).outcome is EpisodeOutcome.ESCALATED

    paged_before = len(twilio.accepted_messages())
    clock.advance(600)
    time.sleep(2.0)
    assert len(twilio.accepted_messages()) == paged_before  # the chain stopped


def test_stop_blocks_every_later_text_and_start_reenables(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session], clock: Clock
) -> None:
    missed_call(stack, twilio)
    post_sms(stack, "STOP")
    wait_for_text_to(twilio, PATIENT, "unsubscribed")
    assert episode(sessions).outcome is EpisodeOutcome.OPTED_OUT

    post_sms(stack, "billing")  # a reply after STOP gets no text
    # Past the episode window and a day (one automated text a day): a new missed call.
    clock.advance(25 * 3600)
    post_twilio(stack, DIAL, dial_form(CallSid=unique_sid("CA", "after stop")))
    time.sleep(2.5)
    assert len(texts_to(twilio, PATIENT)) == 2  # the first text and the STOP confirmation

    post_sms(stack, "START")
    wait_for_text_to(twilio, PATIENT, "subscribed again")
    with sessions() as session:
        assert session.scalars(select(OptOut)).one().opted_in_at is not None
    post_twilio(stack, DIAL, dial_form(CallSid=unique_sid("CA", "after start")))
    wait_for(lambda: len(texts_to(twilio, PATIENT)) == 4)


def test_a_duplicate_inbound_webhook_changes_nothing(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    missed_call(stack, twilio)
    first = post_sms(stack, "REFILL", sid_seed="same-sid")
    second = post_sms(stack, "REFILL", sid_seed="same-sid")
    assert first.status_code == second.status_code == 200

    wait_for_text_to(twilio, PATIENT, "refill request is logged")
    settle(twilio, 2)  # the first text and one answer
    with sessions() as session:
        assert len(session.scalars(select(Task)).all()) == 1
        inbound = session.scalars(select(Message).where(Message.kind == "reply")).all()
        assert len(inbound) == 1
        assert inbound[0].body == "" and inbound[0].body_ciphertext  # stored encrypted


def test_unclear_reply_gets_one_reprompt_then_a_front_desk_task(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    missed_call(stack, twilio)
    post_sms(stack, "who is this?")
    wait_for_text_to(twilio, PATIENT, "didn't catch that")
    post_sms(stack, "hmm what")
    wait_for_text_to(twilio, PATIENT, "front desk will get back to you")
    with sessions() as session:
        assert session.scalars(select(Task)).one().queue is TaskQueue.FRONT_DESK


def test_a_text_out_of_the_blue_opens_its_own_episode(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    post_sms(stack, "BOOK", sender="+15125550133")
    wait_for_text_to(twilio, "+15125550133", "book your visit")
    assert episode(sessions).caller == "+15125550133"


def test_no_reply_within_the_window_ends_unrecovered(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session], clock: Clock
) -> None:
    missed_call(stack, twilio)
    clock.advance(24 * 3600 + 60)
    wait_for(lambda: episode(sessions).outcome is EpisodeOutcome.UNRECOVERED)
