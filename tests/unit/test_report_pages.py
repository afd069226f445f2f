"""The manager's pages through Flask's test client: the report with its pictures, the
list of missed calls with its filters, the CSV; who may see which."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import utcnow
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, EpisodeOutcome, Practice
from recovery.services.reports import CSV_COLUMNS
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.test_reports import add_episode
from tests.unit.test_staff_pages import audit, sign_in, text_of

MANAGER = "boss@valley.example"
RANGE = "range=last_30_days"


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    built = scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())
    scenario.add_manager(sessions, built.users, MANAGER)
    return built


def _valley_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        found = session.scalar(select(Practice.id).where(Practice.slug == "valley-family"))
    assert found is not None
    return found


def _headline(body: str, label: str) -> str:
    found = re.search(
        rf'headline-label">{re.escape(label)}</span>\s*<span class="headline-value">([^<]+)<', body
    )
    assert found is not None, label
    return found.group(1)


# --- who lands where, who sees what ----------------------------------------------------------


def test_a_manager_lands_on_the_report_after_signing_in(
    client: FlaskClient, world: Scenario
) -> None:
    response = client.post(
        "/login",
        data={"email": MANAGER, "password": scenario.PASSWORD, "csrf_token": _csrf(client)},
    )
    assert response.headers["Location"] == "/login/code"
    import pyotp

    done = client.post(
        "/login/code",
        data={"code": pyotp.TOTP(scenario.TOTP_SECRET).now(), "csrf_token": _csrf(client)},
    )
    assert done.status_code == 302 and done.headers["Location"] == "/reports"
    assert client.get("/").headers["Location"] == "/reports"
    nav = text_of(client.get("/reports")).split("</nav>")[0]
    assert ">Reports<" in nav and ">Tasks<" in nav and ">Calls<" in nav


def _csrf(client: FlaskClient) -> str:
    from tests.unit.test_staff_pages import csrf

    return csrf(client)


def test_front_desk_lists_their_practices_calls_but_not_the_report_or_csv(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, world.users.desk)

    assert client.get("/").headers["Location"] == "/tasks"
    assert ">Reports<" not in text_of(client.get("/tasks")).split("</nav>")[0]
    assert client.get("/reports").status_code == 403
    assert client.get(f"/export?{RANGE}").status_code == 403
    listing = client.get(f"/episodes?{RANGE}")
    assert listing.status_code == 200
    body = text_of(listing)
    assert "***-***-0188" in body and "***-***-0199" in body
    assert "***-***-0123" not in body  # the other practice's caller
    assert "+15125550188" not in body  # masked: the full number is on the conversation
    assert "Download CSV" not in body


def test_another_practices_report_and_list_are_not_found(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, MANAGER)

    assert client.get("/reports?practice=always-open").status_code == 404
    assert client.get("/episodes?practice=always-open").status_code == 404
    assert client.get("/export?practice=always-open").status_code == 404
    assert len(audit(client.application.extensions["recovery"].sessions, "denied")) == 3


def test_an_admin_sees_all_practices_or_one(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, world.users.admin)

    everyone = text_of(client.get(f"/reports?practice=all&{RANGE}"))
    assert _headline(everyone, "Missed calls") == "5"
    assert "All practices" in everyone
    one = text_of(client.get(f"/reports?practice=always-open&{RANGE}"))
    assert _headline(one, "Missed calls") == "1"
    calls = text_of(client.get(f"/episodes?practice=all&{RANGE}"))
    assert "***-***-0123" in calls and "***-***-0188" in calls


# --- the report ------------------------------------------------------------------------------


def test_the_report_shows_the_figures_beside_the_period_before(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    valley = _valley_id(sessions)
    with sessions.begin() as session:
        # Two calls in the 30 days before: one booked at the visit value of 180.
        before = utcnow() - timedelta(days=40)
        add_episode(session, valley, before, EpisodeOutcome.BOOKED, intent="book", ttft=900)
        add_episode(session, valley, before, EpisodeOutcome.UNRECOVERED, ttft=700)
    sign_in(client, MANAGER)

    response = client.get(f"/reports?{RANGE}")

    assert response.status_code == 200
    body = text_of(response)
    assert _headline(body, "Missed calls") == "4"  # billing, refill, unclear, urgent
    assert _headline(body, "Recovered") == "0"
    assert _headline(body, "Revenue recovered") == "$0"
    assert "before: 2 · +2" in body  # missed calls, the 30 days before
    assert "before: $180" in body
    assert 'aria-current="true">Last 30 days<' in body


def test_the_report_draws_four_charts_each_with_its_numbers_in_words(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, MANAGER)

    body = text_of(client.get(f"/reports?{RANGE}"))

    charts = re.findall(r'<svg class="chart"[^>]*role="img"[^>]*>', body)
    assert len(charts) == 4
    for chart_id in ("chart-days", "chart-outcomes", "chart-heat", "chart-ttft"):
        assert f'aria-labelledby="{chart_id}-title {chart_id}-desc"' in body
        desc = re.search(rf'<desc id="{chart_id}-desc">(.*?)</desc>', body)
        assert desc is not None and desc.group(1).strip()
    outcomes = re.search(r'<desc id="chart-outcomes-desc">(.*?)</desc>', body)
    assert outcomes is not None
    # Nobody has taken the urgent page yet, so nothing is escalated: all four are open.
    assert "Escalated: 0" in outcomes.group(1) and "Still open: 4" in outcomes.group(1)
    assert "<script" not in body and "cdn" not in body.lower()
    assert body.count("<summary>The numbers</summary>") == 4


def test_every_figure_links_to_the_episodes_behind_it(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, MANAGER)
    body = text_of(client.get(f"/reports?{RANGE}"))

    # In page order: in each row the range's own link comes before the one before it.
    links = re.findall(r'href="(/episodes\?[^"]+)"', body)
    assert any("outcome=recovered" in link for link in links)
    assert any("outcome=unrecovered" in link for link in links)
    assert any("intent=book" in link for link in links)
    urgent = next(link for link in links if "intent=urgent" in link)
    listing = text_of(client.get(urgent))
    assert listing.count('href="/episodes/') == 1  # the urgent caller
    assert "***-***-0199" in listing


def test_a_range_that_is_not_one_is_explained(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, MANAGER)

    response = client.get("/reports?from=2026-11-30&to=2026-11-01")

    assert response.status_code == 400
    assert "ends (2026-11-01) before it starts (2026-11-30)" in text_of(response)


# --- the list of calls -----------------------------------------------------------------------


def test_the_list_filters_by_outcome_intent_and_last_four_digits(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, MANAGER)

    def rows(query: str) -> list[str]:
        return re.findall(r'href="/episodes/(\d+)"', text_of(client.get(f"/episodes?{query}")))

    assert len(rows(RANGE)) == 4
    assert rows(f"{RANGE}&caller=0188") == [str(world.billing_episode_id)]
    assert rows(f"{RANGE}&intent=billing") == [str(world.billing_episode_id)]
    assert rows(f"{RANGE}&intent=urgent") == [str(world.urgent_episode_id)]
    assert rows(f"{RANGE}&outcome=open&caller=0199") == [str(world.urgent_episode_id)]
    assert rows(f"{RANGE}&outcome=booked") == []
    bad = client.get(f"/episodes?{RANGE}&caller=12")
    assert bad.status_code == 400
    assert "last four digits" in text_of(bad)


def test_the_list_pages_fifty_at_a_time(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    valley = _valley_id(sessions)
    with sessions.begin() as session:
        for n in range(51):
            add_episode(
                session, valley, utcnow() - timedelta(days=2, minutes=n), EpisodeOutcome.UNRECOVERED
            )
    sign_in(client, MANAGER)

    first = text_of(client.get(f"/episodes?{RANGE}"))
    assert first.count('href="/episodes/') == 50
    assert "1–50 of 55" in first
    next_link = re.search(r'rel="next" href="([^"]+)"', first)
    assert next_link is not None and "range" not in next_link.group(1)
    second = text_of(client.get(next_link.group(1).replace("&amp;", "&")))
    assert second.count('href="/episodes/') == 5
    assert "51–55 of 55" in second and 'rel="prev"' in second


# --- the CSV ---------------------------------------------------------------------------------


def test_the_csv_has_one_masked_row_per_missed_call_and_is_audited(
    client: FlaskClient, world: Scenario, sessions: sessionmaker[Session]
) -> None:
    sign_in(client, MANAGER)
    report = text_of(client.get(f"/reports?{RANGE}"))
    href = re.search(r'href="(/export\?[^"]+)" download', report)
    assert href is not None

    response = client.get(href.group(1).replace("&amp;", "&"))

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="recovery-valley-family-'
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 5
    body = response.get_data(as_text=True)
    assert "+1512" not in body and "***-***-0188" in body
    with sessions() as session:
        ids = {str(e.id) for e in session.scalars(select(Episode).where(Episode.call_count > 0))}
    assert {r[0] for r in rows[1:]} <= ids
    assert len(audit(sessions, "export_episodes")) == 1


def test_the_csv_follows_the_lists_filters(client: FlaskClient, world: Scenario) -> None:
    sign_in(client, MANAGER)
    listing = text_of(client.get(f"/episodes?{RANGE}&intent=billing"))
    href = re.search(r'href="(/export\?[^"]+)" download', listing)
    assert href is not None

    rows = list(csv.reader(io.StringIO(text_of(client.get(href.group(1).replace("&amp;", "&"))))))

    assert len(rows) == 2 and rows[1][6] == "billing"
