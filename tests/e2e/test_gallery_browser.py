"""Every page a person sees, at a desktop's 1280 px and a phone's 390 px: the landing page,
signing in (before any account exists too), the simulator, the error page, and each staff,
manager and admin page. Each must answer and fit the phone's width (nothing to scroll
sideways).

With RECOVERY_E2E_SHOTS set (`make gallery` sets var/gallery) it also writes one full-page
PNG per page and width, named <page>-<width>.png: the gallery to look at before a release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from sqlalchemy import select

from recovery.config import TEMPLATES_DIR
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import Practice, Task
from recovery.services import drills
from tests.e2e import scenario
from tests.e2e.conftest import DESKTOP, PHONE, Server, shot, sign_in

pytestmark = pytest.mark.e2e

MANAGER = "boss@valley.example"
WIDTHS = {"1280": DESKTOP, "390": PHONE}


@dataclass(frozen=True)
class View:
    name: str
    who: str | None  # None: signed out
    path: str
    status: int = 200


@dataclass(frozen=True)
class Extras:
    """What the gallery adds to the scenario: a saved reply, a fire drill."""

    unclear_episode: int
    drill: int


def views(world: scenario.Scenario, extras: Extras) -> list[View]:
    return [
        View("landing", None, "/"),
        View("sign-in", None, "/login"),
        View("simulator", None, "/simulator"),
        View("error-404", None, "/no/such/page", 404),
        View("queue-front-desk", "desk", "/tasks"),
        View("queue-overdue-mine", "desk", "/tasks?overdue=1"),
        View("conversation", "desk", f"/episodes/{world.billing_episode_id}"),
        View("conversation-two-replies", "desk", f"/episodes/{extras.unclear_episode}"),
        View("not-allowed", "desk", "/admin/users", 403),
        View("queue-clinician", "nurse", "/tasks"),
        View("conversation-urgent", "nurse", f"/episodes/{world.urgent_episode_id}"),
        View("page-link", "nurse", f"/p/{world.page_code}"),
        View("queue-manager", "manager", "/tasks"),
        View("report", "manager", "/reports"),
        View("conversations", "manager", "/episodes"),
        View("conversations-search", "manager", "/episodes?caller=0188"),
        View("leak-audit", "manager", "/audit"),
        View("admin-users", "manager", "/admin/users"),
        View("admin-roster", "manager", "/admin/roster"),
        View("admin-replies", "manager", "/admin/replies"),
        View("admin-drill", "manager", f"/admin/drills/{extras.drill}"),
        View("queue-admin", "admin", "/tasks"),
        View("report-admin", "admin", "/reports"),
        View("admin-users-admin", "admin", "/admin/users"),
    ]


@pytest.fixture
def extras(server: Server, world: scenario.Scenario) -> Extras:
    scenario.add_manager(server.sessions, world.users, MANAGER)
    scenario.add_saved_reply(server.sessions)
    with session_scope(server.sessions) as session:
        valley = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        started = drills.start_drill(
            session, SmsTemplates(TEMPLATES_DIR / "sms"), valley, started_by="Pat Kim", now=utcnow()
        )
        assert started.drill is not None
        session.flush()
        unclear = session.get(Task, world.unclear_task_id)
        assert unclear is not None
        return Extras(unclear_episode=unclear.episode_id, drill=started.drill.id)


def at_width(browser: Browser, size: dict[str, int]) -> BrowserContext:
    phone = size == PHONE
    return browser.new_context(
        viewport=size, device_scale_factor=2 if phone else 1, is_mobile=phone
    )


def signed_in(
    browser: Browser,
    base_url: str,
    world: scenario.Scenario,
    who: str | None,
    size: dict[str, int],
    n: int,
) -> BrowserContext:
    context = at_width(browser, size)
    if who is None:
        return context
    email = {
        "desk": world.users.desk,
        "nurse": world.users.nurse,
        "manager": MANAGER,
        "admin": world.users.admin,
    }[who]
    page = context.new_page()
    page.goto(base_url + "/login")
    sign_in(page, email)
    if who in ("manager", "admin"):
        # A code is accepted once per user: the second width's sign-in takes the next one.
        code = pyotp.TOTP(scenario.TOTP_SECRET).at(utcnow() + timedelta(seconds=30 * n))
        page.get_by_label("Code").fill(code)
        page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.close()
    return context


# What a look at the gallery found wrong once, measured in the page: each check returns the
# faults it sees ([] when none). A line box's height says whether a piece broke in two.
EVERY_PAGE = """() => {
  const faults = [];
  for (const el of document.querySelectorAll('.nowrap')) {
    if (el.getClientRects().length > 1) faults.push('broke in two: ' + el.textContent);
  }
  return faults;
}"""
CHECKS: dict[str, str] = {
    "conversation": """() => {
  const faults = [];
  if (!document.querySelector('.nav [aria-current="page"]')) faults.push('no nav item');
  for (const dd of document.querySelectorAll('.facts dd')) {
    const line = parseFloat(getComputedStyle(dd).lineHeight);
    if (innerWidth > 640 && dd.getBoundingClientRect().height > line * 1.5)
      faults.push('fact wraps: ' + dd.textContent);
  }
  for (const row of document.querySelectorAll('.episode-task-actions')) {
    const tops = [...row.querySelectorAll('button, input[type=text]')]
      .filter(b => b.getBoundingClientRect().top < row.getBoundingClientRect().top + 50)
      .map(b => Math.round(b.getBoundingClientRect().top));
    if (innerWidth > 640 && new Set(tops).size > 1)
      faults.push('task actions not aligned: ' + tops);
  }
  return faults;
}""",
    "page-link": """() =>
  document.querySelector('.nav [aria-current="page"]') ? [] : ['no nav item']""",
    "queue-manager": """() => {
  const faults = [];
  for (const row of document.querySelectorAll('.urgent-row')) {
    const text = row.querySelector(':scope > span').getBoundingClientRect();
    const button = row.querySelector('button').getBoundingClientRect();
    const mid = r => r.top + r.height / 2;
    if (innerWidth > 640 && Math.abs(mid(text) - mid(button)) > 2)
      faults.push('urgent row off centre: ' + mid(text) + ' ' + mid(button));
  }
  return faults;
}""",
    "report": """() => {
  const faults = [];
  for (const a of document.querySelectorAll('.figure-table a')) {
    if (a.textContent.trim() === '—') faults.push('an empty figure is a link');
  }
  for (const th of document.querySelectorAll('.figure-table thead th')) {
    const line = parseFloat(getComputedStyle(th).lineHeight);
    if (th.getBoundingClientRect().height > line * 2.5 + 16)
      faults.push('header on three lines: ' + th.textContent);
  }
  const [from, to] = [...document.querySelectorAll('.custom-range input[type=date]')]
    .map(i => Math.round(i.getBoundingClientRect().width));
  if (from !== to) faults.push('From ' + from + ' px, To ' + to + ' px');
  return faults;
}""",
    "admin-users": """() => {
  const faults = [];
  for (const row of document.querySelectorAll('.user-name')) {
    const you = row.querySelector('.muted');
    const name = row.querySelector('strong').getBoundingClientRect();
    if (you && you.getBoundingClientRect().top > name.bottom - 4)
      faults.push('(you) under the name');
  }
  return faults;
}""",
    "simulator": """() => {
  const faults = [];
  const select = document.querySelector('select[name=line]');
  for (const o of select.options) {
    if (o.textContent.includes('+1')) faults.push('raw number: ' + o.textContent);
  }
  // A select cuts its text off without scrolling: measure the number's width in its font.
  const pen = document.createElement('canvas').getContext('2d');
  pen.font = getComputedStyle(select).font;
  const number = select.selectedOptions[0].textContent.split(' · ')[0];
  if (pen.measureText(number).width > select.clientWidth - 48) faults.push('number cut off');
  const form = select.closest('form').getBoundingClientRect();
  const help = select.closest('form').nextElementSibling.getBoundingClientRect();
  if (help.top - form.bottom < 8) faults.push('help touches the button');
  return faults;
}""",
    "landing": """() => {
  const faults = [];
  const buttons = [...document.querySelectorAll('.landing-actions .btn')];
  const widths = buttons.map(b => Math.round(b.getBoundingClientRect().width));
  if (new Set(widths).size > 1) faults.push('buttons differ: ' + widths);
  for (const b of buttons) {
    const words = document.createRange();
    words.selectNodeContents(b);
    const lines = new Set([...words.getClientRects()].map(r => Math.round(r.top)));
    if (innerWidth > 640 && lines.size > 1) faults.push('wraps: ' + b.textContent.trim());
  }
  return faults;
}""",
    "leak-audit": """() => {
  // Side by side, each field's box level with its neighbours' whatever its label's lines.
  const rows = new Map();
  for (const field of document.querySelectorAll('.assumption-grid .assumption')) {
    const top = Math.round(field.getBoundingClientRect().top);
    const box = Math.round(field.querySelector('input').getBoundingClientRect().top);
    rows.set(top, [...(rows.get(top) || []), box]);
  }
  return [...rows.values()].filter(boxes => new Set(boxes).size > 1)
    .map(boxes => 'boxes not level: ' + boxes);
}""",
}
CHECKS["conversation-two-replies"] = CHECKS["conversation-urgent"] = CHECKS["conversation"]
CHECKS["admin-users-admin"] = CHECKS["admin-users"]
CHECKS["report-admin"] = CHECKS["report"]


def test_every_page_answers_and_fits_a_phone(
    server: Server, world: scenario.Scenario, extras: Extras, browser: Browser
) -> None:
    pages = views(world, extras)
    too_wide: list[str] = []
    faults: list[str] = []
    for n, (width, size) in enumerate(WIDTHS.items()):
        contexts: dict[str | None, BrowserContext] = {}
        try:
            for view in pages:
                if view.who not in contexts:
                    contexts[view.who] = signed_in(
                        browser, server.base_url, world, view.who, size, n
                    )
                page = contexts[view.who].new_page()
                response = page.goto(server.base_url + view.path)
                assert response is not None
                assert response.status == view.status, f"{view.name}: {response.status}"
                shot(page, f"{view.name}-{width}")
                scrolled = page.evaluate("document.documentElement.scrollWidth")
                if scrolled > size["width"]:
                    too_wide.append(f"{view.name} at {width} px is {scrolled} px wide")
                for check in (EVERY_PAGE, CHECKS.get(view.name)):
                    if check:
                        faults.extend(f"{view.name} at {width}: {f}" for f in page.evaluate(check))
                page.close()
        finally:
            for context in contexts.values():
                context.close()
    assert too_wide == []
    assert faults == []


def test_a_fresh_installs_first_account_command_fits_a_phone(
    server: Server, fresh_install: None, browser: Browser
) -> None:
    # Before any account exists the landing and sign-in pages show an 80-character command:
    # it must wrap, not make the phone scroll sideways (the test above has staff already).
    too_wide: list[str] = []
    for width, size in WIDTHS.items():
        context = at_width(browser, size)
        try:
            for name, path in (("landing-fresh-install", "/"), ("sign-in-fresh-install", "/login")):
                page = context.new_page()
                page.goto(server.base_url + path)
                expect(page.get_by_text("No one can sign in yet.")).to_be_visible()
                shot(page, f"{name}-{width}")
                scrolled = page.evaluate("document.scrollingElement.scrollWidth")
                command = page.locator(".first-account .command")
                inside = command.evaluate("el => el.scrollWidth - el.clientWidth")
                if scrolled > size["width"] or inside > 0:
                    too_wide.append(f"{name} at {width} px: page {scrolled} px, command {inside}")
                page.close()
        finally:
            context.close()
    assert too_wide == []
