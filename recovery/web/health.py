"""Liveness for load balancers and `make run`'s users."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from recovery.web import runtime_of

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    with runtime_of(current_app).sessions() as session:
        session.execute(text("SELECT 1"))
    return jsonify(status="ok")
