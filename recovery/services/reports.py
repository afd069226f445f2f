"""The recovery report: what missed calls cost a practice and what was recovered.

One service for every place the figures are read: the /reports page, the JSON API, the
CSV of the range's episodes and `recovery report`. The numbers are made here and nowhere
else; labels, formats and pictures belong to recovery/web.

What is counted:

- a **missed call** is a missed-call episode opened in the range (repeat calls within the
  practice's window join one episode; an episode a patient started by text is not a missed
  call); every figure below is over those episodes unless it says otherwise;
- **recovered** = outcome booked or resolved; **recovery rate** = recovered / missed calls;
- **answered calls** and the **answer rate** (answered / all answered and missed call
  events) only where the phone system reports answered calls;
- **time to first text** p50 / p95 (interpolated, as PostgreSQL's percentile_cont) and max,
  over the episodes that got a text;
- **self-scheduling conversion** = episodes that asked to book and ended booked / episodes
  that asked to book;
- **urgent escalation latency**: for pages whose urgent reply came in the range, reply to
  first page and reply to acknowledgement;
- **tasks** created in the range, per queue: still open, breached (open past due now, or
  completed after it was due), and the share of completed tasks done within the SLA;
- **revenue recovered** = booked x the practice's visit value.

Ranges are local dates in the practice's zone (recovery.domain.periods); rows are read
one practice at a time with that practice's bounds and tallied in one pass, so a practice
-quarter is a few thousand narrow rows read through the (practice_id, opened_at) index.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, case, cast, extract, func, or_, select
from sqlalchemy.orm import Session

from recovery.domain.periods import DateRange, Period
from recovery.domain.phones import mask_caller
from recovery.models import (
    AuditAction,
    CallDisposition,
    CallEvent,
    Episode,
    EpisodeOutcome,
    Page,
    Practice,
    Task,
    TaskQueue,
    TaskStatus,
)
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.errors import NotAllowed, NotFound

RECOVERED = (EpisodeOutcome.BOOKED, EpisodeOutcome.RESOLVED)
BOOKING_INTENT = "book"
# Upper edges of the time-to-first-text distribution's buckets; one more bucket past the
# last edge. A first text within a second is the promise; 30 s means a retry.
TTFT_EDGES_MS = (500, 1000, 2000, 5000, 30_000)
WEEKDAYS = 7
HOURS = 24
CSV_BATCH = 1000  # rows per fetch when the CSV streams: memory stays flat


# --- figures -----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[int], fraction: float) -> float | None:
    """Linear interpolation between closest ranks, as percentile_cont does."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class QueueFigures:
    queue: TaskQueue
    created: int = 0
    open: int = 0
    breached: int = 0
    done: int = 0
    done_within_sla: int = 0

    @property
    def sla_share(self) -> float | None:
        return _ratio(self.done_within_sla, self.done)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "open": self.open,
            "breached": self.breached,
            "done": self.done,
            "done_within_sla": self.done_within_sla,
            "done_within_sla_share": self.sla_share,
        }


