"""What a second walk through the product as new users (front desk, clinician, manager)
found: Calls opened on last week with today's calls missing, and the defects below."""

from __future__ import annotations

import pytest
from playwright.sync_api import FloatRect, Locator, Page, expect

from tests.e2e import scenario
from tests.e2e.conftest import PHONE, Server, shot, sign_in
from tests.e2e.test_admin_browser import MANAGER
from tests.e2e.test_admin_browser import sign_in as sign_in_manager

pytestmark = pytest.mark.e2e

# The scenario's morning at Valley Family: billing, refill, unclear and urgent callers.
VALLEY_CALLS = 4


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_calls_opens_on_a_range_that_holds_todays_calls(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/tasks")
    sign_in(page, world.users.desk)
    page.get_by_role("link", name="Calls", exact=True).click()

    expect(page.get_by_role("heading", name="Missed calls")).to_be_visible()
    expect(page.locator(".page-head")).to_contain_text(f"{VALLEY_CALLS} calls")
    expect(page.locator(".episode-table tbody tr")).to_have_count(VALLEY_CALLS)
    expect(page.locator(".episode-table")).to_contain_text("***-***-0199")  # 6 minutes ago
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"calls-{device}")


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_manager_reads_saved_replies_as_patients_get_them_and_edits_one(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    scenario.add_manager(server.sessions, world.users, MANAGER)
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/admin/replies")
    sign_in_manager(page, MANAGER)
    for title, body in [
        ("Running late", "{{ practice_name }}: we are running about 20 minutes late."),
        ("Call us", "{{ practice_name }}: please call us at {{ practice_phone }}."),
    ]:
        page.get_by_label("Title").first.fill(title)
        page.get_by_label("Text").first.fill(body)
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_text("Saved reply added.")).to_be_visible()

    rows = page.locator(".saved-row")
    expect(rows).to_have_count(2)
    # Rendered as the patient gets it, not the template's {{ practice_name }}.
    expect(rows.first).to_contain_text("Valley Family Clinic: please call us at (512) 555-0100.")
    expect(page.locator(".saved-preview").filter(has_text="{{")).to_have_count(0)
    # Each Remove names its reply (two buttons both called "Remove" told a screen reader
    # nothing).
    expect(page.get_by_role("button", name="Remove saved reply 'Running late'")).to_have_count(1)
    expect(page.get_by_role("button", name="Remove saved reply 'Call us'")).to_have_count(1)
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"admin-replies-{device}")

    late = rows.filter(has_text="Running late")
    late.locator("summary", has_text="Edit").click()
    source = late.get_by_label("Text (the template)")
    expect(source).to_have_value("{{ practice_name }}: we are running about 20 minutes late.")
    shot(page, f"admin-replies-editing-{device}")
    source.fill("{{ practice_name }}: we are running about 30 minutes late.")
    late.get_by_role("button", name="Save changes to saved reply 'Running late'").click()

    expect(page.get_by_text("Saved reply saved.")).to_be_visible()
    expect(page.locator(".saved-row").filter(has_text="Running late")).to_contain_text(
        "Valley Family Clinic: we are running about 30 minutes late."
    )
    expect(page.locator(".saved-row")).to_have_count(2)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_roster_lines_up_and_offers_only_the_moves_that_move(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    scenario.add_manager(server.sessions, world.users, MANAGER)
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/admin/roster")
    sign_in_manager(page, MANAGER)
    expect(page.get_by_role("heading", name="On-call roster")).to_be_visible()

    # The file's two on call: nobody above the first, nobody below the last.
    expect(page.get_by_role("button", name="Move Dr. Rivera up")).to_be_hidden()
    expect(page.get_by_role("button", name="Move Dr. Rivera down")).to_be_visible()
    expect(page.get_by_role("button", name="Move Nurse Lee up")).to_be_visible()
    expect(page.get_by_role("button", name="Move Nurse Lee down")).to_be_hidden()

    # The add-a-person row and the manager's sit in the same columns as the list.
    rows = page.locator(".roster-form .roster-row")
    boxes = [
        (rows.nth(n).locator("input[name$=name]").bounding_box(), n) for n in range(rows.count())
    ]
    first = boxes[0][0]
    assert first is not None
    for box, n in boxes[1:]:
        assert box is not None
        assert abs(box["x"] - first["x"]) < 1 and abs(box["width"] - first["width"]) < 1, (n, box)
    phones = [rows.nth(n).locator("input[type=tel]").bounding_box() for n in range(rows.count())]
    assert all(p is not None and abs(p["x"] - phones[0]["x"]) < 1 for p in phones), phones  # type: ignore[index]
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"admin-roster-{device}")


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_queue_cards_lay_out_their_badges_and_actions_cleanly(
    server: Server, world: scenario.Scenario, device: str, request: pytest.FixtureRequest
) -> None:
    page: Page = request.getfixturevalue(device)
    page.goto(f"{server.base_url}/tasks")
    sign_in(page, world.users.desk)
    page.locator(f"#task-{world.billing_task_id}").get_by_role("button", name="Claim").click()
    expect(page.get_by_text("Task claimed: it is yours.")).to_be_visible()
    cards = page.locator(".queue .task")
    expect(cards).to_have_count(3)

    def box(locator: Locator) -> FloatRect:
        found = locator.bounding_box()
        assert found is not None
        return found

    def middle(b: FloatRect) -> float:
        return b["y"] + b["height"] / 2

    widths = set()
    for n in range(cards.count()):
        card = cards.nth(n)
        main, actions = box(card.locator(".task-main")), box(card.locator(".task-actions"))
        widths.add(round(main["width"]))
        # The words, then the actions under them: every card the same shape.
        assert actions["y"] >= main["y"] + main["height"], n
        for badge in card.locator(".badge").all():
            assert box(badge)["height"] < 26, (n, badge.inner_text())  # one line, never two
        first = card.locator(".task-actions > form").first.get_by_role("button")
        hand_over = card.locator(".hand-over summary")
        note, complete = (
            card.get_by_placeholder("Note (optional)"),
            card.get_by_role("button", name="Complete"),
        )
        assert abs(middle(box(first)) - middle(box(hand_over))) < 4, n
        assert abs(middle(box(note)) - middle(box(complete))) < 4, n
        assert box(complete)["x"] > box(note)["x"]
        if device == "desktop":  # all on one row
            assert abs(middle(box(first)) - middle(box(complete))) < 4, n
    assert len(widths) == 1, widths
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"queue-{device}")

    # Hand over opened takes a row of its own; nothing else moves off its row.
    claimed = page.locator(f"#task-{world.billing_task_id}")
    claimed.locator(".hand-over summary").click()
    menus = box(claimed.get_by_label(f"Queue for task {world.billing_task_id}"))
    assert menus["y"] > box(claimed.get_by_role("button", name="Unclaim"))["y"]
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"queue-hand-over-{device}")
