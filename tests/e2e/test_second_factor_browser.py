"""A practice manager sets up the second factor on their phone, then signs in with it."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Page, expect

from recovery.db import session_scope, utcnow
from recovery.models import Role
from recovery.services.auth import create_user
from tests.e2e import scenario
from tests.e2e.conftest import Server, shot, sign_in

pytestmark = pytest.mark.e2e

MANAGER = "manager@valley.example"


def test_a_manager_enrols_an_authenticator_and_signs_in_with_it(
    server: Server, world: scenario.Scenario, phone: Page, desktop: Page
) -> None:
    with session_scope(server.sessions) as session:
        create_user(
            session,
            email=MANAGER,
            name="Mona Manager",
            password=scenario.PASSWORD,
            role=Role.MANAGER,
            practice_slug="valley-family",
        )

    phone.goto(f"{server.base_url}/tasks")
    sign_in(phone, MANAGER)

    expect(phone.get_by_role("heading", name="Set up your sign-in code")).to_be_visible()
    expect(phone.locator(".qr svg")).to_be_visible()
    shot(phone, "enrol-phone")
    secret = phone.get_by_test_id("totp-secret").inner_text().strip()
    totp = pyotp.TOTP(secret)
    phone.get_by_label("Code").fill("000000")
    phone.get_by_role("button", name="Turn on and sign in").click()
    expect(phone.get_by_role("alert")).to_contain_text("That code is not right")
    phone.get_by_label("Code").fill(totp.now())
    phone.get_by_role("button", name="Turn on and sign in").click()

    expect(phone.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(phone.locator(".recovery-codes li")).to_have_count(10)
    shot(phone, "recovery-codes-phone")
    phone.get_by_role("link", name="I have saved them: continue").click()
    expect(phone).to_have_url(f"{server.base_url}/tasks")
    expect(phone.get_by_role("banner").get_by_text("Mona Manager")).to_be_visible()

    # Later, at the desk: password, then the app's code (the next one: each is used once).
    desktop.goto(f"{server.base_url}/tasks")
    sign_in(desktop, MANAGER)
    expect(desktop.get_by_role("heading", name="Your sign-in code")).to_be_visible()
    shot(desktop, "sign-in-code-desktop")
    desktop.get_by_label("Code").fill(totp.at(utcnow() + timedelta(seconds=30)))
    desktop.get_by_role("button", name="Sign in").click()

    expect(desktop).to_have_url(f"{server.base_url}/tasks")
    expect(desktop.get_by_role("banner").get_by_text("Mona Manager")).to_be_visible()
    shot(desktop, "tasks-after-second-factor-desktop")
