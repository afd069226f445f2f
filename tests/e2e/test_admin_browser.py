"""A manager does their administration in the browser: invites a user (who then sets a
password and signs in), and changes the on-call order; the next urgent page follows it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recovery.config import TEMPLATES_DIR
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, Practice
from recovery.models import Page as PageRow
from tests.conftest import PHI_KEY
from tests.e2e import scenario
from tests.e2e.conftest import Server, shot
from tests.e2e.conftest import sign_in as sign_in_password

pytestmark = pytest.mark.e2e

MANAGER = "boss@valley.example"


@pytest.fixture
def manager(server: Server, world: scenario.Scenario) -> str:
    scenario.add_manager(server.sessions, world.users, MANAGER)
    return MANAGER


def sign_in(page: Page, email: str, later: int = 0) -> None:
    """Password, then the authenticator's code (managers have a second factor). `later`
    steps ahead: a code is accepted once, and a second sign-in within 30 s needs the next."""
    import pyotp

    sign_in_password(page, email)
    if email == MANAGER:
        totp = pyotp.TOTP(scenario.TOTP_SECRET)
        page.get_by_label("Code").fill(totp.at(utcnow() + timedelta(seconds=30 * later)))
        page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def restore_roster(server: Server) -> Iterator[None]:
    """The practices stay loaded across tests: put the file's roster back afterwards."""
    yield
    from recovery.schemas.practices import read_practices
    from recovery.services.practices import load_practices
    from tests.conftest import PRACTICES_FILE

    with session_scope(server.sessions) as session:
        for practice in session.scalars(select(Practice)):
            practice.roster_edited_at = None
        session.flush()
        load_practices(session, read_practices(PRACTICES_FILE))


def test_manager_invites_a_user_who_sets_a_password_and_signs_in(
    server: Server, manager: str, desktop: Page, phone: Page
) -> None:
    desktop.goto(server.base_url + "/admin/users")
    sign_in(desktop, manager)
    expect(desktop.get_by_role("heading", name="Users")).to_be_visible()
    desktop.get_by_label("Name").fill("Sam New")
    desktop.get_by_label("Email").fill("sam@valley.example")
    desktop.locator(".admin-grid select[name=role]").select_option("clinician")
    desktop.get_by_role("button", name="Invite").click()

    expect(desktop.get_by_role("heading", name="sam@valley.example is invited")).to_be_visible()
    link = desktop.locator("#invite-link").inner_text()
    expect(desktop.locator(".user-list")).to_contain_text("Sam New")
    shot(desktop, "admin-users-desktop")

    # The app's links use PUBLIC_BASE_URL, which is this server.
    path = re.sub(r"^https?://[^/]+", "", link)
    phone.goto(server.base_url + path)
    shot(phone, "set-password-phone")
    phone.get_by_label("New password (10 characters or more)").fill("a fine new pass")
    phone.get_by_label("The same again").fill("a fine new pass")
    phone.get_by_role("button", name="Set password").click()
    expect(phone.get_by_text("Your password is set")).to_be_visible()
    expect(phone.get_by_label("Email")).to_have_value("sam@valley.example")  # filled in
    phone.get_by_label("Password").fill("a fine new pass")
    phone.get_by_role("button", name="Sign in").click()
    expect(phone).to_have_url(server.base_url + "/tasks")


