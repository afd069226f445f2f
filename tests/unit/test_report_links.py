"""Each heat-map square and each time-to-first-text column of the report links to exactly
the calls it counts: /episodes filtered by weekday and hour (on the practice's clock), or
by a band of time to first text; the CSV of that list has the same calls."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import utcnow
from recovery.domain.periods import DateRange, Period, Preset
from recovery.domain.templates import SmsTemplates
from recovery.models import EpisodeOutcome, Practice
from recovery.services.episodes import EpisodeFilter, TtftBand, band_of_bucket
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.test_reports import add_episode
from tests.unit.test_staff_pages import sign_in, text_of

MANAGER = "boss@valley.example"
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    built = scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())
    scenario.add_manager(sessions, built.users, MANAGER)
    return built


def _a_monday(days_back_at_least: int = 3) -> date:
    today = utcnow().astimezone(CHICAGO).date()
    day = today - timedelta(days=days_back_at_least)
    return day - timedelta(days=day.weekday())


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), CHICAGO).astimezone(UTC)


@pytest.fixture
def mondays(world: Scenario, sessions: sessionmaker[Session]) -> date:
    """On a recent Monday at Valley Family (Chicago): three unrecovered calls at 9-something,
    one at 10, one booked at 9; first texts in 0.5-1 s but the 10 o'clock one (40 s)."""
    monday = _a_monday()
    with sessions.begin() as session:
        pid = session.scalars(select(Practice.id).where(Practice.slug == "valley-family")).one()
        for n, minute in enumerate((5, 30, 59)):
            add_episode(
                session,
                pid,
                _at(monday, 9, minute),
                EpisodeOutcome.UNRECOVERED,
                ttft=700,
                caller=f"+1512555{7000 + n}",
            )
        add_episode(
            session,
            pid,
            _at(monday, 10, 0),
            EpisodeOutcome.UNRECOVERED,
            ttft=40_000,
            caller="+15125557010",
        )
        add_episode(
            session,
            pid,
            _at(monday, 9, 15),
            EpisodeOutcome.BOOKED,
            ttft=700,
            caller="+15125557020",
        )
    return monday


def _episode_ids(client: FlaskClient, href: str) -> list[str]:
    return re.findall(r'href="/episodes/(\d+)"', text_of(client.get(href)))


def test_a_heat_map_square_lists_exactly_its_calls(client: FlaskClient, mondays: date) -> None:
    sign_in(client, MANAGER)
    body = text_of(client.get("/reports?range=last_30_days"))
    heat = re.search(
        r'<svg class="chart"[^>]*aria-labelledby="chart-heat-title.*?</svg>', body, re.S
    )
    assert heat is not None
    cell = re.search(
        r'<a href="([^"]+)"><rect[^>]*><title ?>Mon 09:00-09:59: (\d+) unrecovered</title>',
        heat.group(0),
    )
    assert cell is not None
    href, counted = html.unescape(cell.group(1)), int(cell.group(2))
    assert counted == 3
    assert "weekday=mon" in href and "hour=9" in href and "outcome=unrecovered" in href

    listing = text_of(client.get(href))
    assert len(re.findall(r'href="/episodes/(\d+)"', listing)) == 3
    assert "Only calls Mondays 09:00–09:59" in listing
    # The 10 o'clock call and the booked one are other squares' (or none).
    ten = href.replace("hour=9", "hour=10")
    assert len(_episode_ids(client, ten)) == 1

    # The CSV from that list has the same three calls.
    export = re.search(r'href="(/export\?[^"]+)" download', listing)
    assert export is not None and "weekday=mon" in export.group(1)
    rows = list(csv.DictReader(io.StringIO(text_of(client.get(html.unescape(export.group(1)))))))
    assert len(rows) == 3 and {r["outcome"] for r in rows} == {"unrecovered"}

    # The table under the chart links the same way.
    assert f'<a href="{cell.group(1)}">3</a>' in body


def test_a_time_to_first_text_column_lists_exactly_its_calls(
    client: FlaskClient, mondays: date
) -> None:
    sign_in(client, MANAGER)
    body = text_of(client.get("/reports?range=last_30_days"))
    for label, band in (("0.5–1 s", "500-1000"), ("≥ 30 s", "30000-"), ("not texted", "none")):
        column = re.search(rf'<a href="([^"]+)"><title ?>{re.escape(label)}: (\d+)</title>', body)
        assert column is not None, label
        href, counted = html.unescape(column.group(1)), int(column.group(2))
        assert f"ttft={band}" in href
        listing = text_of(client.get(href))
        found = re.search(r"· (\d+) calls?</p>", listing)
        assert found is not None and int(found.group(1)) == counted, label
    assert int(re.search(r"<title ?>0.5–1 s: (\d+)</title>", body).group(1)) >= 4  # type: ignore[union-attr]
    assert int(re.search(r"<title ?>≥ 30 s: (\d+)</title>", body).group(1)) >= 1  # type: ignore[union-attr]


