"""Each practice signs its own webhooks, and what it signs acts on it alone.

The test practices (tests/fixtures/practices.yaml) each have their own secret
(tests.conftest.give_practices_secrets); valley-family's signs generic_request by default.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import main
from recovery.config import Settings
from recovery.db import session_scope
from recovery.models import AuditEvent, CallEvent, Episode, EpisodeOutcome, Message, Practice
from recovery.services.webhook_secrets import ROTATION_GRACE, signers
from recovery.web import create_app
from tests.conftest import WEBHOOK_SECRET, generic_request, practice_secret
from tests.unit.conftest import RecordingDispatcher

GENERIC = "/webhooks/calls/missed"
BOOKINGS = "/webhooks/bookings"
VALLEY_LINE = "+15125550100"
ALWAYS_OPEN_LINE = "+16175550100"  # always-open's number


def call(to: str, call_id: str = "pbx-tenant-1") -> dict[str, Any]:
    return {
        "call_id": call_id,
        "from": "+15125550177",
        "to": to,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def post(client: FlaskClient, path: str, payload: dict[str, Any], secret: str) -> Any:
    body, headers = generic_request(payload, secret=secret)
    return client.post(path, data=body, headers=headers)


def counts(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(m)) or 0
            for m in (CallEvent, Message, Episode)
        )


def episode_with_token(sessions: sessionmaker[Session], slug: str, token: str) -> int:
    with session_scope(sessions) as session:
        practice = session.scalars(select(Practice).where(Practice.slug == slug)).one()
        now = datetime.now(UTC)
        episode = Episode(
            practice_id=practice.id,
            caller="+15125550199",
            opened_at=now,
            last_call_at=now,
            booking_token=token,
        )
        session.add(episode)
        session.flush()
        return episode.id


def outcome(sessions: sessionmaker[Session], episode_id: int) -> EpisodeOutcome | None:
    with sessions() as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        return episode.outcome


def test_a_practice_secret_records_a_call_to_its_own_number(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    response = post(client, GENERIC, call(VALLEY_LINE), practice_secret("valley-family"))
    assert response.status_code == 200, response.data
    assert counts(sessions) == (1, 1, 1)


def test_one_practices_secret_cannot_report_a_call_to_another_practice(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    response = post(client, GENERIC, call(ALWAYS_OPEN_LINE), practice_secret("valley-family"))

    assert response.status_code == 404
    assert response.json is not None and "no practice owns" in response.json["reason"]
    assert counts(sessions) == (0, 0, 0)
    # ...and the owner's own secret can.
    ok = post(client, GENERIC, call(ALWAYS_OPEN_LINE), practice_secret("always-open"))
    assert ok.status_code == 200, ok.data


def test_one_practices_secret_cannot_book_another_practices_episode(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    theirs = episode_with_token(sessions, "always-open", "their-token")

    by_ref = post(client, BOOKINGS, {"ref": "their-token"}, practice_secret("valley-family"))
    by_phone = post(
        client,
        BOOKINGS,
        {"practice": "always-open", "phone": "+15125550199"},
        practice_secret("valley-family"),
    )

    assert by_ref.status_code == by_phone.status_code == 404
    assert outcome(sessions, theirs) is None
    with sessions() as session:
        stored = session.get(Episode, theirs)
        assert stored is not None and stored.booking_confirmed_at is None
    ok = post(client, BOOKINGS, {"ref": "their-token"}, practice_secret("always-open"))
    assert ok.json is not None and ok.json["status"] == "booked"
    assert outcome(sessions, theirs) is EpisodeOutcome.BOOKED


def test_the_install_wide_secret_is_refused_where_there_are_several_practices(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    theirs = episode_with_token(sessions, "always-open", "shared-token")

    refused = post(client, GENERIC, call(VALLEY_LINE), WEBHOOK_SECRET)
    booking = post(client, BOOKINGS, {"ref": "shared-token"}, WEBHOOK_SECRET)

    assert refused.status_code == booking.status_code == 403
    assert refused.json is not None
    assert "single-practice install" in refused.json["reason"]
    assert "recovery practices secret" in refused.json["reason"]
    assert counts(sessions) == (0, 0, 1)
    assert outcome(sessions, theirs) is None


def test_the_install_wide_secret_works_for_every_practice_when_the_operator_says_so(
    settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: RecordingDispatcher,
    throttle: Any,
) -> None:
    shared = settings.model_copy(update={"webhook_secret_all_practices": True})
    client = create_app(shared, sessions=sessions, dispatcher=dispatcher, throttle=throttle)
    response = post(client.test_client(), GENERIC, call(ALWAYS_OPEN_LINE), WEBHOOK_SECRET)
    assert response.status_code == 200, response.data


def test_the_install_wide_secret_works_on_a_single_practice_install(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        for practice in session.scalars(select(Practice).where(Practice.slug != "valley-family")):
            session.delete(practice)
    response = post(client, GENERIC, call(VALLEY_LINE), WEBHOOK_SECRET)
    assert response.status_code == 200, response.data
    assert counts(sessions) == (1, 1, 1)


def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    return CliRunner().invoke(main, ["practices", "secret", *args])


def cli_audit(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.detail)
                .where(AuditEvent.action == "cli_change")
                .order_by(AuditEvent.id)
            )
        )


def test_practices_secret_prints_the_secret_and_makes_one_if_missing(
    app: Flask,
    settings: Settings,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with session_scope(sessions) as session:
        session.scalars(
            select(Practice).where(Practice.slug == "never-open")
        ).one().webhook_secret = None

    shown = cli(settings, monkeypatch, tmp_path, "valley-family")
    made = cli(settings, monkeypatch, tmp_path, "never-open")
    again = cli(settings, monkeypatch, tmp_path, "never-open")

    assert shown.exit_code == made.exit_code == again.exit_code == 0, made.output
    assert shown.stdout.strip() == practice_secret("valley-family")
    secret = made.stdout.strip()
    assert secret.startswith("whsec_") and len(secret) == 6 + 64
    assert again.stdout.strip() == secret
    # The new secret signs for its practice at once.
    response = post(app.test_client(), GENERIC, call("+13035550100"), secret)
    assert response.status_code == 200, response.data
    [shown_audit, made_audit, again_audit] = cli_audit(sessions)
    assert shown_audit.startswith("practices secret valley-family shown by ")
    assert made_audit.startswith("practices secret never-open created by ")
    assert again_audit.startswith("practices secret never-open shown by ")
    assert secret not in "".join(cli_audit(sessions))


def test_an_unknown_practice_has_no_secret(
    settings: Settings,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    result = cli(settings, monkeypatch, tmp_path, "nobody")
    assert result.exit_code != 0 and "no practice nobody" in result.output


def test_rotating_keeps_the_old_secret_valid_for_a_day(
    app: Flask,
    settings: Settings,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    old = practice_secret("valley-family")
    rotated = cli(settings, monkeypatch, tmp_path, "valley-family", "--rotate")

    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert new != old and "previous secret works until" in rotated.stderr
    client = app.test_client()
    assert post(client, GENERIC, call(VALLEY_LINE, "c-new"), new).status_code == 200
    assert post(client, GENERIC, call(VALLEY_LINE, "c-old"), old).status_code == 200
    assert cli_audit(sessions)[-1].startswith("practices secret valley-family rotated by ")
    # A day later the old one signs for nobody; the new one still does.
    with sessions() as session:
        later = datetime.now(UTC) + ROTATION_GRACE + timedelta(minutes=1)
        valid = {
            s.secret for s in signers(session, shared_secret="", shared_for_all=False, now=later)
        }
    assert new in valid and old not in valid


def test_signing_needs_the_exact_body(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    body, headers = generic_request(call(VALLEY_LINE), secret=practice_secret("valley-family"))
    tampered = json.loads(body)
    tampered["to"] = ALWAYS_OPEN_LINE
    response = client.post(GENERIC, data=json.dumps(tampered).encode(), headers=headers)
    assert response.status_code == 403
    assert counts(sessions) == (0, 0, 0)
