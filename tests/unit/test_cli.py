"""The command line: check and load a practices file, migrate, write a first .env."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import ensure_dev_env, main, migrate
from recovery.config import Settings
from recovery.db import make_engine, make_session_factory
from recovery.models import Practice, PracticeNumber
from tests.conftest import PRACTICES_FILE


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # Away from the checkout's own .env, which Settings() would read.
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    migrate(Settings(_env_file=None, DATABASE_URL=url))  # type: ignore[call-arg]
    return url


def test_practices_check_lists_every_slug(runner: CliRunner) -> None:
    result = runner.invoke(main, ["practices", "check", str(PRACTICES_FILE)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok  valley-family",
        "ok  always-open",
        "ok  never-open",
    ]
    assert "+15125550100, +15125550101" in lines[0]


def test_practices_check_of_a_bad_file_names_the_practice_and_key(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        PRACTICES_FILE.read_text(encoding="utf-8").replace("America/Denver", "Moon/Crater"),
        encoding="utf-8",
    )

    result = runner.invoke(main, ["practices", "check", str(bad)])

    assert result.exit_code != 0
    assert "practice never-open: timezone:" in result.output
    assert "Moon/Crater" in result.output


def test_practices_check_of_a_missing_file_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["practices", "check", str(tmp_path / "missing.yaml")])

    assert result.exit_code != 0
    assert "No such file or directory" in result.output


def test_migrations_build_the_schema_on_sqlite(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

    assert {"practices", "practice_numbers", "call_events", "episodes", "messages"} <= tables
    assert "alembic_version" in tables


def test_practices_load_creates_then_updates(runner: CliRunner, database_url: str) -> None:
    first = runner.invoke(main, ["practices", "load", str(PRACTICES_FILE)])
    second = runner.invoke(main, ["practices", "load", str(PRACTICES_FILE)])

    assert first.exit_code == 0, first.output
    assert "3 new, 0 updated" in first.output
    assert second.exit_code == 0, second.output
    assert "0 new, 3 updated" in second.output
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(Practice)) == 3
            assert session.scalar(select(func.count()).select_from(PracticeNumber)) == 4
    finally:
        engine.dispose()


def test_practices_load_of_a_bad_file_changes_nothing(
    runner: CliRunner, database_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("practices:\n  - {slug: a, name: A, timezone: UTC, numbers: ['1']}\n")

    result = runner.invoke(main, ["practices", "load", str(bad)])

    assert result.exit_code != 0
    assert "practice a: numbers:" in result.output
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(Practice)) == 0
    finally:
        engine.dispose()


def test_ensure_dev_env_writes_fresh_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    path = tmp_path / ".env"

    ensure_dev_env(path)

    values = dict(
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    for key in ("SECRET_KEY", "WEBHOOK_SECRET", "TWILIO_AUTH_TOKEN"):
        assert len(values[key]) >= 32, key
    assert values["SECRET_KEY"] != values["WEBHOOK_SECRET"]
    settings = Settings(_env_file=path)  # type: ignore[call-arg]
    assert settings.webhook_secret == values["WEBHOOK_SECRET"]


def test_ensure_dev_env_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("SECRET_KEY=mine\nPHI_ENCRYPTION_KEYS=ours\n", encoding="utf-8")

    ensure_dev_env(path)

    assert path.read_text(encoding="utf-8") == "SECRET_KEY=mine\nPHI_ENCRYPTION_KEYS=ours\n"


def test_two_fresh_env_files_get_different_secrets(tmp_path: Path) -> None:
    ensure_dev_env(tmp_path / "one.env")
    ensure_dev_env(tmp_path / "two.env")

    assert (tmp_path / "one.env").read_text() != (tmp_path / "two.env").read_text()


def test_simulated_twilio_posts_carry_a_signature_the_app_accepts(
    settings: Settings, app: Flask, sessions: sessionmaker[Session]
) -> None:
    """simulate missed-call / reply sign like Twilio: replay the request into the real app."""
    from urllib.parse import parse_qsl

    import responses

    from recovery.cli import post_signed_form, post_twilio_dial_action

    client = app.test_client()

    def into_the_app(request):  # type: ignore[no-untyped-def]
        path = request.url.removeprefix("http://127.0.0.1:5999")
        answer = client.post(
            path, data=dict(parse_qsl(request.body)), headers=dict(request.headers)
        )
        return answer.status_code, {}, answer.data

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, re.compile(r"http://127\.0\.0\.1:5999/.*"), into_the_app)
        call = post_twilio_dial_action(
            settings, "http://127.0.0.1:5999", "CA" + "7" * 32, "+15125550177", "+15125550100"
        )
        sms = post_signed_form(
            settings,
            "http://127.0.0.1:5999",
            "/webhooks/twilio/sms",
            {
                "MessageSid": "SM" + "7" * 32,
                "From": "+15125550177",
                "To": "+15125550100",
                "Body": "BOOK",
            },
        )
    assert call.status_code == 200 and b"text message" in call.content
    assert sms.status_code == 200


def test_the_first_env_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"

    ensure_dev_env(env_file)

    assert env_file.stat().st_mode & 0o777 == 0o600
    assert "SECRET_KEY=" in env_file.read_text()


def test_run_repairs_secrets_and_local_data_left_readable_by_older_versions(
    tmp_path: Path,
) -> None:
    from recovery.cli import secure_local_files

    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=x\n")
    var = tmp_path / "var"
    (var / "broker").mkdir(parents=True)
    for name in ("recovery.db", "outbox.jsonl", "broker/queue.msg"):
        (var / name).write_text("patients")
        (var / name).chmod(0o644)
    env_file.chmod(0o644)
    var.chmod(0o755)

    secure_local_files(env_file, var)

    assert env_file.stat().st_mode & 0o777 == 0o600
    assert var.stat().st_mode & 0o777 == 0o700
    assert (var / "broker").stat().st_mode & 0o777 == 0o700
    for name in ("recovery.db", "outbox.jsonl", "broker/queue.msg"):
        assert (var / name).stat().st_mode & 0o777 == 0o600, name


def test_paging_drill_texts_the_roster_a_test_page_and_says_where_the_result_is(
    runner: CliRunner, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recovery.models import Drill, Message, Page

    monkeypatch.setenv("RECOVERY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://recovery.example.com")
    assert runner.invoke(main, ["practices", "load", str(PRACTICES_FILE)]).exit_code == 0

    result = runner.invoke(main, ["paging", "drill", "valley-family"])

    assert result.exit_code == 0, result.output
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        drill = session.scalars(select(Drill)).one()
        texts = session.scalars(select(Message).where(Message.kind == "page_drill")).all()
        assert session.scalar(select(func.count()).select_from(Page)) == 0
    engine.dispose()
    assert f"drill {drill.code}: TEST page texted to 2 on call (Dr. Rivera, Nurse Lee)" in (
        result.output
    )
    assert f"results: https://recovery.example.com/admin/drills/{drill.id}" in result.output
    assert sorted(t.to_number for t in texts) == ["+15125550111", "+15125550112"]
    assert drill.started_by == "the command line"

    again = runner.invoke(main, ["paging", "drill", "valley-family"])
    assert again.exit_code == 0 and "is still open" in again.output
    missing = runner.invoke(main, ["paging", "drill", "nowhere"])
    assert missing.exit_code != 0 and "no practice nowhere" in missing.output
