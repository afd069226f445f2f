"""A manager's and the front desk's day in Chromium, on the real stack (PostgreSQL, Redis,
gunicorn, the Celery worker and beat, the twilio client against the loopback double):

- the manager reorders, adds to and removes from the on-call roster; the next patient who
  writes URGENT (through the signed Twilio webhooks) pages the new first person, whose
  phone the double holds the page for; each change is in the audit log;
- the front desk hands a task to a colleague on another queue and takes back a Complete
  with Undo, both audited;
- the manager invites a clinician, who sets a password from the link, signs in and sees
  the queues a clinician works (the care team's and the front desk's, with urgent pages).
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from recovery.models import AuditEvent, Episode, Task, TaskQueue, TaskStatus, User
from recovery.models import Page as PageRow
from tests.e2e import scenario
from tests.e2e.conftest import PHONE, Live, shot
from tests.e2e.conftest import sign_in as sign_in_password
from tests.e2e.test_admin_browser import MANAGER, sign_in
from tests.integration.helpers import dial_form, post_sms, post_twilio, wait_for_text_to

pytestmark = pytest.mark.e2e

NEW_PATIENT = "+15125550155"
DR_NEW = "+15125550113"


def audited(live: Live, action: str) -> list[AuditEvent]:
    with live.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def user_id(live: Live, email: str) -> int:
    with live.sessions() as session:
        return session.scalars(select(User.id).where(User.email == email)).one()


def test_a_roster_edited_in_the_browser_pages_its_new_first_person(
    live: Live, live_world: scenario.Scenario, desktop: Page, live_rosters: None
) -> None:
    scenario.add_manager(live.sessions, live_world.users, MANAGER)
    page = desktop
    page.goto(live.base_url + "/admin/roster")
    sign_in(page, MANAGER)
    expect(page.get_by_role("heading", name="On-call roster")).to_be_visible()
    names = page.locator(".roster-row:not(.roster-new) input[name=name]")
    expect(names).to_have_count(2)
    expect(names.nth(0)).to_have_value("Dr. Rivera")

    # Add Dr. New, remove Nurse Lee, move Dr. New to the top: three saves.
    page.get_by_label("Add a person: name").fill("Dr. New")
    page.locator(".roster-new input[name=phone]").fill("+1 512 555 0113")
    page.get_by_role("button", name="Save roster").click()
    expect(page.locator(".flash-ok")).to_contain_text("Roster saved")
    page.get_by_role("button", name="Remove Nurse Lee").click()
    expect(page.locator(".flash-ok")).to_contain_text("Roster saved")
    page.get_by_role("button", name="Move Dr. New up").click()
    expect(page.locator(".flash-ok")).to_contain_text("Roster saved")
    expect(names).to_have_count(2)
    expect(names.nth(0)).to_have_value("Dr. New")
    expect(names.nth(1)).to_have_value("Dr. Rivera")
    shot(page, "live-roster-edited-desktop")
    edits = audited(live, "edit_roster")
    assert len(edits) == 3
    assert {e.user_id for e in edits} == {user_id(live, MANAGER)}

    # A new patient misses the clinic, gets the text, and answers with an emergency.
    form = dial_form(From=NEW_PATIENT, Caller=NEW_PATIENT, CallSid="CA" + "5" * 32)
    assert post_twilio(live.stack, "/webhooks/twilio/voice/dial-status", form).status_code == 200
    wait_for_text_to(live.twilio, NEW_PATIENT, "sorry we missed your call")
    assert post_sms(live.stack, scenario.URGENT_WORDS, sender=NEW_PATIENT).status_code == 200

    with live.sessions() as session:
        episode = session.scalars(select(Episode).where(Episode.caller == NEW_PATIENT)).one()
        deadline = time.monotonic() + 15
        while (
            found := session.scalars(
                select(PageRow).where(PageRow.episode_id == episode.id)
            ).first()
        ) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert found is not None
        code = found.code
        assert [p["name"] for p in found.roster] == ["Dr. New", "Dr. Rivera"]
    body = wait_for_text_to(live.twilio, DR_NEW, code)
    assert "URGENT" in body.upper()
    paged = [m.form["To"] for m in live.twilio.accepted_messages() if code in m.form["Body"]]
    assert paged == [DR_NEW]  # the new first only, not the removed Nurse Lee


def test_the_front_desk_hands_a_task_over_and_undoes_a_complete_both_audited(
    live: Live, live_world: scenario.Scenario, desktop: Page
) -> None:
    page = desktop
    page.goto(f"{live.base_url}/tasks")
    sign_in_password(page, live_world.users.desk)
    billing = live_world.billing_task_id
    row = page.locator(f"#task-{billing}")
    row.locator("summary", has_text="Hand over").click()
    row.get_by_label(f"Queue for task {billing}").select_option("front_desk")
    row.get_by_label(f"Person for task {billing}").select_option(label="Nurse Lee")
    row.get_by_role("button", name="Hand over").click()
    expect(page.get_by_text("Task handed over to Front desk, for Nurse Lee.")).to_be_visible()
    row = page.locator(f"#task-{billing}")
    expect(row).to_contain_text("For Nurse Lee")
    expect(row.locator(".badge-queue")).to_have_text("Front desk")

    unclear = live_world.unclear_task_id
    page.locator(f"#task-{unclear}").get_by_role("button", name="Complete").click()
    expect(page.get_by_text("Task completed.")).to_be_visible()
    expect(page.locator(f"#task-{unclear}")).to_have_count(0)
    page.locator(".undo-bar").get_by_role("button", name="Undo").click()
    expect(page.get_by_text("Undone: the task is back on the queue as it was.")).to_be_visible()
    expect(page.locator(f"#task-{unclear}")).to_be_visible()
    shot(page, "live-handover-undo-desktop")

    desk, nurse = user_id(live, live_world.users.desk), user_id(live, live_world.users.nurse)
    with live.sessions() as session:
        handed = session.get(Task, billing)
        assert handed is not None
        assert handed.queue is TaskQueue.FRONT_DESK and handed.assigned_to == nurse
        back = session.get(Task, unclear)
        assert back is not None and back.status is TaskStatus.OPEN
        episodes = {t.id: t.episode_id for t in session.scalars(select(Task))}
    [reassigned] = audited(live, "reassign_task")
    [completed] = audited(live, "complete_task")
    [undone] = audited(live, "undo_complete_task")
    assert reassigned.user_id == completed.user_id == undone.user_id == desk
    assert reassigned.episode_id == episodes[billing]
    assert completed.episode_id == undone.episode_id == episodes[unclear]
    assert completed.id < undone.id


def test_an_invited_clinician_sets_a_password_signs_in_and_sees_their_queues(
    live: Live, live_world: scenario.Scenario, desktop: Page, browser: Browser
) -> None:
    scenario.add_manager(live.sessions, live_world.users, MANAGER)
    desktop.goto(live.base_url + "/admin/users")
    sign_in(desktop, MANAGER)
    desktop.get_by_label("Name").fill("Sam New")
    desktop.get_by_label("Email").fill("sam@valley.example")
    desktop.locator(".admin-grid select[name=role]").select_option("clinician")
    desktop.get_by_role("button", name="Invite").click()
    expect(desktop.get_by_role("heading", name="sam@valley.example is invited")).to_be_visible()
    link = desktop.locator("#invite-link").inner_text()
    assert link.startswith(live.base_url + "/set-password/"), link
    [invite] = audited(live, "invite_user")
    assert invite.user_id == user_id(live, MANAGER)

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    try:
        phone = context.new_page()
        phone.goto(link)
        phone.get_by_label("New password (10 characters or more)").fill("a fine new pass")
        phone.get_by_label("The same again").fill("a fine new pass")
        phone.get_by_role("button", name="Set password").click()
        expect(phone.get_by_text("Your password is set")).to_be_visible()
        phone.get_by_label("Email").fill("sam@valley.example")
        phone.get_by_label("Password").fill("a fine new pass")
        phone.get_by_role("button", name="Sign in").click()

        expect(phone).to_have_url(live.base_url + "/tasks")
        expect(phone.get_by_role("banner")).to_contain_text("Sam New")
        # A clinician works the care team's and the front desk's queues, and urgent pages.
        expect(phone.locator(f"#task-{live_world.refill_task_id}")).to_contain_text(
            "Prescription refill"
        )
        expect(phone.locator(f"#task-{live_world.unclear_task_id}")).to_be_visible()
        expect(phone.locator(f"#task-{live_world.billing_task_id}")).to_have_count(0)
        expect(phone.get_by_role("heading", name="Urgent pages not taken")).to_be_visible()
        tabs = phone.get_by_role("navigation", name="Queues")
        expect(tabs).to_contain_text("Care team")
        expect(tabs).not_to_contain_text("Billing")
        shot(phone, "live-invited-clinician-queue-phone")
    finally:
        context.close()
