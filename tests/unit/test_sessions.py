"""Staff sessions end when they should: at sign-out, a new password, deactivation, an
admin's "sign out everywhere", 15 minutes idle, 12 hours after signing in."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import main
from recovery.config import Settings
from recovery.db import session_scope, utcnow
from recovery.services.auth import set_password
from recovery.web import auth as web_auth
from tests.e2e.scenario import Scenario
from tests.unit import test_staff_pages
from tests.unit.test_staff_pages import audit, csrf, sign_in, text_of

world = test_staff_pages.world  # the clinic's morning, as a fixture here too

SESSION_COOKIE = "session"


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    return cookie.value


def put_cookie(client: FlaskClient, value: str) -> None:
    client.set_cookie(SESSION_COOKIE, value)


def test_an_old_cookie_after_signing_out_gets_the_sign_in_page(
    client: FlaskClient, world: Scenario
) -> None:
    token = sign_in(client, world.users.desk)
    saved = cookie_of(client)
    client.post("/logout", data={"csrf_token": token})

    put_cookie(client, saved)  # someone kept a copy of the cookie
    response = client.get("/tasks")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_signing_out_on_one_computer_signs_out_the_others(app: Flask, world: Scenario) -> None:
    desk, home = app.test_client(), app.test_client()
    token = sign_in(desk, world.users.desk)
    sign_in(home, world.users.desk)

    desk.post("/logout", data={"csrf_token": token})

    assert home.get("/tasks").status_code == 302


def test_a_new_password_ends_every_session(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, world.users.desk)
    saved = cookie_of(client)

    with session_scope(sessions) as session:
        set_password(session, world.users.desk, "a brand new password")

    put_cookie(client, saved)
    assert client.get("/tasks").status_code == 302


def test_an_admin_signs_a_user_out_everywhere_from_the_command_line(
    app: Flask,
    world: Scenario,
    settings: Settings,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    first, second = app.test_client(), app.test_client()
    sign_in(first, world.users.nurse)
    sign_in(second, world.users.nurse)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)

    result = CliRunner().invoke(main, ["users", "sign-out", world.users.nurse])

    assert result.exit_code == 0, result.output
    assert first.get("/tasks").status_code == second.get("/tasks").status_code == 302
    [event] = audit(sessions, "cli_change")
    assert event.user_id is None and event.detail.startswith("users sign-out ")


def _later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    start = utcnow()

    def shifted() -> datetime:
        return start + delta

    monkeypatch.setattr(web_auth, "utcnow", shifted)


def test_fifteen_minutes_without_activity_signs_out(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sign_in(client, world.users.desk)
    _later(monkeypatch, timedelta(minutes=14))
    assert client.get("/tasks").status_code == 200  # still there: and the clock restarts

    _later(monkeypatch, timedelta(minutes=14 + 16))
    response = client.get("/tasks")

    assert response.status_code == 302
    login = client.get(response.headers["Location"])
    assert "You were signed out after 15 minutes without activity." in text_of(login)
    [expired] = audit(sessions, "session_expired")
    assert expired.detail == "idle"


def test_the_idle_sign_out_is_configurable(
    settings: Settings,
    sessions: sessionmaker[Session],
    world: Scenario,
    monkeypatch: pytest.MonkeyPatch,
    throttle: object,
) -> None:
    from recovery.web import create_app
    from tests.unit.conftest import RecordingDispatcher

    short = settings.model_copy(update={"session_idle_s": 120})
    client = create_app(
        short,
        sessions=sessions,
        dispatcher=RecordingDispatcher(),
        throttle=throttle,  # type: ignore[arg-type]
    ).test_client()
    sign_in(client, world.users.desk)

    _later(monkeypatch, timedelta(minutes=3))

    assert client.get("/tasks").status_code == 302


def test_every_page_brings_up_a_warning_before_the_idle_sign_out(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, world.users.desk)

    page = text_of(client.get("/tasks?queue=billing"))

    refresh = re.search(r'<meta http-equiv="refresh" content="(\d+);url=([^"]+)">', page)
    assert refresh is not None
    assert int(refresh.group(1)) == 15 * 60 - 120
    assert refresh.group(2) == "/session/idle?next=/tasks?queue%3Dbilling"
    assert "signed out after 15 minutes without activity" in page


def test_the_warning_does_not_count_as_activity_but_its_button_does(
    client: FlaskClient, world: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sign_in(client, world.users.desk)
    _later(monkeypatch, timedelta(minutes=13))

    warning = client.get("/session/idle?next=/tasks")
    assert warning.status_code == 200
    body = text_of(warning)
    assert "Still there?" in body and "Stay signed in" in body
    assert 'content="121;url=/login?next=/tasks"' in body  # then off to the sign-in page
    _later(monkeypatch, timedelta(minutes=13, seconds=30))
    stay = client.post("/session/stay", data={"csrf_token": token, "next": "/tasks"})
    assert stay.status_code == 302 and stay.headers["Location"] == "/tasks"

    _later(monkeypatch, timedelta(minutes=13 + 14))
    assert client.get("/tasks").status_code == 200


def test_a_session_ends_twelve_hours_after_signing_in_however_busy(
    client: FlaskClient, world: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, world.users.desk)
    for minutes in range(10, 12 * 60, 10):
        _later(monkeypatch, timedelta(minutes=minutes))
        assert client.get("/tasks").status_code == 200, minutes

    _later(monkeypatch, timedelta(hours=12, minutes=1))
    assert client.get("/tasks").status_code == 302


def test_signing_in_gives_a_new_session_cookie_and_drops_what_was_planted(
    client: FlaskClient, world: Scenario
) -> None:
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
        session["sid"] = "known-to-the-attacker"
    before = cookie_of(client)

    sign_in(client, world.users.desk)

    assert cookie_of(client) != before
    with client.session_transaction() as session:
        assert "planted" not in session
        first_sid = session["sid"]
        assert first_sid != "known-to-the-attacker"
    client.post("/logout", data={"csrf_token": csrf(client)})
    sign_in(client, world.users.desk)
    with client.session_transaction() as session:
        assert session["sid"] != first_sid


def test_https_installs_send_hsts_on_every_answer(client: FlaskClient) -> None:
    # The unit tests' PUBLIC_BASE_URL is https.
    for path in ("/login", "/healthz"):
        response = client.get(path)
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_plain_http_installs_send_no_hsts(
    settings: Settings, sessions: sessionmaker[Session], throttle: object
) -> None:
    from recovery.web import create_app
    from tests.unit.conftest import RecordingDispatcher

    local = settings.model_copy(update={"public_base_url": "http://127.0.0.1:5000"})
    client = create_app(
        local,
        sessions=sessions,
        dispatcher=RecordingDispatcher(),
        throttle=throttle,  # type: ignore[arg-type]
    ).test_client()

    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_a_signed_in_user_asking_for_another_practices_page_is_audited(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, world.users.other)

    assert client.get(f"/p/{world.page_code}").status_code == 404

    [denied] = audit(sessions, "denied")
    assert denied.detail == f"404 GET /p/{world.page_code}"
