"""A staff reply over the real stack: signed in to gunicorn, the text goes through the
outbox, the Celery worker and the twilio client to the Twilio double, from the line the
patient called, and the patient's answer lands in the same conversation."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import generate_password_hash

from recovery.crypto import PhiCipher
from recovery.db import session_scope
from recovery.domain.messages import MessageKind
from recovery.models import Message, MessageStatus, Practice, Role, Task, User
from tests.conftest import PHI_KEY
from tests.integration.helpers import post_sms, wait_for_text_to
from tests.integration.test_two_way import PATIENT, episode, missed_call, wait_for
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

PASSWORD = "a long staff password"
WORDS = "Hi, Dana from Valley Family here: I will call you about your statement at 3."


def front_desk_user(sessions: sessionmaker[Session]) -> str:
    email = f"desk-{uuid.uuid4().hex[:8]}@valley.example"
    with session_scope(sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        session.add(
            User(
                email=email,
                name="Dana Front",
                password_hash=generate_password_hash(PASSWORD),
                role=Role.STAFF,
                practice_id=valley.id,
                active=True,
            )
        )
    return email


def csrf_of(page: requests.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def signed_in(stack: Stack, email: str) -> tuple[requests.Session, str]:
    browser = requests.Session()
    login = browser.get(stack.base_url + "/login", timeout=10)
    done = browser.post(
        stack.base_url + "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(login)},
        timeout=10,
    )
    assert done.status_code == 200 and "Tasks" in done.text, done.text[:500]
    return browser, csrf_of(done)


def test_a_staff_reply_reaches_the_patient_from_the_line_they_called(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    missed_call(stack, twilio)
    post_sms(stack, "BILLING")
    wait_for_text_to(twilio, PATIENT, "billing")
    conversation = episode(sessions)
    browser, token = signed_in(stack, front_desk_user(sessions))

    sent = browser.post(
        f"{stack.base_url}/episodes/{conversation.id}/reply",
        data={"csrf_token": token, "text": WORDS},
        timeout=10,
    )

    assert sent.status_code == 200 and "Reply sent to the patient." in sent.text
    wait_for_text_to(twilio, PATIENT, WORDS)
    [delivered] = [m for m in twilio.accepted_messages() if m.form["Body"] == WORDS]
    assert delivered.form["From"] == "+15125550100"  # the line in the dial fixture

    def accepted() -> Message | None:
        with sessions() as session:
            row = session.scalars(
                select(Message).where(Message.kind == MessageKind.STAFF_REPLY)
            ).one()
            return row if row.status is not MessageStatus.PENDING else None

    row = wait_for(accepted)
    assert row.body == "" and row.provider_sid
    assert PhiCipher([PHI_KEY]).decrypt(row.body_ciphertext or "") == WORDS
    thread = browser.get(f"{stack.base_url}/episodes/{conversation.id}", timeout=10).text
    assert "Dana Front replied" in thread
    assert re.search(r"Dana Front replied.{0,600}(sent|delivered)", thread, re.S)

    # The patient's answer comes back into this conversation and marks the billing task.
    post_sms(stack, "ok, 3 works")

    def answered() -> Task | None:
        with sessions() as session:
            task = session.scalars(select(Task).where(Task.episode_id == conversation.id)).one()
            return task if task.patient_replied_at is not None else None

    wait_for(answered)
    time.sleep(0.2)
    thread = browser.get(f"{stack.base_url}/episodes/{conversation.id}", timeout=10).text
    assert "ok, 3 works" in thread
