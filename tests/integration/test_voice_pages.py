"""Voice pages over the real stack: after a round nobody took by text, the worker places a
call per clinician through the twilio client (the loopback double's Calls.json); the
call's TwiML comes from our signed webhook, and pressing 1 takes the page once."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.models import EpisodeOutcome, Message, Page, PageStatus
from tests.conftest import twilio_signature
from tests.integration.conftest import Clock
from tests.integration.helpers import post_sms, texts_to, wait_for_text_to
from tests.integration.test_two_way import (
    DR_RIVERA,
    NURSE_LEE,
    PATIENT,
    episode,
    missed_call,
    wait_for,
)
from tests.support.stack import Stack
from tests.support.twilio_double import RecordedRequest, TwilioDouble

pytestmark = pytest.mark.integration

MAIN_LINE = "+15125550100"


def unanswered_round(stack: Stack, twilio: TwilioDouble, clock: Clock) -> str:
    """An urgent reply whose page nobody took in round 0: round 1 texts and calls both.
    Returns the page's code."""
    missed_call(stack, twilio)
    post_sms(stack, "my dad has chest pain")
    page_text = wait_for_text_to(twilio, DR_RIVERA, "URGENT Valley Family Clinic")
    code = re.search(r"Ref (\d{4})", page_text)
    assert code is not None
    time.sleep(1.0)
    assert twilio.calls() == []  # round 0 texts only
    clock.advance(301)
    wait_for_text_to(twilio, NURSE_LEE, f"Ref {code.group(1)}")
    assert twilio.calls() == []
    clock.advance(301)
    twilio.wait_for_calls(2, timeout=20)
    return code.group(1)


def call_to(twilio: TwilioDouble, number: str) -> RecordedRequest:
    [call] = [c for c in twilio.accepted_calls() if c.form["To"] == number]
    return call


def answer(call: RecordedRequest, digits: str | None = None) -> str:
    """What Twilio does once the clinician picks up (and presses a key): post the call's
    parameters, signed, to the URL it was given."""
    url = call.form["Url"]
    form = {"CallSid": call.sid or "", "From": call.form["From"], "To": call.form["To"]}
    form["CallStatus"] = "in-progress"
    if digits is not None:
        form["Digits"] = digits
    response = requests.post(
        url, data=form, headers={"X-Twilio-Signature": twilio_signature(url, form)}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.text


def test_pressing_1_on_the_voice_page_takes_it_once(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session], clock: Clock
) -> None:
    unanswered_round(stack, twilio, clock)
    calls = twilio.accepted_calls()
    assert sorted(c.form["To"] for c in calls) == sorted([DR_RIVERA, NURSE_LEE])
    assert {c.form["From"] for c in calls} == {MAIN_LINE}  # from the practice number
    lee = call_to(twilio, NURSE_LEE)
    assert lee.form["Url"].startswith(stack.base_url + "/webhooks/twilio/voice/page?message_id=")
    assert lee.form["StatusCallback"].startswith(stack.base_url + "/webhooks/twilio/voice/page/")

    def recorded() -> Message | None:
        # The double has the call a moment before the worker has written down its sid.
        with sessions() as session:
            return session.scalars(select(Message).where(Message.provider_sid == lee.sid)).first()

    stored = wait_for(recorded)
    assert stored.kind == "page_call" and stored.status.value == "accepted"

    prompt = answer(lee)
    assert "<Gather" in prompt and 'numDigits="1"' in prompt and "Press 1 to take it" in prompt
    assert PATIENT not in prompt and "chest" not in prompt  # no PHI in what the call says

    taken = answer(lee, "1")
    assert "You have the page" in taken
    wait_for_text_to(twilio, NURSE_LEE, "is yours")  # the same confirmation as ACK <code>
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.status is PageStatus.ACKNOWLEDGED
        assert page.acknowledged_by == "Nurse Lee"
        acked_at = page.acknowledged_at
    assert episode(sessions).outcome is EpisodeOutcome.ESCALATED

    # Pressing 1 again, or on the other clinician's call, changes nothing more.
    assert "already taken by Nurse Lee" in answer(lee, "1")
    assert "already taken by Nurse Lee" in answer(call_to(twilio, DR_RIVERA), "1")
    texts_before, calls_before = len(twilio.accepted_messages()), len(twilio.accepted_calls())
    clock.advance(900)  # three more timeouts: the chain has stopped
    time.sleep(3.0)
    assert len(twilio.accepted_messages()) == texts_before
    assert len(twilio.accepted_calls()) == calls_before
    assert [t for t in texts_to(twilio, NURSE_LEE) if "is yours" in t] != []
    assert len([t for t in texts_to(twilio, NURSE_LEE) if "is yours" in t]) == 1
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert (page.acknowledged_by, page.acknowledged_at) == ("Nurse Lee", acked_at)


def test_pressing_1_after_a_texted_ack_changes_nothing(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session], clock: Clock
) -> None:
    code = unanswered_round(stack, twilio, clock)
    post_sms(stack, f"ACK {code}", sender=DR_RIVERA)
    wait_for_text_to(twilio, DR_RIVERA, "is yours")
    texts_before = len(twilio.accepted_messages())

    assert "already taken by Dr. Rivera" in answer(call_to(twilio, NURSE_LEE), "1")

    time.sleep(2.0)
    assert len(twilio.accepted_messages()) == texts_before
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.acknowledged_by == "Dr. Rivera"
