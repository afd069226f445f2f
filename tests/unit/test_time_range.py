"""One range parser and one wall-clock-to-UTC rule, shared by opening and quiet hours.

America/Chicago springs forward on 2026-03-08 (02:00 CST -> 03:00 CDT, 08:00 UTC) and falls
back on 2026-11-01 (02:00 CDT -> 01:00 CST, 07:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from recovery.domain.hours import BusinessHours
from recovery.domain.quiet_hours import in_quiet_hours, next_allowed
from recovery.domain.time_range import END_OF_DAY, TimeRange, TimeRangeError, wall_to_utc

CHICAGO = ZoneInfo("America/Chicago")
SPRING = date(2026, 3, 8)
FALL = date(2026, 11, 1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:00-17:00", TimeRange(time(8), time(17))),
        ("8:00-17:00", TimeRange(time(8), time(17))),
        (" 08:00 \u2013 17:30 ", TimeRange(time(8), time(17, 30))),
        ("21:00-08:00", TimeRange(time(21), time(8))),
        ("13:00-24:00", TimeRange(time(13), END_OF_DAY)),
    ],
)
def test_parse_reads_wall_clock_ranges(text: str, expected: TimeRange) -> None:
    assert TimeRange.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is not HH:MM-HH:MM"),
        ("9pm-8am", "is not HH:MM-HH:MM"),
        (800, "is not HH:MM-HH:MM"),
        ("24:00-08:00", "invalid start time 24:00"),
        ("21:00-08:60", "invalid end time 08:60"),
    ],
)
def test_parse_says_which_part_is_wrong(text: object, reason: str) -> None:
    with pytest.raises(TimeRangeError, match=reason):
        TimeRange.parse(text)


def test_a_wrapping_range_contains_both_sides_of_midnight_and_an_empty_one_nothing() -> None:
    night = TimeRange.parse("21:00-08:00")
    assert night.wraps_midnight
    assert [night.contains(time(h)) for h in (20, 21, 0, 7, 8)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert not any(TimeRange.parse("00:00-00:00").contains(time(h)) for h in range(24))


def test_an_ordinary_wall_time_is_its_instant() -> None:
    assert wall_to_utc(date(2026, 6, 8), time(8), CHICAGO) == utc(2026, 6, 8, 13)
    assert wall_to_utc(date(2026, 6, 8), END_OF_DAY, CHICAGO) == utc(2026, 6, 9, 5)


@pytest.mark.parametrize("wall", [time(2), time(2, 30), time(2, 59)])
def test_a_skipped_wall_time_is_the_jump(wall: time) -> None:
    assert wall_to_utc(SPRING, wall, CHICAGO) == utc(2026, 3, 8, 8)  # 03:00 CDT


def test_a_repeated_wall_time_is_its_first_occurrence() -> None:
    assert wall_to_utc(FALL, time(1, 30), CHICAGO) == utc(2026, 11, 1, 6, 30)  # 01:30 CDT


def test_opening_and_quiet_hours_agree_on_a_spring_forward_night() -> None:
    """A practice opening at 02:30 and quiet hours ending at 02:30 both end the wait at
    the jump: opening hours used fold=0 (03:30 CDT) where quiet hours used the jump."""
    opens = BusinessHours.parse("America/Chicago", {"sun": ["02:30-05:00"]}, [])
    late_saturday = utc(2026, 3, 8, 5)  # 23:00 CST

    assert opens.next_opening(late_saturday).astimezone(UTC) == next_allowed(
        late_saturday, "21:00-02:30", "America/Chicago"
    )
    assert next_allowed(late_saturday, "21:00-02:30", "America/Chicago") == utc(2026, 3, 8, 8)


def test_opening_and_quiet_hours_agree_on_a_fall_back_night() -> None:
    opens = BusinessHours.parse("America/Chicago", {"sun": ["01:30-05:00"]}, [])
    late_saturday = utc(2026, 11, 1, 4)  # 23:00 CDT

    first_pass = utc(2026, 11, 1, 6, 30)  # 01:30 CDT
    # In UTC: an ambiguous local time never compares equal across zones (PEP 495).
    assert opens.next_opening(late_saturday).astimezone(UTC) == first_pass
    assert next_allowed(late_saturday, "21:00-01:30", "America/Chicago") == first_pass
    # The second 01:15 (CST) is after the quiet period ended at the first 01:30.
    assert in_quiet_hours(utc(2026, 11, 1, 6, 15), "21:00-01:30", "America/Chicago")
    assert opens.is_open(utc(2026, 11, 1, 7, 15))
