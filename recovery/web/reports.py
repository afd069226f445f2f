"""The manager's pages: the recovery report (/reports), the episodes behind each figure
(/episodes) and the CSV of a range (/export).

Thin views over recovery.services.reports and recovery.services.episodes (one service
makes the numbers for the page, the API, the CSV and the CLI); what lives here is how the
numbers read: labels, formats, the links from a figure to its episodes, the pictures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from recovery.db import session_scope, utcnow
from recovery.domain.intents import Intent
from recovery.domain.periods import PRESET_LABELS, BadRange, DateRange, Preset, parse_period
from recovery.models import AuditAction
from recovery.services import episodes as episode_list
from recovery.services import reports
from recovery.services.audit import record
from recovery.services.auth import Viewer
from recovery.services.reports import Figures, Report
from recovery.web import charts, runtime_of
from recovery.web.auth import login_required, protect, refuse, viewer
from recovery.web.labels import INTENT_LABELS, QUEUE_LABELS

bp = Blueprint("reports", __name__)
protect(bp)

OUTCOME_LABELS = {
    "booked": "Booked",
    "resolved": "Resolved",
    "escalated": "Escalated",
    "opted_out": "Opted out",
    "unrecovered": "Unrecovered",
    "open": "Still open",
    "recovered": "Recovered (booked or resolved)",
}
PRESETS = [p for p in Preset if p is not Preset.CUSTOM]


# --- how the figures read ------------------------------------------------------------------


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def money(value: int | None) -> str:
    return "—" if value is None else f"${value:,}"


def duration(ms: float | None) -> str:
    """450 ms, 1.2 s, 3.5 min, 2.1 h: a first text is seconds, an acknowledgement minutes."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def _signed(value: float, unit: str = "", digits: int = 0) -> str:
    if round(value, digits) == 0:
        return "±0"
    sign = "+" if value > 0 else "−"  # a real minus sign: a hyphen reads as a dash
    return f"{sign}{abs(value):,.{digits}f}{unit}"


def change_of_count(now: int | None, before: int | None) -> str:
    if now is None or before is None:
        return ""
    return _signed(now - before)


