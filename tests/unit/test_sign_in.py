"""Signing in: argon2 hashes (older ones upgraded), throttling per account and per
address, and the second factor managers and admins must give."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.models import Role, User
from recovery.services.auth import create_user, verify_password
from recovery.web import auth as web_auth
from recovery.web import create_app
from recovery.web.throttle import SignInThrottle
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit import test_staff_pages
from tests.unit.conftest import RecordingDispatcher
from tests.unit.test_staff_pages import PASSWORD, audit, csrf, sign_in, text_of

world = test_staff_pages.world  # the clinic's morning, as a fixture here too


def user(sessions: sessionmaker[Session], email: str) -> User:
    with sessions() as session:
        return session.scalars(select(User).where(User.email == email)).one()


def attempt(client: FlaskClient, email: str, password: str) -> object:
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf(client)}
    )


# --- password hashes --------------------------------------------------------------------


def test_new_passwords_are_hashed_with_argon2id(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        created = create_user(
            session,
            email="new@valley.example",
            name="New Person",
            password="a long enough password",
            role=Role.STAFF,
            practice_slug="valley-family",
        )
        stored = created.password_hash

    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough password")
    assert not verify_password(stored, "a long enough passwore")


def test_an_old_hash_is_replaced_by_argon2_at_the_next_sign_in(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    assert user(sessions, world.users.desk).password_hash.startswith("scrypt:")

    sign_in(client, world.users.desk)

    upgraded = user(sessions, world.users.desk).password_hash
    assert upgraded.startswith("$argon2id$") and verify_password(upgraded, PASSWORD)


# --- throttling -------------------------------------------------------------------------


def test_the_eleventh_wrong_password_gets_429_and_so_does_the_right_one(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    for _ in range(10):
        assert attempt(client, world.users.desk, "not the password").status_code == 401  # type: ignore[attr-defined]

    eleventh = attempt(client, world.users.desk, "not the password")
    right = attempt(client, world.users.desk, PASSWORD)

    for refused in (eleventh, right):
        assert refused.status_code == 429  # type: ignore[attr-defined]
        retry_after = int(refused.headers["Retry-After"])  # type: ignore[attr-defined]
        assert 1 <= retry_after <= 15 * 60
        assert "Too many failed sign-ins" in text_of(refused)
    with client.session_transaction() as session:
        assert "uid" not in session
    throttled = audit(sessions, "login_throttled")
    assert len(throttled) == 2
    assert throttled[0].user_id == user(sessions, world.users.desk).id
    assert throttled[0].detail == "account from 127.0.0.1"


def test_another_account_is_not_locked_by_someone_elses_failures(
    client: FlaskClient, world: Scenario
) -> None:
    for _ in range(11):
        attempt(client, world.users.desk, "not the password")

    sign_in(client, world.users.nurse)


def test_an_unknown_email_is_throttled_the_same_way(client: FlaskClient, world: Scenario) -> None:
    answers = [attempt(client, "ghost@valley.example", "guess").status_code for _ in range(11)]  # type: ignore[attr-defined]

    assert answers == [401] * 10 + [429]


def test_a_typo_or_two_before_the_right_password_is_forgotten(
    client: FlaskClient, world: Scenario
) -> None:
    for _ in range(9):
        attempt(client, world.users.desk, "typo")
    token = sign_in(client, world.users.desk)
    client.post("/logout", data={"csrf_token": token})

    for _ in range(9):
        assert attempt(client, world.users.desk, "typo").status_code == 401  # type: ignore[attr-defined]
    sign_in(client, world.users.desk)


def test_one_address_trying_many_accounts_is_throttled(
    settings: Settings, sessions: sessionmaker[Session], world: Scenario, throttle: SignInThrottle
) -> None:
    strict = SignInThrottle(throttle._limiter.storage, per_address="5/15minutes")  # noqa: SLF001
    client = create_app(
        settings, sessions=sessions, dispatcher=RecordingDispatcher(), throttle=strict
    ).test_client()
    answers = [
        attempt(client, f"person{n}@valley.example", "guess").status_code  # type: ignore[attr-defined]
        for n in range(6)
    ]

    assert answers == [401] * 5 + [429]


# --- the second factor ------------------------------------------------------------------


def code_now(secret: str = scenario.TOTP_SECRET, at: datetime | None = None) -> str:
    return pyotp.TOTP(secret).at(at or utcnow())


def test_an_admin_is_not_signed_in_by_the_password_alone(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    response = attempt(client, world.users.admin, PASSWORD)

    assert response.status_code == 302 and response.headers["Location"] == "/login/code"  # type: ignore[attr-defined]
    assert client.get("/tasks").status_code == 302
    assert "authenticator app" in text_of(client.get("/login/code"))
    wrong = client.post("/login/code", data={"code": "000000", "csrf_token": csrf(client)})
    assert wrong.status_code == 401
    assert client.get("/tasks").status_code == 302

    right = client.post("/login/code", data={"code": code_now(), "csrf_token": csrf(client)})

    assert right.status_code == 302 and right.headers["Location"] == "/tasks"
    assert client.get("/tasks").status_code == 200
    assert [e.detail for e in audit(sessions, "login_failed")] == ["wrong code"]
    assert len(audit(sessions, "login")) == 1


def test_a_code_cannot_be_used_twice(app: Flask, world: Scenario) -> None:
    code = code_now()
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        attempt(client, world.users.admin, PASSWORD)

    used = first.post("/login/code", data={"code": code, "csrf_token": csrf(first)})
    replayed = second.post("/login/code", data={"code": code, "csrf_token": csrf(second)})

    assert used.status_code == 302
    assert replayed.status_code == 401


def test_the_password_step_expires_after_five_minutes(
    client: FlaskClient, world: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt(client, world.users.admin, PASSWORD)
    later = utcnow() + timedelta(minutes=6)
    monkeypatch.setattr(web_auth, "utcnow", lambda: later)

    response = client.post(
        "/login/code", data={"code": code_now(at=later), "csrf_token": csrf(client)}
    )

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/tasks").status_code == 302


def test_wrong_codes_are_throttled_like_wrong_passwords(
    client: FlaskClient, world: Scenario
) -> None:
    attempt(client, world.users.admin, PASSWORD)
    answers = [
        client.post("/login/code", data={"code": "123456", "csrf_token": csrf(client)}).status_code
        for _ in range(11)
    ]

    assert answers == [401] * 10 + [429]


def manager(sessions: sessionmaker[Session]) -> str:
    with session_scope(sessions) as session:
        create_user(
            session,
            email="manager@valley.example",
            name="Mona Manager",
            password=PASSWORD,
            role=Role.MANAGER,
            practice_slug="valley-family",
        )
    return "manager@valley.example"


def test_a_manager_sets_up_the_second_factor_at_the_first_sign_in(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session], settings: Settings
) -> None:
    email = manager(sessions)
    response = attempt(client, email, PASSWORD)
    assert response.headers["Location"] == "/login/enrol"  # type: ignore[attr-defined]

    page = client.get("/login/enrol")
    body = page.get_data(as_text=True)
    assert "<svg" in body and "Sign-in QR code" in body  # drawn here, nothing fetched
    svg = body.split("<svg", 1)[1].split("</svg>")[0]
    assert "href" not in svg and "src=" not in body
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', body)
    assert secret is not None
    assert client.get("/tasks").status_code == 302  # not signed in yet
    wrong = client.post("/login/enrol", data={"code": "000000", "csrf_token": csrf(client)})
    assert wrong.status_code == 401

    done = client.post(
        "/login/enrol", data={"code": code_now(secret.group(1)), "csrf_token": csrf(client)}
    )

    assert done.status_code == 200
    codes = re.findall(
        r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", done.get_data(as_text=True)
    )
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/tasks").status_code == 200
    stored = user(sessions, email)
    assert stored.totp_secret is not None and secret.group(1) not in stored.totp_secret
    assert PhiCipher.from_settings(settings).decrypt(stored.totp_secret) == secret.group(1)
    assert all(code not in stored.recovery_codes for code in codes)
    assert len(audit(sessions, "totp_enrolled")) == 1

    # A recovery code signs in once, instead of the app's code.
    client.post("/logout", data={"csrf_token": csrf(client)})
    attempt(client, email, PASSWORD)
    first = client.post("/login/code", data={"code": codes[3].upper(), "csrf_token": csrf(client)})
    assert first.status_code == 302
    assert client.get("/tasks").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client)})
    attempt(client, email, PASSWORD)
    again = client.post("/login/code", data={"code": codes[3], "csrf_token": csrf(client)})
    assert again.status_code == 401
    [used] = audit(sessions, "recovery_code_used")
    assert used.detail == "9 left"


def test_staff_and_clinicians_sign_in_with_the_password_alone(
    client: FlaskClient, world: Scenario
) -> None:
    response = attempt(client, world.users.nurse, PASSWORD)

    assert response.headers["Location"] == "/tasks"  # type: ignore[attr-defined]
