"""Report periods: presets on the practice's calendar, the range compared with, bad dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from recovery.domain.periods import BadRange, DateRange, Preset, parse_period, preset
from recovery.services.episodes import parse_filter

WEDNESDAY = date(2026, 12, 2)


def test_this_week_is_monday_to_today_beside_the_same_days_of_last_week() -> None:
    period = preset(Preset.THIS_WEEK, WEDNESDAY)
    assert period.current == DateRange(date(2026, 11, 30), WEDNESDAY)
    assert period.previous == DateRange(date(2026, 11, 23), date(2026, 11, 25))


def test_last_week_is_the_whole_week_before_beside_the_week_before_that() -> None:
    period = preset(Preset.LAST_WEEK, WEDNESDAY)
    assert period.current == DateRange(date(2026, 11, 23), date(2026, 11, 29))
    assert period.previous == DateRange(date(2026, 11, 16), date(2026, 11, 22))


def test_last_7_days_ends_today_and_compares_with_the_7_before() -> None:
    period = preset(Preset.LAST_7_DAYS, WEDNESDAY)
    assert period.current == DateRange(date(2026, 11, 26), WEDNESDAY)
    assert period.previous == DateRange(date(2026, 11, 19), date(2026, 11, 25))


def test_last_30_days_ends_today_and_compares_with_the_30_before() -> None:
    period = preset(Preset.LAST_30_DAYS, WEDNESDAY)
    assert period.current.days == period.previous.days == 30
    assert period.current.end == WEDNESDAY
    assert period.previous.end == date(2026, 11, 2)


def test_this_quarter_so_far_beside_as_many_days_of_last_quarter() -> None:
    period = preset(Preset.THIS_QUARTER, WEDNESDAY)
    assert period.current == DateRange(date(2026, 10, 1), WEDNESDAY)
    assert period.previous == DateRange(date(2026, 7, 1), date(2026, 9, 1))
    # The last day of a long quarter does not spill into the current one.
    late = preset(Preset.THIS_QUARTER, date(2026, 3, 31))
    assert late.previous == DateRange(date(2025, 10, 1), date(2025, 12, 29))


def test_bounds_are_local_midnights_across_a_dst_change() -> None:
    chicago = ZoneInfo("America/Chicago")
    lo, hi = DateRange(date(2026, 11, 1), date(2026, 11, 1)).bounds(chicago)
    assert lo == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # CDT, UTC-5
    assert hi == datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # CST, UTC-6: a 25-hour day


def test_explicit_dates_win_and_compare_with_as_many_days_before() -> None:
    period = parse_period("this_week", "2026-11-01", "2026-11-10", WEDNESDAY)
    assert period.preset is Preset.CUSTOM
    assert period.previous == DateRange(date(2026, 10, 22), date(2026, 10, 31))


@pytest.mark.parametrize(
    ("name", "start", "end", "says"),
    [
        (None, "2026-13-01", "2026-12-01", "not a date"),
        (None, "2026-12-01", None, "to is missing"),
        (None, "2026-12-05", "2026-12-01", "before it starts"),
        (None, "2020-01-01", "2026-12-01", "at most"),
        ("fortnight", None, None, "unknown range"),
    ],
)
def test_bad_dates_are_refused_with_a_reason(
    name: str | None, start: str | None, end: str | None, says: str
) -> None:
    with pytest.raises(BadRange, match=says):
        parse_period(name, start, end, WEDNESDAY)


def test_no_dates_and_no_preset_means_last_week() -> None:
    assert parse_period(None, None, None, WEDNESDAY).preset is Preset.LAST_WEEK


def test_a_caller_of_parse_period_chooses_its_own_default() -> None:
    chosen = parse_period(None, None, None, WEDNESDAY, default=Preset.LAST_7_DAYS)
    assert chosen.preset is Preset.LAST_7_DAYS
    assert parse_period("last_week", None, None, WEDNESDAY, default=Preset.LAST_7_DAYS).preset is (
        Preset.LAST_WEEK
    )


@pytest.mark.parametrize("today", [date(2026, 11, 30) + timedelta(days=n) for n in range(7)])
def test_the_list_of_calls_opens_on_a_range_that_includes_today(today: date) -> None:
    # The report's last week never holds today: a desk opening Calls saw 0 while today had 9.
    days = parse_filter({}, today).days
    assert days.start <= today == days.end
    assert days.days == 7
