"""A manager on Monday morning, in Chromium: signs in, lands on the recovery report, reads
its pictures, follows a figure to the calls behind it, filters them, opens one, and
downloads the CSV; on a desktop and on a phone."""

from __future__ import annotations

import csv
import random
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recovery.db import utcnow
from recovery.models import Episode, EpisodeOutcome, EpisodeStatus, Practice
from tests.e2e import scenario
from tests.e2e.conftest import Server, shot
from tests.e2e.test_admin_browser import MANAGER, sign_in

pytestmark = pytest.mark.e2e

# What became of the month's other calls, roughly as a practice sees it.
OUTCOMES = [
    (EpisodeOutcome.BOOKED, "book", 30),
    (EpisodeOutcome.RESOLVED, "billing", 20),
    (EpisodeOutcome.UNRECOVERED, None, 25),
    (EpisodeOutcome.OPTED_OUT, None, 3),
    (EpisodeOutcome.ESCALATED, "urgent", 2),
]
HISTORY = 160


@pytest.fixture
def month(server: Server, world: scenario.Scenario) -> int:
    """A month of missed calls at Valley Family before this morning's, so the charts have
    a shape: 160 episodes over the last 30 days, at clinic hours, seeded."""
    scenario.add_manager(server.sessions, world.users, MANAGER)
    rng = random.Random(12)
    now = utcnow()
    with server.sessions.begin() as session:
        valley = session.scalars(select(Practice.id).where(Practice.slug == "valley-family")).one()
        for n in range(HISTORY):
            outcome, intent, _ = rng.choices(OUTCOMES, weights=[w for *_, w in OUTCOMES])[0]
            # Clinic hours in Chicago (UTC-6 in November): 14:00-23:00 UTC.
            day = (now - timedelta(days=rng.randint(1, 28))).date()
            opened = datetime.combine(day, time(14), UTC) + timedelta(minutes=rng.randint(0, 540))
            ttft = int(rng.lognormvariate(6.6, 0.5))
            session.add(
                Episode(
                    practice_id=valley,
                    caller=f"+1512555{3000 + n:04d}",
                    status=EpisodeStatus.CLOSED,
                    joinable=False,
                    opened_at=opened,
                    last_call_at=opened,
                    call_count=1,
                    time_to_first_text_ms=ttft,
                    first_text_accepted_at=opened + timedelta(milliseconds=ttft),
                    intent=intent,
                    outcome=outcome,
                    outcome_at=opened + timedelta(hours=2),
                )
            )
    return HISTORY + 4  # and this morning's four at Valley Family


def test_a_manager_reads_the_report_and_follows_a_figure_to_its_calls(
    server: Server, world: scenario.Scenario, month: int, desktop: Page
) -> None:
    desktop.goto(server.base_url + "/")
    desktop.get_by_role("link", name="Sign in").first.click()
    sign_in(desktop, MANAGER)

    expect(desktop).to_have_url(re.compile(r"/reports$"))
    expect(desktop.get_by_role("heading", name="Recovery report")).to_be_visible()
    desktop.get_by_role("link", name="Last 30 days").click()
    expect(desktop.get_by_role("link", name="Last 30 days")).to_have_attribute(
        "aria-current", "true"
    )
    missed = desktop.locator(
        ".headline", has=desktop.get_by_text("Missed calls", exact=True)
    ).locator(".headline-value")
    expect(missed).to_have_text(str(month))
    charts = desktop.get_by_role("img")
    expect(charts).to_have_count(4)
    for name in (
        "Missed calls and recovery rate per day",
        "Outcomes of the missed calls",
        "Unrecovered calls by weekday and hour",
        "Time to first text",
    ):
        chart = desktop.get_by_role("img", name=re.compile(re.escape(name)))
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, (name, box)
    shot(desktop, "report-desktop")

    # The numbers behind a picture, for whoever cannot see it.
    desktop.locator("figure", has_text="Outcomes").get_by_text("The numbers").click()
    unrecovered_row = desktop.locator("figure", has_text="Outcomes").get_by_role(
        "row", name=re.compile("Unrecovered")
    )
    expect(unrecovered_row).to_be_visible()
    unrecovered = int(unrecovered_row.get_by_role("cell").inner_text())
    assert unrecovered > 0

    # A bar is a link to its calls.
    desktop.locator("svg#chart-outcomes, svg[aria-labelledby^='chart-outcomes']").locator(
        "a", has=desktop.locator("title", has_text="Unrecovered")
    ).click()
    expect(desktop.get_by_role("heading", name="Missed calls")).to_be_visible()
    expect(desktop.locator(".episode-table tbody tr")).to_have_count(min(50, unrecovered))
    expect(desktop.get_by_label("Outcome")).to_have_value("unrecovered")
    shot(desktop, "episodes-desktop")

    # Filter to one caller, open the conversation.
    desktop.get_by_label("Outcome").select_option("")
    desktop.get_by_label("Caller's last 4 digits").fill("0188")
    desktop.get_by_role("button", name="Show").click()
    rows = desktop.locator(".episode-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("***-***-0188")
    expect(rows.first).to_contain_text("Billing")
    rows.first.get_by_role("link").click()
    expect(desktop).to_have_url(re.compile(rf"/episodes/{world.billing_episode_id}$"))


def test_the_csv_downloads_from_the_report(
    server: Server, world: scenario.Scenario, month: int, desktop: Page, tmp_path: Path
) -> None:
    desktop.goto(server.base_url + "/reports?range=last_30_days")
    sign_in(desktop, MANAGER)
    expect(desktop.get_by_role("heading", name="Recovery report")).to_be_visible()

    with desktop.expect_download() as download:
        desktop.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)

    assert saved.name.startswith("recovery-valley-family-") and saved.suffix == ".csv"
    with saved.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == month
    assert all(re.fullmatch(r"\*\*\*-\*\*\*-\d{4}", r["caller"]) for r in rows)
    assert {r["outcome"] for r in rows} >= {"booked", "unrecovered", "open"}


def test_the_report_and_the_list_on_a_phone(
    server: Server, world: scenario.Scenario, month: int, phone: Page
) -> None:
    phone.goto(server.base_url + "/reports?range=last_30_days")
    sign_in(phone, MANAGER)

    expect(phone.get_by_role("heading", name="Recovery report")).to_be_visible()
    expect(phone.get_by_role("img")).to_have_count(4)
    # Nothing wider than the screen but the two charts that scroll sideways in their box.
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    shot(phone, "report-phone")

    phone.get_by_role("link", name="Calls", exact=True).click()
    expect(phone.get_by_role("heading", name="Missed calls")).to_be_visible()
    first = phone.locator(".episode-table tbody tr").first
    expect(first).to_be_visible()
    box = first.bounding_box()
    assert box is not None and box["width"] <= 390
    assert phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    shot(phone, "episodes-phone")
