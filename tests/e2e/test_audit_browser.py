"""The leak audit in Chromium: a manager, before installing anything, uploads a month of
the phone system's call log (Asterisk's Master.csv, no header), reads what missed calls
cost, changes an assumption, and gets a clear message for a file that is not a call log;
on a desktop and on a phone."""

from __future__ import annotations

import csv
import os
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e import scenario
from tests.e2e.conftest import Server, shot
from tests.e2e.test_admin_browser import MANAGER, sign_in

pytestmark = pytest.mark.e2e


def month_of_calls(path: Path) -> tuple[int, int]:
    """November at Valley Family (Mon 08-12/13-17, Tue 08-17): 1,200 inbound calls, more
    missed at lunch and first thing, some at night; seeded. Returns (calls, missed)."""
    rng = random.Random(7)
    calls = missed = 0
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        start = datetime(2026, 11, 2, 7)
        for n in range(1200):
            day = rng.randrange(26)
            hour = rng.choices(range(7, 20), weights=[3, 9, 8, 6, 5, 9, 4, 6, 5, 4, 2, 2, 1])[0]
            at = start + timedelta(days=day, hours=hour - 7, minutes=rng.randrange(60))
            lunch_or_morning = hour in (8, 12) or hour >= 17
            is_missed = rng.random() < (0.55 if lunch_or_morning else 0.2)
            caller = f"512555{rng.randrange(4000, 4900):04d}"
            end = at + timedelta(seconds=30)
            writer.writerow(
                [
                    "",
                    caller,
                    "100",
                    "from-pstn",
                    f"<{caller}>",
                    f"PJSIP/trunk-{n:08x}",
                    "PJSIP/100-00000001",
                    "Dial",
                    "PJSIP/100&PJSIP/101,20",
                    at.isoformat(sep=" "),
                    "" if is_missed else at.isoformat(sep=" "),
                    end.isoformat(sep=" "),
                    30,
                    0 if is_missed else 25,
                    "NO ANSWER" if is_missed else "ANSWERED",
                    "DOCUMENTATION",
                    f"{1762000000 + n}.{n}",
                    "",
                ]
            )
            calls += 1
            missed += is_missed
        out.write("this line is not a call\n")
    return calls, missed


def headline(page: Page, label: str) -> Locator:
    return page.locator(".headline").filter(
        has=page.locator(".headline-label", has_text=re.compile(f"^{re.escape(label)}$"))
    )


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_manager_audits_an_uploaded_call_log(
    server: Server,
    world: scenario.Scenario,
    device: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    page: Page = request.getfixturevalue(device)
    scenario.add_manager(server.sessions, world.users, MANAGER)
    log = tmp_path / "Master.csv"
    calls, missed = month_of_calls(log)

    page.goto(server.base_url + "/login")
    sign_in(page, MANAGER)
    expect(page).to_have_url(re.compile(r"/reports$"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Leak audit").click()
    expect(page.get_by_role("heading", name="Leak audit", exact=True)).to_be_visible()
    expect(page.get_by_label("Value of a new patient's visit")).to_have_value("180")
    shot(page, f"audit-empty-{device}")

    page.get_by_label("Call log (CSV)").set_input_files(str(log))
    page.get_by_role("button", name="Audit the calls").click()

    leak = headline(page, "Annual leak estimate")
    expect(leak).to_be_visible()
    expect(headline(page, "Missed calls")).to_contain_text(f"{missed:,}")
    expect(headline(page, "Missed calls")).to_contain_text(f"of {calls:,} calls")
    expect(
        page.get_by_role("img", name=re.compile("Missed calls by weekday and hour"))
    ).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("line 1201")
    expect(page.get_by_text("Asterisk/FreePBX CDR CSV (Master.csv)").first).to_be_visible()
    before = leak.locator(".headline-value").inner_text()
    assert re.fullmatch(r"\$[\d,]+", before), before
    shot(page, f"audit-result-{device}")
    if os.environ.get("RECOVERY_E2E_SHOTS"):  # the first screen too, as a person sees it
        page.screenshot(
            path=str(Path(os.environ["RECOVERY_E2E_SHOTS"]) / f"audit-top-{device}.png")
        )

    # Twice the visit value, twice the leak: the file is not uploaded again.
    form = page.get_by_role("form", name="Change the assumptions")
    form.get_by_label("Value of a new patient's visit").fill("360")
    form.get_by_role("button", name="Recalculate").click()
    after = headline(page, "Annual leak estimate").locator(".headline-value")
    expected = int(before.strip("$").replace(",", "")) * 2
    expect(after).to_have_text(f"${expected:,}")
    expect(
        page.get_by_role("row", name=re.compile("value of a new patient's visit"))
    ).to_contain_text("$360")

    # A file that is not a call log.
    other = tmp_path / "patients.csv"
    other.write_text("name,email,phone\nJane,jane@example.com,5125550199\n")
    page.get_by_label("Call log (CSV)").set_input_files(str(other))
    page.get_by_role("button", name="Audit the calls").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("not a call log we can read")
    expect(alert).to_contain_text("Asterisk/FreePBX CDR CSV")
    shot(page, f"audit-error-{device}")
