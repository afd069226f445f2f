"""The leak audit page (/audit, managers and admins): upload a call-log export, see what
missed calls cost, change the assumptions.

The upload is read where werkzeug's form parser puts it (an anonymous temporary file for
anything over 500 KB: no name on disk, gone when the request ends), capped at
RECOVERY_AUDIT_MAX_MB before a byte is read, and audited as a stream; nothing from it is
stored or logged. Only the figures (counts, no caller numbers) come back in the page, signed,
so a manager can try other assumptions without uploading the file again.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.exceptions import RequestEntityTooLarge

from recovery.db import session_scope, utcnow
from recovery.domain.call_logs import FORMAT_LABELS, CallLogFormat
from recovery.domain.hours import BusinessHours
from recovery.models import AuditAction, Practice
from recovery.services import reports
from recovery.services.audit import record
from recovery.services.leak_audit import (
    Assumptions,
    BadAssumption,
    NotACallLog,
    audit_call_log,
    with_assumptions,
)
from recovery.web import charts, runtime_of
from recovery.web.auth import login_required, protect, refuse, viewer

log = logging.getLogger(__name__)

bp = Blueprint("audit", __name__)

MB = 1024 * 1024
FIGURES_SALT = "leak-audit-figures"


@bp.before_request
def _capped_upload() -> None:
    """Refuse a call log over the cap before reading it (the CSRF check below reads the
    form, and with it the file)."""
    if request.method != "POST":
        return
    cap = runtime_of(current_app).settings.audit_max_mb * MB
    request.max_content_length = cap
    if request.content_length is not None and request.content_length > cap:
        raise RequestEntityTooLarge


# Registered after the cap, so that the cap runs first.
protect(bp)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    value: str
    unit: str  # "%", "$", "days"
    hint: str


def _fields(a: Assumptions) -> list[Field]:
    def pct(x: float) -> str:
        return f"{x * 100:g}"

    return [
        Field(
            "visit_value",
            "Value of a new patient's visit",
            "" if a.visit_value_usd is None else str(a.visit_value_usd),
            "$",
            "What a booked new-patient visit brings in.",
        ),
        Field(
            "new_patient_share",
            "New patients among missed calls",
            pct(a.new_patient_share),
            "%",
            "Sources: 20-40% of missed calls; we assume 30%.",
        ),
        Field(
            "live_booking_rate",
            "Booked when answered live",
            pct(a.live_booking_rate),
            "%",
            "Sources: 65-80%.",
        ),
        Field(
            "callback_booking_rate",
            "Booked when called back",
            pct(a.callback_booking_rate),
            "%",
            "Sources: 40-55%.",
        ),
        Field(
            "operating_days",
            "Operating days a year",
            str(a.operating_days),
            "days",
            "Typically 220-250.",
        ),
    ]


class BadForm(ValueError):
    pass


def _number(form: Any, name: str, label: str, *, percent: bool = False) -> float | None:
    raw = (form.get(name) or "").strip().replace(",", "").lstrip("$").rstrip("%")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadForm(f"{label}: {'a percentage' if percent else 'a number'}, please") from None
    return value / 100 if percent else value


def assumptions_from(form: Any, default_visit_value: int | None) -> Assumptions:
    """The assumptions as typed (percentages as 30, not 0.3); blank means the default."""
    d = Assumptions()
    share = _number(form, "new_patient_share", "New patients among missed calls", percent=True)
    live = _number(form, "live_booking_rate", "Booked when answered live", percent=True)
    callback = _number(form, "callback_booking_rate", "Booked when called back", percent=True)
    days = _number(form, "operating_days", "Operating days a year")
    visit = _number(form, "visit_value", "Value of a new patient's visit")
    window = _number(form, "callback_window_days", "Callback window")
    try:
        return Assumptions(
            new_patient_share=d.new_patient_share if share is None else share,
            live_booking_rate=d.live_booking_rate if live is None else live,
            callback_booking_rate=d.callback_booking_rate if callback is None else callback,
            operating_days=d.operating_days if days is None else int(days),
            visit_value_usd=default_visit_value if visit is None else round(visit),
            callback_window_days=d.callback_window_days if window is None else int(window),
        )
    except BadAssumption as exc:
        raise BadForm(_readable(str(exc))) from None


_NAMES = {
    "new_patient_share": "New patients among missed calls",
    "live_booking_rate": "Booked when answered live",
    "callback_booking_rate": "Booked when called back",
    "operating_days": "Operating days a year",
    "visit_value_usd": "Value of a new patient's visit",
    "callback_window_days": "Callback window",
}


def _readable(message: str) -> str:
    for key, label in _NAMES.items():
        message = message.replace(key, label)
    return message[0].upper() + message[1:]


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key or "", salt=FIGURES_SALT)


@dataclass(frozen=True)
class Choice:
    slug: str
    name: str


def _practice(session: Any, practice_slug: str | None) -> tuple[Practice, list[Choice]]:
    """The practice whose clock and hours the audit uses: the manager's own; an admin
    picks one (the first by name unless asked)."""
    signed_in = viewer()
    scope = reports.scope_for(
        session, signed_in, None if practice_slug == reports.ALL_PRACTICES else practice_slug
    )
    choices = [Choice(p.slug, p.name) for p in scope.choices]
    return scope.practices[0], choices


def _open_days_of(hours: BusinessHours) -> int:
    """Days a week the practice opens: the operating-days assumption is a year of them."""
    return sum(1 for day in range(7) if hours.weekly[day])


def _open_days(practice: Practice) -> int:
    return _open_days_of(practice.business_hours())


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    context.setdefault("figures", None)
    context.setdefault("error", None)
    context.setdefault("open_days", None)
    context.setdefault("formats", [(f.value, FORMAT_LABELS[f]) for f in CallLogFormat])
    context.setdefault("max_mb", runtime_of(current_app).settings.audit_max_mb)
    figures = context["figures"]
    if figures is not None:
        context["heat"] = charts.heat_map(
            figures["missed_by_weekday_hour"],
            None,
            title="Missed calls by weekday and hour",
            noun="missed",
        )
        context["heat_most"] = max(n for row in figures["missed_by_weekday_hour"] for n in row)
        context["signed"] = _serializer().dumps(figures)
    return render_template("audit.html", nav="audit", percent=charts.percent, **context), status


@bp.get("/audit")
@login_required
def audit_form() -> Any:
    runtime = runtime_of(current_app)
    try:
        with session_scope(runtime.sessions) as session:
            practice, choices = _practice(session, request.args.get("practice"))
            defaults = Assumptions(visit_value_usd=practice.visit_value or None)
            name, slug, open_days = practice.name, practice.slug, _open_days(practice)
    except (reports.NotFound, reports.NotAllowed) as exc:
        refuse(exc)
    return _page(
        practice_name=name,
        practice_slug=slug,
        choices=choices,
        open_days=open_days,
        fields=_fields(defaults),
        window=defaults.callback_window_days,
    )


@bp.post("/audit")
@login_required
def audit_upload() -> Any:
    runtime = runtime_of(current_app)
    form = request.form
    try:
        with session_scope(runtime.sessions) as session:
            practice, choices = _practice(session, form.get("practice"))
            hours: BusinessHours = practice.business_hours()
            name, slug, visit_value = practice.name, practice.slug, practice.visit_value or None
    except (reports.NotFound, reports.NotAllowed) as exc:
        refuse(exc)
    page: dict[str, Any] = {
        "practice_name": name,
        "practice_slug": slug,
        "choices": choices,
        "open_days": _open_days_of(hours),
    }
    try:
        assumptions = assumptions_from(form, visit_value)
    except BadForm as exc:
        return _page(400, error=str(exc), fields=_fields(Assumptions()), window=7, **page)
    page |= {"fields": _fields(assumptions), "window": assumptions.callback_window_days}
    upload = request.files.get("log")
    if upload is None or not upload.filename:
        return _page(400, error="Choose your phone system's call-log file (CSV).", **page)
    chosen = form.get("format") or ""
    forced = CallLogFormat(chosen) if chosen in set(CallLogFormat) else None
    text = io.TextIOWrapper(upload.stream, encoding="utf-8-sig", errors="replace", newline="")
    try:
        result = audit_call_log(text, assumptions=assumptions, forced=forced, hours=hours)
    except NotACallLog as exc:
        return _page(400, error=str(exc), **page)
    finally:
        text.detach()  # the upload's own file is werkzeug's to close
        upload.close()
    figures = result.as_dict()
    figures["practice"] = slug
    with session_scope(runtime.sessions) as session:
        record(
            session,
            viewer().id,
            AuditAction.AUDIT_CALLS,
            now=utcnow(),
            detail=f"practice {slug}; {figures['format']}; {figures['rows']} rows; "
            f"{figures['calls']} calls",
        )
    # Figures only: the file name may name a patient or a person, so it is not logged.
    log.info("leak audit: %s rows as %s", figures["rows"], figures["format"])
    return _page(figures=figures, **page)


@bp.post("/audit/estimate")
@login_required
def audit_estimate() -> Any:
    """The same audit under other assumptions, from the signed figures in the page."""
    runtime = runtime_of(current_app)
    form = request.form
    try:
        signed = _serializer().loads(form.get("figures") or "")
    except BadSignature:
        abort(400, description="These figures were changed or are from elsewhere: upload again.")
    try:
        with session_scope(runtime.sessions) as session:
            practice, choices = _practice(session, form.get("practice"))
            name, slug, open_days = practice.name, practice.slug, _open_days(practice)
    except (reports.NotFound, reports.NotAllowed) as exc:
        refuse(exc)
    page: dict[str, Any] = {
        "practice_name": name,
        "practice_slug": slug,
        "choices": choices,
        "open_days": open_days,
    }
    if signed.get("practice") != slug:
        abort(400, description="These figures are another practice's: upload again.")
    try:
        assumptions = assumptions_from(form, None)
    except BadForm as exc:
        previous = signed["assumptions"]
        return _page(
            400,
            error=str(exc),
            figures=signed,
            fields=_fields(Assumptions(**previous)),
            window=previous["callback_window_days"],
            **page,
        )
    figures = with_assumptions(signed, assumptions)
    return _page(
        figures=figures,
        fields=_fields(Assumptions(**figures["assumptions"])),
        window=figures["assumptions"]["callback_window_days"],
        **page,
    )


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Any:
    cap = runtime_of(current_app).settings.audit_max_mb
    return _page(
        413,
        error=f"That file is over {cap} MB, the most the audit takes in one go. Export a "
        "shorter period (a quarter), or run `recovery audit-calls FILE` on the server.",
        practice_name=None,
        practice_slug=None,
        choices=[],
        fields=_fields(Assumptions()),
        window=7,
    )
