"""Undo in a browser: a mis-clicked Complete and a mis-clicked Mark booked, taken back
from the button that appears right after them."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import scenario
from tests.e2e.conftest import PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_undo_of_complete_puts_the_task_back_on_the_queue(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/tasks")
    sign_in(page, world.users.desk)
    task = page.locator(f"#task-{world.billing_task_id}")
    task.get_by_label(f"Note for task {world.billing_task_id}").fill("left a voicemail")
    task.get_by_role("button", name="Complete").click()

    expect(page.get_by_text("Task completed.")).to_be_visible()
    expect(page.locator(f"#task-{world.billing_task_id}")).to_have_count(0)
    bar = page.locator(".undo-bar")
    expect(bar).to_contain_text("You completed Billing question")
    expect(bar).to_contain_text("until")
    shot(page, f"undo-complete-offer-{device}")
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    bar.get_by_role("button", name="Undo").click()

    expect(page.get_by_text("Undone: the task is back on the queue as it was.")).to_be_visible()
    expect(page.locator(f"#task-{world.billing_task_id}")).to_contain_text("Billing question")
    expect(page.locator(".undo-bar")).to_have_count(0)
    expect(page.locator(".done-row")).to_have_count(0)
    shot(page, f"undo-complete-done-{device}")


def test_undo_of_mark_booked_reopens_the_conversation(
    server: Server, world: scenario.Scenario, desktop: Page
) -> None:
    page = desktop
    page.goto(f"{server.base_url}/episodes/{world.billing_episode_id}")
    sign_in(page, world.users.desk)
    page.get_by_role("button", name="Mark booked").click()

    expect(page.get_by_text("Marked booked.")).to_be_visible()
    expect(page.locator(".chips")).to_contain_text("Booked")
    expect(page.locator(".undo-bar")).to_contain_text("You marked this call booked")
    shot(page, "undo-booked-offer-desktop")

    page.locator(".undo-bar").get_by_role("button", name="Undo").click()

    expect(page.get_by_text("Undone: the call is no longer marked booked.")).to_be_visible()
    expect(page.locator(".chips")).to_contain_text("Open")
    expect(page.get_by_role("button", name="Mark booked")).to_be_visible()
    expect(page.locator(".undo-bar")).to_have_count(0)
