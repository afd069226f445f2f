"""Tenant isolation in Chromium, on the real stack: the front desk and the manager of
Always Open, signed in, try every staff and manager URL with Valley Family's ids (and their
own pages asking for Valley Family), by address and by forged form post. Each answer is the
styled 404 or 403 page, or their own practice's; nothing of Valley Family's is shown,
changed, or texted.

The routes come from the app's url_map: a new route that is in neither list below fails
test_every_route_is_checked_or_says_why_not, so it cannot ship without a check."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from recovery.config import TEMPLATES_DIR, Settings
from recovery.db import session_scope, utcnow
from recovery.domain.messages import MessageKind
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    Drill,
    Episode,
    Message,
    PasswordLink,
    Practice,
    Role,
    SavedReply,
    Task,
    UndoableAction,
    User,
)
from recovery.models import Page as PageRow
from recovery.services import drills
from tests.conftest import PHI_KEY
from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, Live, shot, sign_in

pytestmark = pytest.mark.e2e

ATTACKER_MANAGER = "boss@always-open.example"
FORGED = "forged reply from another practice"
# Anything of Valley Family's a page could show: its name, its numbers (every Valley line,
# caller and clinician is in 512, Always Open's in 617), its people, a patient's words.
MARKERS = (
    "Valley Family",
    "(512)",
    "+1512",
    "512555",
    "Nurse Lee",
    "Dr. Rivera",
    "Dana Front",
    "Statement question",
    scenario.URGENT_WORDS[:24],
    "blood pressure",
)

# Routes with no practice's data behind them, each with the reason.
EXEMPT = {
    "/": "a redirect to the queue or the landing page",
    "/healthz": "liveness, no data",
    "/metrics": "counts without practice data (its own token)",
    "/openapi.json": "the API's description",
    "/static/<path:filename>": "CSS and scripts",
    "/login": "signing in",
    "/login/code": "signing in",
    "/login/enrol": "signing in",
    "/logout": "signing out",
    "/session/idle": "the signed-in user's own session",
    "/session/stay": "the signed-in user's own session",
    "/set-password/<token>": "a one-time link, its token the credential (tests/unit)",
    "/b/<token>": "a patient's booking link, its token the credential (tests/unit)",
    "/simulator": "the console provider only; no staff session",
    "/simulator/call": "the console provider only; no staff session",
    "/simulator/text": "the console provider only; no staff session",
    "/simulator/thread": "the console provider only; no staff session",
    "/audit": "the leak audit reads the uploaded file, stores nothing of a practice",
    "/audit/estimate": "the leak audit recalculates from the form, stores nothing",
}
PERSON_STARTED = (MessageKind.STAFF_REPLY, MessageKind.PAGE_DRILL, MessageKind.INVITE)
WEBHOOKS = "/webhooks/"  # signed per practice: tests/unit/test_webhook_tenants.py


@dataclass(frozen=True)
class Targets:
    """Valley Family's ids, and Always Open's own for the cross-references."""

    episode: int
    task: int
    page_code: str
    saved_reply: int
    nurse: int
    drill: int
    undo: int
    own_episode: int
    own_task: int


@dataclass(frozen=True)
class Probe:
    method: str
    rule: str
    who: str  # "desk" or "manager" of Always Open
    path: str  # "{t.episode}" and the like: a field of Targets
    form: dict[str, str] | None = None  # None: a GET; values formatted as the path
    # Their own page asking for Valley Family: their own practice's answer is right too.
    own_page_ok: bool = False


PROBES = (
    # The queue and the conversation.
    Probe("GET", "/tasks", "desk", "/tasks?practice=valley-family", own_page_ok=True),
    Probe("GET", "/tasks/live", "desk", "/tasks/live?practice=valley-family", own_page_ok=True),
    Probe(
        "POST",
        "/tasks/next",
        "desk",
        "/tasks/next",
        {"practice": "valley-family"},
        own_page_ok=True,
    ),
    Probe("POST", "/tasks/<int:task_id>/claim", "desk", "/tasks/{t.task}/claim", {}),
    Probe("POST", "/tasks/<int:task_id>/unclaim", "desk", "/tasks/{t.task}/unclaim", {}),
    Probe(
        "POST", "/tasks/<int:task_id>/complete", "desk", "/tasks/{t.task}/complete", {"note": "x"}
    ),
    Probe(
        "POST",
        "/tasks/<int:task_id>/reassign",
        "desk",
        "/tasks/{t.task}/reassign",
        {"queue": "front_desk"},
    ),
    Probe("POST", "/undo/<int:action_id>", "desk", "/undo/{t.undo}", {}),
    Probe("GET", "/episodes/<int:episode_id>", "desk", "/episodes/{t.episode}"),
    Probe("GET", "/episodes/<int:episode_id>/live", "desk", "/episodes/{t.episode}/live"),
    Probe(
        "POST",
        "/episodes/<int:episode_id>/reply",
        "desk",
        "/episodes/{t.episode}/reply",
        {"text": FORGED},
    ),
    Probe("POST", "/episodes/<int:episode_id>/book", "desk", "/episodes/{t.episode}/book", {}),
    Probe("GET", "/p/<code>", "manager", "/p/{t.page_code}"),
    Probe("POST", "/p/<code>/ack", "manager", "/p/{t.page_code}/ack", {}),
    # Search, reports and exports.
    Probe("GET", "/episodes", "manager", "/episodes?practice=valley-family&caller=0188"),
    Probe("GET", "/reports", "manager", "/reports?practice=valley-family"),
    Probe("GET", "/export", "manager", "/export?practice=valley-family"),
    Probe("GET", "/api/episodes.csv", "manager", "/api/episodes.csv?practice=valley-family"),
    Probe(
        "GET", "/api/reports/recovery", "manager", "/api/reports/recovery?practice=valley-family"
    ),
    # Administration.
    Probe(
        "GET", "/admin/users", "manager", "/admin/users?practice=valley-family", own_page_ok=True
    ),
    Probe(
        "POST",
        "/admin/users",
        "manager",
        "/admin/users",
        {
            "practice": "valley-family",
            "name": "Eve",
            "email": "eve@always-open.example",
            "role": "staff",
        },
        own_page_ok=True,
    ),
    Probe(
        "POST",
        "/admin/users/<int:user_id>/role",
        "manager",
        "/admin/users/{t.nurse}/role",
        {"role": "staff"},
    ),
    Probe(
        "POST",
        "/admin/users/<int:user_id>/active",
        "manager",
        "/admin/users/{t.nurse}/active",
        {"active": "0"},
    ),
    Probe("POST", "/admin/users/<int:user_id>/link", "manager", "/admin/users/{t.nurse}/link", {}),
    Probe(
        "GET", "/admin/roster", "manager", "/admin/roster?practice=valley-family", own_page_ok=True
    ),
    Probe(
        "POST",
        "/admin/roster",
        "manager",
        "/admin/roster",
        {"practice": "valley-family", "name": "Mallory", "phone": "+1 617 555 0177"},
        own_page_ok=True,
    ),
    Probe(
        "POST",
        "/admin/roster/drill",
        "manager",
        "/admin/roster/drill",
        {"practice": "valley-family"},
        own_page_ok=True,
    ),
    Probe("GET", "/admin/drills/<int:drill_id>", "manager", "/admin/drills/{t.drill}"),
    Probe(
        "GET",
        "/admin/replies",
        "manager",
        "/admin/replies?practice=valley-family",
        own_page_ok=True,
    ),
    Probe(
        "POST",
        "/admin/replies",
        "manager",
        "/admin/replies",
        {"practice": "valley-family", "title": "Sneaky", "body": "hi"},
        own_page_ok=True,
    ),
    Probe(
        "POST",
        "/admin/replies/<int:reply_id>/edit",
        "manager",
        "/admin/replies/{t.saved_reply}/edit",
        {"title": "Sneaky", "body": "{{{{ practice_name }}}} hi"},  # str.format: {{ }}
    ),
    Probe(
        "POST",
        "/admin/replies/<int:reply_id>/remove",
        "manager",
        "/admin/replies/{t.saved_reply}/remove",
        {},
    ),
)
# Their own things pointing at Valley Family's: a saved reply of theirs, a person of theirs.
CROSS = (
    Probe(
        "POST",
        "",
        "desk",
        "/episodes/{t.own_episode}/reply",
        {"text": "", "saved": "{t.saved_reply}"},
        own_page_ok=True,
    ),
    Probe(
        "POST",
        "",
        "desk",
        "/tasks/{t.own_task}/reassign",
        {"queue": "billing", "user": "{t.nurse}"},
        own_page_ok=True,
    ),
)


def served_rules() -> set[tuple[str, str]]:
    app: Flask = _app()
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }


def _app() -> Flask:
    import tempfile

    from recovery.web import create_app
    from tests.unit.conftest import RecordingDispatcher

    folder = Path(tempfile.mkdtemp())
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=f"sqlite:///{folder / 'routes.db'}",
        SECRET_KEY="routes",
        PHI_ENCRYPTION_KEYS=PHI_KEY,
        SMS_PROVIDER="console",
    )
    return create_app(settings, dispatcher=RecordingDispatcher())  # type: ignore[arg-type]


def test_every_route_is_checked_or_says_why_not() -> None:
    probed = {(p.method, p.rule) for p in PROBES}
    unchecked = sorted(
        (method, rule)
        for method, rule in served_rules()
        if rule not in EXEMPT and not rule.startswith(WEBHOOKS) and (method, rule) not in probed
    )
    assert unchecked == [], f"add these to PROBES (or EXEMPT, saying why): {unchecked}"
    stale = probed - served_rules()
    assert stale == set(), f"PROBES names routes the app does not serve: {stale}"


def add_manager(live: Live, email: str) -> None:
    with session_scope(live.sessions) as session:
        practice = session.scalars(select(Practice).where(Practice.slug == "always-open")).one()
        template = session.scalars(select(User).where(User.email == scenario.Users.admin)).one()
        session.add(
            User(
                email=email,
                name="Omar Owner",
                password_hash=template.password_hash,
                role=Role.MANAGER,
                practice_id=practice.id,
                active=True,
                totp_secret=template.totp_secret,
            )
        )


def valley_state(live: Live) -> dict[str, Any]:
    """Everything of Valley Family's a forged request could change or add."""
    with live.sessions() as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        pid = valley.id
        return {
            "roster": (valley.roster_edited_at, repr(valley.on_call)),
            "tasks": session.execute(
                select(
                    Task.id, Task.status, Task.queue, Task.claimed_by, Task.assigned_to, Task.note
                )
                .where(Task.practice_id == pid)
                .order_by(Task.id)
            ).all(),
            "episodes": session.execute(
                select(Episode.id, Episode.status, Episode.outcome)
                .where(Episode.practice_id == pid)
                .order_by(Episode.id)
            ).all(),
            "pages": session.execute(
                # Not its status: the page escalates on its own while the test runs.
                select(PageRow.id, PageRow.acknowledged_by).where(PageRow.practice_id == pid)
            ).all(),
            "replies": session.execute(
                select(SavedReply.id, SavedReply.title, SavedReply.active).where(
                    SavedReply.practice_id == pid
                )
            ).all(),
            "users": session.execute(
                select(User.id, User.role, User.active).where(User.practice_id == pid)
            ).all(),
            "links": session.scalars(
                select(PasswordLink.id)
                .join(User, User.id == PasswordLink.user_id)
                .where(User.practice_id == pid)
            ).all(),
            # Texts a person starts (pages escalate, nudges follow by themselves).
            "messages": session.scalars(
                select(Message.id)
                .where(Message.practice_id == pid, Message.kind.in_(PERSON_STARTED))
                .order_by(Message.id)
            ).all(),
            "drills": session.scalars(select(Drill.id).where(Drill.practice_id == pid)).all(),
            "undo": session.execute(select(UndoableAction.id, UndoableAction.undone_at)).all(),
        }


