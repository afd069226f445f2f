"""Quiet hours: when automated follow-ups must not reach a patient.

The first text answers a call the patient has just made, so it goes out at any hour; every
later automated text waits for the end of the practice's quiet hours ("21:00-08:00" by
default) on the *patient's* clock. A patient's clock is guessed from their number: a +1
number's area code usually names one zone, and a patient who rings a Chicago clinic from
a New York number is asleep an hour earlier than the clinic.

Quiet hours are wall-clock times, like business hours: "21:00-08:00" is 21:00 to 08:00 on
the patient's clocks whatever the UTC offset is that day, so a DST night is one hour
shorter or longer in real time. The period is half-open: quiet at 21:00, allowed at 08:00.
Ranges parse and land in time as opening hours do (recovery.domain.time_range): an end the
clocks skip on a spring-forward night is the jump itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from recovery.domain.time_range import TimeRange, TimeRangeError, wall_to_utc

__all__ = ["QuietHoursError", "in_quiet_hours", "next_allowed", "patient_timezone"]


class QuietHoursError(ValueError):
    """A quiet-hours spec that is not HH:MM-HH:MM, or a naive datetime."""


def patient_timezone(phone_e164: str, fallback: str) -> str:
    """The patient's IANA zone from their number, else `fallback` (the practice's zone).

    Only a single, known zone is trusted: a toll-free or multi-zone area code (907 spans
    Alaska's two zones) gives several, and guessing among them could text someone at
    night, whereas the practice's zone is where most of its patients live.
    """
    try:
        number = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return fallback
    zones = phone_timezones.time_zones_for_number(number)
    if len(zones) != 1:
        return fallback
    try:
        ZoneInfo(zones[0])  # phonenumbers says "Etc/Unknown" when it has no idea
    except (ZoneInfoNotFoundError, ValueError):
        return fallback
    return zones[0]


def parse_spec(spec: str) -> TimeRange:
    """ "21:00-08:00" -> TimeRange(21:00, 08:00). Raises QuietHoursError for anything else."""
    try:
        return TimeRange.parse(spec)
    except TimeRangeError as exc:
        raise QuietHoursError(f"quiet hours: {exc}") from None


def in_quiet_hours(at: datetime, spec: str, tz: str) -> bool:
    """True when `at` falls inside the quiet period on the wall clock of zone `tz`.

    start > end wraps midnight ("21:00-08:00"); start == end ("00:00-00:00") means the
    practice has no quiet hours at all, not that it is quiet around the clock.
    """
    return parse_spec(spec).contains(_local(at, tz).time().replace(fold=0))


def next_allowed(at: datetime, spec: str, tz: str) -> datetime:
    """The first instant from `at` on when follow-ups are allowed: `at` itself outside quiet
    hours, else the end of the quiet period. Always in UTC: local datetimes sharing a
    ZoneInfo compare and subtract by wall clock, which is wrong by an hour on DST nights.
    """
    if not in_quiet_hours(at, spec, tz):
        return at.astimezone(UTC)
    quiet = parse_spec(spec)
    local = _local(at, tz)
    day = local.date()
    if quiet.wraps_midnight and local.time() >= quiet.start:
        day += timedelta(days=1)  # the evening side of a period that ends tomorrow morning
    return wall_to_utc(day, quiet.end, ZoneInfo(tz))


def _local(at: datetime, tz: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise QuietHoursError(f"{at.isoformat()} is naive; quiet hours need an aware datetime")
    return at.astimezone(ZoneInfo(tz))
