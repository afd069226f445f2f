"""What a new user's walk through the day found: the front desk answers a patient and
finishes the task on the same page; a queue signed out elsewhere says it stopped updating;
the landing page fits a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e

WORDS = "Hi, this is Dana at Valley Family. I will call you at 3 about your statement."


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_front_desk_replies_and_completes_the_task_from_the_conversation(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/episodes/{world.billing_episode_id}")
    sign_in(page, world.users.desk)

    page.get_by_role("textbox", name="Reply to patient").fill(WORDS)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Reply sent to the patient.")).to_be_visible()

    task = page.locator(".episode-task-actions")
    task.get_by_role("button", name="Claim").click()
    expect(page.get_by_text("Task claimed: it is yours.")).to_be_visible()
    expect(page.locator(".open-task")).to_contain_text("You claimed it")
    note = page.locator(".episode-task-actions input[name=note]")
    note.fill("Texted; will call at 3")
    # On one line with its button, not a screen lower (a column's flex-basis is a height).
    assert (note.bounding_box() or {"height": 0})["height"] < 60
    claim_box = page.locator(".open-task").bounding_box()
    assert claim_box is not None and (note.bounding_box() or {"y": 1e9})["y"] - claim_box["y"] < 200
    shot(page, f"conversation-task-actions-{device}")
    page.locator(".episode-task-actions").get_by_role("button", name="Complete").click()

    expect(page.get_by_text("Task completed.")).to_be_visible()
    expect(page).to_have_url(f"{server.base_url}/episodes/{world.billing_episode_id}")
    expect(page.locator(".episode-task-actions")).to_have_count(0)
    expect(page.locator(".undo-bar")).to_contain_text("completed its task")
    page.locator(".undo-bar").get_by_role("button", name="Undo").click()
    expect(page.locator(".open-task")).to_contain_text("Billing question")
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_queue_signed_out_in_another_tab_says_it_stopped_updating(
    server: Server, world: scenario.Scenario, browser: Browser
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        queue = context.new_page()
        queue.goto(f"{server.base_url}/tasks")
        sign_in(queue, world.users.desk)
        expect(queue.locator(".task")).to_have_count(3)

        other = context.new_page()
        other.goto(f"{server.base_url}/tasks")
        other.get_by_role("button", name="Sign out").click()

        notice = queue.get_by_role("alert")
        expect(notice).to_contain_text("no longer updating", timeout=15_000)
        expect(queue).to_have_title("Signed out · Tasks · Recovery")
        shot(queue, "queue-signed-out-desktop")
        notice.get_by_role("link", name="Sign in again").click()
        sign_in(queue, world.users.desk)
        expect(queue).to_have_url(f"{server.base_url}/tasks")
    finally:
        context.close()


def test_the_landing_page_fits_a_phone(server: Server, phone: Page) -> None:
    phone.goto(server.base_url + "/")
    expect(phone.get_by_role("link", name="Sign in")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "landing-phone")


def test_a_reply_nobody_understood_is_not_no_reply(
    server: Server, world: scenario.Scenario, desktop: Page
) -> None:
    from recovery.config import TEMPLATES_DIR
    from recovery.crypto import PhiCipher
    from recovery.db import session_scope, utcnow
    from recovery.domain.templates import SmsTemplates
    from recovery.models import Episode
    from tests.conftest import PHI_KEY

    with session_scope(server.sessions) as session:
        scenario.missed_call_and_reply(
            session,
            SmsTemplates(TEMPLATES_DIR / "sms"),
            PhiCipher([PHI_KEY]),
            caller="+15125550166",
            line=scenario.LINE,
            words=["hello who is this"],
            at=utcnow(),
        )
    with server.sessions() as session:
        from sqlalchemy import select

        episode = session.scalars(select(Episode).where(Episode.caller == "+15125550166")).one()
    desktop.goto(f"{server.base_url}/episodes/{episode.id}")
    sign_in(desktop, world.users.desk)
    expect(desktop.locator(".facts")).to_contain_text("Not understood")
    expect(desktop.locator(".facts")).not_to_contain_text("No reply yet")