def test_filters_keep_the_square_when_another_is_changed(
    client: FlaskClient, mondays: date
) -> None:
    sign_in(client, MANAGER)
    listing = text_of(client.get("/episodes?range=last_30_days&weekday=mon&hour=9&ttft=500-1000"))
    assert 'type="hidden" name="weekday" value="mon"' in listing
    assert 'type="hidden" name="hour" value="9"' in listing
    assert 'type="hidden" name="ttft" value="500-1000"' in listing
    assert "Only calls Mondays 09:00–09:59, first text in 0.5–1 s" in listing
    # Three unrecovered and the booked one.
    assert len(re.findall(r'href="/episodes/(\d+)"', listing)) == 4


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("weekday=funday", "weekday='funday': one of mon"),
        ("hour=24", "hour='24': 0 to 23"),
        ("ttft=fast", "ttft: a band of milliseconds"),
        ("ttft=1000-500", "ttft: a band of milliseconds"),
    ],
)
def test_a_bad_square_or_band_is_explained(
    client: FlaskClient, world: Scenario, query: str, reason: str
) -> None:
    sign_in(client, MANAGER)
    response = client.get(f"/episodes?{query}")
    assert response.status_code == 400
    assert reason in text_of(response)


def _filter(day: date, hour: int) -> EpisodeFilter:
    period = Period(Preset.CUSTOM, DateRange(day, day), DateRange(day, day))
    return EpisodeFilter(period, weekday=day.weekday(), hour=hour)


def test_an_hour_on_a_dst_night_is_what_the_clock_showed() -> None:
    # Fall back (Chicago, Sun 2026-11-01): 01:00-01:59 happens twice, and the heat map
    # counts both under 1 a.m.: two hours. Spring forward (Sun 2026-03-08): 02:xx never
    # happens: nothing.
    [(start, end)] = _filter(date(2026, 11, 1), 1).local_windows(CHICAGO)
    assert end - start == timedelta(hours=2)
    assert start == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 01:00 CDT
    assert _filter(date(2026, 3, 8), 2).local_windows(CHICAGO) == []
    [(start, end)] = _filter(date(2026, 3, 8), 23).local_windows(CHICAGO)
    assert end - start == timedelta(hours=1)


def test_bands_of_the_histogram_columns() -> None:
    assert [str(band_of_bucket(i)) for i in range(7)] == [
        "0-500",
        "500-1000",
        "1000-2000",
        "2000-5000",
        "5000-30000",
        "30000-",
        "none",
    ]
    assert TtftBand.parse("500-1000") == TtftBand(500, 1000)


def test_the_square_and_band_filters_in_the_database(sessions: sessionmaker[Session]) -> None:
    """Service level, so tests/integration/test_report_links_sql.py runs it on PostgreSQL:
    the CSV rows of a weekday/hour square and of a first-text band."""
    from recovery.services.reports import csv_rows

    monday = date(2026, 11, 2)
    with sessions.begin() as session:
        practice = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        for minute, ttft in ((0, 300), (30, 700), (59, None)):
            add_episode(
                session, practice.id, _at(monday, 9, minute), EpisodeOutcome.UNRECOVERED, ttft=ttft
            )
        add_episode(session, practice.id, _at(monday, 10, 0), EpisodeOutcome.UNRECOVERED, ttft=700)
        add_episode(session, practice.id, _at(monday + timedelta(days=7), 9, 10), None, ttft=700)
        add_episode(session, practice.id, _at(monday + timedelta(days=1), 9, 10), None, ttft=700)
    days = DateRange(monday, monday + timedelta(days=13))
    period = Period(Preset.CUSTOM, days, days)

    def count(wanted: EpisodeFilter) -> int:
        with sessions() as session:
            found = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
            return len(list(csv_rows(session, [found], days, where=wanted.conditions([found]))))

    assert count(EpisodeFilter(period, weekday=0, hour=9)) == 4  # two Mondays at 9
    assert count(EpisodeFilter(period, weekday=0, hour=10)) == 1
    assert count(EpisodeFilter(period, hour=9)) == 5  # and the Tuesday
    assert count(EpisodeFilter(period, weekday=1)) == 1
    assert count(EpisodeFilter(period, weekday=6)) == 0
    assert count(EpisodeFilter(period, ttft=TtftBand(500, 1000))) == 4
    assert count(EpisodeFilter(period, ttft=TtftBand(not_texted=True))) == 1
    assert count(EpisodeFilter(period, weekday=0, hour=9, ttft=TtftBand(0, 500))) == 1
