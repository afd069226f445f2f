"""The live queue in a browser: a new task appears without a reload (and in the tab's
title), Next task gives two people two different tasks, and a claim can be given back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from recovery.config import TEMPLATES_DIR
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from tests.conftest import PHI_KEY
from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e

NEW_CALLER = "+15125550155"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_new_task_appears_without_a_reload(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/tasks")
    sign_in(page, world.users.desk)
    expect(page).to_have_title(re.compile(r"^\(3\) Tasks"))
    expect(page.locator(".task")).to_have_count(3)
    page.evaluate("window.__same_page = true")  # gone if the page reloads

    with session_scope(server.sessions) as session:
        scenario.missed_call_and_reply(
            session,
            SmsTemplates(TEMPLATES_DIR / "sms"),
            PhiCipher([PHI_KEY]),
            caller=NEW_CALLER,
            line=scenario.LINE,
            words=["BILLING"],
            at=utcnow(),
        )

    expect(page.locator(".task")).to_have_count(4, timeout=15_000)
    expect(page.get_by_text("(512) 555-0155")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^\(4\) Tasks"))
    assert page.evaluate("window.__same_page") is True
    shot(page, f"queue-live-{device}")
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_next_task_gives_two_people_two_different_tasks_and_unclaim_gives_one_back(
    server: Server, world: scenario.Scenario, browser: Browser
) -> None:
    pages = []
    for email in (world.users.desk, world.users.nurse):
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(f"{server.base_url}/tasks")
        sign_in(page, email)
        pages.append(page)
    try:
        desk, nurse = pages
        desk.get_by_role("button", name="Next task").click()
        nurse.get_by_role("button", name="Next task").click()

        expect(desk.get_by_text("This task is yours now.")).to_be_visible()
        expect(nurse.get_by_text("This task is yours now.")).to_be_visible()
        desk_task = desk.url.rsplit("#", 1)[1]
        nurse_task = nurse.url.rsplit("#", 1)[1]
        assert desk_task != nurse_task
        expect(desk.locator(f"#{desk_task}")).to_contain_text("You claimed it")
        # Nurse Lee can take the urgent page from the queue itself.
        expect(nurse.get_by_role("heading", name="Urgent pages not taken")).to_be_visible()
        shot(nurse, "queue-next-task-clinician-desktop")

        desk.locator(f"#{desk_task}").get_by_role("button", name="Unclaim").click()
        expect(desk.get_by_text("Task given back to the queue.")).to_be_visible()
        expect(
            desk.locator(f"#{desk_task}").get_by_role("button", name="Claim", exact=True)
        ).to_be_visible()
    finally:
        for page in pages:
            page.context.close()
