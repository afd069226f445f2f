"""Quiet hours: when automated follow-ups must not reach a patient.

The first text answers a call the patient has just made, so it goes out at any hour; every
later automated text waits for the end of the practice's quiet hours ("21:00-08:00" by
default) on the *patient's* clock. A patient's clock is guessed from their number: a +1
number's area code usually names one zone, and a patient who rings a Chicago clinic from
a New York number is asleep an hour earlier than the clinic.

Quiet hours are wall-clock times, like business hours: "21:00-08:00" is 21:00 to 08:00 on
the patient's clocks whatever the UTC offset is that day, so a DST night is one hour
shorter or longer in real time. The period is half-open: quiet at 21:00, allowed at 08:00.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

__all__ = ["QuietHoursError", "in_quiet_hours", "next_allowed", "patient_timezone"]

_SPEC_RE = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")


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


def parse_spec(spec: str) -> tuple[time, time]:
    """ "21:00-08:00" -> (21:00, 08:00). Raises QuietHoursError for anything else."""
    match = _SPEC_RE.match(spec)
    if match is None:
        raise QuietHoursError(f"quiet hours {spec!r} are not HH:MM-HH:MM")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or eh > 23 or sm > 59 or em > 59:
        raise QuietHoursError(f"quiet hours {spec!r} are not HH:MM-HH:MM")
    return time(sh, sm), time(eh, em)


def in_quiet_hours(at: datetime, spec: str, tz: str) -> bool:
    """True when `at` falls inside the quiet period on the wall clock of zone `tz`.

    start > end wraps midnight ("21:00-08:00"); start == end ("00:00-00:00") means the
    practice has no quiet hours at all, not that it is quiet around the clock.
    """
    start, end = parse_spec(spec)
    clock = _local(at, tz).time().replace(fold=0)
    if start == end:
        return False
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def next_allowed(at: datetime, spec: str, tz: str) -> datetime:
    """The first instant from `at` on when follow-ups are allowed: `at` itself outside quiet
    hours, else the end of the quiet period. Always in UTC: local datetimes sharing a
    ZoneInfo compare and subtract by wall clock, which is wrong by an hour on DST nights.
    """
    if not in_quiet_hours(at, spec, tz):
        return at.astimezone(UTC)
    start, end = parse_spec(spec)
    local = _local(at, tz)
    day = local.date()
    if start > end and local.time() >= start:
        day += timedelta(days=1)  # the evening side of a period that ends tomorrow morning
    zone = ZoneInfo(tz)
    return _first_instant_at(day, end, zone)


def _local(at: datetime, tz: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise QuietHoursError(f"{at.isoformat()} is naive; quiet hours need an aware datetime")
    return at.astimezone(ZoneInfo(tz))


def _first_instant_at(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant at which the clocks of `zone` read `wall` or later on `day`.

    An ambiguous wall time (fall back) is its first occurrence. A wall time the clocks skip
    (spring forward) never occurs, so the answer is the jump itself: that is the moment the
    clock passes `wall`, and the moment in_quiet_hours starts saying False.
    """
    naive = datetime.combine(day, wall)
    before = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if before.astimezone(zone).replace(tzinfo=None) == naive:
        return before
    # In a gap: fold=1 reads it with the later (summer) offset, which lands before the jump,
    # fold=0 with the earlier one, which lands after it. The jump lies between; find it.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = before
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)
