"""A patient who writes again after their conversation ended: one thread in the browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from recovery.config import TEMPLATES_DIR
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from tests.conftest import PHI_KEY
from tests.e2e import scenario
from tests.e2e.conftest import PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e

LATER_WORDS = "thanks! one more thing, is parking free"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_text_after_the_end_continues_the_thread(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/tasks")
    sign_in(page, world.users.desk)
    page.locator(f"#task-{world.billing_task_id}").get_by_role("button", name="Complete").click()
    expect(page.get_by_text("Task completed.")).to_be_visible()
    cipher, now = PhiCipher([PHI_KEY]), utcnow()
    with session_scope(server.sessions) as session:
        scenario.patient_writes(
            session,
            SmsTemplates(TEMPLATES_DIR / "sms"),
            cipher,
            caller=scenario.BILLING_CALLER,
            line=scenario.LINE,
            text=LATER_WORDS,
            at=now,
        )

    page.goto(f"{server.base_url}/episodes/{world.billing_episode_id}")

    expect(page.locator(".chips")).to_contain_text("Resolved")
    expect(page.locator(".thread-note")).to_contain_text("the patient wrote again")
    expect(page.locator(".timeline")).to_contain_text(LATER_WORDS)
    shot(page, f"conversation-thread-{device}")
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.locator(".thread-note a").click()

    expect(page.locator(".chips")).to_contain_text("Open")
    expect(page.locator(".timeline")).to_contain_text("BILLING")
    expect(page.locator(".timeline")).to_contain_text(LATER_WORDS)