@dataclass(frozen=True)
class Figures:
    missed_calls: int
    booked: int
    resolved: int
    escalated: int
    opted_out: int
    unrecovered: int
    open: int
    texted: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_max_ms: int | None
    booking_intents: int
    booked_from_intents: int
    revenue_recovered: int
    missed_call_events: int
    answered_calls: int
    pages: int
    page_p50_ms: float | None
    page_max_ms: int | None
    ack_p50_ms: float | None
    ack_max_ms: int | None
    tasks: tuple[QueueFigures, ...]

    @property
    def recovered(self) -> int:
        return self.booked + self.resolved

    @property
    def recovery_rate(self) -> float | None:
        return _ratio(self.recovered, self.missed_calls)

    @property
    def answer_rate(self) -> float | None:
        """None when the phone system reports no answered calls (the rate would lie)."""
        if not self.answered_calls:
            return None
        return _ratio(self.answered_calls, self.answered_calls + self.missed_call_events)

    @property
    def self_scheduling_conversion(self) -> float | None:
        return _ratio(self.booked_from_intents, self.booking_intents)

    @property
    def never_texted(self) -> int:
        return self.missed_calls - self.texted

    def outcome_counts(self) -> dict[str, int]:
        """Each outcome's count, and the episodes still open, in the report's order."""
        return {
            "booked": self.booked,
            "resolved": self.resolved,
            "escalated": self.escalated,
            "opted_out": self.opted_out,
            "unrecovered": self.unrecovered,
            "open": self.open,
        }

    def as_dict(self) -> dict[str, Any]:
        """The API's and `recovery report --json`'s keys."""
        return {
            "missed_calls": self.missed_calls,
            "recovered": self.recovered,
            "recovery_rate": self.recovery_rate,
            **self.outcome_counts(),
            "ttft_p50_ms": _round(self.ttft_p50_ms),
            "ttft_p95_ms": _round(self.ttft_p95_ms),
            "ttft_max_ms": self.ttft_max_ms,
            "texted": self.texted,
            "never_texted": self.never_texted,
            "self_scheduling_conversion": self.self_scheduling_conversion,
            "booking_intents": self.booking_intents,
            "revenue_recovered": self.revenue_recovered,
            "missed_call_events": self.missed_call_events,
            "answered_calls": self.answered_calls,
            "answer_rate": self.answer_rate,
            "urgent_pages": self.pages,
            "urgent_page_latency_p50_ms": _round(self.page_p50_ms),
            "urgent_page_latency_max_ms": self.page_max_ms,
            "urgent_ack_latency_p50_ms": _round(self.ack_p50_ms),
            "urgent_ack_latency_max_ms": self.ack_max_ms,
            "tasks": {q.queue.value: q.as_dict() for q in self.tasks},
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class DayPoint:
    day: date
    missed: int
    recovered: int

    @property
    def rate(self) -> float | None:
        return _ratio(self.recovered, self.missed)


@dataclass(frozen=True)
class Charts:
    days: tuple[DayPoint, ...]
    # Unrecovered missed calls by local weekday (0 = Monday) and hour of the day.
    heat: tuple[tuple[int, ...], ...]
    # Episodes per TTFT_EDGES_MS bucket (one more past the last edge), and never texted.
    ttft_buckets: tuple[int, ...]
    never_texted: int


@dataclass(frozen=True)
class PracticeRef:
    id: int
    slug: str
    name: str
    timezone: str


@dataclass(frozen=True)
class Report:
    practices: tuple[PracticeRef, ...]
    all_practices: bool
    period: Period
    current: Figures
    previous: Figures
    charts: Charts

    @property
    def timezone(self) -> str | None:
        """The zone the dates are in; None when several practices each use their own."""
        zones = {p.timezone for p in self.practices}
        return zones.pop() if len(zones) == 1 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "practice": None if self.all_practices else self.practices[0].slug,
            "practices": [p.slug for p in self.practices],
            "timezone": self.timezone,
            "from": self.period.current.start.isoformat(),
            "to": self.period.current.end.isoformat(),
            **self.current.as_dict(),
            "previous": {
                "from": self.period.previous.start.isoformat(),
                "to": self.period.previous.end.isoformat(),
                **self.previous.as_dict(),
            },
            "per_day": [
                {
                    "date": d.day.isoformat(),
                    "missed_calls": d.missed,
                    "recovered": d.recovered,
                    "recovery_rate": d.rate,
                }
                for d in self.charts.days
            ],
            "unrecovered_by_weekday_hour": [list(row) for row in self.charts.heat],
            "ttft_distribution": {
                "edges_ms": list(TTFT_EDGES_MS),
                "counts": list(self.charts.ttft_buckets),
                "never_texted": self.charts.never_texted,
            },
        }


# --- the tally ---------------------------------------------------------------------------


