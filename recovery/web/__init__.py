"""The web edge: `create_app()` wires settings, database, templates and the task queue.

Nothing builds an app at import time; gunicorn calls the factory
(`gunicorn 'recovery.web:create_app()'`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, jsonify, make_response, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from recovery.config import TEMPLATES_DIR, Settings
from recovery.crypto import PhiCipher
from recovery.db import (
    DATABASE_AWAY,
    make_engine,
    make_session_factory,
    session_scope,
    use_clock_offset_file,
)
from recovery.domain.templates import SmsTemplates
from recovery.log import configure_logging
from recovery.schemas.practices import read_practices
from recovery.services.outreach import Dispatcher
from recovery.services.practices import PracticeDirectory, load_practices
from recovery.web.throttle import SignInThrottle

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    templates: SmsTemplates
    dispatcher: Dispatcher
    cipher: PhiCipher
    throttle: SignInThrottle
    practices: PracticeDirectory | None = None


def create_app(
    settings: Settings | None = None,
    *,
    sessions: sessionmaker[Session] | None = None,
    dispatcher: Dispatcher | None = None,
    throttle: SignInThrottle | None = None,
) -> Flask:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    use_clock_offset_file(settings.test_clock_file)
    app = Flask(__name__, template_folder=str(TEMPLATES_DIR))
    app.config["SECRET_KEY"] = settings.secret_key or None
    if sessions is None:
        sessions = make_session_factory(make_engine(settings.effective_database_url))
    if dispatcher is None:
        from workers.dispatch import CeleryDispatcher

        dispatcher = CeleryDispatcher.from_settings(settings)
    runtime = Runtime(
        settings,
        sessions,
        SmsTemplates(TEMPLATES_DIR / "sms"),
        dispatcher,
        PhiCipher.from_settings(settings),
        throttle
        or SignInThrottle.from_url(
            settings.redis_url,
            per_account=settings.signin_limit_account,
            per_address=settings.signin_limit_address,
        ),
        PracticeDirectory(sessions, settings.practice_cache_s)
        if settings.practice_cache_s > 0
        else None,
    )
    app.extensions["recovery"] = runtime

    if settings.practices_file:
        _load_practices_file(sessions, Path(settings.practices_file))

    register_blueprints(app)
    register_error_handlers(app)
    from recovery.web.metrics import count_webhooks

    count_webhooks(app)
    from recovery.web import drafts

    drafts.register(app)
    return app


def register_blueprints(app: Flask) -> None:
    from recovery.web.admin import bp as admin_bp
    from recovery.web.api import bp as api_bp
    from recovery.web.audit import bp as audit_bp
    from recovery.web.auth import bp as auth_bp
    from recovery.web.bookings import bp as bookings_bp
    from recovery.web.health import bp as health_bp
    from recovery.web.landing import bp as landing_bp
    from recovery.web.metrics import bp as metrics_bp
    from recovery.web.openapi import bp as openapi_bp
    from recovery.web.reports import bp as reports_bp
    from recovery.web.simulator import bp as simulator_bp
    from recovery.web.staff import bp as staff_bp
    from recovery.web.webhooks import bp as webhooks_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(bookings_bp)
    app.register_blueprint(auth_bp)
    # Before staff: the first rule registered for "/" wins, and the landing page decides
    # between the signed-out welcome and the signed-in queue.
    app.register_blueprint(landing_bp)
    app.register_blueprint(simulator_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(audit_bp)


# Machines call these; everything else is a person with a browser.
MACHINE_PREFIXES = ("/api/", "/webhooks/", "/healthz", "/metrics")


# What a client is told to wait before trying again while the database is away.
DATABASE_RETRY_AFTER_S = 5


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> ResponseReturnValue:
        retry_after = [(k, v) for k, v in exc.get_headers() if k == "Retry-After"]
        if request.path.startswith(MACHINE_PREFIXES):
            # A JSON reason is what a phone system's logs can show.
            return (
                jsonify(error=exc.name.lower(), reason=exc.description),
                exc.code or 500,
                retry_after,
            )
        from recovery.web.auth import html_error, secure_headers

        body, code = html_error(exc)
        response = make_response(body, code)
        response.headers.extend(retry_after)
        return secure_headers(response)

    def _database_away(exc: Exception) -> ResponseReturnValue:
        # A 503 that says what happened and when to come back, not a 500 and a traceback:
        # the database restarting or failing over is an outage, not a bug. (Webhooks
        # first wait for it: recovery/web/webhooks.py, waits_for_the_database.)
        log.error(
            "%s %s: database unavailable (%s)", request.method, request.path, type(exc).__name__
        )
        return _error(
            ServiceUnavailable(
                "the database is unavailable; try again in a moment",
                retry_after=DATABASE_RETRY_AFTER_S,
            )
        )

    for away in DATABASE_AWAY:
        app.register_error_handler(away, _database_away)


def _load_practices_file(sessions: sessionmaker[Session], path: Path) -> None:
    config = read_practices(path)
    for attempt in range(2):
        try:
            with session_scope(sessions) as session:
                report = load_practices(session, config)
            log.info(
                "practices loaded from %s: %d new, %d updated",
                path,
                len(report.created),
                len(report.updated),
            )
            return
        except IntegrityError:
            # Several gunicorn workers start together and race to insert the same
            # practices; the loser finds them on its second pass.
            if attempt:
                raise


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions["recovery"]
    return runtime
