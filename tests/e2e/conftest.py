"""Browser tests: headless Chromium (Playwright) against the real app served by gunicorn.

The app runs on a SQLite file with the console SMS provider and the embedded broker: the
staff pages need neither Redis nor Twilio, and the data is made through the services
(tests/e2e/scenario.py) before each test. Without /usr/bin/chromium these tests skip,
unless RECOVERY_REQUIRE_SERVICES=1 (CI), which makes that a failure.

The tests of the whole loop use `live` instead: the production shape (PostgreSQL, Redis,
gunicorn, a Celery worker and beat, the twilio client against the loopback Twilio double),
started once per module and only when a test asks for it; `live_world` is the same
morning at the clinic on it.

RECOVERY_E2E_SHOTS=/some/dir saves a screenshot of each page the tests look at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import migrate
from recovery.config import TEMPLATES_DIR, Settings
from recovery.crypto import PhiCipher
from recovery.db import make_engine, make_session_factory, session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import Practice
from recovery.schemas.practices import read_practices
from recovery.services.practices import load_practices
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PHI_KEY, PRACTICES_FILE, WEBHOOK_SECRET
from tests.e2e import scenario
from tests.support.stack import Stack, StackConfig, free_port
from tests.support.twilio_double import TwilioDouble

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE = os.environ.get("RECOVERY_REQUIRE_SERVICES") == "1"
SECRET_KEY = "e2e-secret-key"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# Everything the scenario makes; the practices stay. Children before parents.
TABLES = (
    "undoable_actions",
    "drill_answers",
    "drills",
    "audit_events",
    "password_links",
    "saved_replies",
    "messages",
    "tasks",
    "pages",
    "call_events",
    "opt_outs",
    "untextable_numbers",
    "episodes",
)


@dataclass
class Server:
    base_url: str
    sessions: sessionmaker[Session]
    var_dir: Path


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Checked first, so that a machine without a browser does not start gunicorn for
    nothing."""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE:
            pytest.fail(f"{reason} (RECOVERY_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("e2e")
    database_url = f"sqlite:///{var_dir / 'e2e.db'}"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    migrate(Settings(_env_file=None, DATABASE_URL=database_url))  # type: ignore[call-arg]
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        load_practices(session, read_practices(PRACTICES_FILE))

    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env = {
        **keep,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "PHI_ENCRYPTION_KEYS": PHI_KEY,
        "PUBLIC_BASE_URL": base_url,
        "SMS_PROVIDER": "console",
        "RECOVERY_VAR_DIR": str(var_dir),
        "PYTHONUNBUFFERED": "1",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log_path = var_dir / "web.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(gunicorn),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "--no-control-socket",
                "recovery.web:create_app()",
            ],
            env=env,
            cwd=var_dir,  # no developer's .env leaks in
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(base_url, process, log_path)
        yield Server(base_url, sessions, var_dir)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        engine.dispose()


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    # Generous: on a loaded machine (CI runners, several suites at once) gunicorn can take
    # most of a minute to import the app; a healthy server answers well before this.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not become healthy:\n{log.read_text()[-3000:]}")


def _empty(server: Server) -> None:
    with server.sessions.begin() as session:
        for table in (*TABLES, "users"):
            session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names


@pytest.fixture
def fresh_install(server: Server) -> None:
    """The day the server was set up: the practices loaded, no account yet."""
    _empty(server)


@pytest.fixture
def world(server: Server) -> scenario.Scenario:
    """A fresh morning at the clinic for each test (the practices stay loaded)."""
    _empty(server)
    return scenario.build(
        server.sessions,
        SmsTemplates(TEMPLATES_DIR / "sms"),
        PhiCipher([PHI_KEY]),
        utcnow(),
    )


@dataclass
class Live:
    """The real stack and the Twilio double its texts go to."""

    stack: Stack
    twilio: TwilioDouble
    sessions: sessionmaker[Session]

    @property
    def base_url(self) -> str:
        return self.stack.base_url


# Per module, not per session: the simulator's console stack uses the same Redis database,
# and two workers on one broker would take each other's tasks.
@pytest.fixture(scope="module")
def live(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    import redis

    from tests.conftest import give_practices_secrets
    from tests.integration.conftest import REDIS_URL, fresh_database, unavailable

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis unavailable at {REDIS_URL}: {exc}")
    with (
        fresh_database() as database_url,
        TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as twilio,
    ):
        config = StackConfig(
            database_url=database_url,
            redis_url=REDIS_URL,
            var_dir=tmp_path_factory.mktemp("live"),
            practices_file=PRACTICES_FILE.resolve(),
            twilio_base_url=twilio.base_url,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            webhook_secret=WEBHOOK_SECRET,
            web_workers=1,
            worker_concurrency=2,
        )
        engine = make_engine(database_url)
        try:
            with Stack(config) as stack:
                sessions = make_session_factory(engine)
                # The app loaded the practices as it started; each gets its own webhook
                # secret (WEBHOOK_SECRET is refused on a multi-practice install).
                with session_scope(sessions) as session:
                    give_practices_secrets(session)
                yield Live(stack, twilio, sessions)
        finally:
            engine.dispose()


@pytest.fixture
def live_world(live: Live) -> scenario.Scenario:
    """The morning at the clinic on the real stack: the worker sends its texts to the
    double, which starts each test empty."""
    with live.sessions.begin() as session:
        names = ", ".join((*TABLES, "users"))
        session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))  # noqa: S608
    live.twilio.reset()
    return scenario.build(
        live.sessions,
        SmsTemplates(TEMPLATES_DIR / "sms"),
        PhiCipher([PHI_KEY]),
        utcnow(),
    )


@pytest.fixture
def live_rosters(live: Live) -> Iterator[None]:
    """For a test that edits a roster: the practices file's rosters back afterwards (the
    practices stay loaded across tests)."""
    yield
    from recovery.schemas.practices import read_practices
    from recovery.services.practices import load_practices

    with session_scope(live.sessions) as session:
        for practice in session.scalars(select(Practice)):
            practice.roster_edited_at = None
        session.flush()
        load_practices(session, read_practices(PRACTICES_FILE))


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    yield context.new_page()
    context.close()


def sign_in(page: Page, email: str) -> None:
    """The password step of signing in (managers and admins then give a code)."""
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(scenario.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot when RECOVERY_E2E_SHOTS names a folder."""
    folder = os.environ.get("RECOVERY_E2E_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
