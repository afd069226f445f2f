"""A missed call becomes one text, through the whole production shape."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.models import Episode, Message, MessageStatus
from tests.conftest import (
    WEBHOOK_SECRET,
    generic_request,
    load_form,
    practice_secret,
    unique_sid,
)
from tests.integration.helpers import dial_form, post_generic, post_twilio, settle
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

DIAL = "/webhooks/twilio/voice/dial-status"


def first_message(sessions: sessionmaker[Session], timeout: float = 10.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            message = session.scalars(select(Message).order_by(Message.id)).first()
            if (
                message is not None
                and message.status is not MessageStatus.PENDING
                and (message.status is not MessageStatus.SENDING)
            ):
                return message
        time.sleep(0.05)
    raise AssertionError("no message left pending/sending in time")


def test_signed_fixture_produces_exactly_one_text_from_the_practice_line(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    response = post_twilio(stack, DIAL, dial_form())

    assert response.status_code == 200
    assert "text message in a moment" in response.text
    settle(twilio, 1)
    [request] = twilio.accepted_messages()
    assert request.form["From"] == "+15125550100"
    assert request.form["To"] == "+15125550199"
    assert request.form["Body"].startswith("Valley Family Clinic:")
    message = first_message(sessions)
    assert request.form["StatusCallback"] == (
        f"{stack.base_url}/webhooks/twilio/sms/status?message_id={message.id}"
    )
    assert message.status is MessageStatus.ACCEPTED
    assert message.provider_sid is not None and message.provider_sid.startswith("SM")
    with sessions() as session:
        episode = session.scalars(select(Episode)).one()
        assert episode.time_to_first_text_ms is not None
        assert 0 <= episode.time_to_first_text_ms < 5000


def test_the_same_webhook_five_times_at_once_sends_one_text(
    stack: Stack, twilio: TwilioDouble
) -> None:
    form = dial_form()
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: post_twilio(stack, DIAL, form), range(5)))

    assert [r.status_code for r in responses] == [200] * 5
    settle(twilio, 1)


def test_five_different_calls_from_one_caller_at_once_send_one_text(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    forms = [dial_form(CallSid=unique_sid("CA", f"burst-{i}")) for i in range(5)]
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda f: post_twilio(stack, DIAL, f), forms))

    assert [r.status_code for r in responses] == [200] * 5
    settle(twilio, 1)
    with sessions() as session:
        assert session.scalars(select(Episode)).one().call_count == 5


def test_bad_signature_is_403_and_sends_nothing(stack: Stack, twilio: TwilioDouble) -> None:
    response = post_twilio(stack, DIAL, dial_form(), signature="dGFtcGVyZWQ=")

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    settle(twilio, 0)


def test_answered_call_sends_no_text(stack: Stack, twilio: TwilioDouble) -> None:
    response = post_twilio(stack, DIAL, dial_form(DialCallStatus="completed"))
    assert response.status_code == 200
    settle(twilio, 0)


def test_second_missed_call_in_the_window_sends_no_second_text(
    stack: Stack, twilio: TwilioDouble
) -> None:
    post_twilio(stack, DIAL, dial_form())
    twilio.wait_for_messages(1)
    post_twilio(stack, DIAL, dial_form(CallSid=unique_sid("CA", "again")))
    settle(twilio, 1)


def test_closed_hours_call_gets_twiml_and_a_text(stack: Stack, twilio: TwilioDouble) -> None:
    form = {
        "AccountSid": "AC0000000000000000000000000000aaaa",
        "CallSid": unique_sid("CA", "closed"),
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+15125550177",
        "To": "+13035550100",
    }
    response = post_twilio(stack, "/webhooks/twilio/voice", form)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    assert "<Say>Thank you for calling Night Owl Dental." in response.text
    assert "<Hangup />" in response.text
    settle(twilio, 1)
    [request] = twilio.accepted_messages()
    assert (request.form["From"], request.form["To"]) == ("+13035550100", "+15125550177")


def test_generic_webhook_text_goes_out(stack: Stack, twilio: TwilioDouble) -> None:
    response = post_generic(
        stack,
        {
            "call_id": "asterisk-1762171272.101",
            "from": "5125550188",
            "to": "+15125550100",
            "occurred_at": datetime.now(UTC).isoformat(),
            "reason": "no-answer",
        },
    )
    assert response.status_code == 200, response.text
    settle(twilio, 1)
    assert twilio.accepted_messages()[0].form["To"] == "+15125550188"


def test_one_practices_secret_cannot_report_a_call_to_another_practice(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    """Over HTTP to gunicorn: valley-family's secret, always-open's number."""
    call = {
        "call_id": "asterisk-tenant-1",
        "from": "5125550188",
        "to": "+16175550100",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    wrong = post_generic(stack, call)  # signed as valley-family
    body, headers = generic_request(call, secret=WEBHOOK_SECRET)  # the install-wide one
    shared = requests.post(
        stack.base_url + "/webhooks/calls/missed", data=body, headers=headers, timeout=10
    )

    assert wrong.status_code == 404, wrong.text
    assert shared.status_code == 403 and "single-practice" in shared.json()["reason"]
    settle(twilio, 0)
    with sessions() as session:
        assert session.scalars(select(Episode)).first() is None
    body, headers = generic_request(call, secret=practice_secret("always-open"))
    right = requests.post(
        stack.base_url + "/webhooks/calls/missed", data=body, headers=headers, timeout=10
    )
    assert right.status_code == 200, right.text
    settle(twilio, 1)


def test_provider_5xx_is_retried_until_accepted(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    twilio.fail_next(2, status=503)
    post_twilio(stack, DIAL, dial_form())

    twilio.wait_for_messages(1, timeout=30)  # backoff 2 s then 4 s, picked up by the sweeper
    settle(twilio, 1, quiet_s=1.0)
    assert len(twilio.messages()) == 3  # two refused, one accepted
    message = first_message(sessions)
    assert message.status is MessageStatus.ACCEPTED
    assert message.attempts == 3


def test_invalid_number_is_a_permanent_failure_tried_once(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    twilio.refuse_number("+15125550199", code=21211)
    post_twilio(stack, DIAL, dial_form())

    message = first_message(sessions)
    assert message.status is MessageStatus.FAILED
    assert message.error_code == 21211
    time.sleep(2.0)
    assert len(twilio.messages()) == 1


def test_delivery_status_callback_marks_the_text_delivered(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    post_twilio(stack, DIAL, dial_form())
    message = first_message(sessions)
    assert message.provider_sid is not None

    form = load_form("twilio/sms-status-delivered.form")
    form.update(MessageSid=message.provider_sid, SmsSid=message.provider_sid)
    response = post_twilio(stack, "/webhooks/twilio/sms/status", form)

    assert response.status_code == 204
    with sessions() as session:
        stored = session.get(Message, message.id)
        assert stored is not None and stored.status is MessageStatus.DELIVERED
