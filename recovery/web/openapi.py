"""GET /openapi.json: the document of every webhook and /api/ endpoint (no sign-in: it
describes what callers must send, nothing about any practice)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from recovery.schemas.openapi import openapi_document

bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def document() -> Response:
    return jsonify(openapi_document())
