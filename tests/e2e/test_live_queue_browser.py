"""The live queue in Chromium, on the real stack: a patient's missed call and reply, through
the signed Twilio webhooks and the Celery worker, appear on the open queue without a reload
(and in the tab's title), an urgent page on the clinician's; two people pressing Next task
at the same moment get two different tasks (PostgreSQL's row locks, not luck), and when
one task is left, one of them gets it and the other is told nothing is waiting."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from recovery.models import Practice, Role, Task, TaskStatus, User
from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, Live, shot, sign_in
from tests.integration.helpers import dial_form, post_sms, post_twilio, wait_for_text_to

pytestmark = pytest.mark.e2e

DIAL = "/webhooks/twilio/voice/dial-status"
BILLING_PATIENT = "+15125550155"
URGENT_PATIENT = "+15125550144"
SECOND_DESK = "desk2@valley.example"


def missed_call(live: Live, patient: str) -> None:
    form = dial_form(From=patient, Caller=patient, CallSid="CA" + patient[-4:] * 8)
    assert post_twilio(live.stack, DIAL, form).status_code == 200
    wait_for_text_to(live.twilio, patient, "sorry we missed your call")


def test_a_new_task_and_an_urgent_page_appear_without_a_reload(
    live: Live, live_world: scenario.Scenario, browser: Browser
) -> None:
    pages: list[Page] = []
    for email in (live_world.users.desk, live_world.users.nurse):
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.goto(f"{live.base_url}/tasks")
        sign_in(page, email)
        page.evaluate("window.__same_page = true")  # gone if the page reloads
        pages.append(page)
    desk, nurse = pages
    try:
        expect(desk).to_have_title(re.compile(r"^\(3\) Tasks"))
        urgent = nurse.get_by_role("heading", name="Urgent pages not taken").locator("xpath=..")
        expect(urgent.get_by_role("button", name="I'm taking this")).to_have_count(1)

        missed_call(live, BILLING_PATIENT)
        assert post_sms(live.stack, "BILLING", sender=BILLING_PATIENT).status_code == 200
        expect(desk.get_by_text("(512) 555-0155")).to_be_visible(timeout=15_000)
        expect(desk.locator(".queue .task")).to_have_count(4)
        expect(desk).to_have_title(re.compile(r"^\(4\) Tasks"))

        missed_call(live, URGENT_PATIENT)
        assert post_sms(live.stack, scenario.URGENT_WORDS, sender=URGENT_PATIENT).status_code == 200
        expect(urgent).to_contain_text("(512) 555-0144", timeout=15_000)
        expect(urgent.get_by_role("button", name="I'm taking this")).to_have_count(2)
        shot(nurse, "live-queue-urgent-page-desktop")
        for page in pages:
            assert page.evaluate("window.__same_page") is True
    finally:
        for page in pages:
            page.context.close()


NEXT = "document.querySelector('form[action$=\"/tasks/next\"]').requestSubmit()"


def test_next_task_pressed_at_the_same_moment_gives_two_people_two_tasks(
    live: Live, live_world: scenario.Scenario, browser: Browser
) -> None:
    with live.sessions.begin() as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        desk = session.scalars(select(User).where(User.email == live_world.users.desk)).one()
        session.add(
            User(
                email=SECOND_DESK,
                name="Sam Second",
                password_hash=desk.password_hash,
                role=Role.STAFF,
                practice_id=valley.id,
                active=True,
            )
        )
    pages: list[Page] = []
    for email in (live_world.users.desk, SECOND_DESK):
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.goto(f"{live.base_url}/tasks")
        sign_in(page, email)
        expect(page.get_by_role("button", name="Next task")).to_be_visible()
        pages.append(page)
    try:
        # Three tasks wait. Both forms are submitted together, milliseconds apart.
        for page in pages:
            page.evaluate(NEXT)
        for page in pages:
            expect(page.get_by_text("This task is yours now.")).to_be_visible()
        first = {page.url.rsplit("#", 1)[1] for page in pages}
        assert len(first) == 2, first

        # One task left: one of them gets it, the other hears that nothing is waiting.
        for page in pages:
            page.goto(f"{live.base_url}/tasks")  # the last answer's notice gone
        for page in pages:
            page.evaluate(NEXT)
        for page in pages:
            expect(
                page.get_by_text(re.compile("This task is yours now.|Nothing is waiting"))
            ).to_be_visible()
        got = [p for p in pages if p.get_by_text("This task is yours now.").count()]
        assert len(got) == 1, [p.url for p in pages]
    finally:
        for page in pages:
            page.context.close()

    with live.sessions() as session:
        claimed = session.execute(
            select(Task.id, Task.claimed_by).where(Task.status == TaskStatus.CLAIMED)
        ).all()
    assert len({task_id for task_id, _ in claimed}) == 3
    assert {name for _, name in claimed} == {"Dana Front", "Sam Second"}
