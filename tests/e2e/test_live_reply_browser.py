"""A staff reply typed in Chromium reaches the patient's phone, on the real stack: the page
posts to gunicorn, the outbox row is sent by the Celery worker through the twilio client to
the Twilio double, from the practice line the patient called, and the thread shows it with
its delivery status and who sent it. Then a saved reply, sent the same way."""

from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from recovery.domain.messages import MessageKind
from recovery.models import AuditEvent, Message
from tests.conftest import load_form, twilio_signature
from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, Live, shot, sign_in
from tests.support.twilio_double import RecordedRequest

pytestmark = pytest.mark.e2e

WORDS = "Hi, this is Dana at Valley Family. I can call you at 3 about your statement."
SAVED = "Valley Family Clinic: we tried to reach you. Please call (512) 555-0100."


def text_with_body(live: Live, body: str, timeout: float = 20.0) -> RecordedRequest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in live.twilio.accepted_messages() if m.form["Body"] == body]
        if found:
            assert len(found) == 1, [m.summary() for m in found]
            return found[0]
        time.sleep(0.1)
    got = [m.summary() for m in live.twilio.messages()]
    raise AssertionError(f"the double has no text {body!r}: {got}")


def report_delivered(live: Live, sent: RecordedRequest) -> None:
    """Twilio's delivery report, posted to the StatusCallback the text was sent with."""
    url = sent.form["StatusCallback"]
    form = load_form("twilio/sms-status-delivered.form")
    form.update(
        MessageSid=sent.sid or "",
        SmsSid=sent.sid or "",
        From=sent.form["From"],
        To=sent.form["To"],
    )
    answer = requests.post(
        url, data=form, headers={"X-Twilio-Signature": twilio_signature(url, form)}, timeout=10
    )
    assert answer.status_code == 204, answer.text


def test_a_typed_reply_and_a_saved_reply_reach_the_patient_from_the_line_they_called(
    live: Live, live_world: scenario.Scenario, desktop: Page
) -> None:
    scenario.add_saved_reply(live.sessions)
    page = desktop
    conversation = f"{live.base_url}/episodes/{live_world.billing_episode_id}"
    page.goto(conversation)
    sign_in(page, live_world.users.desk)

    page.get_by_role("textbox", name="Reply to patient").fill(WORDS)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Reply sent to the patient.")).to_be_visible()

    sent = text_with_body(live, WORDS)
    assert sent.form["To"] == scenario.BILLING_CALLER
    assert sent.form["From"] == scenario.LINE  # the number the patient called
    # Accepted by the provider: the thread says so, under the sender's name.
    entry = page.locator(".entry-staff_reply").filter(has_text=WORDS)
    for _ in range(50):
        page.goto(conversation)
        if "sent" in entry.inner_text():
            break
        time.sleep(0.2)
    expect(entry).to_contain_text("Dana Front replied")
    expect(entry.locator(".entry-meta")).to_contain_text("sent")

    report_delivered(live, sent)
    page.goto(conversation)
    expect(entry.locator(".entry-meta")).to_contain_text("delivered")
    shot(page, "live-reply-delivered-desktop")

    # A saved reply: one click fills the box with the practice's text, Send sends it.
    page.get_by_role("button", name="Please call us").click()
    expect(page.get_by_role("textbox", name="Reply to patient")).to_have_value(SAVED)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Reply sent to the patient.")).to_be_visible()
    again = text_with_body(live, SAVED)
    assert again.form["To"] == scenario.BILLING_CALLER
    assert again.form["From"] == scenario.LINE
    saved_entry = page.locator(".entry-staff_reply").filter(has_text=SAVED)
    expect(saved_entry).to_contain_text("Dana Front replied")

    # Each reply sent exactly once, and audited against this conversation.
    time.sleep(1.0)
    bodies = [m.form["Body"] for m in live.twilio.accepted_messages()]
    assert bodies.count(WORDS) == 1 and bodies.count(SAVED) == 1
    with live.sessions() as session:
        replies = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "staff_reply")
        ).all()
    assert [e.episode_id for e in replies] == [live_world.billing_episode_id] * 2
    assert all(WORDS not in (e.detail or "") for e in replies)  # a reference, never the words


def test_a_reply_sent_after_signing_out_elsewhere_is_kept_and_sent_after_signing_in(
    live: Live, live_world: scenario.Scenario, browser: Browser
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        conversation = f"{live.base_url}/episodes/{live_world.billing_episode_id}"
        page.goto(conversation)
        sign_in(page, live_world.users.desk)
        page.get_by_role("textbox", name="Reply to patient").fill(WORDS)
        # The shift ends in another tab: this page's session is gone, its form still open.
        other = context.new_page()
        other.goto(f"{live.base_url}/tasks")
        other.get_by_role("button", name="Sign out").click()
        expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
        other.close()

        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_text("You were signed out, so that was not saved.")).to_be_visible()
        sign_in(page, live_world.users.desk)

        expect(page).to_have_url(conversation)
        box = page.get_by_role("textbox", name="Reply to patient")
        expect(box).to_have_value(WORDS)
        expect(page.get_by_text("What you typed is back in the form")).to_be_visible()
        shot(page, "live-reply-kept-after-sign-in-desktop")
        with live.sessions() as session:
            kinds = session.scalars(select(Message.kind)).all()
        assert MessageKind.STAFF_REPLY not in kinds  # nothing was sent while signed out

        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_text("Reply sent to the patient.")).to_be_visible()
        sent = text_with_body(live, WORDS)
        assert sent.form["To"] == scenario.BILLING_CALLER
    finally:
        context.close()
