"""Pages that cannot be missed, over the real stack: a page text that fails escalates at
once, not after the ACK timeout."""

from __future__ import annotations

import time

import pytest

from tests.conftest import load_form
from tests.integration.helpers import post_sms, post_twilio, texts_to, wait_for_text_to
from tests.integration.test_two_way import DR_RIVERA, NURSE_LEE, missed_call
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

STATUS = "/webhooks/twilio/sms/status"


def test_a_page_text_the_carrier_reports_undelivered_pages_the_next_person_at_once(
    stack: Stack, twilio: TwilioDouble
) -> None:
    missed_call(stack, twilio)
    post_sms(stack, "my dad has chest pain")
    wait_for_text_to(twilio, DR_RIVERA, "URGENT Valley Family Clinic")
    [page] = [m for m in twilio.accepted_messages() if m.form["To"] == DR_RIVERA]
    time.sleep(1.0)
    assert texts_to(twilio, NURSE_LEE) == []

    form = load_form("twilio/sms-status-undelivered-30007.form")
    form.update(MessageSid=page.sid or "", SmsSid=page.sid or "", To=DR_RIVERA)
    assert post_twilio(stack, STATUS, form).status_code == 204
    # No clock moves: the ACK timeout (300 s) is far off, and Lee is paged within seconds.
    started = time.monotonic()
    wait_for_text_to(twilio, NURSE_LEE, "URGENT Valley Family Clinic")
    assert time.monotonic() - started < 10


def test_a_page_text_the_provider_refuses_pages_the_next_person_at_once(
    stack: Stack, twilio: TwilioDouble
) -> None:
    twilio.refuse_number(DR_RIVERA, code=21614)  # not a mobile: a permanent refusal
    missed_call(stack, twilio)
    post_sms(stack, "she fainted and won't wake up")
    wait_for_text_to(twilio, NURSE_LEE, "URGENT Valley Family Clinic")
    assert texts_to(twilio, DR_RIVERA) == []
