"""Handing work over in a browser: a task given to another queue and person shows on their
list, and a manager sees the SLA banner when tasks breach, with the ones past twice their
SLA on their own list."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from recovery.config import TEMPLATES_DIR
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import Task
from recovery.services import breaches
from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, PHONE, Server, shot
from tests.e2e.conftest import sign_in as sign_in_password
from tests.e2e.test_admin_browser import MANAGER, manager, sign_in  # noqa: F401 - a fixture

pytestmark = pytest.mark.e2e


def test_a_task_handed_to_a_colleague_and_another_queue_waits_on_their_list(
    server: Server, world: scenario.Scenario, browser: Browser
) -> None:
    contexts = [browser.new_context(viewport=DESKTOP) for _ in range(2)]
    try:
        desk, nurse = (context.new_page() for context in contexts)
        desk.goto(f"{server.base_url}/tasks")
        sign_in_password(desk, world.users.desk)
        row = desk.locator(f"#task-{world.billing_task_id}")
        row.locator("summary", has_text="Hand over").click()
        row.get_by_label(f"Queue for task {world.billing_task_id}").select_option("front_desk")
        row.get_by_label(f"Person for task {world.billing_task_id}").select_option(
            label="Nurse Lee"
        )
        shot(desk, "handover-form-desktop")
        row.get_by_role("button", name="Hand over").click()

        expect(desk.get_by_text("Task handed over to Front desk, for Nurse Lee.")).to_be_visible()
        row = desk.locator(f"#task-{world.billing_task_id}")
        expect(row).to_contain_text("For Nurse Lee")
        expect(row.locator(".badge-queue")).to_have_text("Front desk")

        # Next task keeps it for her: the desk's Next task takes everything else, not it.
        for _ in range(2):
            desk.get_by_role("button", name="Next task").click()
            expect(desk.get_by_text("This task is yours now.")).to_be_visible()
            assert not desk.url.endswith(f"#task-{world.billing_task_id}")
        desk.get_by_role("button", name="Next task").click()
        expect(desk.get_by_text("Nothing is waiting")).to_be_visible()

        nurse.goto(f"{server.base_url}/tasks?mine=1")
        sign_in_password(nurse, world.users.nurse)
        mine = nurse.locator(".queue .task")
        expect(mine).to_have_count(1)
        expect(mine.first).to_contain_text("For you")
        expect(mine.first).to_contain_text("Billing question")
        shot(nurse, "handover-mine-desktop")
        nurse.get_by_role("button", name="Next task").click()
        expect(nurse.get_by_text("This task is yours now.")).to_be_visible()
        assert nurse.url.endswith(f"#task-{world.billing_task_id}")
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_manager_sees_the_sla_banner_and_twice_late_work_on_their_list(
    server: Server,
    world: scenario.Scenario,
    manager: str,  # noqa: F811 - the fixture imported above
    device: str,
    request: pytest.FixtureRequest,
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/tasks")
    sign_in(page, manager)
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    expect(page.locator(".sla-banner")).to_have_count(0)
    templates = SmsTemplates(TEMPLATES_DIR / "sms")
    with session_scope(server.sessions) as session:
        swept = breaches.sweep(session, templates, now=utcnow(), public_base_url=server.base_url)
        assert swept.breached == [world.unclear_task_id]

    # The live poll brings the banner in, without a reload.
    banner = page.locator(".sla-banner")
    expect(banner).to_contain_text("1 task past its due time.", timeout=15_000)
    expect(banner).not_to_contain_text("on your list")

    with session_scope(server.sessions) as session:
        task = session.get(Task, world.unclear_task_id)
        assert task is not None
        later = breaches.twice_sla_at(task)
        swept = breaches.sweep(session, templates, now=later, public_base_url=server.base_url)
        assert swept.escalated == [world.unclear_task_id]

    expect(banner).to_contain_text("1 past twice the SLA is on your list.", timeout=15_000)
    row = page.locator(f"#task-{world.unclear_task_id}")
    expect(row).to_contain_text("Twice the SLA")
    expect(row).to_contain_text("For you")
    shot(page, f"sla-banner-manager-{device}")
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    banner.get_by_role("link", name="Show overdue only").click()
    expect(page.locator(".queue .task")).to_have_count(1)
