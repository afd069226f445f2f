"""The tracked booking link a patient taps: /b/<token> records the tap and redirects."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect
from werkzeug.wrappers import Response

from recovery.db import session_scope, utcnow
from recovery.services.outcomes import record_booking_click
from recovery.web import runtime_of

bp = Blueprint("bookings", __name__)


@bp.get("/b/<token>")
def booking_link(token: str) -> Response:
    with session_scope(runtime_of(current_app).sessions) as session:
        target = record_booking_click(session, token, utcnow())
    if target is None:
        abort(404, description="This booking link is not valid. Please call the practice.")
    return redirect(target, code=302)