def change_of_rate(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    return _signed((now - before) * 100, " pts")


def change_of_ms(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    if round(now) == round(before):
        return "±0"
    faster = now < before
    return f"{duration(abs(now - before))} {'faster' if faster else 'slower'}"


@dataclass(frozen=True)
class FigureRow:
    label: str
    current: str
    previous: str
    change: str
    href: str | None = None  # the episodes behind the current figure
    previous_href: str | None = None
    note: str = ""

    # "—" is no figure (no calls to take a rate or a median of): a link under it opened an
    # empty list and read as a figure to click.
    @property
    def current_link(self) -> str | None:
        return None if self.current == "—" else self.href

    @property
    def previous_link(self) -> str | None:
        return None if self.previous == "—" else self.previous_href


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[FigureRow]


class Links:
    """URLs of the episode list for a figure: the same practice, the range, a filter."""

    def __init__(self, report: Report, signed_in: Viewer) -> None:
        self.report = report
        self.practice = (
            (reports.ALL_PRACTICES if report.all_practices else report.practices[0].slug)
            if signed_in.is_admin
            else None
        )

    def episodes(self, days: DateRange | None = None, **filters: Any) -> str:
        days = days or self.report.period.current
        args: dict[str, Any] = {"from": days.start.isoformat(), "to": days.end.isoformat()}
        return url_for("reports.episodes", practice=self.practice, **args, **filters)

    def both(self, **filters: Any) -> dict[str, str]:
        return {
            "href": self.episodes(**filters),
            "previous_href": self.episodes(self.report.period.previous, **filters),
        }

    def export(self) -> str:
        days = self.report.period.current
        args: dict[str, Any] = {"from": days.start.isoformat(), "to": days.end.isoformat()}
        return url_for("reports.export", practice=self.practice, **args)


def sections(report: Report, links: Links) -> list[Section]:
    now, before = report.current, report.previous

    def counted(label: str, get: Callable[[Figures], int], **filters: str) -> FigureRow:
        a, b = get(now), get(before)
        return FigureRow(label, count(a), count(b), change_of_count(a, b), **links.both(**filters))

    def rate(label: str, get: Callable[[Figures], float | None], **filters: str) -> FigureRow:
        a, b = get(now), get(before)
        return FigureRow(
            label,
            charts.percent(a),
            charts.percent(b),
            change_of_rate(a, b),
            **links.both(**filters),
        )

    def timed(label: str, get: Callable[[Figures], float | None], **filters: str) -> FigureRow:
        a, b = get(now), get(before)
        return FigureRow(
            label, duration(a), duration(b), change_of_ms(a, b), **links.both(**filters)
        )

    calls = [counted("Missed calls", lambda f: f.missed_calls)]
    if now.answered_calls or before.answered_calls:
        calls.append(
            FigureRow(
                "Answered calls",
                count(now.answered_calls),
                count(before.answered_calls),
                change_of_count(now.answered_calls, before.answered_calls),
            )
        )
        calls.append(
            FigureRow(
                "Answer rate",
                charts.percent(now.answer_rate),
                charts.percent(before.answer_rate),
                change_of_rate(now.answer_rate, before.answer_rate),
            )
        )
    else:
        calls.append(
            FigureRow(
                "Answered calls",
                "—",
                "—",
                "",
                note="Your phone system does not report answered calls to us.",
            )
        )
    calls.append(
        counted("Texted", lambda f: f.texted),
    )

    outcomes = [
        rate("Recovery rate", lambda f: f.recovery_rate, outcome="recovered"),
        counted("Recovered", lambda f: f.recovered, outcome="recovered"),
        FigureRow(
            "Revenue recovered",
            money(now.revenue_recovered),
            money(before.revenue_recovered),
            _signed(now.revenue_recovered - before.revenue_recovered)
            .replace("+", "+$")
            .replace("−", "−$"),
            note="Booked × the practice's visit value.",
            **links.both(outcome="booked"),
        ),
    ]
    for key, label in OUTCOME_LABELS.items():
        if key == "recovered":
            continue
        outcomes.append(
            counted(label, lambda f, key=key: f.outcome_counts()[key], outcome=key)  # type: ignore[misc]
        )

    speed = [
        timed("First text, median", lambda f: f.ttft_p50_ms),
        timed("First text, 95th percentile", lambda f: f.ttft_p95_ms),
        timed("First text, slowest", lambda f: f.ttft_max_ms),
        rate(
            "Self-scheduling conversion",
            lambda f: f.self_scheduling_conversion,
            intent=Intent.BOOK.value,
        ),
        counted("Asked to book", lambda f: f.booking_intents, intent=Intent.BOOK.value),
        counted("Urgent pages", lambda f: f.pages, intent=Intent.URGENT.value),
        timed("Urgent reply to first page, median", lambda f: f.page_p50_ms, intent="urgent"),
        timed("Urgent reply to first page, slowest", lambda f: f.page_max_ms, intent="urgent"),
        timed("Urgent reply to acknowledged, median", lambda f: f.ack_p50_ms, intent="urgent"),
        timed("Urgent reply to acknowledged, slowest", lambda f: f.ack_max_ms, intent="urgent"),
    ]
    return [
        Section("Calls", calls),
        Section("Outcomes", outcomes),
        Section("Speed", speed),
    ]


@dataclass(frozen=True)
class QueueRow:
    queue: str
    label: str
    created: str
    open: str
    breached: str
    within_sla: str
    previous_within_sla: str


def queue_rows(report: Report) -> list[QueueRow]:
    before = {q.queue: q for q in report.previous.tasks}
    return [
        QueueRow(
            q.queue.value,
            QUEUE_LABELS[q.queue],
            count(q.created),
            count(q.open),
            count(q.breached),
            charts.percent(q.sla_share),
            charts.percent(before[q.queue].sla_share),
        )
        for q in report.current.tasks
    ]


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    previous: str
    change: str
    href: str
    detail: str = ""


def headlines(report: Report, links: Links) -> list[Headline]:
    """The four answers a manager opens the report for on Monday morning."""
    now, before = report.current, report.previous
    return [
        Headline(
            "Missed calls",
            count(now.missed_calls),
            count(before.missed_calls),
            change_of_count(now.missed_calls, before.missed_calls),
            links.episodes(),
        ),
        Headline(
            "Recovered",
            count(now.recovered),
            count(before.recovered),
            change_of_count(now.recovered, before.recovered),
            links.episodes(outcome="recovered"),
            detail=f"{charts.percent(now.recovery_rate)} of missed calls",
        ),
        Headline(
            "Revenue recovered",
            money(now.revenue_recovered),
            money(before.revenue_recovered),
            "",
            links.episodes(outcome="booked"),
            detail=f"{count(now.booked)} booked",
        ),
        Headline(
            "First text, median",
            duration(now.ttft_p50_ms),
            duration(before.ttft_p50_ms),
            change_of_ms(now.ttft_p50_ms, before.ttft_p50_ms),
            links.episodes(),
            detail=f"95% within {duration(now.ttft_p95_ms)}",
        ),
    ]


def pictures(report: Report, links: Links) -> dict[str, Any]:
    c = report.charts

    # Each cell and column is a link to exactly the calls it counts.
    def heat_link(day: int, hour: int) -> str:
        return links.episodes(outcome="unrecovered", weekday=episode_list.WEEKDAYS[day], hour=hour)

    def ttft_link(index: int) -> str:
        return links.episodes(ttft=str(episode_list.band_of_bucket(index)))

    outcome_rows = [
        (key, OUTCOME_LABELS[key], n) for key, n in report.current.outcome_counts().items()
    ]
    return {
        "days": charts.daily_lines(c.days, lambda d: links.episodes(DateRange(d, d))),
        "outcomes": charts.outcome_bars(outcome_rows, lambda key: links.episodes(outcome=key)),
        "outcome_rows": outcome_rows,
        "heat": charts.heat_map(c.heat, heat_link),
        "heat_links": [[heat_link(d, h) for h in range(24)] for d in range(7)],
        "ttft": charts.ttft_histogram(c.ttft_buckets, c.never_texted, ttft_link),
        "ttft_links": [ttft_link(i) for i in range(len(c.ttft_buckets) + 1)],
        "ttft_rows": list(
            zip(
                [*charts.ttft_labels(), "not texted"],
                [*c.ttft_buckets, c.never_texted],
                strict=True,
            )
        ),
        "weekdays": charts.WEEKDAY_NAMES,
        "heat_level": charts.heat_level,
        "heat_most": max((n for row in c.heat for n in row), default=0),
    }


def span_label(days: DateRange, *, year: bool = True) -> str:
    if not year:
        if days.start == days.end:
            return f"{days.start:%b} {days.start.day}"
        return f"{days.start:%b} {days.start.day} – {days.end:%b} {days.end.day}"
    if days.start == days.end:
        return f"{days.start:%a %b} {days.start.day}, {days.start.year}"
    if days.start.year != days.end.year:
        return (
            f"{days.start:%b} {days.start.day}, {days.start.year} – "
            f"{days.end:%b} {days.end.day}, {days.end.year}"
        )
    return f"{days.start:%b} {days.start.day} – {days.end:%b} {days.end.day}, {days.end.year}"


# --- views -----------------------------------------------------------------------------


@bp.get("/reports")
@login_required
def report() -> Any:
    runtime = runtime_of(current_app)
    now = utcnow()
    signed_in = viewer()
    args = request.args
    error = None
    try:
        with session_scope(runtime.sessions) as session:
            scope = reports.scope_for(session, signed_in, args.get("practice"))
            today = reports.local_today(scope.practices, now)
            try:
                period = parse_period(args.get("range"), args.get("from"), args.get("to"), today)
            except BadRange as exc:
                error = str(exc)
                period = parse_period(None, None, None, today)
            built = reports.report_for_viewer(session, signed_in, scope, period, now=now)
    except (reports.NotFound, reports.NotAllowed) as exc:
        refuse(exc)
    links = Links(built, signed_in)
    body = render_template(
        "reports.html",
        nav="reports",
        report=built,
        scope=scope,
        error=error,
        headlines=headlines(built, links),
        sections=sections(built, links),
        queues=queue_rows(built),
        charts=pictures(built, links),
        export_href=links.export(),
        all_episodes_href=links.episodes(),
        presets=[(p.value, PRESET_LABELS[p]) for p in PRESETS],
        practice_arg=links.practice,
        span=span_label(built.period.current),
        previous_span=span_label(built.period.previous),
        short_span=span_label(built.period.current, year=False),
        short_previous=span_label(built.period.previous, year=False),
        today=today,
    )
    return (body, 400) if error else body


@bp.get("/episodes")
@login_required
def episodes() -> Any:
    runtime = runtime_of(current_app)
    now = utcnow()
    signed_in = viewer()
    args = request.args
    error = None
    try:
        with session_scope(runtime.sessions) as session:
            # Everyone who works the queue may list their practice's calls (they open the
            # conversations anyway); the figures and the CSV are the managers'.
            scope = reports.scope_for(session, signed_in, args.get("practice"), reports=False)
            today = reports.local_today(scope.practices, now)
            try:
                wanted = episode_list.parse_filter(args, today)
            except (BadRange, episode_list.BadFilter) as exc:
                error = str(exc)
                wanted = episode_list.parse_filter({}, today)
            page = episode_list.list_episodes(
                session, signed_in, scope, wanted, page=_page_number(args.get("page")), now=now
            )
    except (reports.NotFound, reports.NotAllowed) as exc:
        refuse(exc)
    practice_arg = scope.slug if signed_in.is_admin else None
    filters: dict[str, Any] = {
        **wanted.as_args(),
        **({"practice": practice_arg} if practice_arg else {}),
    }
    body = render_template(
        "episodes.html",
        nav="episodes",
        page=page,
        scope=scope,
        wanted=wanted,
        filters=filters,
        widened={k: v for k, v in filters.items() if k not in ("weekday", "hour", "ttft")},
        error=error,
        outcomes=[(o.value, OUTCOME_LABELS[o.value]) for o in episode_list.OutcomeFilter],
        intents=[(i.value, INTENT_LABELS.get(i.value, i.value.title())) for i in INTENTS],
        intent_labels=INTENT_LABELS,
        outcome_labels=OUTCOME_LABELS,
        duration=duration,
        span=span_label(wanted.days),
        can_export=signed_in.can_see_reports,
        export_href=url_for("reports.export", **filters),
        today=today,
    )
    return (body, 400) if error else body


# What a patient's reply can be routed as; STOP, START, HELP and ACK never start one.
INTENTS = (
    Intent.BOOK,
    Intent.BILLING,
    Intent.REFILL,
    Intent.URGENT,
    Intent.CLINICAL,
    Intent.UNKNOWN,
)


def _page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


@bp.get("/export")
@login_required
def export() -> Response:
    """The CSV of the range's episodes (with the list's filters), streamed a batch at a
    time: a practice-year is never held whole in memory."""
    runtime = runtime_of(current_app)
    now = utcnow()
    signed_in = viewer()
    try:
        with session_scope(runtime.sessions) as session:
            scope = reports.scope_for(session, signed_in, request.args.get("practice"))
            today = reports.local_today(scope.practices, now)
            wanted = episode_list.parse_filter(request.args, today)
            record(
                session,
                signed_in.id,
                AuditAction.EXPORT_EPISODES,
                now=now,
                detail=f"practice {scope.slug}; {episode_list.describe(wanted)}",
            )
            practice_ids = [p.id for p in scope.practices]
    except (reports.NotFound, reports.NotAllowed) as exc:
        refuse(exc)
    except (BadRange, episode_list.BadFilter) as exc:
        abort(400, description=str(exc))
    name = f"recovery-{scope.slug}-{wanted.days.start}-to-{wanted.days.end}.csv"

    def rows(session: Any) -> Iterator[tuple[object, ...]]:
        practices = reports.practices_by_id(session, practice_ids)
        return reports.csv_rows(session, practices, wanted.days, where=wanted.conditions(practices))

    return csv_response(rows, name)


def csv_response(rows: Callable[[Any], Iterator[tuple[object, ...]]], filename: str) -> Response:
    """Stream the CSV: its own database session, opened when the first byte is asked for
    and closed after the last (the request's transaction has ended by then)."""
    sessions = runtime_of(current_app).sessions

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(reports.CSV_COLUMNS)
        with sessions() as session:
            for n, row in enumerate(rows(session), start=1):
                writer.writerow(row)
                if n % reports.CSV_BATCH == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.app_template_global()
def may_see_reports(signed_in: Viewer | None) -> bool:
    return signed_in is not None and signed_in.can_see_reports