def targets(live: Live, world: scenario.Scenario, browser: Browser) -> Targets:
    """Valley Family's saved reply, drill and undoable Complete, beside the scenario's."""
    with session_scope(live.sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        reply = SavedReply(
            practice_id=valley.id,
            title="Statement question",
            body="{{ practice_name }}: please call {{ practice_phone }}.",
            active=True,
            created_at=utcnow(),
        )
        session.add(reply)
        started = drills.start_drill(
            session, SmsTemplates(TEMPLATES_DIR / "sms"), valley, started_by="Pat", now=utcnow()
        )
        assert started.drill is not None
        session.flush()
        reply_id, drill_id = reply.id, started.drill.id
        nurse = session.scalars(select(User.id).where(User.email == world.users.nurse)).one()
        own_episode = session.scalars(
            select(Task.episode_id).where(Task.id == world.other_task_id)
        ).one()
    # Valley's front desk completes the refill task in their own browser: an Undo to aim at.
    context = browser.new_context(viewport=DESKTOP)
    try:
        desk = context.new_page()
        desk.goto(f"{live.base_url}/tasks")
        sign_in(desk, world.users.desk)
        row = desk.locator(f"#task-{world.refill_task_id}")
        row.get_by_role("button", name="Complete").click()
        expect(desk.locator(".undo-bar")).to_be_visible()
        action = desk.locator(".undo-bar form").get_attribute("action") or ""
        undo = int(re.findall(r"/undo/(\d+)", action)[0])
    finally:
        context.close()
    return Targets(
        episode=world.billing_episode_id,
        task=world.billing_task_id,
        page_code=world.page_code,
        saved_reply=reply_id,
        nurse=nurse,
        drill=drill_id,
        undo=undo,
        own_episode=own_episode,
        own_task=world.other_task_id,
    )


FORGE = """([path, fields]) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = path;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def forge(page: Page, path: str, fields: dict[str, str]) -> int:
    """A form on their own page, posted to `path` with their session's CSRF token, as a
    curious user with the developer tools would."""
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    with page.expect_navigation() as navigation:
        page.evaluate(FORGE, [path, {**fields, "csrf_token": token}])
    response = navigation.value
    assert response is not None
    return response.status


def shows_nothing_of_valley(page: Page, what: str) -> None:
    body = page.content()
    leaked = [marker for marker in MARKERS if marker in body]
    assert leaked == [], f"{what} shows Valley Family's {leaked}"


def refused(page: Page, status: int, what: str) -> None:
    assert status in (403, 404), f"{what}: {status}"
    expect(page.locator(".eyebrow")).to_have_text(f"Error {status}")  # the styled page
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Not found" if status == 404 else re.compile("Not allowed")
    )


def test_another_practice_sees_changes_and_texts_nothing_of_this_one(
    live: Live, live_world: scenario.Scenario, browser: Browser, live_rosters: None
) -> None:
    add_manager(live, ATTACKER_MANAGER)
    goals = targets(live, live_world, browser)
    pages: dict[str, Page] = {}
    for who, email in (("desk", live_world.users.other), ("manager", ATTACKER_MANAGER)):
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.goto(f"{live.base_url}/tasks")
        sign_in(page, email)
        if who == "manager":
            code = pyotp.TOTP(scenario.TOTP_SECRET).at(utcnow() + timedelta(seconds=30))
            page.get_by_label("Code").fill(code)
            page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("banner")).to_contain_text("Always Open")
        pages[who] = page
    before = valley_state(live)
    try:
        # The control: the same forged post on their own task works, so a refusal below is
        # the tenant check, not the forgery.
        desk = pages["desk"]
        desk.goto(f"{live.base_url}/tasks")
        assert forge(desk, f"/tasks/{goals.own_task}/claim", {}) == 200
        expect(desk.get_by_text("Task claimed: it is yours.")).to_be_visible()

        for probe in (*PROBES, *CROSS):
            page = pages[probe.who]
            path = probe.path.format(t=goals)
            what = f"{probe.method} {path} as Always Open's {probe.who}"
            if probe.form is None:
                response = page.goto(live.base_url + path)
                assert response is not None
                status = response.status
            else:
                page.goto(f"{live.base_url}/tasks")
                fields = {k: v.format(t=goals) for k, v in probe.form.items()}
                status = forge(page, path, fields)
            # Their own page (or its form again, with what it refused): never Valley's.
            if probe.own_page_ok and status in (200, 400):
                if probe.rule == "/tasks/live":  # the queue's fragment: their own tasks
                    expect(page.locator("body")).to_contain_text("(617) 555-0123")
                else:
                    expect(page.get_by_role("banner")).to_contain_text("Always Open")
            elif probe.rule.startswith("/api/"):
                # A token's, not a session's: a browser is not let in at all (a token of
                # another practice: tests/unit/test_report_api.py).
                assert status == 401, f"{what}: {status}"
            else:
                refused(page, status, what)
            shows_nothing_of_valley(page, what)
        shot(pages["desk"], "isolation-not-found-desktop")
    finally:
        for page in pages.values():
            page.context.close()

    assert valley_state(live) == before
    # Nothing on its way either: no forged words and no saved reply of theirs went out.
    time.sleep(2.0)
    bodies = [m.form.get("Body", "") for m in live.twilio.messages()]
    assert not [b for b in bodies if FORGED in b or "please call" in b]
