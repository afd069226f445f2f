"""The real stack: PostgreSQL, Redis, gunicorn, a Celery worker and beat, and the twilio
client pointed at a Twilio-shaped server on loopback.

Without PostgreSQL or Redis these tests skip, unless RECOVERY_REQUIRE_SERVICES=1 (CI sets
it), which turns every such skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import migrate
from recovery.config import Settings
from recovery.db import make_engine, make_session_factory, session_scope
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PRACTICES_FILE,
    WEBHOOK_SECRET,
    give_practices_secrets,
)
from tests.support.stack import Stack, StackConfig
from tests.support.twilio_double import TwilioDouble

REQUIRE = os.environ.get("RECOVERY_REQUIRE_SERVICES") == "1"
DATABASE_URL = os.environ.get(
    "RECOVERY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("RECOVERY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TABLES = (
    "call_events, messages, tasks, pages, episodes, opt_outs, untextable_numbers, "
    "drill_answers, drills"
)


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (RECOVERY_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new database, migrated with Alembic, dropped afterwards."""
    admin = _psycopg_url(DATABASE_URL)
    name = f"recovery_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL unavailable at {DATABASE_URL}: {exc}")
    url = make_url(DATABASE_URL).set(drivername="postgresql+psycopg2", database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        migrate(Settings(_env_file=None, DATABASE_URL=rendered))  # type: ignore[call-arg]
        yield rendered
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis unavailable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as double:
        yield double


def stack_config(
    database_url: str, redis_url: str, twilio: TwilioDouble, var_dir: Path
) -> StackConfig:
    return StackConfig(
        database_url=database_url,
        redis_url=redis_url,
        var_dir=var_dir,
        practices_file=PRACTICES_FILE.resolve(),
        twilio_base_url=twilio.base_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        clock_file=var_dir / "clock",
        follow_up_interval_s=1.0,
    )


class Clock:
    """Every process of a stack reads its time through this file (see recovery.db.utcnow),
    so a test can make it Friday evening, or five minutes later, without sleeping."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> float:
        return float(self.path.read_text() or 0) if self.path.exists() else 0.0

    def set(self, when: datetime) -> None:
        self.path.write_text(str((when - datetime.now(UTC)).total_seconds()))

    def advance(self, seconds: float) -> None:
        self.path.write_text(str(self.offset() + seconds))

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset())

    def reset(self) -> None:
        self.path.write_text("0")


@pytest.fixture(scope="session")
def stack(
    database_url: str,
    redis_url: str,
    twilio: TwilioDouble,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    config = stack_config(database_url, redis_url, twilio, tmp_path_factory.mktemp("stack"))
    with Stack(config) as running:
        # The app loaded the practices as it started; each gets its own webhook secret
        # (WEBHOOK_SECRET is refused on a multi-practice install).
        engine = make_engine(database_url)
        with session_scope(make_session_factory(engine)) as session:
            give_practices_secrets(session)
        engine.dispose()
        yield running


@pytest.fixture(scope="session")
def clock(stack: Stack) -> Clock:
    assert stack.config.clock_file is not None
    return Clock(stack.config.clock_file)


@pytest.fixture(scope="session")
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(autouse=True)
def clean_state(
    request: pytest.FixtureRequest,
) -> None:
    """Each test starts with no calls, texts or opt-outs (practices stay loaded)."""
    if "stack" not in request.fixturenames:
        return
    sessions: sessionmaker[Session] = request.getfixturevalue("sessions")
    twilio: TwilioDouble = request.getfixturevalue("twilio")
    request.getfixturevalue("clock").reset()
    with sessions.begin() as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    twilio.reset()
