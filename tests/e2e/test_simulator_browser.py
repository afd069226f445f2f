"""The phone simulator's whole loop in a browser, on the real stack: PostgreSQL, Redis,
gunicorn, a Celery worker and beat, with the console provider (the only one the simulator
exists for). A visitor calls and hangs up, reads the text, answers, and the front desk's
queue in another tab shows the task."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import make_engine, make_session_factory, session_scope
from recovery.models import Practice, Role, Task, TaskQueue, User
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, WEBHOOK_SECRET
from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, PHONE, shot
from tests.integration.conftest import REDIS_URL, fresh_database, unavailable
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

PATIENT = "+15125550133"


@pytest.fixture(scope="module")
def console_stack(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import redis

    from tests.conftest import PRACTICES_FILE
    from tests.support.stack import StackConfig

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis unavailable at {REDIS_URL}: {exc}")
    var_dir = tmp_path_factory.mktemp("sim")
    with fresh_database() as database_url:
        config = StackConfig(
            database_url=database_url,
            redis_url=REDIS_URL,
            var_dir=var_dir,
            practices_file=PRACTICES_FILE.resolve(),
            twilio_base_url="http://127.0.0.1:9",  # unused: texts go to the console
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            webhook_secret=WEBHOOK_SECRET,
            web_workers=1,
            worker_concurrency=2,
            extra_env={"SMS_PROVIDER": "console"},
        )
        with Stack(config) as stack:
            yield stack


@pytest.fixture(scope="module")
def stack_sessions(console_stack: Stack) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(console_stack.config.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def desk_user(stack_sessions: sessionmaker[Session]) -> str:
    from recovery.services.auth import create_user

    email = "sim-desk@valley.example"
    with session_scope(stack_sessions) as session:
        if session.scalars(select(User).where(User.email == email)).first() is None:
            create_user(
                session,
                email=email,
                name="Dana Front",
                password=scenario.PASSWORD,
                role=Role.STAFF,
                practice_slug="valley-family",
            )
    return email


def test_simulator_call_text_reply_and_the_task_in_the_staff_tab(
    console_stack: Stack,
    stack_sessions: sessionmaker[Session],
    desk_user: str,
    browser: Browser,
) -> None:
    base = console_stack.base_url
    phone_ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    staff_ctx = browser.new_context(viewport=DESKTOP)
    try:
        landing = staff_ctx.new_page()
        landing.goto(base + "/")
        expect(landing.get_by_role("link", name="Try the phone simulator")).to_be_visible()
        shot(landing, "landing-desktop")

        sim = phone_ctx.new_page()
        sim.goto(base + "/simulator")
        shot(sim, "simulator-empty-phone")
        sim.get_by_label("Practice line").select_option(scenario.LINE)
        sim.get_by_label("Your phone number (the patient)").fill(PATIENT)
        sim.get_by_role("button", name="Call and hang up").click()

        thread = sim.locator("#thread")
        # The worker sends the first text; the page polls and shows it without a reload.
        expect(thread).to_contain_text("sorry we missed your call", timeout=15_000)
        sim.get_by_label("Text message").fill("question about my bill")
        sim.get_by_role("button", name="Send").click()
        expect(thread.locator(".bubble-mine")).to_contain_text("question about my bill")
        expect(thread).to_contain_text("our billing team will call you back", timeout=15_000)
        shot(sim, "simulator-conversation-phone")

        staff = staff_ctx.new_page()
        staff.goto(base + "/tasks")
        staff.get_by_label("Email").fill(desk_user)
        staff.get_by_label("Password").fill(scenario.PASSWORD)
        staff.get_by_role("button", name="Sign in").click()
        with stack_sessions() as session:
            valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
            task = session.scalars(
                select(Task).where(Task.practice_id == valley.id, Task.queue == TaskQueue.BILLING)
            ).one()
        expect(staff.locator(f"#task-{task.id}")).to_contain_text("(512) 555-0133")

        desktop_sim = staff_ctx.new_page()
        desktop_sim.goto(f"{base}/simulator?line=%2B15125550100&phone=%2B15125550133")
        expect(desktop_sim.locator("#thread")).to_contain_text("question about my bill")
        shot(desktop_sim, "simulator-conversation-desktop")
        assert re.search(r"\d+:\d\d [AP]M", desktop_sim.locator(".bubble-meta").first.inner_text())
    finally:
        phone_ctx.close()
        staff_ctx.close()


def test_every_unknown_url_gets_the_styled_page(console_stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = context.new_page()
        response = page.goto(console_stack.base_url + "/no/such/page")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.get_by_role("link", name="Sign in")).to_be_visible()
        shot(page, "not-found-phone")
    finally:
        context.close()