@dataclass
class _Tally:
    """Every figure of one range, added up one row at a time."""

    charts: bool
    days: dict[date, list[int]] = field(default_factory=dict)  # day -> [missed, recovered]
    heat: list[list[int]] = field(default_factory=lambda: [[0] * HOURS for _ in range(WEEKDAYS)])
    buckets: list[int] = field(default_factory=lambda: [0] * (len(TTFT_EDGES_MS) + 1))
    missed: int = 0
    outcomes: dict[EpisodeOutcome | None, int] = field(default_factory=dict)
    ttft: list[int] = field(default_factory=list)
    # (texted, p50, p95, max) when PostgreSQL worked them out instead of the list above.
    ttft_summary: tuple[int, float | None, float | None, int | None] | None = None
    booking_intents: int = 0
    booked_from_intents: int = 0
    revenue: int = 0
    missed_events: int = 0
    answered: int = 0
    page_ms: list[int] = field(default_factory=list)
    ack_ms: list[int] = field(default_factory=list)
    tasks: dict[TaskQueue, list[int]] = field(
        default_factory=lambda: {q: [0, 0, 0, 0, 0] for q in TaskQueue}
    )

    def episode(
        self,
        zone: ZoneInfo,
        opened_at: datetime,
        outcome: EpisodeOutcome | None,
        ttft: int | None,
        intent: str | None,
    ) -> None:
        self.missed += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if ttft is not None:
            self.ttft.append(ttft)
        if intent == BOOKING_INTENT:
            self.booking_intents += 1
            self.booked_from_intents += outcome is EpisodeOutcome.BOOKED
        if not self.charts:
            return
        local = opened_at.astimezone(zone)
        day = self.days.setdefault(local.date(), [0, 0])
        day[0] += 1
        day[1] += outcome in RECOVERED
        if outcome is EpisodeOutcome.UNRECOVERED:
            self.heat[local.weekday()][local.hour] += 1
        if ttft is not None:
            self.buckets[_bucket(ttft)] += 1

    def figures(self) -> Figures:
        ttft = sorted(self.ttft)
        if self.ttft_summary is not None:
            texted, p50, p95, slowest = self.ttft_summary
        else:
            texted, p50, p95 = len(ttft), percentile(ttft, 0.5), percentile(ttft, 0.95)
            slowest = ttft[-1] if ttft else None
        page_ms, ack_ms = sorted(self.page_ms), sorted(self.ack_ms)
        count = self.outcomes.get
        return Figures(
            missed_calls=self.missed,
            booked=count(EpisodeOutcome.BOOKED, 0),
            resolved=count(EpisodeOutcome.RESOLVED, 0),
            escalated=count(EpisodeOutcome.ESCALATED, 0),
            opted_out=count(EpisodeOutcome.OPTED_OUT, 0),
            unrecovered=count(EpisodeOutcome.UNRECOVERED, 0),
            open=count(None, 0),
            texted=texted,
            ttft_p50_ms=p50,
            ttft_p95_ms=p95,
            ttft_max_ms=slowest,
            booking_intents=self.booking_intents,
            booked_from_intents=self.booked_from_intents,
            revenue_recovered=self.revenue,
            missed_call_events=self.missed_events,
            answered_calls=self.answered,
            pages=len(page_ms),
            page_p50_ms=percentile(page_ms, 0.5),
            page_max_ms=page_ms[-1] if page_ms else None,
            ack_p50_ms=percentile(ack_ms, 0.5),
            ack_max_ms=ack_ms[-1] if ack_ms else None,
            tasks=tuple(QueueFigures(q, *counts) for q, counts in self.tasks.items()),
        )

    def chart_data(self, days: DateRange) -> Charts:
        return Charts(
            days=tuple(DayPoint(d, *self.days.get(d, [0, 0])) for d in days.dates()),
            heat=tuple(tuple(row) for row in self.heat),
            ttft_buckets=tuple(self.buckets),
            never_texted=self.missed - self.figures().texted,
        )


def _bucket(ttft_ms: int) -> int:
    for index, edge in enumerate(TTFT_EDGES_MS):
        if ttft_ms < edge:
            return index
    return len(TTFT_EDGES_MS)


def _ms(later: datetime | None, earlier: datetime) -> int | None:
    if later is None:
        return None
    return max(0, round((later - earlier).total_seconds() * 1000))


def _tally_practice(
    session: Session,
    practice: Practice,
    days: DateRange,
    tally: _Tally,
    now: datetime,
    *,
    episodes: bool = True,
) -> None:
    zone = ZoneInfo(practice.timezone)
    lo, hi = days.bounds(zone)
    if episodes:
        _tally_episodes(session, practice, lo, hi, tally)
    _tally_the_rest(session, practice, lo, hi, tally, now)


