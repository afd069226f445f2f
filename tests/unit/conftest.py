"""Unit-test fixtures: the real app and services on a SQLite file, with a recording queue."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import migrate
from recovery.config import TEMPLATES_DIR, Settings
from recovery.db import make_engine, make_session_factory, session_scope
from recovery.domain.templates import SmsTemplates
from recovery.schemas.practices import read_practices
from recovery.services.practices import load_practices
from recovery.web import create_app
from recovery.web.throttle import SignInThrottle
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PHI_KEY,
    PRACTICES_FILE,
    WEBHOOK_SECRET,
    give_practices_secrets,
)

PUBLIC_BASE_URL = "https://recovery.example.com"


class RecordingDispatcher:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.replies: list[int] = []
        self.fail_with: Exception | None = None

    def send_text(self, message_id: int) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message_id)

    def handle_reply(self, message_id: int) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.replies.append(message_id)

    def ping(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=f"sqlite:///{tmp_path / 'unit.db'}",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        SECRET_KEY="unit-test-secret-key",
        PHI_ENCRYPTION_KEYS=PHI_KEY,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        RECOVERY_VAR_DIR=tmp_path / "var",
    )


@pytest.fixture(scope="session")
def empty_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The schema as Alembic builds it (not create_all: the tests see what production
    runs, indexes and all), no rows: migrated once per session."""
    path = tmp_path_factory.mktemp("schema") / "empty.db"
    migrate(Settings(_env_file=None, DATABASE_URL=f"sqlite:///{path}"))  # type: ignore[call-arg]
    return path


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory, empty_schema: Path) -> Path:
    """The migrated schema with the test practices loaded, once per session."""
    path = tmp_path_factory.mktemp("schema") / "practices.db"
    engine = copy_database(empty_schema, f"sqlite:///{path}")
    with session_scope(make_session_factory(engine)) as session:
        load_practices(session, read_practices(PRACTICES_FILE))
        give_practices_secrets(session)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


def copy_database(template: Path, url: str) -> Engine:
    """A test's own copy of a migrated database at `url`, so the app, the CLI and any engine
    a test opens there all see it. A copy, not a savepoint: those open their own
    connections. SQLite ignores FOR UPDATE and SKIP LOCKED; the PostgreSQL suite
    (tests/integration) is the proof for locking."""
    database = make_url(url).database
    assert database is not None
    shutil.copyfile(template, database)
    return make_engine(url)


@pytest.fixture
def sessions(settings: Settings, migrated_database: Path) -> Iterator[sessionmaker[Session]]:
    engine = copy_database(migrated_database, settings.effective_database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def templates() -> SmsTemplates:
    return SmsTemplates(TEMPLATES_DIR / "sms")


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def throttle() -> SignInThrottle:
    """The sign-in throttle on a fake Redis: the same Lua scripts production runs."""
    pool = redis.ConnectionPool(
        connection_class=fakeredis.FakeRedisConnection, server=fakeredis.FakeServer()
    )
    from limits.storage import RedisStorage

    return SignInThrottle(RedisStorage("redis://fake", connection_pool=pool))


@pytest.fixture
def app(
    settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: RecordingDispatcher,
    throttle: SignInThrottle,
) -> Flask:
    return create_app(settings, sessions=sessions, dispatcher=dispatcher, throttle=throttle)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
