"""GET /metrics: Prometheus's view (recovery/metrics.py), and the webhooks it counts.

Not for the public internet: with RECOVERY_METRICS_TOKEN set, only a request with
`Authorization: Bearer <token>` gets it (401 otherwise); without a token, only a client on
this machine whose request came through no proxy (403 otherwise): a reverse proxy on the
same machine would make every visitor look local, and it adds X-Forwarded-For.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from recovery import metrics
from recovery.web import runtime_of

bp = Blueprint("metrics", __name__)

LOOPBACK = frozenset({"127.0.0.1", "::1"})
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


@bp.get("/metrics")
def scrape() -> Response | tuple[Response, int]:
    runtime = runtime_of(current_app)
    token = runtime.settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            answer = jsonify(reason="a bearer token is required (RECOVERY_METRICS_TOKEN)")
            answer.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return answer, 401
    elif request.remote_addr not in LOOPBACK or any(h in request.headers for h in PROXY_HEADERS):
        return jsonify(reason="only from this machine, unless RECOVERY_METRICS_TOKEN is set"), 403
    return Response(metrics.exposition(runtime.sessions), mimetype=CONTENT_TYPE_LATEST)


def count_webhooks(app: Flask) -> None:
    """Every answer under /webhooks/, by its route (not its path: no ids in a label)."""

    @app.after_request
    def _count(response: Response) -> Response:
        if request.path.startswith("/webhooks/"):
            rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
            metrics.WEBHOOKS.labels(endpoint=rule, status=str(response.status_code)).inc()
        return response
