"""Posting signed webhooks to a running stack, and waiting on what the double received."""

from __future__ import annotations

import time

import requests

from recovery.testing.stack import Stack
from recovery.testing.twilio_double import TwilioDouble
from tests.conftest import generic_request, load_form, twilio_signature


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
