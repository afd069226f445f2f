"""The staff pages through Flask's test client, on the SQLite fixtures: sign-in, CSRF,
practice boundaries, the page link, the task queue, the timeline and the audit trail."""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyotp
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import main, migrate
from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import make_engine, make_session_factory, session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    AuditEvent,
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Page,
    PageStatus,
    Task,
    TaskStatus,
    User,
)
from recovery.schemas.practices import read_practices
from recovery.services.auth import set_active
from recovery.services.practices import load_practices
from tests.conftest import PHI_KEY, PRACTICES_FILE
from tests.e2e import scenario
from tests.e2e.scenario import Scenario

PASSWORD = scenario.PASSWORD


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    return scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        token = session.get("csrf")
    if token is None:
        client.get("/login")
        return csrf(client)
    assert isinstance(token, str)
    return token


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    """Sign in; return the new session's CSRF token for the forms that follow."""
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf(client)}
    )
    assert response.status_code == 302, response.text
    if response.headers["Location"] == "/login/code":
        # A manager or an admin: the authenticator app's code too.
        response = client.post(
            "/login/code",
            data={"code": pyotp.TOTP(scenario.TOTP_SECRET).now(), "csrf_token": csrf(client)},
        )
        assert response.status_code == 302, response.text
    return csrf(client)


