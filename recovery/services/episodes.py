"""The episode list: the missed-call episodes behind a report figure, filtered and paged.

Filters: a date range (the practice's local dates), an outcome (or "recovered", booked or
resolved, or "open"), the patient's intent, the caller's last four digits. The same
filters narrow the CSV (recovery.services.reports.csv_rows). Callers are masked to their
last four digits here: the full number is one click further, on the audited conversation.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from recovery.domain.intents import Intent
from recovery.domain.periods import DateRange, Period, parse_period
from recovery.domain.phones import mask_caller
from recovery.models import AuditAction, Episode, EpisodeOutcome
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.reports import RECOVERED, Scope

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


@dataclass(frozen=True)
class EpisodeFilter:
    period: Period
    outcome: OutcomeFilter | None = None
    intent: Intent | None = None
    last_four: str | None = None

    @property
    def days(self) -> DateRange:
        return self.period.current

    def conditions(self) -> list[ColumnElement[bool]]:
        """Everything but the date range, which is per practice (each its own zone)."""
        found: list[ColumnElement[bool]] = []
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
        return args


def parse_filter(args: Mapping[str, str], today: date) -> EpisodeFilter:
    """?range=last_week or ?from=&to=, &outcome=, &intent=, &caller= (last four digits)."""
    period = parse_period(args.get("range"), args.get("from"), args.get("to"), today)
    outcome = _enum(OutcomeFilter, args.get("outcome"), "outcome")
    intent = _enum(Intent, args.get("intent"), "intent")
    caller = re.sub(r"\D", "", args.get("caller") or "")
    if args.get("caller") and len(caller) != 4:
        raise BadFilter("caller: give the last four digits of the number")
    return EpisodeFilter(period, outcome, intent, caller or None)


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
    where = [or_(*in_range), Episode.call_count > 0, *wanted.conditions()]
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
