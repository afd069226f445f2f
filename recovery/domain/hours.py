"""Business hours of a practice: opening times, holidays and SLA due times.

A practice has an IANA time zone, weekly opening hours given in *local wall-clock
time* (several ranges a day allowed, e.g. a lunch break) and a list of holiday
dates on which it is closed all day. This module answers "is the practice open
now?", "when does it open next?" and "when is a task due?" for aware datetimes
in any zone.

How time is handled
-------------------
* Opening hours are wall-clock times: "08:00-17:00" means 08:00 to 17:00 on the
  practice's clocks, whatever the UTC offset is that day.
* Each day's ranges are turned into real instants by ``time_range.wall_to_utc``, the
  rule quiet hours use too: a local time that does not exist (spring forward) is the
  jump itself, the first instant the clocks read it or later (a nonexistent 02:30
  opens at 03:00 daylight time), and one that happens twice (fall back) is its first
  occurrence. Ranges that overlap after this are merged; a range that falls entirely
  into a gap is dropped.
* "Business time" is the real time elapsed while the practice is open. For any
  range that does not straddle the transition (every normal clinic day, since
  US transitions happen at 02:00) this equals the wall-clock length: a
  08:00-17:00 day is 9 hours of open time on DST days too. A range that spans a
  transition counts the time that really passes (00:00-24:00 is 23 hours on a
  spring-forward day and 25 hours on a fall-back day).
* All arithmetic is done on UTC datetimes; results are converted back to the
  practice zone, so every returned datetime is aware, in the practice zone and
  carries the correct offset (and ``fold``).

Pure standard library, no I/O beyond what :mod:`zoneinfo` does to load tz data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recovery.domain.time_range import TimeRange, TimeRangeError, wall_to_utc

__all__ = [
    "DAY_NAMES",
    "BusinessHours",
    "HoursError",
    "TimeRange",
]

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: How far ahead (in days) searches for an opening go before giving up.
SEARCH_DAYS = 366

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# zoneinfo accepts these file names, but they depend on the host, not on IANA.
_HOST_SPECIFIC_ZONES = frozenset({"localtime", "posixrules"})

_Interval = tuple[datetime, datetime]  # [open, close) as aware UTC datetimes


class HoursError(ValueError):
    """Invalid business-hours configuration, or a question that has no answer."""


def _describe(value: object) -> str:
    return repr(value)


def _parse_range(key: str, raw: object) -> TimeRange:
    try:
        parsed = TimeRange.parse(raw)
    except TimeRangeError as exc:
        raise HoursError(f"{key}: {exc}") from None
    return _opening_range(key, parsed, raw)


def _opening_range(key: str, r: TimeRange, raw: object) -> TimeRange:
    if r.end <= r.start:
        raise HoursError(
            f"{key}: {_describe(raw)} does not end after it starts "
            "(ranges past midnight must be split across two days)"
        )
    return r


def _normalise_day(key: str, ranges: Iterable[TimeRange]) -> tuple[TimeRange, ...]:
    """Sort ranges, reject overlaps, merge ranges that touch (12:00-13:00 + 13:00-14:00)."""
    ordered = sorted(ranges, key=lambda r: (r.start, r.end))
    merged: list[TimeRange] = []
    for current in ordered:
        if merged:
            previous = merged[-1]
            if current.start < previous.end:
                raise HoursError(f"{key}: ranges {previous} and {current} overlap")
            if current.start == previous.end:
                merged[-1] = TimeRange(previous.start, current.end)
                continue
        merged.append(current)
    return tuple(merged)


def _load_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise HoursError(f"timezone: {_describe(name)} is not a known time zone")
    if name in _HOST_SPECIFIC_ZONES:
        raise HoursError(f"timezone: {_describe(name)} is not a known time zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise HoursError(f"timezone: {_describe(name)} is not a known time zone") from exc


def _parse_holiday(raw: object) -> date:
    if isinstance(raw, datetime):  # a datetime is a date subclass, but not a calendar day
        raise HoursError(f"holidays: {_describe(raw)} is not a date (YYYY-MM-DD)")
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and _DATE_RE.match(raw.strip()):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise HoursError(f"holidays: {_describe(raw)} is not a date (YYYY-MM-DD)")


def _require_aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise HoursError(f"{name}: expected a datetime, got {_describe(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise HoursError(f"{name}: datetime must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours of one practice. Build it with :meth:`parse` from config values.

    ``weekly`` maps 0 (Monday) .. 6 (Sunday) to the day's sorted, non-overlapping
    ranges; every day is present, closed days map to ``()``.
    """

    timezone: str
    weekly: dict[int, tuple[TimeRange, ...]]
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _load_zone(self.timezone))
        weekly: dict[int, tuple[TimeRange, ...]] = {}
        for day in self.weekly:
            if not isinstance(day, int) or not 0 <= day <= 6:
                raise HoursError(f"hours: unknown day {_describe(day)} (use 0=Monday .. 6=Sunday)")
        for day in range(7):
            ranges = tuple(self.weekly.get(day, ()))
            for r in ranges:
                if not isinstance(r, TimeRange):
                    raise HoursError(f"hours.{DAY_NAMES[day]}: {_describe(r)} is not a TimeRange")
                _opening_range(f"hours.{DAY_NAMES[day]}", r, str(r))
            weekly[day] = _normalise_day(f"hours.{DAY_NAMES[day]}", ranges)
        object.__setattr__(self, "weekly", weekly)
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    # ------------------------------------------------------------------ parsing

    @classmethod
    def parse(
        cls,
        timezone: str,
        hours: Mapping[str, Any] | None,
        holidays: Iterable[str | date] | None = None,
    ) -> BusinessHours:
        """Build from raw config values (as loaded from YAML).

        * ``timezone``: IANA name, e.g. ``"America/Chicago"``.
        * ``hours``: ``{"mon": ["08:00-12:00", "13:00-17:00"], ...}``; keys are
          ``mon`` .. ``sun`` (case-insensitive), missing days are closed, a
          single string is accepted as a one-range list, "24:00" is allowed as
          an end time. Touching ranges are merged; overlapping ones are an error.
        * ``holidays``: ``"YYYY-MM-DD"`` strings or :class:`datetime.date` values.

        Raises :class:`HoursError` naming the offending key and value.
        """
        if not isinstance(timezone, str):
            raise HoursError(f"timezone: {_describe(timezone)} is not a known time zone")
        zone_name = timezone.strip()
        _load_zone(zone_name)

        if hours is None:
            hours = {}
        if not isinstance(hours, Mapping):
            raise HoursError(
                f"hours: expected a mapping of day (mon..sun) to ranges, got {_describe(hours)}"
            )
        weekly: dict[int, tuple[TimeRange, ...]] = {}
        for raw_day, raw_ranges in hours.items():
            day_name = raw_day.strip().lower() if isinstance(raw_day, str) else ""
            if day_name not in DAY_NAMES:
                raise HoursError(f"hours: unknown day {_describe(raw_day)}")
            day = DAY_NAMES.index(day_name)
            if day in weekly:
                raise HoursError(f"hours: day {_describe(day_name)} is given more than once")
            key = f"hours.{day_name}"
            if raw_ranges is None:
                items: list[object] = []
            elif isinstance(raw_ranges, str):
                items = [raw_ranges]
            elif isinstance(raw_ranges, list | tuple):
                items = list(raw_ranges)
            else:
                raise HoursError(
                    f"{key}: expected a list of HH:MM-HH:MM, got {_describe(raw_ranges)}"
                )
            weekly[day] = _normalise_day(key, [_parse_range(key, item) for item in items])

        if holidays is None:
            holidays = []
        if isinstance(holidays, str | date) or not isinstance(holidays, Iterable):
            raise HoursError(f"holidays: expected a list of dates, got {_describe(holidays)}")
        parsed_holidays = frozenset(_parse_holiday(item) for item in holidays)

        return cls(timezone=zone_name, weekly=weekly, holidays=parsed_holidays)

    # ---------------------------------------------------------------- internals

    @property
    def zone(self) -> ZoneInfo:
        """The practice's :class:`zoneinfo.ZoneInfo`."""
        return self._zone

    def _local(self, instant_utc: datetime) -> datetime:
        return instant_utc.astimezone(self._zone)

    def _intervals_on(self, day: date) -> list[_Interval]:
        """The open intervals of a local calendar date as sorted, disjoint UTC instants."""
        if day in self.holidays:
            return []
        result: list[_Interval] = []
        for r in self.weekly[day.weekday()]:
            start = wall_to_utc(day, r.start, self._zone)
            end = wall_to_utc(day, r.end, self._zone)
            if end <= start:  # the range fell entirely into a DST gap
                continue
            if result and start <= result[-1][1]:  # overlap created by a DST gap
                result[-1] = (result[-1][0], max(result[-1][1], end))
            else:
                result.append((start, end))
        return result

    def open_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The practice's open intervals on a local calendar date, as aware UTC instants
        (none on a holiday or a closed day). For callers that test many instants of one
        day, such as the leak audit's million rows: is_open() rebuilds them every time."""
        return self._intervals_on(day)

    def _has_any_hours(self) -> bool:
        return any(self.weekly[d] for d in range(7))

    def _containing(self, instant_utc: datetime) -> _Interval | None:
        local_day = self._local(instant_utc).date()
        for day in (local_day - timedelta(days=1), local_day):
            for start, end in self._intervals_on(day):
                if start <= instant_utc < end:
                    return start, end
        return None

    def _never_open(self, after: datetime) -> HoursError:
        if not self._has_any_hours():
            return HoursError(f"practice ({self.timezone}) has no opening hours at all")
        return HoursError(
            f"practice ({self.timezone}) is not open on any day within {SEARCH_DAYS} days "
            f"after {after.isoformat()}"
        )

    def _walk(self, start_utc: datetime, delta: timedelta) -> datetime:
        """Earliest UTC instant t >= start_utc with exactly ``delta`` open time in [start, t)."""
        if delta == timedelta(0):
            return start_utc
        if not self._has_any_hours():
            raise self._never_open(self._local(start_utc))
        remaining = delta
        cursor = start_utc
        day = self._local(start_utc).date() - timedelta(days=1)
        closed_streak = 0
        while True:
            intervals = self._intervals_on(day)
            closed_streak = 0 if intervals else closed_streak + 1
            if closed_streak > SEARCH_DAYS + 1:
                raise self._never_open(self._local(cursor))
            for start, end in intervals:
                if end <= cursor:
                    continue
                begin = max(start, cursor)
                available = end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
                cursor = end
            day += timedelta(days=1)

    # ------------------------------------------------------------------ queries

    def is_open(self, at: datetime) -> bool:
        """True if the practice is open at the aware instant ``at`` (any zone).

        Ranges are half-open: open at 08:00, closed at 17:00 for "08:00-17:00".
        """
        return self._containing(_require_aware("at", at)) is not None

    def next_opening(self, after: datetime) -> datetime:
        """First instant >= ``after`` at which the practice is open.

        Returns ``after`` itself (converted to the practice zone) if open then.
        Looks at most 366 days ahead; raises :class:`HoursError` if the practice
        never opens in that window (e.g. it has no hours at all).
        """
        after_utc = _require_aware("after", after)
        first_day = self._local(after_utc).date()
        if self._has_any_hours():
            for offset in range(-1, SEARCH_DAYS + 1):
                for start, end in self._intervals_on(first_day + timedelta(days=offset)):
                    if end > after_utc:
                        return self._local(max(start, after_utc))
        raise self._never_open(self._local(after_utc))

    def day_close(self, at: datetime) -> datetime | None:
        """If open at ``at``: the end of the current opening range, else ``None``.

        The end of the *current range* within its local day, so during the
        morning of a split shift it is the start of the lunch break; a range
        ending "24:00" closes at the next local midnight.
        """
        interval = self._containing(_require_aware("at", at))
        return None if interval is None else self._local(interval[1])

    def add_business_time(self, start: datetime, delta: timedelta) -> datetime:
        """Walk forward from ``start`` counting only open time until ``delta`` is used up.

        The result is the earliest instant at which ``delta`` of open time has
        elapsed since ``start``; it may be a closing time (Mon 16:00 + 1h with
        08:00-17:00 is Mon 17:00, not Tue 08:00). A zero ``delta`` returns
        ``start`` itself; a negative one raises :class:`HoursError`.
        Example: Fri 16:00 + 2h with Fri and Mon 08:00-17:00 -> Mon 09:00.
        """
        start_utc = _require_aware("start", start)
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise HoursError(f"delta: must be a non-negative timedelta, got {_describe(delta)}")
        return self._local(self._walk(start_utc, delta))

    def start_of_next_business_day(self, at: datetime) -> datetime:
        """First opening on a local calendar date *later* than the date of ``at``.

        Closed weekdays and holidays are skipped. Even when ``at`` is before
        that day's opening, the answer is on a later date.
        """
        at_utc = _require_aware("at", at)
        today = self._local(at_utc).date()
        if self._has_any_hours():
            for offset in range(1, SEARCH_DAYS + 2):
                intervals = self._intervals_on(today + timedelta(days=offset))
                if intervals:
                    return self._local(intervals[0][0])
        raise self._never_open(self._local(at_utc))

    def same_business_day_due(self, at: datetime, cutoff: time, sla: timedelta) -> datetime:
        """Due time for same-day work (the "REFILL" rule).

        Let ``D`` be the local date of ``at``. If ``D`` is a business day (not a
        holiday, has opening hours), the local wall-clock time of ``at`` is
        strictly before ``cutoff`` *and* ``at`` is before ``D``'s last closing
        time, then::

            due = min(last closing time of D,
                      add_business_time(max(at, first opening of D), sla))

        Otherwise (at or after the cutoff, after the day's last close, on a
        closed day or a holiday)::

            due = add_business_time(start_of_next_business_day(at), sla)

        The "before the last close" condition keeps a late cutoff (e.g. 18:00
        with hours to 17:00) from producing a due time earlier than ``at``.
        """
        at_utc = _require_aware("at", at)
        if not isinstance(sla, timedelta) or sla < timedelta(0):
            raise HoursError(f"sla: must be a non-negative timedelta, got {_describe(sla)}")
        if not isinstance(cutoff, time) or cutoff.tzinfo is not None:
            raise HoursError(f"cutoff: must be a naive local time, got {_describe(cutoff)}")
        local = self._local(at_utc)
        intervals = self._intervals_on(local.date())
        if intervals and local.time() < cutoff and at_utc < intervals[-1][1]:
            first_open, last_close = intervals[0][0], intervals[-1][1]
            due = min(last_close, self._walk(max(at_utc, first_open), sla))
            return self._local(due)
        return self.next_business_day_due(at, sla)

    def next_business_day_due(self, at: datetime, sla: timedelta) -> datetime:
        """Due time for next-day work (the "BILLING" rule).

        ``due = add_business_time(start_of_next_business_day(at), sla)``: the SLA
        starts counting at the first opening on a later local date than ``at``
        (skipping closed days and holidays) and counts only open time.
        """
        if not isinstance(sla, timedelta) or sla < timedelta(0):
            raise HoursError(f"sla: must be a non-negative timedelta, got {_describe(sla)}")
        return self.add_business_time(self.start_of_next_business_day(at), sla)
