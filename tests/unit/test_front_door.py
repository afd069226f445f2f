"""What a visitor meets before and around the staff pages: the landing page, the styled
error pages, a form posted after the session expired, and the phone simulator."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import local_base_url, running_settings, write_server_file
from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import CallEvent, Direction, Message, MessageStatus
from recovery.services import simulator
from recovery.web import create_app
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.conftest import RecordingDispatcher
from tests.unit.test_staff_pages import csrf, sign_in, text_of

LINE = scenario.LINE


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    return scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())


# --- the landing page --------------------------------------------------------------------


def test_a_signed_out_visitor_gets_the_landing_page_with_sign_in_and_simulator(
    client: FlaskClient,
) -> None:
    response = client.get("/")

    assert response.status_code == 200
    page = text_of(response)
    assert "No patient lost to a missed call" in page
    assert 'href="/login"' in page and 'href="/simulator"' in page


def test_the_landing_page_has_no_simulator_link_when_texts_really_go_out(
    settings: Settings, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    live = settings.model_copy(update={"sms_provider": "twilio"})
    client = create_app(live, sessions=sessions, dispatcher=dispatcher).test_client()

    page = text_of(client.get("/"))

    assert 'href="/login"' in page and "/simulator" not in page
    assert client.get("/simulator").status_code == 404


def test_a_signed_in_user_going_to_the_front_door_lands_on_their_queue(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, world.users.desk)

    response = client.get("/")

    assert response.status_code == 302 and response.headers["Location"] == "/tasks"


# --- a fresh install's first account -----------------------------------------------------

FIRST_ACCOUNT = "Create the first account on the server:"
COMMAND = '.venv/bin/recovery users add you@example.com --name "Your Name" --role admin'


def add_user(sessions: sessionmaker[Session], *, active: bool = True) -> None:
    from recovery.models import Role
    from recovery.services.auth import create_user

    with sessions.begin() as session:
        user = create_user(
            session,
            email="it@clinic.example",
            name="Sam IT",
            password=scenario.PASSWORD,
            role=Role.ADMIN,
            practice_slug=None,
        )
        user.active = active


@pytest.mark.parametrize("path", ["/", "/login"])
def test_a_fresh_install_says_how_to_create_the_first_account(
    client: FlaskClient, path: str
) -> None:
    page = text_of(client.get(path))

    assert "No one can sign in yet." in page and FIRST_ACCOUNT in page
    command = page.split('<code class="command">')[1].split("</code>")[0]
    assert re.sub(r"<[^>]+>", "", command) == COMMAND  # what a click selects to copy
    assert "An admin sees all practices" in page and "--practice <slug>" in page


@pytest.mark.parametrize("path", ["/", "/login"])
def test_once_anyone_can_sign_in_the_pages_say_nothing_about_accounts(
    client: FlaskClient, sessions: sessionmaker[Session], path: str
) -> None:
    add_user(sessions)

    page = text_of(client.get(path))

    assert "No one can sign in yet" not in page and "users add" not in page


def test_a_deactivated_account_alone_still_leaves_no_one_able_to_sign_in(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    add_user(sessions, active=False)

    assert FIRST_ACCOUNT in text_of(client.get("/login"))


def test_a_failed_sign_in_on_a_fresh_install_shows_the_command_too(client: FlaskClient) -> None:
    response = client.post(
        "/login",
        data={"email": "it@clinic.example", "password": "guess", "csrf_token": csrf(client)},
    )

    assert response.status_code == 401
    assert FIRST_ACCOUNT in text_of(response)


# --- a form posted after the session expired ---------------------------------------------


def test_a_note_posted_after_the_session_expired_is_kept_across_signing_in_again(
    client: FlaskClient, world: Scenario, app: Flask
) -> None:
    sign_in(client, world.users.desk)
    client.get("/tasks")
    with client.session_transaction() as cookie:
        cookie.clear()  # the browser dropped the expired session cookie
    note = "Called back, left a voicemail about the Friday slot"

    response = client.post(
        f"/tasks/{world.billing_task_id}/complete",
        data={"note": note, "next": "/tasks"},
        headers={"Referer": "http://localhost/tasks"},
    )

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    login = text_of(client.get(response.headers["Location"]))
    assert "You were signed out" in login
    with client.session_transaction() as cookie:
        assert note not in str(dict(cookie))  # kept encrypted: the cookie is the browser's
    after = client.post(
        "/login",
        data={
            "email": world.users.desk,
            "password": scenario.PASSWORD,
            "next": "/tasks",
            "csrf_token": csrf(client),
        },
    )
    assert after.headers["Location"] == "/tasks"
    tasks = text_of(client.get("/tasks"))
    assert f'value="{note}"' in tasks
    assert "What you typed is back in the form" in tasks
    # Nothing was done with it, and it is shown once.
    assert "Completed by" not in tasks.split("Completed in the last 24 hours")[0]
    assert f'value="{note}"' not in text_of(client.get("/tasks"))


def test_a_signed_out_post_to_a_staff_form_changes_nothing(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    from recovery.models import Task, TaskStatus

    response = client.post(f"/tasks/{world.billing_task_id}/claim", data={})

    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with sessions() as session:
        task = session.get(Task, world.billing_task_id)
        assert task is not None and task.status is TaskStatus.OPEN


def test_a_signed_in_post_without_the_csrf_token_is_still_refused(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, world.users.desk)

    response = client.post(f"/tasks/{world.billing_task_id}/claim", data={})

    assert response.status_code == 400


# --- the phone simulator -----------------------------------------------------------------


def test_simulator_call_and_hang_up_goes_through_the_signed_webhook(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    page = text_of(client.get("/simulator"))
    assert "Call and hang up" in page and LINE in page

    response = client.post(
        "/simulator/call",
        data={"line": LINE, "phone": "(512) 555-0133", "csrf_token": csrf(client)},
    )

    assert response.status_code == 302
    assert "phone=%2B15125550133" in response.headers["Location"]
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert (call.provider, call.caller, call.called) == ("twilio", "+15125550133", LINE)
        text = session.scalars(select(Message).where(Message.kind == "first_text")).one()
    assert dispatcher.sent == [text.id]  # queued for the worker, as for a real call


def test_without_a_twilio_token_the_simulator_signs_the_generic_call_as_the_practice(
    settings: Settings, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    # WEBHOOK_SECRET is refused on this three-practice install: the practice's own is used.
    untokened = settings.model_copy(update={"twilio_auth_token": ""})
    client = create_app(untokened, sessions=sessions, dispatcher=dispatcher).test_client()
    client.get("/simulator")

    response = client.post(
        "/simulator/call",
        data={"line": LINE, "phone": "(512) 555-0133", "csrf_token": csrf(client)},
    )

    assert response.status_code == 302
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert (call.provider, call.caller) == ("generic", "+15125550133")


def test_simulator_text_is_stored_encrypted_and_queued_for_routing(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    response = client.post(
        "/simulator/text",
        data={"line": LINE, "phone": "+15125550133", "body": "BOOK", "csrf_token": csrf(client)},
    )

    assert response.status_code == 302
    with sessions() as session:
        inbound = session.scalars(select(Message)).one()
        assert inbound.direction is Direction.INBOUND and inbound.body == ""
        assert inbound.body_ciphertext and "BOOK" not in inbound.body_ciphertext
    assert dispatcher.replies == [inbound.id]


def test_simulator_forms_need_the_csrf_token(client: FlaskClient) -> None:
    response = client.post("/simulator/call", data={"line": LINE, "phone": "+15125550133"})

    assert response.status_code == 400


def test_simulator_refuses_calling_from_a_practice_line(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    response = client.post(
        "/simulator/call",
        data={"line": LINE, "phone": scenario.OTHER_LINE, "csrf_token": csrf(client)},
    )

    assert response.status_code == 302
    with sessions() as session:
        assert session.scalars(select(CallEvent)).first() is None


def test_simulator_thread_shows_what_reached_the_phone_and_what_it_sent(
    client: FlaskClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    cipher = PhiCipher.from_settings(settings)
    now = utcnow()
    with sessions.begin() as session:
        line = next(ln for ln in simulator.practice_lines(session) if ln.number == LINE)
        common = {"practice_id": 1, "created_at": now, "kind": "first_text"}
        session.add_all(
            [
                Message(
                    **common,
                    direction=Direction.OUTBOUND,
                    from_number=LINE,
                    to_number="+15125550133",
                    body="Valley: sorry we missed your call",
                    status=MessageStatus.ACCEPTED,
                ),
                Message(
                    **common,
                    direction=Direction.OUTBOUND,
                    from_number=LINE,
                    to_number="+15125550133",
                    body="still queued",
                    status=MessageStatus.PENDING,
                ),
                Message(
                    **{**common, "kind": "reply"},
                    direction=Direction.INBOUND,
                    from_number="+15125550133",
                    to_number=LINE,
                    body="",
                    body_ciphertext=cipher.encrypt("my bill is wrong"),
                    status=MessageStatus.RECEIVED,
                ),
            ]
        )

    with sessions() as session:
        bubbles = simulator.thread(session, cipher, line, "+15125550133")
    fragment = html.unescape(
        client.get("/simulator/thread?line=%2B15125550100&phone=%2B15125550133").get_data(
            as_text=True
        )
    )

    assert [(b.mine, b.text) for b in bubbles] == [
        (False, "Valley: sorry we missed your call"),
        (True, "my bill is wrong"),
    ]
    assert "my bill is wrong" in fragment and "still queued" not in fragment


def test_simulator_thread_shows_what_the_front_desk_wrote(
    client: FlaskClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # A staff reply's words are kept only encrypted (its body is ""): the patient's phone
    # showed an empty bubble with a time, and the reply never seemed to arrive.
    cipher = PhiCipher.from_settings(settings)
    with sessions.begin() as session:
        line = next(ln for ln in simulator.practice_lines(session) if ln.number == LINE)
        session.add(
            Message(
                practice_id=1,
                created_at=utcnow(),
                kind="staff_reply",
                direction=Direction.OUTBOUND,
                from_number=LINE,
                to_number="+15125550133",
                body="",
                body_ciphertext=cipher.encrypt("Were you calling about Tuesday?"),
                status=MessageStatus.ACCEPTED,
            )
        )

    with sessions() as session:
        bubbles = simulator.thread(session, cipher, line, "+15125550133")
    fragment = html.unescape(
        client.get("/simulator/thread?line=%2B15125550100&phone=%2B15125550133").get_data(
            as_text=True
        )
    )

    assert [(b.mine, b.text) for b in bubbles] == [(False, "Were you calling about Tuesday?")]
    assert "Were you calling about Tuesday?" in fragment


def test_a_link_in_a_text_on_the_simulated_phone_can_be_tapped(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    # A clinician's page holds the page link, a BOOK answer the booking link: as plain
    # text they had to be copied out of the bubble into the address bar.
    with sessions.begin() as session:
        session.add(
            Message(
                practice_id=1,
                created_at=utcnow(),
                kind="page",
                direction=Direction.OUTBOUND,
                from_number=LINE,
                to_number="+15125550133",
                body="Ref 8930. <b>Details</b> (login): http://127.0.0.1:5000/p/8930.",
                status=MessageStatus.ACCEPTED,
            )
        )

    fragment = client.get("/simulator/thread?line=%2B15125550100&phone=%2B15125550133").get_data(
        as_text=True
    )

    assert (
        '<a href="http://127.0.0.1:5000/p/8930" target="_blank" rel="noopener noreferrer">'
        "http://127.0.0.1:5000/p/8930</a>." in fragment
    )
    assert "&lt;b&gt;Details&lt;/b&gt;" in fragment and "<b>" not in fragment


def test_the_simulator_shows_the_way_to_the_on_call_clinicians_phone(
    client: FlaskClient,
) -> None:
    # An URGENT reply pages someone, and nothing said where to watch it arrive: a new user
    # had to guess to type the clinician's number as "your phone number".
    page = text_of(client.get("/simulator?line=%2B15125550100&phone=%2B15125550199"))

    assert (
        "An urgent reply pages Dr. Rivera first, at (512) 555-0111: see Dr. Rivera's phone to "
        "open the page link and take it." in re.sub(r"<[^>]+>", "", page)
    )
    assert (
        '<a href="/simulator?line=%2B15125550100&phone=%2B15125550111">'
        "see Dr. Rivera's phone</a>" in page
    )
    # On Dr. Rivera's own phone it is not offered again.
    mine = text_of(client.get("/simulator?line=%2B15125550100&phone=%2B15125550111"))
    assert "see Dr. Rivera's phone" not in mine


def test_simulator_pages_may_run_our_own_script_and_no_other(client: FlaskClient) -> None:
    policy = client.get("/simulator").headers["Content-Security-Policy"]

    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "script-src" not in client.get("/login").headers["Content-Security-Policy"]


def test_a_reply_goes_to_the_line_the_number_called_last(
    sessions: sessionmaker[Session], world: Scenario
) -> None:
    with sessions() as session:
        assert simulator.line_called_last(session, scenario.OTHER_CALLER) == scenario.OTHER_LINE
        assert simulator.line_called_last(session, scenario.BILLING_CALLER) == LINE
        assert simulator.line_called_last(session, "+15125559999") is None


# --- `recovery simulate` finds the running server ----------------------------------------


def test_run_on_another_port_moves_a_local_base_url_but_keeps_a_public_one() -> None:
    assert local_base_url("http://127.0.0.1:5000", 5001) == "http://127.0.0.1:5001"
    assert local_base_url("http://localhost:5000", 8080) == "http://127.0.0.1:8080"
    assert local_base_url("https://abc.ngrok.app", 5001) == "https://abc.ngrok.app"


def test_simulate_uses_the_base_url_of_the_running_server(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, RECOVERY_VAR_DIR=tmp_path)  # type: ignore[call-arg]
    assert running_settings(settings).public_base_url == "http://127.0.0.1:5000"

    write_server_file(settings, "http://127.0.0.1:5077")  # this process stands in for `run`

    assert running_settings(settings).public_base_url == "http://127.0.0.1:5077"
    (tmp_path / "server.json").write_text('{"public_base_url": "http://x", "pid": 999999999}')
    assert running_settings(settings).public_base_url == "http://127.0.0.1:5000"
