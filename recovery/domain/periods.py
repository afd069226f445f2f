"""Report periods: a range of days in a practice's own time zone, and the range before it.

A manager reads "last week" on the clinic's calendar: Monday 00:00 in Chicago, not in UTC.
Every range here is a pair of inclusive local dates; `bounds()` turns it into the UTC
instants a query needs (DST days are 23 or 25 hours long, zoneinfo handles it).

Each preset compares with the same stretch of the period before it: this week so far
(Monday to Wednesday) with Monday to Wednesday of last week, this quarter so far with the
same number of days of last quarter, a custom range with the same number of days just
before it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Long enough for two years side by side; a typo such as 0206 for 2026 is refused.
MAX_DAYS = 800


class BadRange(ValueError):
    """The dates asked for do not make a range; the message says why (an API's 400)."""


class Preset(enum.Enum):
    THIS_WEEK = "this_week"
    LAST_WEEK = "last_week"
    LAST_7_DAYS = "last_7_days"
    LAST_30_DAYS = "last_30_days"
    THIS_QUARTER = "this_quarter"
    CUSTOM = "custom"


PRESET_LABELS = {
    Preset.THIS_WEEK: "This week",
    Preset.LAST_WEEK: "Last week",
    Preset.LAST_7_DAYS: "Last 7 days",
    Preset.LAST_30_DAYS: "Last 30 days",
    Preset.THIS_QUARTER: "This quarter",
    Preset.CUSTOM: "Custom",
}


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[local midnight of start, local midnight after end) as UTC instants."""
        lo = datetime.combine(self.start, time(), zone).astimezone(UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time(), zone).astimezone(UTC)
        return lo, hi

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def shifted(self, days: int) -> DateRange:
        return DateRange(self.start + timedelta(days=days), self.end + timedelta(days=days))


@dataclass(frozen=True)
class Period:
    preset: Preset
    current: DateRange
    previous: DateRange

    @property
    def label(self) -> str:
        return PRESET_LABELS[self.preset]


def parse_date(value: str | None, name: str) -> date:
    if not value:
        raise BadRange(f"{name} is missing: give a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadRange(f"{name}={value!r} is not a date as YYYY-MM-DD") from None


def custom(start: date, end: date) -> Period:
    if end < start:
        raise BadRange(f"the range ends ({end}) before it starts ({start})")
    current = DateRange(start, end)
    if current.days > MAX_DAYS:
        raise BadRange(f"the range is {current.days} days long; at most {MAX_DAYS}")
    return Period(Preset.CUSTOM, current, current.shifted(-current.days))


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def preset(which: Preset, today: date) -> Period:
    """`which` as of `today` (the practice's local date)."""
    if which is Preset.LAST_7_DAYS:
        current = DateRange(today - timedelta(days=6), today)
        return Period(which, current, current.shifted(-7))
    if which is Preset.THIS_WEEK:
        current = DateRange(today - timedelta(days=today.weekday()), today)
        return Period(which, current, current.shifted(-7))
    if which is Preset.LAST_WEEK:
        monday = today - timedelta(days=today.weekday() + 7)
        current = DateRange(monday, monday + timedelta(days=6))
        return Period(which, current, current.shifted(-7))
    if which is Preset.LAST_30_DAYS:
        current = DateRange(today - timedelta(days=29), today)
        return Period(which, current, current.shifted(-30))
    if which is Preset.THIS_QUARTER:
        start = _quarter_start(today)
        previous_start = _quarter_start(start - timedelta(days=1))
        previous_end = min(previous_start + (today - start), start - timedelta(days=1))
        return Period(which, DateRange(start, today), DateRange(previous_start, previous_end))
    raise BadRange("a custom range needs its dates")


def parse_period(
    preset_name: str | None,
    start: str | None,
    end: str | None,
    today: date,
    *,
    default: Preset = Preset.LAST_WEEK,
) -> Period:
    """What a form or the command line asked for: explicit dates win over a preset; with
    neither, `default`: the report's is last week (what a manager opens it for on Monday
    morning), the list of calls passes the last 7 days, which include today's."""
    if start or end:
        return custom(parse_date(start, "from"), parse_date(end, "to"))
    try:
        which = Preset(preset_name) if preset_name else default
    except ValueError:
        names = ", ".join(p.value for p in Preset if p is not Preset.CUSTOM)
        raise BadRange(f"unknown range {preset_name!r}: one of {names}") from None
    if which is Preset.CUSTOM:
        raise BadRange("a custom range needs from and to dates")
    return preset(which, today)
