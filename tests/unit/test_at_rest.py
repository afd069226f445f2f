"""What patients and staff write, and what phone systems say about a caller, is stored
encrypted: red-flag evidence, task notes, raw payloads; the pages still read it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import SEALED_FIELD, PhiCipher, legacy_key, open_payload
from recovery.db import make_engine, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import CallEvent, Message
from recovery.services.keys import rotate
from recovery.services.replies import handle_reply, record_inbound
from tests.conftest import PHI_KEY, load_form, twilio_signature
from tests.e2e import scenario
from tests.unit.conftest import PUBLIC_BASE_URL
from tests.unit.test_staff_pages import sign_in, text_of

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
LINE = "+15125550100"
PATIENT = "+15125550177"
DIAL = "/webhooks/twilio/voice/dial-status"


def raw(sessions: sessionmaker[Session], sql: str) -> list[tuple[object, ...]]:
    """Rows as the database holds them (what a stolen copy shows)."""
    with sessions() as session:
        return [tuple(r) for r in session.execute(text(sql)).all()]


def test_red_flag_evidence_is_stored_encrypted_and_not_logged(
    settings: Settings,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cipher = PhiCipher.from_settings(settings)
    with sessions.begin() as session:
        inbound = record_inbound(
            session,
            cipher,
            provider_sid="SM" + "1" * 32,
            from_raw=PATIENT,
            to_raw=LINE,
            body="crushing chest pain and my left arm is numb",
            now=utcnow(),
        )
    assert inbound.message_id is not None
    with caplog.at_level(logging.DEBUG), sessions.begin() as session:
        handle_reply(
            session,
            templates,
            cipher,
            inbound.message_id,
            now=utcnow(),
            public_base_url=PUBLIC_BASE_URL,
        )

    [(intent, stored)] = raw(
        sessions, "SELECT intent, intent_evidence FROM messages WHERE direction = 'inbound'"
    )
    assert intent == "urgent"
    assert isinstance(stored, str) and "chest" not in stored and "red_flag" not in stored
    assert cipher.decrypt(stored).startswith("red_flag:")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "urgent (red_flag)" in logged and "chest" not in logged


def test_a_task_note_is_stored_encrypted_and_shown_on_the_board_and_the_timeline(
    client: FlaskClient,
    settings: Settings,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
) -> None:
    world = scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())
    token = sign_in(client, world.users.desk)

    done = client.post(
        f"/tasks/{world.billing_task_id}/complete",
        data={"csrf_token": token, "note": "Explained the copay for her MRI.", "next": "/tasks"},
    )

    assert done.status_code == 302
    [(stored,)] = raw(sessions, f"SELECT note FROM tasks WHERE id = {world.billing_task_id}")  # noqa: S608
    assert isinstance(stored, str) and "MRI" not in stored
    assert PhiCipher([PHI_KEY]).decrypt(stored) == "Explained the copay for her MRI."
    [(kept,)] = raw(sessions, "SELECT task_note FROM undoable_actions")
    assert kept is None  # Undo keeps the note from before Complete: none
    assert "Explained the copay for her MRI." in text_of(client.get("/tasks"))
    timeline = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "Explained the copay for her MRI." in timeline


def test_a_raw_payload_keeps_ids_in_the_clear_and_seals_the_callers_number_and_name(
    client: FlaskClient, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/voice-dial-action-no-answer.form")
    form["CallerName"] = "JANE DOE"
    signature = twilio_signature(PUBLIC_BASE_URL + DIAL, form)

    answer = client.post(DIAL, data=form, headers={"X-Twilio-Signature": signature})

    assert answer.status_code == 200
    [(stored,)] = raw(sessions, "SELECT raw_payload FROM call_events")
    as_text = stored if isinstance(stored, str) else json.dumps(stored)
    assert "5125550199" not in as_text and "JANE" not in as_text and "78704" not in as_text
    payload = json.loads(as_text)
    assert payload["DialCallSid"] == form["DialCallSid"] and payload["To"] == LINE
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert open_payload(PhiCipher.from_settings(settings), call.raw_payload) == form


def test_keys_rotate_reaches_evidence_notes_and_payloads(
    settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    old = PhiCipher([legacy_key(settings.secret_key)])
    world = scenario.build(sessions, templates, old, utcnow())
    with sessions.begin() as session:
        for message in session.scalars(select(Message).where(Message.intent_evidence.is_not(None))):
            message.intent_evidence = old.encrypt("red_flag:chest pain")
        session.execute(
            text(f"UPDATE tasks SET note = :n WHERE id = {world.billing_task_id}"),  # noqa: S608
            {"n": old.encrypt("called her back")},
        )
        for call in session.scalars(select(CallEvent)):
            call.raw_payload = {
                "CallSid": "CA1",
                SEALED_FIELD: old.encrypt('{"From": "+15125550177"}'),
            }

    report = rotate(sessions, PhiCipher.from_settings(settings), batch_size=3)

    assert report.unreadable == 0 and report.rotated > 0
    new_only = PhiCipher([PHI_KEY])
    with sessions() as session:
        assert all(
            new_only.decrypt(e) == "red_flag:chest pain"
            for e in session.scalars(
                select(Message.intent_evidence).where(Message.intent_evidence.is_not(None))
            )
        )
        assert {
            open_payload(new_only, c.raw_payload)["From"]
            for c in session.scalars(select(CallEvent))
        } == {"+15125550177"}
    [(note,)] = raw(sessions, f"SELECT note FROM tasks WHERE id = {world.billing_task_id}")  # noqa: S608
    assert new_only.decrypt(str(note)) == "called her back"


def _alembic(url: str, settings: Settings | None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    config.attributes["settings"] = settings
    return config


def _plaintext_rows_before_the_migration(url: str) -> None:
    command.upgrade(_alembic(url, None), "e5c11a2b3d04")
    engine = make_engine(url)
    with engine.begin() as connection:
        # Plain SQL: the models are at head, and the practices table has grown since.
        practice = connection.execute(
            text(
                "INSERT INTO practices (slug, name, timezone, ring_timeout_s, hours,"
                " holidays, visit_value, on_call, blocked_numbers, episode_window_h,"
                " billing_sla_h, refill_sla_h, refill_cutoff, ack_timeout_s,"
                " reply_window_h, nudge_after_h, quiet_hours, created_at) VALUES"
                " ('valley-family', 'Valley', 'America/Chicago', 20, '{}', '[]', 0, '[]',"
                " '[]', 12, 4, 2, '15:00', 300, 24, 4, '21:00-08:00', '2026-12-01 09:00:00')"
                " RETURNING id"
            )
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO messages (practice_id, direction, kind, from_number, to_number, body,"
                " status, attempts, intent, intent_evidence, created_at) VALUES (:p, 'inbound',"
                " 'reply', :f, :t, '', 'routed', 0, 'urgent', 'red_flag:chest pain',"
                " '2026-12-01 10:00:00')"
            ),
            {"p": practice, "f": PATIENT, "t": LINE},
        )
        connection.execute(
            text(
                "INSERT INTO call_events (practice_id, provider, provider_call_id, caller,"
                " caller_raw, called, disposition, reason, occurred_at, received_at, raw_payload)"
                " VALUES (:p, 'twilio', 'CA1', :f, :f, :t, 'missed', 'no-answer',"
                " '2026-12-01 10:00:00', '2026-12-01 10:00:00', :payload)"
            ),
            {
                "p": practice,
                "f": PATIENT,
                "t": LINE,
                "payload": json.dumps({"CallSid": "CA1", "From": PATIENT}),
            },
        )
    engine.dispose()


def test_the_migration_encrypts_existing_plaintext_rows(tmp_path: Path, settings: Settings) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _plaintext_rows_before_the_migration(url)

    command.upgrade(_alembic(url, settings), "head")

    engine = make_engine(url)
    with engine.connect() as connection:
        evidence = connection.execute(text("SELECT intent_evidence FROM messages")).scalar_one()
        payload = connection.execute(text("SELECT raw_payload FROM call_events")).scalar_one()
    engine.dispose()
    cipher = PhiCipher([PHI_KEY])
    assert "chest" not in evidence and cipher.decrypt(evidence) == "red_flag:chest pain"
    assert PATIENT not in payload
    assert open_payload(cipher, json.loads(payload)) == {"CallSid": "CA1", "From": PATIENT}


def test_the_migration_refuses_rows_to_encrypt_without_a_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _plaintext_rows_before_the_migration(url)
    keyless = Settings(_env_file=None, DATABASE_URL=url)  # type: ignore[call-arg]

    with pytest.raises(ValueError, match="PHI_ENCRYPTION_KEYS"):
        command.upgrade(_alembic(url, keyless), "head")

    engine = make_engine(url)
    with engine.connect() as connection:
        evidence = connection.execute(text("SELECT intent_evidence FROM messages")).scalar_one()
    engine.dispose()
    assert evidence == "red_flag:chest pain"  # nothing half-done: the transaction rolled back
