"""The logs of web, worker and beat hold no phone number, no message body, no session
cookie and no token: a representative run on the shared stack, then a scan of the whole
of each process's log, which also holds everything the integration suite before it did
(named test_zz_ to run last)."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import AUTH_TOKEN, PHI_KEY, WEBHOOK_SECRET
from tests.integration.helpers import post_sms, wait_for_text_to
from tests.integration.test_staff_reply import front_desk_user, signed_in
from tests.integration.test_two_way import PATIENT, episode, missed_call
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

PATIENT_WORDS = "question about my bill for the colonoscopy on tuesday"
STAFF_WORDS = "Dana here: your colonoscopy bill is covered, no balance due."
E164 = re.compile(r"\+\d{8,15}")


def full_log(stack: Stack, name: str) -> str:
    path = stack.config.var_dir / f"{name}.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def test_the_logs_hold_no_number_no_body_no_cookie_no_token(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    missed_call(stack, twilio)
    first_text = wait_for_text_to(twilio, PATIENT, "sorry we missed your call")
    post_sms(stack, "BOOK")
    booking_text = wait_for_text_to(twilio, PATIENT, "book your visit")
    link = re.search(r"http://\S+/b/(\S+)", booking_text)
    assert link is not None, booking_text
    booking_token = link.group(1)
    assert requests.get(link.group(0), allow_redirects=False, timeout=5).status_code == 302
    post_sms(stack, PATIENT_WORDS)
    browser, csrf = signed_in(stack, front_desk_user(sessions))
    conversation = episode(sessions)
    assert browser.get(f"{stack.base_url}/episodes/{conversation.id}", timeout=10).ok
    sent = browser.post(
        f"{stack.base_url}/episodes/{conversation.id}/reply",
        data={"csrf_token": csrf, "text": STAFF_WORDS},
        timeout=10,
    )
    assert sent.status_code == 200
    wait_for_text_to(twilio, PATIENT, STAFF_WORDS)
    cookie = browser.cookies.get("session")
    assert cookie
    time.sleep(1)  # the last access-log lines

    logs = {name: full_log(stack, name) for name in ("web", "worker", "beat")}
    assert "/b/***" in logs["web"]  # the access log is there, and masks the link
    secrets = {
        "the patient's number": PATIENT.lstrip("+"),
        "the patient's words": PATIENT_WORDS,
        "the staff reply": STAFF_WORDS,
        "the first text": first_text,
        "the booking text": booking_text,
        "the booking token": booking_token,
        "the session cookie": cookie,
        "the webhook secret": WEBHOOK_SECRET,
        "the Twilio token": AUTH_TOKEN,
        "the PHI key": PHI_KEY,
    }
    found = [
        f"{what} in {name}.log"
        for name, log in logs.items()
        for what, secret in secrets.items()
        if secret in log
    ]
    numbers = sorted({m for log in logs.values() for m in E164.findall(log)})
    assert found == [] and numbers == [], (found, numbers)
