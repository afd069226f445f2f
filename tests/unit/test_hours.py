"""Behaviour of recovery.domain.hours: opening hours, holidays, DST and SLA due times.

Calendar used below (2026): Jun 5 Fri, Jun 8 Mon; Sep 4 Fri, Sep 7 Mon (Labor Day,
a holiday in OFFICE), Sep 8 Tue; Dec 24 Thu, Dec 25 Fri (holiday), Dec 28 Mon.
America/Chicago springs forward on Sun 2026-03-08 (02:00 CST -> 03:00 CDT) and falls
back on Sun 2026-11-01 (02:00 CDT -> 01:00 CST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from recovery.domain.hours import DAY_NAMES, BusinessHours, HoursError, TimeRange

CHICAGO = ZoneInfo("America/Chicago")
WEEKDAYS = DAY_NAMES[:5]
CDT = timedelta(hours=-5)
CST = timedelta(hours=-6)


def chi(y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=CHICAGO, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def in_utc(dt: datetime) -> datetime:
    """Compare instants, not wall times (same-zone comparison ignores fold)."""
    return dt.astimezone(UTC)


# Mon-Fri 08:00-17:00, closed Labor Day and Christmas.
OFFICE = BusinessHours.parse(
    "America/Chicago",
    {day: ["08:00-17:00"] for day in WEEKDAYS},
    ["2026-09-07", "2026-12-25"],
)
# Mon-Fri with a lunch break, Saturday morning.
SPLIT = BusinessHours.parse(
    "America/Chicago",
    {**{day: ["08:00-12:00", "13:00-17:00"] for day in WEEKDAYS}, "sat": ["09:00-12:00"]},
    [],
)
# Every day 08:00-17:00, including the DST Sundays.
DAILY = BusinessHours.parse("America/Chicago", {day: ["08:00-17:00"] for day in DAY_NAMES}, [])
# Open around the clock.
ALWAYS = BusinessHours.parse("America/Chicago", {day: ["00:00-24:00"] for day in DAY_NAMES}, [])
# Friday late shift to midnight, continuing into Saturday's small hours.
LATE = BusinessHours.parse("America/Chicago", {"fri": ["18:00-24:00"], "sat": ["00:00-02:00"]}, [])
NO_HOURS = BusinessHours.parse("America/Chicago", {}, [])


# --------------------------------------------------------------------------- parsing


def test_parse_builds_sorted_weekly_ranges_with_closed_days_empty() -> None:
    bh = BusinessHours.parse(
        "America/Chicago", {"mon": ["13:00-17:00", "08:00-12:00"], "sat": ["09:00-12:00"]}, []
    )
    assert bh.timezone == "America/Chicago"
    assert bh.weekly[0] == (TimeRange(time(8), time(12)), TimeRange(time(13), time(17)))
    assert bh.weekly[5] == (TimeRange(time(9), time(12)),)
    assert set(bh.weekly) == set(range(7))
    assert bh.weekly[1] == () and bh.weekly[6] == ()


def test_parse_accepts_day_names_in_any_case() -> None:
    bh = BusinessHours.parse("America/Chicago", {"MON": ["08:00-17:00"], " Tue ": ["09:00-10:00"]})
    assert bh.weekly[0] == (TimeRange(time(8), time(17)),)
    assert bh.weekly[1] == (TimeRange(time(9), time(10)),)


def test_parse_merges_touching_ranges_into_one() -> None:
    bh = BusinessHours.parse("America/Chicago", {"wed": ["08:00-12:00", "12:00-17:00"]}, [])
    assert bh.weekly[2] == (TimeRange(time(8), time(17)),)
    assert bh.is_open(chi(2026, 6, 10, 12))
    assert bh.day_close(chi(2026, 6, 10, 9)) == chi(2026, 6, 10, 17)


def test_parse_accepts_24_00_as_end_of_day() -> None:
    bh = BusinessHours.parse("America/Chicago", {"fri": ["18:00-24:00"]}, [])
    (rng,) = bh.weekly[4]
    assert rng.ends_at_midnight
    assert str(rng) == "18:00-24:00"


def test_parse_holidays_accepts_strings_and_date_objects() -> None:
    bh = BusinessHours.parse("UTC", {"mon": ["08:00-17:00"]}, ["2026-12-25", date(2027, 1, 1)])
    assert bh.holidays == frozenset({date(2026, 12, 25), date(2027, 1, 1)})


def test_parse_treats_missing_hours_and_holidays_as_empty() -> None:
    bh = BusinessHours.parse("America/Chicago", None, None)
    assert all(ranges == () for ranges in bh.weekly.values())
    assert bh.holidays == frozenset()


def test_parse_accepts_a_single_range_string_for_a_day() -> None:
    bh = BusinessHours.parse("America/Chicago", {"thu": "08:00-17:00"}, [])
    assert bh.weekly[3] == (TimeRange(time(8), time(17)),)


def test_hours_error_is_a_value_error() -> None:
    assert issubclass(HoursError, ValueError)
    with pytest.raises(ValueError):
        BusinessHours.parse("Mars/Base", {}, [])


@pytest.mark.parametrize(
    ("timezone", "hours_cfg", "holidays", "message"),
    [
        ("America/Chicago", {"mon": ["8-17"]}, [], "hours.mon: '8-17' is not HH:MM-HH:MM"),
        (
            "America/Chicago",
            {"tue": ["08:00-12:00", "11:00-13:00"]},
            [],
            "hours.tue: ranges 08:00-12:00 and 11:00-13:00 overlap",
        ),
        (
            "America/Chicago",
            {"tue": ["11:00-13:00", "08:00-12:00"]},
            [],
            "hours.tue: ranges 08:00-12:00 and 11:00-13:00 overlap",
        ),
        ("Mars/Base", {}, [], "timezone: 'Mars/Base' is not a known time zone"),
        ("", {}, [], "timezone: '' is not a known time zone"),
        ("localtime", {}, [], "timezone: 'localtime' is not a known time zone"),
        ("America/Chicago", {"monday": ["08:00-17:00"]}, [], "hours: unknown day 'monday'"),
        (
            "America/Chicago",
            {},
            ["2026-13-01"],
            "holidays: '2026-13-01' is not a date (YYYY-MM-DD)",
        ),
        (
            "America/Chicago",
            {},
            ["12/25/2026"],
            "holidays: '12/25/2026' is not a date (YYYY-MM-DD)",
        ),
        (
            "America/Chicago",
            {"wed": ["08:00-25:00"]},
            [],
            "hours.wed: '08:00-25:00' has an invalid end time 25:00",
        ),
        (
            "America/Chicago",
            {"wed": ["24:00-24:00"]},
            [],
            "hours.wed: '24:00-24:00' has an invalid start time 24:00",
        ),
        (
            "America/Chicago",
            {"fri": ["22:00-02:00"]},
            [],
            "hours.fri: '22:00-02:00' does not end after it starts "
            "(ranges past midnight must be split across two days)",
        ),
        ("America/Chicago", {"sat": [800]}, [], "hours.sat: 800 is not HH:MM-HH:MM"),
        (
            "America/Chicago",
            {"mon": ["08:00-09:00"], "MON": ["10:00-11:00"]},
            [],
            "hours: day 'mon' is given more than once",
        ),
    ],
)
def test_parse_rejects_bad_config_with_a_message_naming_the_key(
    timezone: str, hours_cfg: dict[str, list[str]], holidays: list[str], message: str
) -> None:
    with pytest.raises(HoursError) as excinfo:
        BusinessHours.parse(timezone, hours_cfg, holidays)
    assert str(excinfo.value) == message


def test_constructing_directly_with_an_unknown_zone_fails() -> None:
    with pytest.raises(HoursError, match="not a known time zone"):
        BusinessHours(timezone="Nowhere/Land", weekly={}, holidays=frozenset())


def test_an_opening_range_must_end_after_it_starts() -> None:
    # A TimeRange may wrap midnight (quiet hours do); opening hours may not.
    with pytest.raises(HoursError, match="does not end after it starts"):
        BusinessHours("America/Chicago", {0: (TimeRange(time(17), time(8)),)})


# --------------------------------------------------------------------------- is_open


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (chi(2026, 6, 8, 7, 59), False),  # Monday just before opening
        (chi(2026, 6, 8, 8, 0), True),  # opening instant is open
        (chi(2026, 6, 8, 11, 59), True),
        (chi(2026, 6, 8, 12, 0), False),  # lunch break starts: closed
        (chi(2026, 6, 8, 12, 30), False),
        (chi(2026, 6, 8, 13, 0), True),  # back from lunch
        (chi(2026, 6, 8, 16, 59), True),
        (chi(2026, 6, 8, 17, 0), False),  # closing instant is closed
        (chi(2026, 6, 13, 9, 0), True),  # Saturday morning
        (chi(2026, 6, 13, 12, 0), False),  # Saturday after noon
        (chi(2026, 6, 14, 10, 0), False),  # Sunday
        (chi(2026, 6, 9, 0, 30), False),  # after midnight
    ],
)
def test_split_shift_practice_is_open_only_inside_its_ranges(at: datetime, expected: bool) -> None:
    assert SPLIT.is_open(at) is expected


def test_practice_is_closed_all_day_on_a_holiday() -> None:
    assert OFFICE.is_open(chi(2026, 12, 24, 10))
    assert not OFFICE.is_open(chi(2026, 12, 25, 10))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 6, 8, 12, 59), False),  # 07:59 CDT
        (utc(2026, 6, 8, 13, 0), True),  # 08:00 CDT
        (utc(2026, 1, 5, 13, 30), False),  # 07:30 CST in winter
        (utc(2026, 1, 5, 14, 0), True),  # 08:00 CST
        (utc(2026, 6, 8, 22, 0), False),  # 17:00 CDT
    ],
)
def test_utc_input_is_judged_by_the_practice_local_time(at: datetime, expected: bool) -> None:
    assert OFFICE.is_open(at) is expected


def test_input_in_a_third_zone_is_converted_to_the_practice_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # Tue 2026-06-09 00:00 in Tokyo is Mon 2026-06-08 10:00 in Chicago.
    assert OFFICE.is_open(datetime(2026, 6, 9, 0, 0, tzinfo=tokyo))
    assert OFFICE.day_close(datetime(2026, 6, 9, 0, 0, tzinfo=tokyo)) == chi(2026, 6, 8, 17)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(HoursError, match="timezone-aware"):
        OFFICE.is_open(datetime(2026, 6, 8, 10, 0))


def test_range_ending_24_00_is_open_until_midnight_and_continues_next_day() -> None:
    assert LATE.is_open(chi(2026, 6, 5, 23, 59))
    assert LATE.is_open(chi(2026, 6, 6, 0, 0))
    assert LATE.is_open(chi(2026, 6, 6, 1, 59))
    assert not LATE.is_open(chi(2026, 6, 6, 2, 0))


# ---------------------------------------------------------------------- next_opening


def test_next_opening_returns_the_instant_itself_when_open() -> None:
    at = chi(2026, 6, 8, 10, 15)
    result = OFFICE.next_opening(at)
    assert result == at
    assert result.tzinfo == CHICAGO


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (chi(2026, 6, 8, 6, 0), chi(2026, 6, 8, 8, 0)),  # before opening
        (chi(2026, 6, 9, 0, 30), chi(2026, 6, 9, 8, 0)),  # after midnight
        (chi(2026, 6, 8, 12, 15), chi(2026, 6, 8, 13, 0)),  # lunch break
        (chi(2026, 6, 8, 17, 0), chi(2026, 6, 9, 8, 0)),  # at closing
        (chi(2026, 6, 13, 12, 0), chi(2026, 6, 15, 8, 0)),  # Saturday noon -> Monday
    ],
)
def test_next_opening_skips_closed_time(after: datetime, expected: datetime) -> None:
    assert SPLIT.next_opening(after) == expected


def test_next_opening_from_friday_evening_is_monday_morning() -> None:
    assert OFFICE.next_opening(chi(2026, 6, 5, 18)) == chi(2026, 6, 8, 8)


def test_next_opening_skips_a_monday_holiday() -> None:
    assert OFFICE.next_opening(chi(2026, 9, 4, 18)) == chi(2026, 9, 8, 8)


def test_next_opening_from_utc_input_is_returned_in_practice_zone() -> None:
    result = OFFICE.next_opening(utc(2026, 6, 6, 2, 0))  # Fri 21:00 CDT
    assert result.tzinfo == CHICAGO
    assert result == chi(2026, 6, 8, 8)
    assert in_utc(result) == utc(2026, 6, 8, 13)


def test_next_opening_raises_when_practice_has_no_hours() -> None:
    with pytest.raises(HoursError, match="no opening hours"):
        NO_HOURS.next_opening(chi(2026, 6, 8, 10))


def test_next_opening_raises_when_every_open_day_in_a_year_is_a_holiday() -> None:
    mondays = [date(2026, 6, 8) + timedelta(weeks=w) for w in range(60)]
    bh = BusinessHours.parse("America/Chicago", {"mon": ["08:00-17:00"]}, mondays)
    with pytest.raises(HoursError, match="366 days"):
        bh.next_opening(chi(2026, 6, 8, 10))


# ------------------------------------------------------------------------- day_close


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (chi(2026, 6, 8, 9), chi(2026, 6, 8, 12)),  # morning shift closes for lunch
        (chi(2026, 6, 8, 14), chi(2026, 6, 8, 17)),
        (chi(2026, 6, 8, 12, 30), None),  # closed at lunch
        (chi(2026, 6, 14, 10), None),  # Sunday
    ],
)
def test_day_close_is_the_end_of_the_current_range(at: datetime, expected: datetime | None) -> None:
    assert SPLIT.day_close(at) == expected


def test_day_close_of_a_range_ending_24_00_is_next_midnight() -> None:
    result = LATE.day_close(chi(2026, 6, 5, 20))
    assert result == chi(2026, 6, 6, 0, 0)
    assert result is not None and result.tzinfo == CHICAGO


# ----------------------------------------------------------------- add_business_time


def test_friday_afternoon_plus_two_hours_is_monday_nine() -> None:
    assert OFFICE.add_business_time(chi(2026, 6, 5, 16), hours(2)) == chi(2026, 6, 8, 9)


@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [
        (chi(2026, 6, 8, 9), hours(3), chi(2026, 6, 8, 12)),  # within a range
        (chi(2026, 6, 8, 11), hours(2), chi(2026, 6, 8, 14)),  # lunch not counted
        (chi(2026, 6, 8, 12, 30), hours(1), chi(2026, 6, 8, 14)),  # starts in lunch
        (chi(2026, 6, 8, 16), hours(1), chi(2026, 6, 8, 17)),  # lands on closing
        (chi(2026, 6, 12, 16), hours(3), chi(2026, 6, 13, 11)),  # Fri -> Sat morning
        (chi(2026, 6, 13, 11), hours(2), chi(2026, 6, 15, 9)),  # Sat -> Mon
    ],
)
def test_add_business_time_counts_only_open_time(
    start: datetime, delta: timedelta, expected: datetime
) -> None:
    assert SPLIT.add_business_time(start, delta) == expected


def test_add_business_time_spans_several_days() -> None:
    # Mon 9h + Tue 9h + 2h on Wed.
    assert OFFICE.add_business_time(chi(2026, 6, 8, 8), hours(20)) == chi(2026, 6, 10, 10)


def test_add_business_time_from_a_closed_weekend_starts_at_monday_opening() -> None:
    assert OFFICE.add_business_time(chi(2026, 6, 6, 20), hours(1)) == chi(2026, 6, 8, 9)


def test_add_business_time_skips_a_monday_holiday() -> None:
    assert OFFICE.add_business_time(chi(2026, 9, 4, 16), hours(2)) == chi(2026, 9, 8, 9)


def test_add_business_time_runs_through_midnight_for_a_24_00_range() -> None:
    assert LATE.add_business_time(chi(2026, 6, 5, 23), hours(2)) == chi(2026, 6, 6, 1)


def test_add_business_time_with_utc_input_returns_practice_zone() -> None:
    result = OFFICE.add_business_time(utc(2026, 6, 5, 21), hours(2))  # Fri 16:00 CDT
    assert result.tzinfo == CHICAGO
    assert result == chi(2026, 6, 8, 9)


def test_add_business_time_of_zero_returns_the_start() -> None:
    start = chi(2026, 6, 6, 20)  # closed (Saturday)
    assert OFFICE.add_business_time(start, timedelta(0)) == start


def test_add_business_time_rejects_negative_delta() -> None:
    with pytest.raises(HoursError, match="non-negative"):
        OFFICE.add_business_time(chi(2026, 6, 8, 9), hours(-1))


def test_add_business_time_raises_when_practice_has_no_hours() -> None:
    with pytest.raises(HoursError, match="no opening hours"):
        NO_HOURS.add_business_time(chi(2026, 6, 8, 9), hours(1))


# -------------------------------------------------------- start_of_next_business_day


@pytest.mark.parametrize(
    ("bh", "at", "expected"),
    [
        (OFFICE, chi(2026, 6, 8, 10), chi(2026, 6, 9, 8)),  # Mon -> Tue
        (OFFICE, chi(2026, 6, 8, 0, 30), chi(2026, 6, 9, 8)),  # a later date, not today
        (OFFICE, chi(2026, 6, 5, 10), chi(2026, 6, 8, 8)),  # Fri -> Mon
        (OFFICE, chi(2026, 12, 24, 10), chi(2026, 12, 28, 8)),  # Christmas Friday skipped
        (OFFICE, chi(2026, 9, 5, 10), chi(2026, 9, 8, 8)),  # Labor Day Monday skipped
        (SPLIT, chi(2026, 6, 5, 10), chi(2026, 6, 6, 9)),  # Fri -> Saturday hours
    ],
)
def test_start_of_next_business_day_is_first_opening_on_a_later_date(
    bh: BusinessHours, at: datetime, expected: datetime
) -> None:
    assert bh.start_of_next_business_day(at) == expected


def test_start_of_next_business_day_uses_the_local_date_not_the_utc_date() -> None:
    # 03:00 UTC on Tuesday is still Monday 22:00 in Chicago -> next business day is Tuesday.
    assert OFFICE.start_of_next_business_day(utc(2026, 6, 9, 3)) == chi(2026, 6, 9, 8)


def test_start_of_next_business_day_raises_when_practice_has_no_hours() -> None:
    with pytest.raises(HoursError):
        NO_HOURS.start_of_next_business_day(chi(2026, 6, 8, 9))


# ------------------------------------------------------ same_business_day_due (REFILL)

CUTOFF = time(15, 0)


@pytest.mark.parametrize(
    ("at", "sla", "expected"),
    [
        (chi(2026, 6, 8, 10), hours(2), chi(2026, 6, 8, 12)),  # simple same-day
        (chi(2026, 6, 8, 6), hours(2), chi(2026, 6, 8, 10)),  # before opening: from 08:00
        (chi(2026, 6, 8, 0, 30), hours(1), chi(2026, 6, 8, 9)),  # after midnight, same day
        (chi(2026, 6, 8, 14, 30), hours(4), chi(2026, 6, 8, 17)),  # capped at closing
        (chi(2026, 6, 8, 15, 0), hours(2), chi(2026, 6, 9, 10)),  # at cutoff -> next day
        (chi(2026, 6, 8, 15, 30), hours(2), chi(2026, 6, 9, 10)),  # after cutoff
        (chi(2026, 6, 6, 10), hours(2), chi(2026, 6, 8, 10)),  # Saturday -> Monday
        (chi(2026, 9, 7, 10), hours(2), chi(2026, 9, 8, 10)),  # holiday -> next day
        (chi(2026, 9, 4, 16), hours(2), chi(2026, 9, 8, 10)),  # Fri late, Mon holiday
    ],
)
def test_refill_due_same_day_before_cutoff_otherwise_next_business_day(
    at: datetime, sla: timedelta, expected: datetime
) -> None:
    assert OFFICE.same_business_day_due(at, CUTOFF, sla) == expected


def test_refill_due_does_not_count_the_lunch_break() -> None:
    assert SPLIT.same_business_day_due(chi(2026, 6, 8, 11), CUTOFF, hours(2)) == chi(2026, 6, 8, 14)
    # Arriving during lunch: counting starts at 13:00.
    assert SPLIT.same_business_day_due(chi(2026, 6, 8, 12, 30), CUTOFF, hours(2)) == chi(
        2026, 6, 8, 15
    )


def test_refill_due_is_capped_at_the_last_close_not_the_lunch_break() -> None:
    assert SPLIT.same_business_day_due(chi(2026, 6, 8, 10), CUTOFF, hours(8)) == chi(2026, 6, 8, 17)


def test_refill_with_cutoff_after_closing_never_falls_due_in_the_past() -> None:
    at = chi(2026, 6, 8, 17, 30)  # before an 18:00 cutoff, but after the 17:00 close
    due = OFFICE.same_business_day_due(at, time(18, 0), hours(2))
    assert due == chi(2026, 6, 9, 10)
    assert due > at


def test_refill_due_from_utc_input_is_in_practice_zone() -> None:
    due = OFFICE.same_business_day_due(utc(2026, 6, 8, 15), CUTOFF, hours(2))  # 10:00 CDT
    assert due.tzinfo == CHICAGO
    assert due == chi(2026, 6, 8, 12)


# ----------------------------------------------------- next_business_day_due (BILLING)


def test_friday_evening_billing_is_due_monday_morning() -> None:
    assert OFFICE.next_business_day_due(chi(2026, 6, 5, 18), hours(4)) == chi(2026, 6, 8, 12)


def test_friday_evening_billing_moves_to_tuesday_when_monday_is_a_holiday() -> None:
    assert OFFICE.next_business_day_due(chi(2026, 9, 4, 18), hours(4)) == chi(2026, 9, 8, 12)


@pytest.mark.parametrize(
    ("at", "sla", "expected"),
    [
        (chi(2026, 6, 8, 10), hours(4), chi(2026, 6, 9, 12)),  # Mon morning -> Tue
        (chi(2026, 6, 8, 6), hours(4), chi(2026, 6, 9, 12)),  # even before Mon opens
        (chi(2026, 6, 6, 10), hours(4), chi(2026, 6, 8, 12)),  # Saturday -> Mon
        (chi(2026, 6, 8, 10), hours(10), chi(2026, 6, 10, 9)),  # SLA spills into Wed
        (chi(2026, 6, 8, 10), timedelta(0), chi(2026, 6, 9, 8)),  # zero SLA: the opening
    ],
)
def test_billing_due_counts_sla_from_next_business_day_opening(
    at: datetime, sla: timedelta, expected: datetime
) -> None:
    assert OFFICE.next_business_day_due(at, sla) == expected


# -------------------------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 3, 8, 13, 0), True),  # 08:00 CDT, first morning of DST
        (utc(2026, 3, 8, 12, 30), False),  # 07:30 CDT (would be 06:30 CST)
        (utc(2026, 3, 8, 21, 59), True),  # 16:59 CDT
        (utc(2026, 3, 8, 22, 0), False),  # 17:00 CDT
        (utc(2026, 11, 1, 14, 0), True),  # 08:00 CST, first morning of standard time
        (utc(2026, 11, 1, 13, 30), False),  # 07:30 CST (would be 08:30 CDT)
        (utc(2026, 11, 1, 22, 59), True),  # 16:59 CST
        (utc(2026, 11, 1, 23, 0), False),  # 17:00 CST
    ],
)
def test_is_open_uses_local_wall_clock_on_dst_sundays(at: datetime, expected: bool) -> None:
    assert DAILY.is_open(at) is expected


def test_next_opening_across_spring_forward_is_eight_daylight_time() -> None:
    result = DAILY.next_opening(chi(2026, 3, 7, 18))
    assert result.utcoffset() == CDT
    assert in_utc(result) == utc(2026, 3, 8, 13)


def test_next_opening_across_fall_back_is_eight_standard_time() -> None:
    result = DAILY.next_opening(chi(2026, 10, 31, 18))
    assert result.utcoffset() == CST
    assert in_utc(result) == utc(2026, 11, 1, 14)


@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2026, 11, 1), date(2026, 6, 14)])
def test_an_eight_to_five_day_is_nine_business_hours_even_on_dst_days(day: date) -> None:
    opening = DAILY.next_opening(datetime.combine(day, time(0), tzinfo=CHICAGO))
    assert (opening.hour, opening.minute) == (8, 0)
    closing = DAILY.add_business_time(opening, hours(9))
    assert closing.date() == day
    assert (closing.hour, closing.minute) == (17, 0)
    assert DAILY.add_business_time(opening, hours(9) + timedelta(minutes=1)).date() > day


def test_add_business_time_across_spring_forward_lands_on_wall_clock_nine() -> None:
    result = DAILY.add_business_time(chi(2026, 3, 7, 16), hours(2))
    assert result.utcoffset() == CDT
    assert in_utc(result) == utc(2026, 3, 8, 14)  # Sun 09:00 CDT


def test_add_business_time_across_fall_back_lands_on_wall_clock_nine() -> None:
    result = DAILY.add_business_time(chi(2026, 10, 31, 16), hours(2))
    assert result.utcoffset() == CST
    assert in_utc(result) == utc(2026, 11, 1, 15)  # Sun 09:00 CST


def test_friday_billing_due_across_spring_forward_weekend() -> None:
    due = OFFICE.next_business_day_due(chi(2026, 3, 6, 18), hours(2))
    assert due.utcoffset() == CDT
    assert in_utc(due) == utc(2026, 3, 9, 15)  # Mon 10:00 CDT


def test_around_the_clock_practice_counts_real_hours_on_dst_days() -> None:
    # The spring-forward Sunday has 23 real hours, the fall-back Sunday 25.
    assert in_utc(ALWAYS.add_business_time(chi(2026, 3, 8), hours(23))) == in_utc(chi(2026, 3, 9))
    assert in_utc(ALWAYS.add_business_time(chi(2026, 11, 1), hours(25))) == in_utc(chi(2026, 11, 2))


def test_business_time_from_the_repeated_hour_moves_forward() -> None:
    start = utc(2026, 11, 1, 7, 30)  # 01:30 CST, the second 01:30 of the night
    result = ALWAYS.add_business_time(start, timedelta(minutes=15))
    assert in_utc(result) == utc(2026, 11, 1, 7, 45)
    assert result.fold == 1
    assert result.utcoffset() == CST


def test_range_starting_in_the_spring_forward_gap_opens_at_the_jump() -> None:
    # 02:30 does not exist on 2026-03-08: the clocks pass it at the jump, 03:00 CDT (the
    # rule quiet hours use too; fold=0 used to read it as 03:30 CDT, half an hour late).
    night = BusinessHours.parse("America/Chicago", {"sun": ["02:30-05:00"]}, [])
    opening = night.next_opening(chi(2026, 3, 7, 12))
    assert (opening.hour, opening.minute) == (3, 0)
    assert opening.utcoffset() == CDT
    assert in_utc(opening) == utc(2026, 3, 8, 8)
    assert not night.is_open(utc(2026, 3, 8, 7, 59))  # 01:59 CST
    assert night.is_open(utc(2026, 3, 8, 8, 15))  # 03:15 CDT
    assert in_utc(night.add_business_time(opening, hours(2))) == utc(2026, 3, 8, 10)


def test_a_range_entirely_in_the_spring_forward_gap_is_closed() -> None:
    night = BusinessHours.parse("America/Chicago", {"sun": ["02:00-02:30", "04:00-05:00"]}, [])
    opening = night.next_opening(chi(2026, 3, 7, 12))
    assert in_utc(opening) == utc(2026, 3, 8, 9)  # 04:00 CDT: 02:00-02:30 never happened


def test_range_spanning_the_spring_forward_gap_has_real_length() -> None:
    night = BusinessHours.parse("America/Chicago", {"sun": ["01:00-04:00"]}, [])
    opening = night.next_opening(chi(2026, 3, 7, 12))
    close = night.day_close(opening)
    assert close is not None
    assert in_utc(close) - in_utc(opening) == hours(2)  # 01:00 CST to 04:00 CDT (real time)
    assert in_utc(close) == utc(2026, 3, 8, 9)


def test_range_starting_in_the_repeated_hour_opens_at_the_first_occurrence() -> None:
    night = BusinessHours.parse("America/Chicago", {"sun": ["01:30-05:00"]}, [])
    opening = night.next_opening(chi(2026, 10, 31, 12))
    assert opening.utcoffset() == CDT  # fold=0: the first 01:30
    assert in_utc(opening) == utc(2026, 11, 1, 6, 30)
    assert night.is_open(utc(2026, 11, 1, 7, 15))  # 01:15 CST, the second pass
    close = night.day_close(utc(2026, 11, 1, 7, 15))
    assert close is not None and in_utc(close) == utc(2026, 11, 1, 11)  # 05:00 CST
    assert in_utc(night.add_business_time(opening, hours(4.5))) == utc(2026, 11, 1, 11)


def test_practice_in_another_zone_uses_its_own_dst_dates() -> None:
    # Europe/Berlin springs forward on 2026-03-29, three weeks after Chicago.
    berlin = BusinessHours.parse("Europe/Berlin", {day: ["08:00-17:00"] for day in WEEKDAYS}, [])
    result = berlin.next_opening(utc(2026, 3, 9, 6))  # Mon 07:00 CET
    assert result.tzinfo == ZoneInfo("Europe/Berlin")
    assert in_utc(result) == utc(2026, 3, 9, 7)  # 08:00 CET (UTC+1)
    assert in_utc(berlin.next_opening(utc(2026, 3, 30, 4))) == utc(2026, 3, 30, 6)  # 08:00 CEST