def _tally_episodes(
    session: Session, practice: Practice, lo: datetime, hi: datetime, tally: _Tally
) -> None:
    """Row by row, in Python: every database (SQLite for `make run` and the unit tests)."""
    zone = ZoneInfo(practice.timezone)
    booked_before = tally.outcomes.get(EpisodeOutcome.BOOKED, 0)
    rows = session.execute(
        select(
            Episode.opened_at, Episode.outcome, Episode.time_to_first_text_ms, Episode.intent
        ).where(
            Episode.practice_id == practice.id,
            Episode.opened_at >= lo,
            Episode.opened_at < hi,
            Episode.call_count > 0,
        )
    )
    for opened_at, outcome, ttft, intent in rows:
        tally.episode(zone, opened_at, outcome, ttft, intent)
    tally.revenue += (tally.outcomes.get(EpisodeOutcome.BOOKED, 0) - booked_before) * (
        practice.visit_value or 0
    )


def _in_range(practices: Sequence[Practice], days: DateRange) -> list[ColumnElement[bool]]:
    """Missed-call episodes of `days`, each practice on its own calendar."""
    ranges = []
    for practice in practices:
        lo, hi = days.bounds(ZoneInfo(practice.timezone))
        ranges.append(
            (Episode.practice_id == practice.id)
            & (Episode.opened_at >= lo)
            & (Episode.opened_at < hi)
        )
    return [or_(*ranges), Episode.call_count > 0]


def _tally_episodes_in_sql(
    session: Session, practices: Sequence[Practice], days: DateRange, tally: _Tally
) -> None:
    """The same figures as _tally_episodes, added up by PostgreSQL: a few dozen rows come
    back instead of one per episode. Row by row a practice-quarter beside the quarter
    before (20,000 episodes) cost ~190 ms of Python CPU, the whole budget of the page
    (bench/report_results.md); percentile_cont interpolates as recovery's percentile()."""
    where = _in_range(practices, days)
    value = {p.id: p.visit_value or 0 for p in practices}
    asked = Episode.intent == BOOKING_INTENT
    counted = session.execute(
        select(Episode.practice_id, Episode.outcome, asked, func.count())
        .where(*where)
        .group_by(Episode.practice_id, Episode.outcome, asked)
    )
    for practice_id, outcome, booking, n in counted:
        tally.missed += n
        tally.outcomes[outcome] = tally.outcomes.get(outcome, 0) + n
        if outcome is EpisodeOutcome.BOOKED:
            tally.revenue += n * value[practice_id]
        if booking:
            tally.booking_intents += n
            tally.booked_from_intents += n if outcome is EpisodeOutcome.BOOKED else 0
    ttft = Episode.time_to_first_text_ms
    texted, p50, p95, slowest = session.execute(
        select(
            func.count(ttft),
            func.percentile_cont(0.5).within_group(ttft),
            func.percentile_cont(0.95).within_group(ttft),
            func.max(ttft),
        ).where(*where)
    ).one()
    tally.ttft_summary = (
        texted,
        None if p50 is None else float(p50),
        None if p95 is None else float(p95),
        slowest,
    )
    if not tally.charts:
        return
    local = func.timezone(Practice.timezone, Episode.opened_at)  # wall clock, its zone
    day = cast(local, Date)
    recovered = Episode.outcome.in_(RECOVERED)
    joined = select().join_from(Episode, Practice, Practice.id == Episode.practice_id)
    for on, was_recovered, n in session.execute(
        joined.add_columns(day, recovered, func.count()).where(*where).group_by(day, recovered)
    ):
        point = tally.days.setdefault(on, [0, 0])
        point[0] += n
        point[1] += n if was_recovered else 0
    weekday, hour = extract("isodow", local), extract("hour", local)
    for dow, at_hour, n in session.execute(
        joined.add_columns(weekday, hour, func.count())
        .where(*where, Episode.outcome == EpisodeOutcome.UNRECOVERED)
        .group_by(weekday, hour)
    ):
        tally.heat[int(dow) - 1][int(at_hour)] += n
    bucket = case(
        *[(ttft < edge, index) for index, edge in enumerate(TTFT_EDGES_MS)],
        else_=len(TTFT_EDGES_MS),
    )
    for index, n in session.execute(
        select(bucket, func.count()).where(*where, ttft.is_not(None)).group_by(bucket)
    ):
        tally.buckets[index] += n


