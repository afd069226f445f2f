"""In Chromium: a manager clicks the darkest square of the report's heat map and a column
of its time-to-first-text chart, and each time lands on the list of exactly those calls."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import scenario
from tests.e2e.conftest import Server, shot
from tests.e2e.test_admin_browser import MANAGER, sign_in
from tests.e2e.test_reports_browser import month  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e


def test_a_square_and_a_column_open_their_calls(
    server: Server,
    world: scenario.Scenario,
    month: int,  # noqa: F811
    desktop: Page,
) -> None:
    desktop.goto(server.base_url + "/login")
    sign_in(desktop, MANAGER)
    desktop.goto(server.base_url + "/reports?range=last_30_days")

    heat = desktop.locator("#chart-heat-title").locator("xpath=..")
    darkest = heat.locator("a:has(rect.heat-4)").first
    tip = darkest.locator("title").text_content() or ""  # "Fri 14:00-14:59: 4 unrecovered"
    found = re.fullmatch(r"(\w{3}) (\d\d):00-\d\d:59: (\d+) unrecovered", tip)
    assert found is not None, tip
    day, hour, counted = found.group(1), int(found.group(2)), int(found.group(3))
    darkest.click()
    expect(desktop).to_have_url(
        re.compile(rf"weekday={day.lower()}.*hour={hour}|hour={hour}.*weekday={day.lower()}")
    )
    expect(desktop.get_by_role("status")).to_contain_text(f"{hour:02d}:00–{hour:02d}:59")
    expect(desktop.locator(".episode-table tbody tr")).to_have_count(counted)
    shot(desktop, "report-square-calls")

    desktop.go_back()
    column = desktop.locator("#chart-ttft-title").locator("xpath=..").locator("a").nth(1)
    label = column.locator("title").text_content() or ""  # "0.5–1 s: 79"
    counted = int(label.rsplit(": ", 1)[1])
    column.click()
    expect(desktop).to_have_url(re.compile(r"ttft=500-1000"))
    expect(desktop.get_by_role("status")).to_contain_text("first text in 0.5–1 s")
    expect(desktop.locator(".page-head .muted")).to_contain_text(f"{counted} call")
