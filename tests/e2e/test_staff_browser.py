"""A clinician takes an urgent page from their phone; the front desk works the queue."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recovery.models import AuditEvent, Episode, EpisodeOutcome, PageStatus, Task, TaskStatus
from recovery.models import Page as PageRow
from tests.e2e import scenario
from tests.e2e.conftest import PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e


def test_clinician_opens_the_page_link_signs_in_and_takes_the_page(
    server: Server, world: scenario.Scenario, phone: Page
) -> None:
    phone.goto(f"{server.base_url}/p/{world.page_code}")

    assert "/login?next=" in phone.url
    shot(phone, "login-phone")
    sign_in(phone, world.users.nurse)

    expect(phone).to_have_url(f"{server.base_url}/p/{world.page_code}")
    expect(phone.get_by_role("heading", name="Not taken yet")).to_be_visible()
    expect(phone.get_by_text(scenario.URGENT_WORDS)).to_be_visible()
    expect(phone.get_by_text("(512) 555-0199")).to_be_visible()
    shot(phone, "page-before-ack-phone")

    phone.get_by_role("button", name="I'm taking this").click()

    expect(
        phone.get_by_role("heading", name=re.compile("Acknowledged by Nurse Lee at"))
    ).to_be_visible()
    expect(phone.get_by_role("button", name="I'm taking this")).to_have_count(0)
    shot(phone, "page-after-ack-phone")
    with server.sessions() as session:
        page = session.scalars(select(PageRow).where(PageRow.code == world.page_code)).one()
        assert page.status is PageStatus.ACKNOWLEDGED and page.acknowledged_by == "Nurse Lee"
        episode = session.get(Episode, page.episode_id)
        assert episode is not None and episode.outcome is EpisodeOutcome.ESCALATED


def test_front_desk_claims_and_completes_a_task_with_a_note(
    server: Server, world: scenario.Scenario, desktop: Page
) -> None:
    desktop.goto(f"{server.base_url}/tasks")
    sign_in(desktop, world.users.desk)

    task = desktop.locator(f"#task-{world.billing_task_id}")
    expect(task).to_contain_text("Billing question")
    expect(task).to_contain_text("(512) 555-0188")
    shot(desktop, "tasks-desktop")

    task.get_by_role("button", name="Claim", exact=True).click()

    expect(desktop.get_by_text("Task claimed: it is yours.")).to_be_visible()
    task = desktop.locator(f"#task-{world.billing_task_id}")
    expect(task).to_contain_text("You claimed it")
    expect(task.get_by_role("button", name="Claim", exact=True)).to_have_count(0)

    task.get_by_placeholder("Note (optional)").fill("Explained the copay; no balance due.")
    task.get_by_role("button", name="Complete").click()

    expect(desktop.get_by_text("Task completed.")).to_be_visible()
    expect(desktop.locator(f"#task-{world.billing_task_id}")).to_have_count(0)
    done = desktop.locator(".done")
    expect(done).to_contain_text("Explained the copay; no balance due.")
    expect(done).to_contain_text("by Dana Front")
    shot(desktop, "tasks-after-complete-desktop")
    with server.sessions() as session:
        row = session.get(Task, world.billing_task_id)
        assert row is not None and row.status is TaskStatus.DONE
        episode = session.get(Episode, row.episode_id)
        assert episode is not None and episode.outcome is EpisodeOutcome.RESOLVED
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert {"login", "view_tasks", "claim_task", "complete_task"} <= set(actions)


def test_the_queue_filter_and_the_timeline_on_a_phone(
    server: Server, world: scenario.Scenario, phone: Page
) -> None:
    phone.goto(f"{server.base_url}/tasks?queue=care_team")
    sign_in(phone, world.users.desk)

    expect(phone.get_by_role("link", name="Care team")).to_have_attribute("aria-current", "page")
    expect(phone.locator(f"#task-{world.billing_task_id}")).to_have_count(0)
    expect(phone.locator(f"#task-{world.refill_task_id}")).to_contain_text("Prescription refill")
    shot(phone, "tasks-care-team-phone")

    phone.goto(f"{server.base_url}/tasks")
    shot(phone, "tasks-phone")
    phone.goto(f"{server.base_url}/episodes/{world.urgent_episode_id}")
    expect(phone.get_by_text(scenario.URGENT_WORDS)).to_be_visible()
    expect(phone.get_by_text("is active and not taken yet")).to_be_visible()
    shot(phone, "episode-urgent-phone")
    # The page must not be wider than the phone: nothing to scroll sideways.
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