def audit(sessions: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def text_of(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


# --- signing in --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/tasks", "/tasks?queue=billing", "/p/1234", "/episodes/1"])
def test_staff_pages_send_whoever_is_not_signed_in_to_login_and_back(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    login = client.get(response.headers["Location"])
    assert f'name="next" value="{path}"' in html.unescape(login.get_data(as_text=True))


def test_signing_in_returns_to_the_page_link(client: FlaskClient, world: Scenario) -> None:
    response = client.post(
        "/login",
        data={
            "email": "  Nurse@Valley.example ",
            "password": PASSWORD,
            "next": f"/p/{world.page_code}",
            "csrf_token": csrf(client),
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/p/{world.page_code}"
    assert client.get(f"/p/{world.page_code}").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/login",
        "//evil.example/login",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "tasks",
    ],
)
def test_next_may_only_be_a_path_on_this_site(
    client: FlaskClient, world: Scenario, target: str
) -> None:
    response = client.post(
        "/login",
        data={
            "email": world.users.desk,
            "password": PASSWORD,
            "next": target,
            "csrf_token": csrf(client),
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/tasks"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = csrf(client)
    wrong = client.post(
        "/login",
        data={"email": world.users.nurse, "password": "not the password", "csrf_token": token},
    )
    unknown = client.post(
        "/login",
        data={"email": "nobody@valley.example", "password": PASSWORD, "csrf_token": token},
    )

    assert wrong.status_code == unknown.status_code == 401
    message = "That email and password do not match an active account."
    assert message in text_of(wrong) and message in text_of(unknown)
    with client.session_transaction() as session:
        assert "user_id" not in session
    assert client.get("/tasks").status_code == 302
    # Both are in the audit log: the known account's owner, and the address tried.
    known, unknown_email = audit(sessions, "login_failed")
    assert known.user_id is not None and known.detail == "from 127.0.0.1"
    assert unknown_email.user_id is None
    assert unknown_email.detail == "unknown email nobody@valley.example from 127.0.0.1"


def test_a_deactivated_user_is_signed_out_at_once(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, world.users.desk)
    assert client.get("/tasks").status_code == 200

    with session_scope(sessions) as session:
        set_active(session, world.users.desk, False)

    assert client.get("/tasks").status_code == 302
    response = client.post(
        "/login",
        data={"email": world.users.desk, "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert response.status_code == 401


def test_the_session_cookie_is_httponly_lax_and_secure_behind_https(
    client: FlaskClient, world: Scenario
) -> None:
    response = client.post(
        "/login",
        data={"email": world.users.desk, "password": PASSWORD, "csrf_token": csrf(client)},
    )

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_signing_out_ends_the_session(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    assert client.get("/logout").status_code == 405  # a link cannot sign anyone out
    response = client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/tasks").status_code == 302
    assert len(audit(sessions, "logout")) == 1


# --- CSRF --------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    without = client.post(f"/tasks/{world.billing_task_id}/claim")
    wrong = client.post(f"/tasks/{world.billing_task_id}/claim", data={"csrf_token": "x" + token})

    assert without.status_code == wrong.status_code == 400
    assert "This form has expired" in text_of(without)
    with sessions() as session:
        task = session.get(Task, world.billing_task_id)
        assert task is not None and task.status is TaskStatus.OPEN


def test_signing_in_needs_the_csrf_token_too(client: FlaskClient, world: Scenario) -> None:
    response = client.post("/login", data={"email": world.users.desk, "password": PASSWORD})

    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "user_id" not in session


# --- practices see only their own ---------------------------------------------------------


def test_a_user_of_another_practice_sees_and_changes_nothing_of_this_one(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.other)

    assert client.get(f"/p/{world.page_code}").status_code == 404
    assert client.get(f"/episodes/{world.urgent_episode_id}").status_code == 404
    claim = client.post(f"/tasks/{world.billing_task_id}/claim", data={"csrf_token": token})
    book = client.post(f"/episodes/{world.billing_episode_id}/book", data={"csrf_token": token})
    ack = client.post(f"/p/{world.page_code}/ack", data={"csrf_token": token})
    assert claim.status_code == book.status_code == ack.status_code == 404

    tasks = text_of(client.get("/tasks"))
    assert "Always Open Urgent Care" in tasks and "(617) 555-0123" in tasks
    assert "(512) 555-0188" not in tasks and "Valley Family" not in tasks
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.status is PageStatus.ACTIVE
        task = session.get(Task, world.billing_task_id)
        assert task is not None and task.status is TaskStatus.OPEN
    assert audit(sessions, "view_page") == []


def test_an_admin_sees_every_practice_and_picks_one(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, world.users.admin)

    assert client.get(f"/p/{world.page_code}").status_code == 200
    other = text_of(client.get("/tasks?practice=always-open"))
    assert "(617) 555-0123" in other and "(512) 555-0188" not in other
    valley = text_of(client.get("/tasks?practice=valley-family"))
    assert "(512) 555-0188" in valley


# --- the page link ------------------------------------------------------------------------


def test_the_page_link_shows_the_patients_words_and_number_and_audits_the_view(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, world.users.nurse)

    response = client.get(f"/p/{world.page_code}")

    assert response.status_code == 200
    body = text_of(response)
    assert scenario.URGENT_WORDS in body
    assert "(512) 555-0199" in body and 'href="tel:+15125550199"' in body
    assert "Valley Family Clinic" in body and world.page_code in body
    assert "Dr. Rivera" in body  # who was paged
    assert "I'm taking this" in body and "Not taken yet" in body
    assert response.headers["Cache-Control"] == "no-store"
    [event] = audit(sessions, "view_page")
    assert event.episode_id == world.urgent_episode_id
    assert event.detail == f"page {world.page_code}"  # a reference, never the words
    with sessions() as session:
        user = session.scalars(select(User).where(User.email == world.users.nurse)).one()
        assert event.user_id == user.id


def test_im_taking_this_acknowledges_the_page_and_closes_the_episode_escalated(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.nurse)

    response = client.post(f"/p/{world.page_code}/ack", data={"csrf_token": token})

    assert response.status_code == 302
    assert response.headers["Location"] == f"/p/{world.page_code}"
    body = text_of(client.get(f"/p/{world.page_code}"))
    assert "Acknowledged by Nurse Lee at" in body
    assert "I'm taking this" not in body
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.status is PageStatus.ACKNOWLEDGED
        assert page.acknowledged_by == "Nurse Lee" and page.next_escalation_at is None
        episode = session.get(Episode, page.episode_id)
        assert episode is not None
        assert episode.status is EpisodeStatus.CLOSED
        assert episode.outcome is EpisodeOutcome.ESCALATED
    [event] = audit(sessions, "ack_page")
    assert event.episode_id == world.urgent_episode_id


def test_a_page_already_taken_stays_with_whoever_took_it(
    app: object, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    nurse = app.test_client()  # type: ignore[attr-defined]
    admin = app.test_client()  # type: ignore[attr-defined]
    nurse_token = sign_in(nurse, world.users.nurse)
    admin_token = sign_in(admin, world.users.admin)

    nurse.post(f"/p/{world.page_code}/ack", data={"csrf_token": nurse_token})
    admin.post(f"/p/{world.page_code}/ack", data={"csrf_token": admin_token})

    assert "Nurse Lee had already taken this page." in text_of(admin.get(f"/p/{world.page_code}"))
    with sessions() as session:
        assert session.scalars(select(Page)).one().acknowledged_by == "Nurse Lee"
    assert len(audit(sessions, "ack_page")) == 1


def test_the_front_desk_can_read_a_page_but_not_take_it(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    body = text_of(client.get(f"/p/{world.page_code}"))
    response = client.post(f"/p/{world.page_code}/ack", data={"csrf_token": token})

    assert "I'm taking this" not in body
    assert "Only clinicians and managers can take an urgent page." in body
    assert response.status_code == 403
    with sessions() as session:
        assert session.scalars(select(Page)).one().status is PageStatus.ACTIVE


def test_an_unknown_page_code_is_a_plain_404_page(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, world.users.nurse)

    response = client.get("/p/0000")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Not found" in text_of(response)


# --- the task queue -----------------------------------------------------------------------


def test_the_queue_lists_open_tasks_with_due_times_in_the_practices_zone(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, world.users.desk)

    body = text_of(client.get("/tasks"))

    # One list by due time: the overdue front-desk task first.
    assert body.index("Reply not understood") < body.index("Billing question")
    assert body.index("Reply not understood") < body.index("Prescription refill")
    assert "(512) 555-0188" in body and "(512) 555-0177" in body
    assert "times in CST (Chicago)" in body or "times in CDT (Chicago)" in body
    with sessions() as session:
        task = session.get(Task, world.refill_task_id)
        assert task is not None
        due = task.due_at.astimezone(ZoneInfo("America/Chicago")).strftime("%-I:%M %p")
    assert due in body
    # The front-desk task is past its due time: it says so, in red.
    assert "Overdue 40 min" in body and "task-overdue" in body and "1 overdue" in body
    [event] = audit(sessions, "view_tasks")
    assert event.detail.startswith("practice valley-family; queue all; episodes ")
    assert "555" not in event.detail


def test_the_queue_filter_shows_one_queue(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, world.users.desk)

    body = text_of(client.get("/tasks?queue=billing"))

    assert "Billing question" in body and "(512) 555-0188" in body
    assert "Prescription refill" not in body and "(512) 555-0177" not in body
    assert "Reply not understood" not in body
    # An unknown queue shows them all rather than an empty page.
    assert "Prescription refill" in text_of(client.get("/tasks?queue=nope"))


def test_claim_then_complete_resolves_the_episode(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    claimed = client.post(
        f"/tasks/{world.billing_task_id}/claim",
        data={"csrf_token": token, "next": "/tasks?queue=billing"},
    )
    assert claimed.status_code == 302 and claimed.headers["Location"] == "/tasks?queue=billing"
    board = text_of(client.get("/tasks?queue=billing"))
    assert "Task claimed: it is yours." in board and "You claimed it" in board

    done = client.post(
        f"/tasks/{world.billing_task_id}/complete",
        data={"csrf_token": token, "note": "Explained the copay.", "next": "/tasks"},
    )

    assert done.status_code == 302
    board = text_of(client.get("/tasks"))
    assert "Task completed." in board
    assert f'id="task-{world.billing_task_id}"' not in board
    assert "Completed in the last 24 hours" in board and "Explained the copay." in board
    with sessions() as session:
        task = session.get(Task, world.billing_task_id)
        assert task is not None
        assert task.status is TaskStatus.DONE and task.claimed_by == "Dana Front"
        assert task.note and PhiCipher([PHI_KEY]).decrypt(task.note) == "Explained the copay."
        episode = session.get(Episode, task.episode_id)
        assert episode is not None and episode.outcome is EpisodeOutcome.RESOLVED
    assert [e.episode_id for e in audit(sessions, "claim_task")] == [world.billing_episode_id]
    [completed] = audit(sessions, "complete_task")
    assert completed.detail == f"task {world.billing_task_id}; with a note"


def test_a_task_claimed_by_one_stays_theirs(
    app: object, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    nurse = app.test_client()  # type: ignore[attr-defined]
    desk = app.test_client()  # type: ignore[attr-defined]
    nurse.post(
        f"/tasks/{world.refill_task_id}/claim",
        data={"csrf_token": sign_in(nurse, world.users.nurse)},
    )
    desk.post(
        f"/tasks/{world.refill_task_id}/claim", data={"csrf_token": sign_in(desk, world.users.desk)}
    )

    assert "Nurse Lee had already claimed that task." in text_of(desk.get("/tasks"))
    with sessions() as session:
        task = session.get(Task, world.refill_task_id)
        assert task is not None and task.claimed_by == "Nurse Lee"
    assert len(audit(sessions, "claim_task")) == 1


def test_a_task_redirect_never_leaves_the_site(client: FlaskClient, world: Scenario) -> None:
    token = sign_in(client, world.users.desk)

    response = client.post(
        f"/tasks/{world.billing_task_id}/claim",
        data={"csrf_token": token, "next": "https://evil.example/"},
    )

    # The front door instead, which sends the front desk on to their queue.
    assert response.headers["Location"] == "/"
    assert client.get("/").headers["Location"] == "/tasks"


# --- an episode's timeline ------------------------------------------------------------------


def test_the_timeline_tells_the_whole_story_and_audits_the_view(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, world.users.nurse)

    body = text_of(client.get(f"/episodes/{world.urgent_episode_id}"))

    for step in ["Missed call", "First text to patient", "Patient wrote", "Urgent page"]:
        assert step in body
    assert scenario.URGENT_WORDS in body
    assert "Page to Dr. Rivera" in body
    assert "is active and not taken yet" in body
    assert "Mark booked" not in body  # not while a clinician has yet to take the page
    [event] = audit(sessions, "view_episode")
    assert event.episode_id == world.urgent_episode_id


def test_a_patients_words_are_shown_as_text_never_as_markup(
    client: FlaskClient,
    world: Scenario,
    settings: Settings,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
) -> None:
    with session_scope(sessions) as session:
        scenario.missed_call_and_reply(
            session,
            templates,
            PhiCipher.from_settings(settings),
            caller="+15125550155",
            line=scenario.LINE,
            words=["<script>alert('x')</script> question about my bill"],
            at=utcnow() - timedelta(minutes=30),
        )
        episode_id = session.scalars(
            select(Episode.id).where(Episode.caller == "+15125550155")
        ).one()
    sign_in(client, world.users.desk)

    raw = client.get(f"/episodes/{episode_id}").get_data(as_text=True)

    assert "<script>" not in raw
    assert "&lt;script&gt;" in raw
    assert "script-src" not in raw  # and the CSP header forbids scripts anyway


def test_mark_booked_closes_the_episode_booked(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)
    assert "Mark booked" in text_of(client.get(f"/episodes/{world.billing_episode_id}"))

    response = client.post(f"/episodes/{world.billing_episode_id}/book", data={"csrf_token": token})

    assert response.status_code == 302
    body = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "Marked booked." in body and "Outcome: Booked" in body
    assert "Mark booked</button>" not in body
    with sessions() as session:
        episode = session.get(Episode, world.billing_episode_id)
        assert episode is not None and episode.outcome is EpisodeOutcome.BOOKED
    [event] = audit(sessions, "mark_booked")
    assert event.episode_id == world.billing_episode_id


def test_mark_booked_is_refused_while_an_urgent_page_is_active(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, world.users.desk)

    response = client.post(f"/episodes/{world.urgent_episode_id}/book", data={"csrf_token": token})

    assert response.status_code == 403
    with sessions() as session:
        episode = session.get(Episode, world.urgent_episode_id)
        assert episode is not None and episode.status is EpisodeStatus.OPEN


def test_mark_booked_through_the_booking_link_token_uses_the_booking_rules(
    client: FlaskClient,
    world: Scenario,
    settings: Settings,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
) -> None:
    with session_scope(sessions) as session:
        scenario.missed_call_and_reply(
            session,
            templates,
            PhiCipher.from_settings(settings),
            caller="+15125550144",
            line=scenario.LINE,
            words=["BOOK"],
            at=utcnow() - timedelta(minutes=30),
        )
        episode = session.scalars(select(Episode).where(Episode.caller == "+15125550144")).one()
        assert episode.booking_token is not None
        episode_id = episode.id
    token = sign_in(client, world.users.desk)

    client.post(f"/episodes/{episode_id}/book", data={"csrf_token": token})

    with sessions() as session:
        booked = session.get(Episode, episode_id)
        assert booked is not None and booked.outcome is EpisodeOutcome.BOOKED


# --- the users command ------------------------------------------------------------------------


def test_users_add_and_list_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    migrate(Settings(_env_file=None, DATABASE_URL=url))  # type: ignore[call-arg]
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        load_practices(session, read_practices(PRACTICES_FILE))
    engine.dispose()
    runner = CliRunner()

    added = runner.invoke(
        main,
        [
            "users",
            "add",
            "Lee@Valley.example",
            "--name",
            "Nurse Lee",
            "--practice",
            "valley-family",
            "--role",
            "clinician",
        ],
        input="a long password\na long password\n",
    )
    admin = runner.invoke(
        main,
        [
            "users",
            "add",
            "it@example.com",
            "--name",
            "IT",
            "--role",
            "admin",
            "--password",
            "another long one",
        ],
    )
    no_practice = runner.invoke(
        main, ["users", "add", "x@example.com", "--name", "X", "--password", "long enough pw"]
    )
    duplicate = runner.invoke(
        main,
        [
            "users",
            "add",
            "lee@valley.example",
            "--name",
            "Again",
            "--practice",
            "valley-family",
            "--password",
            "a long password",
        ],
    )
    reset = runner.invoke(
        main, ["users", "set-password", "LEE@valley.example", "--password", "a new long one"]
    )
    deactivated = runner.invoke(main, ["users", "deactivate", "it@example.com"])
    listed = runner.invoke(main, ["users", "list"])

    assert added.exit_code == 0, added.output
    assert "added lee@valley.example (clinician, valley-family)" in added.output
    assert admin.exit_code == 0, admin.output
    assert no_practice.exit_code != 0 and "only an admin may have no practice" in no_practice.output
    assert duplicate.exit_code != 0 and "exists already" in duplicate.output
    assert reset.exit_code == 0 and "new password set for lee@valley.example" in reset.output
    assert deactivated.exit_code == 0
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert any("lee@valley.example" in line and "valley-family" in line for line in lines)
    assert any("it@example.com" in line and "inactive" in line for line in lines)
    assert "a long password" not in listed.output