def test_manager_reorders_the_roster_and_the_next_page_goes_to_the_new_first(
    server: Server, manager: str, desktop: Page, phone: Page, restore_roster: None
) -> None:
    desktop.goto(server.base_url + "/admin/roster")
    sign_in(desktop, manager)
    expect(desktop.get_by_role("heading", name="On-call roster")).to_be_visible()
    desktop.get_by_role("button", name="Move Dr. Rivera down").click()
    expect(desktop.locator(".flash-ok")).to_contain_text("Roster saved")
    desktop.get_by_label("Add a person: name").fill("Dr. New")
    desktop.locator(".roster-new input[name=phone]").fill("+1 512 555 0113")
    desktop.get_by_role("button", name="Save roster").click()
    expect(desktop.locator(".roster-row").nth(2)).to_be_visible()
    names = desktop.locator(".roster input[name=name]")
    expect(names.nth(0)).to_have_value("Nurse Lee")
    expect(names.nth(1)).to_have_value("Dr. Rivera")
    expect(names.nth(2)).to_have_value("Dr. New")
    shot(desktop, "admin-roster-desktop")

    phone.goto(server.base_url + "/admin/roster")
    sign_in(phone, manager, later=1)
    shot(phone, "admin-roster-phone")

    # A new urgent reply now: its first page goes to Nurse Lee, the new first.
    with session_scope(server.sessions) as session:
        scenario.missed_call_and_reply(
            session,
            SmsTemplates(TEMPLATES_DIR / "sms"),
            PhiCipher([PHI_KEY]),
            caller="+15125550155",
            line=scenario.LINE,
            words=["URGENT"],
            at=utcnow(),
        )
    with server.sessions() as session:
        page = session.scalars(select(PageRow).order_by(PageRow.id.desc())).first()
        assert page is not None
        first = session.scalars(
            select(Message).where(Message.page_id == page.id, Message.kind == "page")
        ).first()
        assert first is not None and first.to_number == "+15125550112"
        assert [p["name"] for p in page.roster] == ["Nurse Lee", "Dr. Rivera", "Dr. New"]


def test_front_desk_sees_no_administration(
    server: Server, world: scenario.Scenario, desktop: Page
) -> None:
    desktop.goto(server.base_url + "/admin/users")
    sign_in(desktop, world.users.desk)
    expect(desktop.get_by_role("heading", name="Not allowed")).to_be_visible()
    # Looking is refused, and the page says so (it said "can change this" to a desk that
    # had changed nothing).
    expect(
        desktop.get_by_text("Administration (users, the on-call roster, saved replies)")
    ).to_be_visible()
    expect(desktop.get_by_role("link", name="Admin")).to_have_count(0)


def test_manager_runs_a_fire_drill_and_sees_who_answered_and_how_fast(
    server: Server, manager: str, desktop: Page, phone: Page
) -> None:
    from recovery.models import Drill
    from recovery.services import drills

    desktop.goto(server.base_url + "/admin/roster")
    sign_in(desktop, manager)
    expect(desktop.get_by_role("heading", name="Fire drill")).to_be_visible()
    desktop.get_by_role("button", name="Run a fire drill").click()

    expect(desktop.locator(".flash-ok")).to_contain_text("texted to 2 on call")
    expect(desktop.locator(".badge-test")).to_have_text("TEST")
    expect(desktop.locator("#drill-answered")).to_have_text("0 of 2 answered.")
    expect(desktop.locator("#drill-row-2")).to_contain_text("Waiting")
    with server.sessions() as session:
        drill = session.scalars(select(Drill).order_by(Drill.id.desc())).first()
        assert drill is not None
    # Nurse Lee answers ACK T... 37 seconds in (as the SMS webhook's worker would).
    with session_scope(server.sessions) as session:
        practice = session.get(Practice, drill.practice_id)
        assert practice is not None
        drills.answer(
            session,
            SmsTemplates(TEMPLATES_DIR / "sms"),
            practice,
            from_number="+15125550112",
            code=drill.code,
            now=drill.started_at + timedelta(seconds=37),
        )

    desktop.reload()
    expect(desktop.locator("#drill-answered")).to_have_text("1 of 2 answered.")
    expect(desktop.locator("#drill-row-2")).to_contain_text("Nurse Lee")
    expect(desktop.locator("#drill-row-2")).to_contain_text("37 s")
    expect(desktop.locator("#drill-row-1")).to_contain_text("Waiting")
    shot(desktop, "admin-drill-desktop")

    phone.goto(server.base_url + "/admin/roster")
    sign_in(phone, manager, later=1)
    expect(phone.get_by_role("link", name=f"Drill {drill.code}")).to_be_visible()
    shot(phone, "admin-roster-drills-phone")
    phone.get_by_role("link", name=f"Drill {drill.code}").click()
    expect(phone.locator("#drill-row-2")).to_contain_text("37 s")
    shot(phone, "admin-drill-phone")