def _tally_the_rest(
    session: Session, practice: Practice, lo: datetime, hi: datetime, tally: _Tally, now: datetime
) -> None:
    """Calls, pages and tasks: few rows, or counted by the database already."""

    calls = session.execute(
        select(CallEvent.disposition, func.count())
        .where(
            CallEvent.practice_id == practice.id,
            CallEvent.occurred_at >= lo,
            CallEvent.occurred_at < hi,
        )
        .group_by(CallEvent.disposition)
    )
    for disposition, count in calls:
        if disposition is CallDisposition.MISSED:
            tally.missed_events += count
        elif disposition is CallDisposition.ANSWERED:
            tally.answered += count

    pages = session.execute(
        select(Page.reply_received_at, Page.first_page_at, Page.acknowledged_at).where(
            Page.practice_id == practice.id,
            Page.reply_received_at >= lo,
            Page.reply_received_at < hi,
        )
    )
    for reply_at, first_page_at, acknowledged_at in pages:
        if (page_ms := _ms(first_page_at, reply_at)) is not None:
            tally.page_ms.append(page_ms)
        if (ack_ms := _ms(acknowledged_at, reply_at)) is not None:
            tally.ack_ms.append(ack_ms)

    tasks = session.execute(
        select(Task.queue, Task.status, Task.due_at, Task.completed_at).where(
            Task.practice_id == practice.id, Task.created_at >= lo, Task.created_at < hi
        )
    )
    for queue, status, due_at, completed_at in tasks:
        counts = tally.tasks[queue]
        counts[0] += 1
        if status is TaskStatus.DONE and completed_at is not None:
            counts[3] += 1
            if completed_at <= due_at:
                counts[4] += 1
            else:
                counts[2] += 1
        else:
            counts[1] += 1
            counts[2] += due_at < now


def build_report(
    session: Session,
    practices: Sequence[Practice],
    period: Period,
    *,
    now: datetime,
    all_practices: bool = False,
) -> Report:
    """The report of `practices` (one, or an admin's all) over `period` and the one before."""
    current, previous = _Tally(charts=True), _Tally(charts=False)
    in_sql = session.get_bind().dialect.name == "postgresql"
    for practice in practices:
        _tally_practice(session, practice, period.current, current, now, episodes=not in_sql)
        _tally_practice(session, practice, period.previous, previous, now, episodes=not in_sql)
    if in_sql and practices:
        _tally_episodes_in_sql(session, practices, period.current, current)
        _tally_episodes_in_sql(session, practices, period.previous, previous)
    return Report(
        practices=tuple(PracticeRef(p.id, p.slug, p.name, p.timezone) for p in practices),
        all_practices=all_practices,
        period=period,
        current=current.figures(),
        previous=previous.figures(),
        charts=current.chart_data(period.current),
    )


def local_today(practices: Sequence[Practice], now: datetime) -> date:
    """Today on the (first) practice's calendar: what "this week" means."""
    zone = ZoneInfo(practices[0].timezone) if practices else UTC
    return now.astimezone(zone).date()


# --- the CSV -----------------------------------------------------------------------------

CSV_COLUMNS = (
    "episode_id",
    "practice",
    "opened_at",
    "last_call_at",
    "calls",
    "caller",
    "intent",
    "outcome",
    "outcome_at",
    "time_to_first_text_ms",
    "booked",
    "tasks",
    "task_sla_met",
)


def _local(at: datetime | None, zone: ZoneInfo) -> str:
    return "" if at is None else at.astimezone(zone).isoformat(timespec="seconds")


