"""The JSON API and `recovery tokens` / `recovery report`: bearer tokens, one practice
per token, bad input, and the figures under the keys the issue names."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import main
from recovery.config import Settings
from recovery.models import ApiToken, AuditEvent, EpisodeOutcome
from recovery.services.reports import CSV_COLUMNS
from recovery.services.tokens import create_token, hash_token
from tests.unit.test_reports import add_episode, at, practice_id

REPORT = "/api/reports/recovery?practice=valley-family&from=2026-11-23&to=2026-11-29"
ISSUE_KEYS = {
    "missed_calls",
    "recovered",
    "recovery_rate",
    "booked",
    "resolved",
    "escalated",
    "opted_out",
    "unrecovered",
    "open",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "ttft_max_ms",
    "self_scheduling_conversion",
    "revenue_recovered",
}


@pytest.fixture
def token(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        return create_token(
            session, practice_slug="valley-family", name="BI", now=datetime.now(UTC)
        ).token


@pytest.fixture
def week(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        valley = practice_id(s, "valley-family")
        add_episode(
            s, valley, at("2026-11-23 09:15"), EpisodeOutcome.BOOKED, intent="book", ttft=400
        )
        add_episode(s, valley, at("2026-11-24 10:00"), EpisodeOutcome.UNRECOVERED, ttft=800)
        add_episode(s, valley, at("2026-11-30 00:30"), EpisodeOutcome.BOOKED, ttft=100)  # after
        add_episode(s, practice_id(s, "always-open"), at("2026-11-24 10:00"), None, ttft=100)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_report_answers_the_issues_keys_with_the_hand_counted_figures(
    client: FlaskClient, token: str, week: None
) -> None:
    response = client.get(REPORT, headers=bearer(token))

    assert response.status_code == 200
    body = response.get_json()
    assert body.keys() >= ISSUE_KEYS
    assert (body["missed_calls"], body["booked"], body["unrecovered"]) == (2, 1, 1)
    assert (body["recovered"], body["recovery_rate"], body["revenue_recovered"]) == (1, 0.5, 180)
    assert (body["ttft_p50_ms"], body["ttft_max_ms"]) == (600, 800)
    assert body["self_scheduling_conversion"] == 1.0
    assert (body["from"], body["to"], body["timezone"]) == (
        "2026-11-23",
        "2026-11-29",
        "America/Chicago",
    )
    assert body["previous"]["from"] == "2026-11-16"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "send Authorization: Bearer"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "must be: Bearer"),
        ({"Authorization": "Bearer rcv_not-a-token"}, "unknown or was revoked"),
    ],
)
def test_a_missing_or_wrong_token_gets_401_with_a_reason(
    client: FlaskClient, headers: dict[str, str], reason: str
) -> None:
    for path in (REPORT, "/api/episodes.csv?from=2026-11-23&to=2026-11-29"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert reason in response.get_json()["reason"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_stops_working_at_once(
    client: FlaskClient, token: str, sessions: sessionmaker[Session]
) -> None:
    assert client.get(REPORT, headers=bearer(token)).status_code == 200
    with sessions.begin() as session:
        row = session.scalars(select(ApiToken)).one()
        row.revoked_at = datetime.now(UTC)

    assert client.get(REPORT, headers=bearer(token)).status_code == 401


def test_a_token_reaches_only_its_own_practice(client: FlaskClient, token: str) -> None:
    other = REPORT.replace("valley-family", "always-open")
    nowhere = REPORT.replace("valley-family", "no-such-practice")

    for path in (other, nowhere, other.replace("/reports/recovery", "/episodes.csv")):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 404
        assert response.get_json()["error"] == "not found"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("from=2026-11-23", "to is missing"),
        ("from=23/11/2026&to=2026-11-29", "not a date as YYYY-MM-DD"),
        ("from=2026-11-29&to=2026-11-23", "before it starts"),
        ("from=2020-01-01&to=2026-11-23", "at most 800"),
    ],
)
def test_bad_dates_get_400_with_the_reason(
    client: FlaskClient, token: str, query: str, reason: str
) -> None:
    response = client.get(f"/api/reports/recovery?{query}", headers=bearer(token))

    assert response.status_code == 400
    assert reason in response.get_json()["reason"]


def test_the_csv_streams_the_ranges_episodes_and_every_read_is_audited(
    client: FlaskClient, token: str, week: None, sessions: sessionmaker[Session]
) -> None:
    response = client.get(
        "/api/episodes.csv?practice=valley-family&from=2026-11-23&to=2026-11-29",
        headers=bearer(token),
    )

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[7] for r in rows[1:]] == ["booked", "unrecovered"]
    assert rows[1][2] == "2026-11-23T09:15:00-06:00"
    client.get(REPORT, headers=bearer(token))
    with sessions() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        token_id = session.scalars(select(ApiToken.id)).one()
    assert [(e.action, e.api_token_id, e.user_id) for e in events] == [
        ("export_episodes", token_id, None),
        ("view_report", token_id, None),
    ]


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    monkeypatch.chdir(settings.var_dir.parent)  # no developer's .env


def test_tokens_create_prints_it_last_stores_a_hash_and_is_audited(
    cli_env: None, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    made = CliRunner().invoke(
        main, ["tokens", "create", "--practice", "valley-family", "--name", "Looker"]
    )

    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    assert token.startswith("rcv_") and len(token) > 40
    with sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash == hash_token(token) and token not in row.token_hash
        audited = session.scalars(select(AuditEvent.detail)).all()
    assert audited and audited[0].startswith(f"tokens create {row.id} for valley-family by ")
    assert client.get(REPORT, headers=bearer(token)).status_code == 200

    listed = CliRunner().invoke(main, ["tokens", "list"])
    assert "Looker" in listed.output and token[:12] in listed.output and token not in listed.output
    revoked = CliRunner().invoke(main, ["tokens", "revoke", str(row.id)])
    assert revoked.exit_code == 0
    assert "revoked" in CliRunner().invoke(main, ["tokens", "list"]).output
    assert client.get(REPORT, headers=bearer(token)).status_code == 401
    with sessions() as session:
        assert (
            len(session.scalars(select(AuditEvent).where(AuditEvent.action == "cli_change")).all())
            == 2
        )


def test_tokens_create_for_no_such_practice_fails_and_writes_nothing(
    cli_env: None, sessions: sessionmaker[Session]
) -> None:
    made = CliRunner().invoke(main, ["tokens", "create", "--practice", "nope", "--name", "x"])

    assert made.exit_code != 0 and "no practice 'nope'" in made.output
    with sessions() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_recovery_report_prints_the_same_figures_as_the_api(
    cli_env: None, client: FlaskClient, token: str, week: None
) -> None:
    args = ["report", "--practice", "valley-family", "--from", "2026-11-23", "--to", "2026-11-29"]
    as_json = CliRunner().invoke(main, [*args, "--json"])
    text = CliRunner().invoke(main, args)

    assert as_json.exit_code == 0, as_json.output
    figures = json.loads(as_json.output)
    api = client.get(REPORT, headers=bearer(token)).get_json()
    assert figures == api
    assert "missed calls" in text.output and "50.0%" in text.output and "$180" in text.output
    backwards = CliRunner().invoke(main, [*args[:5], "--to", "2026-11-01"])
    assert backwards.exit_code != 0 and "before it starts" in backwards.output
