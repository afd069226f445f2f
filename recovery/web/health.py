"""Health for load balancers and `make run`'s users: the database and the queue, each."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from recovery.web import runtime_of

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 only when both answer: a web that stores calls but cannot queue their texts
    delays every text to the sweeper, and one without its database loses the webhook."""
    runtime = runtime_of(current_app)
    checks: dict[str, str] = {}
    try:
        with runtime.sessions() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure is the answer, not a 500
        log.warning("healthz: database unavailable: %s", exc.__class__.__name__)
        checks["database"] = "unavailable"
    try:
        runtime.dispatcher.ping()
        checks["broker"] = "ok"
    except Exception as exc:
        log.warning("healthz: broker unavailable: %s", exc.__class__.__name__)
        checks["broker"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", **checks), 200 if healthy else 503
