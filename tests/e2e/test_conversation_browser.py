"""The front desk answers a patient from the conversation page, on a desktop and a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recovery.config import TEMPLATES_DIR
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.messages import MessageKind
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, MessageStatus, OptOut, Practice
from tests.conftest import PHI_KEY
from tests.e2e import scenario
from tests.e2e.conftest import PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e

WORDS = "Hi, this is Dana at Valley Family. I can call you at 3 about your statement."


def _saved_reply(server: Server) -> None:
    scenario.add_saved_reply(server.sessions)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_front_desk_replies_to_the_patient_and_sees_it_in_the_thread(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    _saved_reply(server)
    page.goto(f"{server.base_url}/episodes/{world.billing_episode_id}")
    sign_in(page, world.users.desk)

    expect(page.get_by_role("heading", name="Reply to patient")).to_be_visible()
    expect(page.get_by_text("Text messages are not a secure channel.")).to_be_visible()
    expect(page.locator(".open-task")).to_contain_text("Billing question")
    box = page.get_by_role("textbox", name="Reply to patient")

    # A saved reply fills the box, to edit before sending.
    page.get_by_role("button", name="Please call us").click()
    expect(box).to_have_value(
        "Valley Family Clinic: we tried to reach you. Please call (512) 555-0100."
    )
    box.fill(WORDS)
    shot(page, f"conversation-reply-{device}")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_text("Reply sent to the patient.")).to_be_visible()
    entry = page.locator(".entry-staff_reply")
    expect(entry).to_contain_text("Dana Front replied")
    expect(entry).to_contain_text(WORDS)
    expect(entry).to_contain_text("queued")  # no worker in these tests: it waits in the outbox
    shot(page, f"conversation-after-reply-{device}")
    with server.sessions() as session:
        sent = session.scalars(select(Message).where(Message.kind == MessageKind.STAFF_REPLY)).one()
    assert sent.status is MessageStatus.PENDING and sent.to_number == scenario.BILLING_CALLER
    assert PhiCipher([PHI_KEY]).decrypt(sent.body_ciphertext or "") == WORDS
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_patients_answer_lands_in_the_open_conversation_without_a_reload(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/episodes/{world.billing_episode_id}")
    sign_in(page, world.users.desk)
    box = page.get_by_role("textbox", name="Reply to patient")
    box.fill("Half a reply")  # being written while the answer arrives
    page.evaluate("window.__same_page = true")  # gone if the page reloads

    now = utcnow()
    with session_scope(server.sessions) as session:
        scenario.patient_writes(
            session,
            SmsTemplates(TEMPLATES_DIR / "sms"),
            PhiCipher([PHI_KEY]),
            caller=scenario.BILLING_CALLER,
            line=scenario.LINE,
            text="After 3 works for me",
            at=now,
        )

    entry = page.locator(".entry-text_in").last
    expect(entry).to_contain_text("After 3 works for me", timeout=15_000)
    assert page.evaluate("window.__same_page") is True
    expect(box).to_have_value("Half a reply")
    shot(page, f"conversation-live-answer-{device}")
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_an_opted_out_patient_has_no_reply_box(
    server: Server, world: scenario.Scenario, desktop: Page
) -> None:
    with session_scope(server.sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        session.add(
            OptOut(practice_id=valley.id, phone=scenario.BILLING_CALLER, opted_out_at=utcnow())
        )
    desktop.goto(f"{server.base_url}/episodes/{world.billing_episode_id}")
    sign_in(desktop, world.users.desk)

    expect(desktop.get_by_text("This patient texted STOP")).to_be_visible()
    expect(desktop.get_by_role("textbox", name="Reply to patient")).to_have_count(0)
    expect(desktop.locator(".chip-opted-out")).to_be_visible()
    shot(desktop, "conversation-opted-out-desktop")
