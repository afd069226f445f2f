"""Quiet hours: wall-clock periods on the patient's clock, across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from recovery.domain.quiet_hours import (
    QuietHoursError,
    in_quiet_hours,
    next_allowed,
    patient_timezone,
)

CHICAGO = "America/Chicago"
NIGHT = "21:00-08:00"


def chicago(
    year: int, month: int, day: int, hour: int, minute: int, second: int = 0, fold: int = 0
) -> datetime:
    """A wall-clock time in Chicago; fold=1 is the second 01:30 of a fall-back night."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(CHICAGO), fold=fold)


# --- patient_timezone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+15125550199", "America/Chicago"),  # Austin
        ("+12125550199", "America/New_York"),  # Manhattan
        ("+18085550199", "Pacific/Honolulu"),
        ("+13035550199", "America/Denver"),
    ],
)
def test_a_single_zone_area_code_gives_the_patients_zone(number: str, zone: str) -> None:
    assert patient_timezone(number, fallback="Europe/Paris") == zone


@pytest.mark.parametrize(
    "number",
    [
        "+18005550199",  # toll-free: every North American zone
        "+19075550199",  # Alaska: two zones
        "+447700900123",  # not a valid number: phonenumbers says Etc/Unknown
        "not a number",
    ],
)
def test_no_single_known_zone_falls_back_to_the_practice_zone(number: str) -> None:
    assert patient_timezone(number, fallback=CHICAGO) == CHICAGO


# --- in_quiet_hours --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [
        (20, 59, False),
        (21, 0, True),  # the period starts at its start...
        (23, 0, True),
        (0, 0, True),
        (3, 30, True),
        (7, 59, True),
        (8, 0, False),  # ...and is over at its end
        (12, 0, False),
    ],
)
def test_quiet_hours_wrap_around_midnight(hour: int, minute: int, quiet: bool) -> None:
    assert in_quiet_hours(chicago(2026, 11, 3, hour, minute), NIGHT, CHICAGO) is quiet


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"), [(11, 59, False), (12, 0, True), (12, 59, True), (13, 0, False)]
)
def test_quiet_hours_within_one_day(hour: int, minute: int, quiet: bool) -> None:
    assert in_quiet_hours(chicago(2026, 11, 3, hour, minute), "12:00-13:00", CHICAGO) is quiet


@pytest.mark.parametrize("hour", [0, 3, 12, 21, 23])
def test_equal_start_and_end_means_never_quiet(hour: int) -> None:
    assert in_quiet_hours(chicago(2026, 11, 3, hour, 0), "00:00-00:00", CHICAGO) is False


def test_quiet_hours_are_read_on_the_clock_of_the_zone_given() -> None:
    at = datetime(2026, 11, 4, 2, 30, tzinfo=UTC)  # 20:30 in Chicago, 21:30 in New York

    assert in_quiet_hours(at, NIGHT, CHICAGO) is False
    assert in_quiet_hours(at, NIGHT, "America/New_York") is True


def test_a_plus_one_patient_in_another_zone_than_the_practice_has_their_own_night() -> None:
    practice_zone = CHICAGO
    new_yorker = patient_timezone("+12125550199", practice_zone)
    honolulu = patient_timezone("+18085550199", practice_zone)

    # 20:30 at the practice: fine for a Chicagoan, 21:30 and quiet in New York.
    evening = datetime(2026, 11, 4, 2, 30, tzinfo=UTC)
    assert in_quiet_hours(evening, NIGHT, practice_zone) is False
    assert in_quiet_hours(evening, NIGHT, new_yorker) is True
    # 08:00 at the practice opens its morning; in Honolulu it is 04:00.
    morning = datetime(2026, 11, 4, 14, 0, tzinfo=UTC)
    assert in_quiet_hours(morning, NIGHT, practice_zone) is False
    assert in_quiet_hours(morning, NIGHT, honolulu) is True
    assert next_allowed(morning, NIGHT, honolulu) == datetime(2026, 11, 4, 18, 0, tzinfo=UTC)


# --- next_allowed ----------------------------------------------------------------------


def test_outside_quiet_hours_next_allowed_is_the_instant_itself() -> None:
    at = chicago(2026, 11, 3, 12, 34, 56)
    assert next_allowed(at, NIGHT, CHICAGO) == at


def test_evening_side_of_the_night_waits_for_tomorrow_morning() -> None:
    assert next_allowed(chicago(2026, 11, 3, 23, 0), NIGHT, CHICAGO) == chicago(2026, 11, 4, 8, 0)


def test_morning_side_of_the_night_waits_for_this_morning() -> None:
    assert next_allowed(chicago(2026, 11, 4, 3, 0), NIGHT, CHICAGO) == chicago(2026, 11, 4, 8, 0)


def test_next_allowed_answers_in_utc() -> None:
    for at in (chicago(2026, 11, 3, 23, 0), chicago(2026, 11, 3, 12, 0)):
        assert next_allowed(at, NIGHT, CHICAGO).utcoffset() == timedelta(0)


def test_spring_forward_night_is_an_hour_shorter_in_real_time() -> None:
    # 2026-03-08: Chicago's clocks jump from 02:00 CST to 03:00 CDT.
    evening = chicago(2026, 3, 7, 21, 0)

    allowed = next_allowed(evening, NIGHT, CHICAGO)

    assert allowed == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 08:00 CDT
    assert allowed - evening == timedelta(hours=10)
    assert in_quiet_hours(allowed - timedelta(seconds=1), NIGHT, CHICAGO) is True
    assert in_quiet_hours(allowed, NIGHT, CHICAGO) is False


def test_fall_back_night_is_an_hour_longer_in_real_time() -> None:
    # 2026-11-01: Chicago's clocks go back from 02:00 CDT to 01:00 CST.
    evening = chicago(2026, 10, 31, 21, 0)

    allowed = next_allowed(evening, NIGHT, CHICAGO)

    assert allowed == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)  # 08:00 CST
    assert allowed - evening == timedelta(hours=12)


def test_both_one_thirties_of_a_fall_back_night_are_quiet() -> None:
    first = chicago(2026, 11, 1, 1, 30, fold=0)
    second = chicago(2026, 11, 1, 1, 30, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)

    assert in_quiet_hours(first, NIGHT, CHICAGO) is True
    assert in_quiet_hours(second, NIGHT, CHICAGO) is True


def test_an_end_the_clocks_skip_is_reached_when_they_jump() -> None:
    # 02:30 does not exist on 2026-03-08 in Chicago: quiet hours end at the jump, 03:00 CDT.
    spec = "22:00-02:30"
    at = chicago(2026, 3, 8, 1, 0)  # 07:00 UTC, still CST

    allowed = next_allowed(at, spec, CHICAGO)

    assert allowed == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
    assert in_quiet_hours(allowed - timedelta(seconds=1), spec, CHICAGO) is True
    assert in_quiet_hours(allowed, spec, CHICAGO) is False


def test_an_ambiguous_end_is_its_first_occurrence() -> None:
    spec = "22:00-01:30"
    at = chicago(2026, 11, 1, 1, 0, fold=0)  # 06:00 UTC, still CDT

    assert next_allowed(at, spec, CHICAGO) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["", "21:00", "9pm-8am", "25:00-08:00", "21:00-08:60"])
def test_a_spec_that_is_not_hh_mm_hh_mm_is_refused(spec: str) -> None:
    with pytest.raises(QuietHoursError):
        in_quiet_hours(chicago(2026, 11, 3, 12, 0), spec, CHICAGO)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(QuietHoursError):
        in_quiet_hours(datetime(2026, 11, 3, 23, 0), NIGHT, CHICAGO)