def csv_rows(
    session: Session, practices: Sequence[Practice], days: DateRange, *, where: Sequence[Any] = ()
) -> Iterator[tuple[object, ...]]:
    """One row per missed-call episode of the range (CSV_COLUMNS), oldest first, read in
    batches from a server-side cursor: a practice-year never sits whole in memory.

    `where` narrows it further (the episode list's filters). Times are in the practice's
    zone with their offset; the caller is masked to the last four digits; task_sla_met is
    empty when the episode made no task, else whether every task was done by its due time.
    """
    sla = (
        select(
            Task.episode_id.label("episode_id"),
            func.count().label("tasks"),
            func.sum(
                case(
                    (
                        (Task.completed_at.is_not(None)) & (Task.completed_at <= Task.due_at),
                        1,
                    ),
                    else_=0,
                )
            ).label("on_time"),
        )
        .group_by(Task.episode_id)
        .subquery()
    )
    for practice in practices:
        zone = ZoneInfo(practice.timezone)
        lo, hi = days.bounds(zone)
        query = (
            select(
                Episode.id,
                Episode.opened_at,
                Episode.last_call_at,
                Episode.call_count,
                Episode.caller,
                Episode.intent,
                Episode.outcome,
                Episode.outcome_at,
                Episode.time_to_first_text_ms,
                sla.c.tasks,
                sla.c.on_time,
            )
            .outerjoin(sla, sla.c.episode_id == Episode.id)
            .where(
                Episode.practice_id == practice.id,
                Episode.opened_at >= lo,
                Episode.opened_at < hi,
                Episode.call_count > 0,
                *where,
            )
            .order_by(Episode.opened_at, Episode.id)
            .execution_options(yield_per=CSV_BATCH)
        )
        for row in session.execute(query):
            tasks = row.tasks or 0
            yield (
                row.id,
                practice.slug,
                _local(row.opened_at, zone),
                _local(row.last_call_at, zone),
                row.call_count,
                mask_caller(row.caller),
                row.intent or "",
                row.outcome.value if row.outcome else "open",
                _local(row.outcome_at, zone),
                "" if row.time_to_first_text_ms is None else row.time_to_first_text_ms,
                "yes" if row.outcome is EpisodeOutcome.BOOKED else "no",
                tasks,
                "" if not tasks else ("yes" if row.on_time == tasks else "no"),
            )


# --- who sees which practice -------------------------------------------------------------


ALL_PRACTICES = "all"


@dataclass(frozen=True)
class Scope:
    practices: tuple[Practice, ...]
    all_practices: bool
    choices: tuple[PracticeRef, ...]  # an admin's picker; empty for everyone else

    @property
    def slug(self) -> str:
        return ALL_PRACTICES if self.all_practices else self.practices[0].slug


def scope_for(
    session: Session, viewer: Viewer, practice_slug: str | None, *, reports: bool = True
) -> Scope:
    """The practices a viewer asked for and may see. An admin picks one or all (all when
    none is asked for); everyone else has their own practice, and asking for another one
    is not found. `reports`: the viewer must be a manager or an admin."""
    if reports and not viewer.can_see_reports:
        raise NotAllowed("The recovery report is for practice managers and admins.")
    if viewer.is_admin:
        everyone = tuple(session.scalars(select(Practice).order_by(Practice.name)))
        choices = tuple(PracticeRef(p.id, p.slug, p.name, p.timezone) for p in everyone)
        if not practice_slug or practice_slug == ALL_PRACTICES:
            if not everyone:
                raise NotFound
            return Scope(everyone, True, choices)
        chosen = tuple(p for p in everyone if p.slug == practice_slug)
        if not chosen:
            raise NotFound
        return Scope(chosen, False, choices)
    practice = session.get(Practice, viewer.practice_id) if viewer.practice_id else None
    if practice is None or (practice_slug and practice_slug != practice.slug):
        raise NotFound
    return Scope((practice,), False, ())


def practice_by_slug(session: Session, slug: str) -> Practice:
    practice = session.scalars(select(Practice).where(Practice.slug == slug)).first()
    if practice is None:
        raise NotFound
    return practice


def practices_by_id(session: Session, ids: Sequence[int]) -> list[Practice]:
    """The practices again, in the order given (a CSV streams after the request's own
    session has closed, so it reads them anew)."""
    found = {p.id: p for p in session.scalars(select(Practice).where(Practice.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def report_for_viewer(
    session: Session, viewer: Viewer, scope: Scope, period: Period, *, now: datetime
) -> Report:
    report = build_report(
        session, scope.practices, period, now=now, all_practices=scope.all_practices
    )
    record(
        session,
        viewer.id,
        AuditAction.VIEW_REPORT,
        now=now,
        detail=f"practice {scope.slug}; {period.current.start}..{period.current.end}",
    )
    return report
