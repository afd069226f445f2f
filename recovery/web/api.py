"""The JSON API for other tools: the recovery report and the CSV of a range's episodes.

`Authorization: Bearer <token>`, a token made by `recovery tokens create` for one
practice. A missing, unknown or revoked token gets 401 with a JSON reason; another
practice is 404 (as if it did not exist: a token must not learn which slugs do); dates
that are not a range get 400. Every answer is audited under the token's id.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from recovery.db import session_scope, utcnow
from recovery.domain.periods import BadRange, Period, custom, parse_date
from recovery.models import AuditAction, Practice
from recovery.services import reports
from recovery.services.audit import record
from recovery.services.tokens import TokenOwner, authenticate_token
from recovery.web import runtime_of
from recovery.web.reports import csv_response

bp = Blueprint("api", __name__, url_prefix="/api")


def _unauthorized(reason: str) -> Response:
    response = jsonify(error="unauthorized", reason=reason)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="recovery"'
    return response


@bp.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return _unauthorized("send Authorization: Bearer <token> (see `recovery tokens create`)")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("the Authorization header must be: Bearer <token>")
    with session_scope(runtime_of(current_app).sessions) as session:
        owner = authenticate_token(session, token.strip(), now=utcnow())
    if owner is None:
        return _unauthorized("this token is unknown or was revoked")
    g.token_owner = owner
    return None


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _owner() -> TokenOwner:
    owner: TokenOwner = g.token_owner
    return owner


def _period() -> Period:
    try:
        return custom(
            parse_date(request.args.get("from"), "from"), parse_date(request.args.get("to"), "to")
        )
    except BadRange as exc:
        abort(400, description=str(exc))


def _practice(session: Session) -> Practice:
    """The practice asked for, if the token may read it; the token's own when none is."""
    owner = _owner()
    slug = request.args.get("practice")
    practice = session.get(Practice, owner.practice_id)
    if practice is None or (slug and slug != practice.slug):
        abort(404, description="no such practice for this token")
    return practice


def _audit(session: Session, action: AuditAction, practice: Practice, period: Period) -> None:
    days = period.current
    record(
        session,
        None,
        action,
        now=utcnow(),
        api_token_id=_owner().token_id,
        detail=f"api; practice {practice.slug}; {days.start}..{days.end}",
    )


@bp.get("/reports/recovery")
def recovery_report() -> Response:
    period = _period()
    now = utcnow()
    with session_scope(runtime_of(current_app).sessions) as session:
        practice = _practice(session)
        built = reports.build_report(session, [practice], period, now=now)
        _audit(session, AuditAction.VIEW_REPORT, practice, period)
    return jsonify(built.as_dict())


@bp.get("/episodes.csv")
def episodes_csv() -> Response:
    period = _period()
    with session_scope(runtime_of(current_app).sessions) as session:
        practice = _practice(session)
        _audit(session, AuditAction.EXPORT_EPISODES, practice, period)
        practice_id, slug = practice.id, practice.slug
    days = period.current
    return csv_response(
        lambda session: reports.csv_rows(
            session, reports.practices_by_id(session, [practice_id]), days
        ),
        f"recovery-{slug}-{days.start}-to-{days.end}.csv",
    )
