"""What a second walk through the product as new users (front desk, clinician, manager)
found: Calls opened on last week with today's calls missing, and the defects below."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import scenario
from tests.e2e.conftest import PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e

# The scenario's morning at Valley Family: billing, refill, unclear and urgent callers.
VALLEY_CALLS = 4


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_calls_opens_on_a_range_that_holds_todays_calls(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/tasks")
    sign_in(page, world.users.desk)
    page.get_by_role("link", name="Calls", exact=True).click()

    expect(page.get_by_role("heading", name="Missed calls")).to_be_visible()
    expect(page.locator(".page-head")).to_contain_text(f"{VALLEY_CALLS} calls")
    expect(page.locator(".episode-table tbody tr")).to_have_count(VALLEY_CALLS)
    expect(page.locator(".episode-table")).to_contain_text("***-***-0199")  # 6 minutes ago
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"calls-{device}")
