"""Wall-clock time ranges ("08:00-17:00", "21:00-08:00") and the one rule that turns a
wall-clock time on a day into an instant.

Opening hours and quiet hours are both written as wall-clock ranges: "08:00" means 08:00 on
the clocks of a zone, whatever its UTC offset is that day. Both parse them here and both
place them in time with `wall_to_utc`, so a DST night reads the same to either:

- a time the clocks skip (spring forward: 02:30 in Chicago on 2026-03-08) becomes the jump
  itself (03:00 CDT), the first instant at which the clocks read that time or later;
- a time the clocks show twice (fall back: 01:30 on 2026-11-01) is its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["END_OF_DAY", "TimeRange", "TimeRangeError", "wall_to_utc"]

# time.max stands for "24:00" (the end of the day) as a range's end.
END_OF_DAY = time.max

_RANGE_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-\u2013]\s*(\d{1,2}):(\d{2})\s*$")


class TimeRangeError(ValueError):
    """Text that is not HH:MM-HH:MM, or a time outside a day; says which part is wrong."""


def _fmt(t: time) -> str:
    return "24:00" if t == END_OF_DAY else f"{t.hour:02d}:{t.minute:02d}"


def _clock(hh: str, mm: str, *, allow_24: bool) -> time | None:
    hour, minute = int(hh), int(mm)
    if allow_24 and hour == 24 and minute == 0:
        return END_OF_DAY
    if 0 <= hour <= 23 and 0 <= minute <= 59:
        return time(hour, minute)
    return None


@dataclass(frozen=True)
class TimeRange:
    """`[start, end)` in wall-clock time. `end` is END_OF_DAY for "24:00"; an end before
    its start wraps past midnight ("21:00-08:00"); start == end is empty. Which of these a
    setting accepts is the setting's rule (opening hours refuse a wrap, quiet hours don't).
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise TimeRangeError(f"range {self}: times must be naive wall-clock times")

    @classmethod
    def parse(cls, raw: object) -> TimeRange:
        """ "08:00-17:00" (also "8:00", an en dash, "24:00" as an end) -> TimeRange."""
        match = _RANGE_RE.match(raw) if isinstance(raw, str) else None
        if match is None:
            raise TimeRangeError(f"{raw!r} is not HH:MM-HH:MM")
        sh, sm, eh, em = match.groups()
        start = _clock(sh, sm, allow_24=False)
        if start is None:
            raise TimeRangeError(f"{raw!r} has an invalid start time {sh}:{sm}")
        end = _clock(eh, em, allow_24=True)
        if end is None:
            raise TimeRangeError(f"{raw!r} has an invalid end time {eh}:{em}")
        return cls(start, end)

    @property
    def ends_at_midnight(self) -> bool:
        """True when the range runs to the end of the day ("24:00")."""
        return self.end == END_OF_DAY

    @property
    def wraps_midnight(self) -> bool:
        return self.end < self.start

    def contains(self, clock: time) -> bool:
        """Whether a wall-clock reading falls in the range (half-open; an empty range
        contains nothing)."""
        if self.wraps_midnight:
            return clock >= self.start or clock < self.end
        return self.start <= clock < self.end

    def __str__(self) -> str:
        return f"{_fmt(self.start)}-{_fmt(self.end)}"


def wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant at which the clocks of `zone` read `wall` or later on `day`
    (END_OF_DAY: the next midnight), in UTC. See the module's note for DST nights."""
    if wall == END_OF_DAY:
        naive = datetime.combine(day + timedelta(days=1), time(0))
    else:
        naive = datetime.combine(day, wall)
    # fold=0 is the offset in force before a transition: the first of a repeated time.
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
