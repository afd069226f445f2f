"""Errors that mean something, over the real stack: a landline's first text is refused
(21614) and the caller is called back instead; a first text the carrier could not deliver
(its StatusCallback says 30003) does the same."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.tasks import TaskReason
from recovery.models import Message, MessageStatus, Task, TaskQueue
from tests.conftest import load_form, unique_sid
from tests.integration.helpers import dial_form, post_twilio
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

DIAL = "/webhooks/twilio/voice/dial-status"
STATUS = "/webhooks/twilio/sms/status"
CALLER = "+15125550199"


def call_backs(sessions: sessionmaker[Session], timeout: float = 15.0) -> list[Task]:
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            tasks = list(session.scalars(select(Task).where(Task.reason == TaskReason.CALL_BACK)))
        if tasks or time.monotonic() > deadline:
            return tasks
        time.sleep(0.1)


def first_text(sessions: sessionmaker[Session], timeout: float = 15.0) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            message = session.scalars(select(Message).order_by(Message.id)).first()
        if message is not None and message.status not in (
            MessageStatus.PENDING,
            MessageStatus.SENDING,
        ):
            return message
        assert time.monotonic() < deadline, "the first text was not tried"
        time.sleep(0.05)


def test_a_landline_caller_gets_a_front_desk_call_back_and_no_more_texts(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    twilio.refuse_number(CALLER, code=21614)  # not a mobile number

    assert post_twilio(stack, DIAL, dial_form()).status_code == 200
    [task] = call_backs(sessions)
    assert task.queue is TaskQueue.FRONT_DESK
    assert first_text(sessions).error_code == 21614

    # They call again: told to call back (no text promised), and nothing is sent.
    again = dial_form(CallSid=unique_sid("CA", "landline-again"))
    response = post_twilio(stack, DIAL, again)
    assert response.status_code == 200
    assert "call us back" in response.text and "text message" not in response.text
    time.sleep(2.0)
    assert len(twilio.messages()) == 1
    assert len(call_backs(sessions)) == 1


def test_a_first_text_the_carrier_could_not_deliver_becomes_a_call_back(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    assert post_twilio(stack, DIAL, dial_form()).status_code == 200
    message = first_text(sessions)
    assert message.provider_sid is not None

    form = load_form("twilio/sms-status-undelivered-30007.form")
    form.update(MessageSid=message.provider_sid, SmsSid=message.provider_sid, ErrorCode="30003")
    assert post_twilio(stack, f"{STATUS}?message_id={message.id}", form).status_code == 204

    [task] = call_backs(sessions)
    assert task.queue is TaskQueue.FRONT_DESK
