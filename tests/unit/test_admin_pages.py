"""Administration in the browser: invitations with one-time links, roles, deactivation,
the on-call roster and saved replies; managers for their practice only."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import AuditEvent, Message, Practice, Role, SavedReply, User
from recovery.schemas.practices import read_practices
from recovery.services.practices import load_practices
from tests.conftest import PRACTICES_FILE
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.conftest import RecordingDispatcher
from tests.unit.test_staff_pages import csrf, sign_in, text_of

MANAGER = "boss@valley.example"


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    built = scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())
    scenario.add_manager(sessions, built.users, MANAGER)
    return built


def _user(sessions: sessionmaker[Session], email: str) -> User:
    with sessions() as session:
        return session.scalars(select(User).where(User.email == email)).one()


def test_front_desk_and_clinicians_cannot_open_administration(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, world.users.desk)

    assert "Admin" not in text_of(client.get("/tasks")).split("</nav>")[0]
    for path in ("/admin/users", "/admin/roster", "/admin/replies"):
        assert client.get(path).status_code == 403


def test_manager_invites_a_user_who_sets_a_password_once_and_signs_in(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    dispatcher: RecordingDispatcher,
) -> None:
    token = sign_in(client, MANAGER)

    page = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "name": "Sam New",
            "email": "Sam@Valley.example",
            "role": "clinician",
            "phone": "(512) 555-0177",
        },
    )

    assert page.status_code == 200
    link = re.search(r"https://recovery\.example\.com(/set-password/[\w-]+)", text_of(page))
    assert link is not None
    new = _user(sessions, "sam@valley.example")
    assert new.role is Role.CLINICIAN and new.active
    with sessions() as session:
        texted = session.scalars(select(Message).where(Message.kind == "invite")).one()
    assert texted.to_number == "+15125550177" and link.group(1) in texted.body
    # The number as the manager typed it and reads it everywhere else, not E.164.
    assert "Also texted to (512) 555-0177." in re.sub(r"<[^>]+>", "", text_of(page))
    assert dispatcher.sent[-1] == texted.id

    other = client.application.test_client()
    form = other.get(link.group(1))
    assert form.status_code == 200 and "sam@valley.example" in text_of(form)
    done = other.post(
        link.group(1),
        data={
            "csrf_token": csrf(other),
            "password": "a fine new pass",
            "confirm": "a fine new pass",
        },
    )
    assert done.status_code == 302
    # The sign-in page it lands on has their address filled in, once.
    assert 'value="sam@valley.example"' in text_of(other.get(done.location))
    assert 'value="sam@valley.example"' not in text_of(other.get("/login"))
    # Hashed as every password is (argon2id), not upgraded later at the first sign-in.
    assert _user(sessions, "sam@valley.example").password_hash.startswith("$argon2id$")
    assert other.get(link.group(1)).status_code == 404  # once only
    sign_in(other, "sam@valley.example", "a fine new pass")
    assert other.get("/tasks").status_code == 200


def test_an_invited_user_cannot_sign_in_before_choosing_a_password(
    client: FlaskClient, world: Scenario
) -> None:
    token = sign_in(client, MANAGER)
    client.post(
        "/admin/users",
        data={"csrf_token": token, "name": "X", "email": "x@valley.example", "role": "staff"},
    )
    other = client.application.test_client()
    response = other.post(
        "/login", data={"email": "x@valley.example", "password": "!", "csrf_token": csrf(other)}
    )
    assert response.status_code == 401


def test_manager_changes_a_role_and_deactivates_a_user_audited(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)
    desk = _user(sessions, world.users.desk)

    client.post(f"/admin/users/{desk.id}/role", data={"csrf_token": token, "role": "clinician"})
    client.post(f"/admin/users/{desk.id}/active", data={"csrf_token": token, "active": "0"})

    desk = _user(sessions, world.users.desk)
    assert desk.role is Role.CLINICIAN and not desk.active
    with sessions() as session:
        actions = [
            e.action
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.detail.startswith(f"user {desk.id}")
        ]
    assert actions == ["change_role", "deactivate_user"]


def test_a_manager_cannot_touch_another_practices_users_nor_make_an_admin(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)
    other = _user(sessions, world.users.other)

    assert (
        client.post(f"/admin/users/{other.id}/active", data={"csrf_token": token}).status_code
        == 404
    )
    assert (
        client.post(
            f"/admin/users/{other.id}/role", data={"csrf_token": token, "role": "staff"}
        ).status_code
        == 404
    )
    assert "Olga Other" not in text_of(client.get("/admin/users?practice=always-open"))
    page = client.post(
        "/admin/users",
        data={"csrf_token": token, "name": "Eve", "email": "eve@x.example", "role": "admin"},
    )
    assert page.status_code == 400
    assert _user(sessions, world.users.other).active


def test_roster_edit_reorders_adds_and_removes_and_the_file_no_longer_overrides_it(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)
    page = text_of(client.get("/admin/roster"))
    assert "Dr. Rivera" in page and "Nurse Lee" in page

    client.post(
        "/admin/roster",
        data={
            "csrf_token": token,
            "name": ["Dr. Rivera", "Nurse Lee", "Dr. New"],
            "phone": ["+15125550111", "+15125550112", "512-555-0113"],
            "manager_name": "Pat Kim",
            "manager_phone": "+15125550120",
            "move": "down:0",
        },
    )
    with sessions() as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        assert [p["name"] for p in valley.on_call] == ["Nurse Lee", "Dr. Rivera", "Dr. New"]
        assert valley.on_call[2]["phone"] == "+15125550113"
    client.post(
        "/admin/roster",
        data={
            "csrf_token": token,
            "name": ["Nurse Lee", "Dr. Rivera", "Dr. New", ""],
            "phone": ["+15125550112", "+15125550111", "+15125550113", ""],
            "manager_name": "Pat Kim",
            "manager_phone": "+15125550120",
            "move": "remove:1",
        },
    )
    with session_scope(sessions) as session:
        load_practices(session, read_practices(PRACTICES_FILE))
    with sessions() as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        assert [p["name"] for p in valley.on_call] == ["Nurse Lee", "Dr. New"]
        edits = session.scalars(select(AuditEvent).where(AuditEvent.action == "edit_roster")).all()
        assert len(edits) == 2 and "+1512" not in edits[0].detail


def test_roster_shows_numbers_as_people_write_them_and_saving_them_keeps_e164(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)
    html = client.get("/admin/roster").get_data(as_text=True)
    shown = re.findall(r'name="phone" value="([^"]*)"', html)
    assert shown[:2] == ["(512) 555-0111", "(512) 555-0112"]

    # Saved as shown: the numbers stay what they were.
    client.post(
        "/admin/roster",
        data={"csrf_token": token, "name": ["Dr. Rivera", "Nurse Lee", ""], "phone": shown},
    )
    with sessions() as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        assert [p["phone"] for p in valley.on_call] == ["+15125550111", "+15125550112"]


def test_roster_refuses_an_empty_list_and_a_bad_number(
    client: FlaskClient, world: Scenario
) -> None:
    token = sign_in(client, MANAGER)

    empty = client.post("/admin/roster", data={"csrf_token": token, "name": [""], "phone": [""]})
    bad = client.post(
        "/admin/roster", data={"csrf_token": token, "name": ["Dr. X"], "phone": ["12"]}
    )

    assert empty.status_code == 400 and "at least one person" in text_of(empty)
    assert bad.status_code == 400 and "is not a phone number" in text_of(bad)


def test_saved_replies_use_the_template_allow_list(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)

    ok = client.post(
        "/admin/replies",
        data={
            "csrf_token": token,
            "title": "Call us",
            "body": "{{ practice_name }}: please call us at {{ practice_phone }}.",
        },
    )
    leaky = client.post(
        "/admin/replies",
        data={"csrf_token": token, "title": "Leak", "body": "{{ practice_name }} {{ patient }}"},
    )
    anonymous = client.post(
        "/admin/replies", data={"csrf_token": token, "title": "Anon", "body": "call us"}
    )

    assert ok.status_code == 302
    assert leaky.status_code == 400 and "uses patient" in text_of(leaky)
    assert anonymous.status_code == 400 and "must name the practice" in text_of(anonymous)
    with sessions() as session:
        assert [r.title for r in session.scalars(select(SavedReply))] == ["Call us"]


def test_a_manager_runs_a_fire_drill_from_the_roster_and_reads_who_answered(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    dispatcher: RecordingDispatcher,
) -> None:
    from recovery.models import Episode, Page, Task
    from tests.unit.test_replies import reply

    with sessions() as session:
        before = [session.query(m).count() for m in (Episode, Page, Task)]
    token = sign_in(client, MANAGER)
    assert "Run a fire drill" in text_of(client.get("/admin/roster"))

    started = client.post("/admin/roster/drill", data={"csrf_token": token})

    assert started.status_code == 302
    drill_path = started.headers["Location"]
    assert re.fullmatch(r"/admin/drills/\d+", drill_path)
    with sessions() as session:
        texts = session.scalars(select(Message).where(Message.kind == "page_drill")).all()
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "run_drill")).one()
    assert sorted(t.to_number for t in texts) == ["+15125550111", "+15125550112"]
    assert sorted(dispatcher.sent[-2:]) == sorted(t.id for t in texts)
    code = re.search(r"ACK (T\d{4})", texts[0].body)
    assert code is not None and audit.detail == f"drill {code.group(1)}"
    page = text_of(client.get(drill_path))
    assert "TEST" in page and f"Fire drill {code.group(1)}" in page
    assert "0 of 2 answered" in page and "Waiting" in page

    reply(sessions, templates, f"ACK {code.group(1)}", utcnow(), sender="+15125550112")

    page = text_of(client.get(drill_path))
    assert "1 of 2 answered" in page
    row = page.split("Nurse Lee", 1)[1].split("</tr>", 1)[0]
    assert re.search(r"\d+ s", row)
    # The roster lists it; no episode, page or task was made.
    assert f"Drill {code.group(1)}" in text_of(client.get("/admin/roster"))
    with sessions() as session:
        assert [session.query(m).count() for m in (Episode, Page, Task)] == before


def test_only_managers_run_or_read_drills(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)
    client.post("/admin/roster/drill", data={"csrf_token": token})
    with sessions() as session:
        from recovery.models import Drill

        drill = session.scalars(select(Drill)).one()
    desk = client.application.test_client()
    desk_token = sign_in(desk, world.users.desk)

    assert desk.post("/admin/roster/drill", data={"csrf_token": desk_token}).status_code == 403
    assert desk.get(f"/admin/drills/{drill.id}").status_code == 403
    assert client.get("/admin/drills/99999").status_code == 404
    with sessions() as session:
        assert session.query(Drill).count() == 1


def test_saved_replies_read_as_sent_and_edit_with_the_same_checks(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)
    client.post(
        "/admin/replies",
        data={"csrf_token": token, "title": "Call us", "body": "{{ practice_name }}: call us."},
    )
    with sessions() as session:
        reply_id = session.scalars(select(SavedReply.id)).one()

    page = text_of(client.get("/admin/replies"))
    assert "Valley Family Clinic: call us." in page  # the preview, as the patient gets it
    assert "{{ practice_name }}: call us." in page  # the template, in its edit form
    assert "aria-label=\"Remove saved reply 'Call us'\"" in page

    leaky = client.post(
        f"/admin/replies/{reply_id}/edit",
        data={"csrf_token": token, "title": "Call us", "body": "{{ practice_name }} {{ patient }}"},
    )
    same = client.post(
        f"/admin/replies/{reply_id}/edit",
        data={"csrf_token": token, "title": "Call us", "body": "{{ practice_name }}: call us."},
    )
    edited = client.post(
        f"/admin/replies/{reply_id}/edit",
        data={"csrf_token": token, "title": "Call back", "body": "{{ practice_name }}: call."},
    )

    assert leaky.status_code == 400 and "uses patient" in text_of(leaky)
    assert "{{ practice_name }} {{ patient }}" in text_of(leaky)  # kept, in the open row
    assert same.status_code == edited.status_code == 302
    with sessions() as session:
        row = session.get(SavedReply, reply_id)
        assert row is not None and (row.title, row.body) == (
            "Call back",
            "{{ practice_name }}: call.",
        )
        edits = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.detail.like(f"%edited {reply_id}"))
        ).all()
    assert len(edits) == 1  # the unchanged save is not a change


def test_a_desk_cannot_edit_a_saved_reply(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, MANAGER)
    client.post(
        "/admin/replies",
        data={"csrf_token": token, "title": "Call us", "body": "{{ practice_name }}: call us."},
    )
    with sessions() as session:
        reply_id = session.scalars(select(SavedReply.id)).one()
    client.post("/logout", data={"csrf_token": token})
    desk = sign_in(client, world.users.desk)

    refused = client.post(
        f"/admin/replies/{reply_id}/edit",
        data={"csrf_token": desk, "title": "Mine", "body": "{{ practice_name }} hi"},
    )

    assert refused.status_code == 403
    with sessions() as session:
        assert session.get(SavedReply, reply_id).title == "Call us"  # type: ignore[union-attr]
