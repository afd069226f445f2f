"""The episode list: the missed-call episodes behind a report figure, filtered and paged.

Filters: a date range (the practice's local dates), an outcome (or "recovered", booked or
resolved, or "open"), the patient's intent, the caller's last four digits, the weekday and
hour of the first call on the practice's clock (a heat-map cell of the report) and a band
of time to first text (a column of its histogram). The same
filters narrow the CSV (recovery.services.reports.csv_rows). Callers are masked to their
last four digits here: the full number is one click further, on the audited conversation.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session

from recovery.domain.intents import Intent
from recovery.domain.periods import DateRange, Period, Preset, parse_period
from recovery.domain.phones import mask_caller
from recovery.domain.time_range import END_OF_DAY, wall_to_utc
from recovery.models import AuditAction, Episode, EpisodeOutcome, Practice
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.reports import RECOVERED, TTFT_EDGES_MS, Scope

PER_PAGE = 50


class BadFilter(ValueError):
    """A filter that cannot be read; the message says which and why."""


class OutcomeFilter(enum.Enum):
    BOOKED = "booked"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    OPTED_OUT = "opted_out"
    UNRECOVERED = "unrecovered"
    OPEN = "open"  # no outcome yet
    RECOVERED = "recovered"  # booked or resolved


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_LABELS = (
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
    "Sundays",
)
NOT_TEXTED = "none"


@dataclass(frozen=True)
class TtftBand:
    """First texts that took at least `lo_ms` and under `hi_ms` (None: no upper end), or
    none at all (`not_texted`: opted out, blocked, or never accepted). Written in a link as
    `500-1000`, `30000-` or `none`."""

    lo_ms: int = 0
    hi_ms: int | None = None
    not_texted: bool = False

    @classmethod
    def parse(cls, raw: str) -> TtftBand:
        if raw == NOT_TEXTED:
            return cls(not_texted=True)
        found = re.fullmatch(r"(\d{1,7})-(\d{0,7})", raw)
        if found is None or (found.group(2) and int(found.group(2)) <= int(found.group(1))):
            raise BadFilter("ttft: a band of milliseconds such as 500-1000, 30000- or none")
        return cls(int(found.group(1)), int(found.group(2)) if found.group(2) else None)

    def __str__(self) -> str:
        if self.not_texted:
            return NOT_TEXTED
        return f"{self.lo_ms}-{'' if self.hi_ms is None else self.hi_ms}"

    def label(self) -> str:
        if self.not_texted:
            return "never texted"
        if self.hi_ms is None:
            return f"first text after {self.lo_ms / 1000:g} s or more"
        if self.lo_ms == 0:
            return f"first text within {self.hi_ms / 1000:g} s"
        return f"first text in {self.lo_ms / 1000:g}–{self.hi_ms / 1000:g} s"

    def condition(self) -> ColumnElement[bool]:
        ttft = Episode.time_to_first_text_ms
        if self.not_texted:
            return ttft.is_(None)
        found = ttft >= self.lo_ms
        return found if self.hi_ms is None else found & (ttft < self.hi_ms)


def band_of_bucket(index: int) -> TtftBand:
    """The band of the report's time-to-first-text column `index` (TTFT_EDGES_MS; one past
    the last edge is "30 s or more", one further "not texted")."""
    edges = TTFT_EDGES_MS
    if index > len(edges):
        return TtftBand(not_texted=True)
    return TtftBand(edges[index - 1] if index else 0, edges[index] if index < len(edges) else None)


@dataclass(frozen=True)
class EpisodeFilter:
    period: Period
    outcome: OutcomeFilter | None = None
    intent: Intent | None = None
    last_four: str | None = None
    weekday: int | None = None  # 0 Monday .. 6 Sunday, of the first call, practice's clock
    hour: int | None = None  # 0..23, likewise
    ttft: TtftBand | None = None

    @property
    def days(self) -> DateRange:
        return self.period.current

    def local_windows(self, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """The weekday/hour filter as UTC intervals within the range: one per matching
        date, so that it reads the same on PostgreSQL and SQLite and uses the opened_at
        index. A repeated hour (fall back) is both its occurrences, as the heat map counts
        it; a skipped one (spring forward) is empty."""
        windows = []
        for day in self.days.dates():
            if self.weekday is not None and day.weekday() != self.weekday:
                continue
            if self.hour is None:
                start, end = wall_to_utc(day, time(0), zone), wall_to_utc(day, END_OF_DAY, zone)
            else:
                start = wall_to_utc(day, time(self.hour), zone)
                end = wall_to_utc(day, time(self.hour + 1) if self.hour < 23 else END_OF_DAY, zone)
            if end > start:
                windows.append((start, end))
        return windows

    def conditions(self, practices: Sequence[Practice] = ()) -> list[ColumnElement[bool]]:
        """Everything but the date range, which is per practice (each its own zone); the
        weekday/hour filter needs the `practices` for their zones."""
        found: list[ColumnElement[bool]] = []
        if self.weekday is not None or self.hour is not None:
            per_practice = []
            for practice in practices:
                spans = [
                    (Episode.opened_at >= lo) & (Episode.opened_at < hi)
                    for lo, hi in self.local_windows(ZoneInfo(practice.timezone))
                ]
                if spans:
                    per_practice.append((Episode.practice_id == practice.id) & or_(*spans))
            found.append(or_(*per_practice) if per_practice else false())
        if self.ttft is not None:
            found.append(self.ttft.condition())
        if self.outcome is OutcomeFilter.OPEN:
            found.append(Episode.outcome.is_(None))
        elif self.outcome is OutcomeFilter.RECOVERED:
            found.append(Episode.outcome.in_(RECOVERED))
        elif self.outcome is not None:
            found.append(Episode.outcome == EpisodeOutcome(self.outcome.value))
        if self.intent is not None:
            found.append(Episode.intent == self.intent.value)
        if self.last_four:
            found.append(Episode.caller.endswith(self.last_four))
        return found

    def as_args(self) -> dict[str, str]:
        """The query string that asks for this filter again (links, the CSV)."""
        args = {"from": self.days.start.isoformat(), "to": self.days.end.isoformat()}
        if self.outcome:
            args["outcome"] = self.outcome.value
        if self.intent:
            args["intent"] = self.intent.value
        if self.last_four:
            args["caller"] = self.last_four
        if self.weekday is not None:
            args["weekday"] = WEEKDAYS[self.weekday]
        if self.hour is not None:
            args["hour"] = str(self.hour)
        if self.ttft is not None:
            args["ttft"] = str(self.ttft)
        return args

    def narrowed_by(self) -> str:
        """The weekday, hour and first-text filters in words ("Mondays 09:00-09:59, first
        text in 0.5-1 s"), or "" when none is set: the list says what a link narrowed it to."""
        parts = []
        when = WEEKDAY_LABELS[self.weekday] if self.weekday is not None else ""
        if self.hour is not None:
            when = f"{when} {self.hour:02d}:00–{self.hour:02d}:59".strip()
        if when:
            parts.append(when)
        if self.ttft is not None:
            parts.append(self.ttft.label())
        return ", ".join(parts)


def parse_filter(args: Mapping[str, str], today: date) -> EpisodeFilter:
    """?range=last_week or ?from=&to=, &outcome=, &intent=, &caller= (last four digits).
    With no range, the last 7 days: whoever opens the calls looks for today's first (the
    report's default, last week, left a Tuesday's desk an empty list)."""
    period = parse_period(
        args.get("range"), args.get("from"), args.get("to"), today, default=Preset.LAST_7_DAYS
    )
    outcome = _enum(OutcomeFilter, args.get("outcome"), "outcome")
    intent = _enum(Intent, args.get("intent"), "intent")
    caller = re.sub(r"\D", "", args.get("caller") or "")
    if args.get("caller") and len(caller) != 4:
        raise BadFilter("caller: give the last four digits of the number")
    weekday = (args.get("weekday") or "").strip().lower()
    if weekday and weekday not in WEEKDAYS:
        raise BadFilter(f"weekday={weekday!r}: one of {', '.join(WEEKDAYS)}")
    hour_text = (args.get("hour") or "").strip()
    if hour_text and not (hour_text.isdigit() and 0 <= int(hour_text) <= 23):
        raise BadFilter(f"hour={hour_text!r}: 0 to 23")
    ttft_text = (args.get("ttft") or "").strip()
    return EpisodeFilter(
        period,
        outcome,
        intent,
        caller or None,
        weekday=WEEKDAYS.index(weekday) if weekday else None,
        hour=int(hour_text) if hour_text else None,
        ttft=TtftBand.parse(ttft_text) if ttft_text else None,
    )


def _enum(kind: Any, value: str | None, name: str) -> Any:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise BadFilter(f"{name}={value!r}: one of {allowed}") from None


@dataclass(frozen=True)
class EpisodeRow:
    id: int
    practice_name: str
    opened_at: datetime  # in the practice's zone
    caller: str  # masked: ***-***-0199
    calls: int
    intent: str | None
    outcome: EpisodeOutcome | None
    time_to_first_text_ms: int | None


@dataclass(frozen=True)
class EpisodePage:
    rows: list[EpisodeRow]
    total: int
    page: int
    pages: int

    @property
    def first_row(self) -> int:
        return (self.page - 1) * PER_PAGE + 1 if self.total else 0

    @property
    def last_row(self) -> int:
        return min(self.page * PER_PAGE, self.total)


def list_episodes(
    session: Session,
    viewer: Viewer,
    scope: Scope,
    wanted: EpisodeFilter,
    *,
    page: int,
    now: datetime,
) -> EpisodePage:
    """One page of the scope's missed-call episodes matching `wanted`, newest first."""
    zones = {p.id: ZoneInfo(p.timezone) for p in scope.practices}
    names = {p.id: p.name for p in scope.practices}
    in_range = []
    for practice in scope.practices:
        lo, hi = wanted.days.bounds(zones[practice.id])
        in_range.append(
            (Episode.practice_id == practice.id)
            & (Episode.opened_at >= lo)
            & (Episode.opened_at < hi)
        )
    where = [or_(*in_range), Episode.call_count > 0, *wanted.conditions(scope.practices)]
    total = session.scalar(select(func.count()).select_from(Episode).where(*where)) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(1, page), pages)
    episodes = session.scalars(
        select(Episode)
        .where(*where)
        .order_by(Episode.opened_at.desc(), Episode.id.desc())
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    rows = [
        EpisodeRow(
            id=e.id,
            practice_name=names[e.practice_id],
            opened_at=e.opened_at.astimezone(zones[e.practice_id]),
            caller=mask_caller(e.caller),
            calls=e.call_count,
            intent=e.intent,
            outcome=e.outcome,
            time_to_first_text_ms=e.time_to_first_text_ms,
        )
        for e in episodes
    ]
    record(
        session,
        viewer.id,
        AuditAction.VIEW_EPISODES,
        now=now,
        detail=f"practice {scope.slug}; {describe(wanted)}; "
        f"episodes {','.join(str(r.id) for r in rows) or 'none'}",
    )
    return EpisodePage(rows, total, page, pages)


def describe(wanted: EpisodeFilter) -> str:
    # By reference only: the last four digits a user typed are a search, not a record.
    return " ".join(f"{k}={v}" for k, v in wanted.as_args().items() if k != "caller") + (
        " caller=given" if wanted.last_four else ""
    )
