"""Posting signed webhooks to a running stack, and waiting on what the double received."""

from __future__ import annotations

import time

import requests

from tests.conftest import generic_request, load_form, twilio_signature, unique_sid
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble


def post_twilio(
    stack: Stack, path: str, form: dict[str, str], signature: str | None = None
) -> requests.Response:
    signature = signature or twilio_signature(stack.base_url + path, form)
    return requests.post(
        stack.base_url + path, data=form, headers={"X-Twilio-Signature": signature}, timeout=10
    )


def post_generic(stack: Stack, payload: dict[str, str]) -> requests.Response:
    body, headers = generic_request(payload)
    return requests.post(
        stack.base_url + "/webhooks/calls/missed", data=body, headers=headers, timeout=10
    )


def dial_form(**overrides: str) -> dict[str, str]:
    form = load_form("twilio/voice-dial-action-no-answer.form")
    form.update(overrides)
    return form


def settle(twilio: TwilioDouble, expected: int, quiet_s: float = 2.0) -> None:
    """Assert the double has exactly `expected` accepted texts and gets no more for a while:
    the only honest way to show that something did *not* happen."""
    if expected:
        twilio.wait_for_messages(expected, timeout=15)
    time.sleep(quiet_s)
    got = twilio.accepted_messages()
    assert len(got) == expected, [m.form for m in got]


def post_sms(
    stack: Stack,
    body: str,
    sender: str = "+15125550199",
    line: str = "+15125550100",
    sid_seed: str | None = None,
) -> requests.Response:
    """A patient's (or a clinician's) text to a practice line, as Twilio posts it."""
    form = load_form("twilio/sms-inbound.form")
    sid = unique_sid("SM", sid_seed or f"{sender}:{body}:{time.monotonic_ns()}")
    form.update(Body=body, From=sender, To=line, MessageSid=sid, SmsMessageSid=sid, SmsSid=sid)
    return post_twilio(stack, "/webhooks/twilio/sms", form)


def texts_to(twilio: TwilioDouble, number: str) -> list[str]:
    return [m.form["Body"] for m in twilio.accepted_messages() if m.form["To"] == number]


def wait_for_text_to(
    twilio: TwilioDouble, number: str, containing: str, timeout: float = 15.0
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for body in texts_to(twilio, number):
            if containing in body:
                return body
        time.sleep(0.05)
    raise AssertionError(
        f"no text to {number} containing {containing!r}: {texts_to(twilio, number)}"
    )
