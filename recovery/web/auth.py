"""Sign-in for staff: the login form, the session cookie, `login_required`, and CSRF.

The session is Flask's signed cookie (SECRET_KEY). It holds the user's id and a CSRF
token, nothing else; who the user is, and whether they are still active, is read from the
database on every request, so deactivating a user signs them out everywhere at once.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from recovery.db import session_scope, utcnow
from recovery.models import AuditAction
from recovery.services.audit import record
from recovery.services.auth import Viewer, authenticate, load_viewer
from recovery.web import drafts, runtime_of

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

DEFAULT_NEXT = "/tasks"
# A working day and a bit: the front desk signs in once per shift, not once per hour.
SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf_token"

F = TypeVar("F", bound=Callable[..., Any])


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    settings = runtime_of(app).settings
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    if not app.config.get("SECRET_KEY"):
        log.warning("SECRET_KEY is not set: staff cannot sign in")


# --- the pieces every staff page uses ----------------------------------------------------


def csrf_token() -> str:
    """The session's CSRF token, made on first use; every form posts it back."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse a POST whose form does not carry the session's token: another site can make
    a signed-in browser post to us, but it cannot read the token to put in the form."""
    if request.method != "POST":
        return
    if _requires_login(request.endpoint) and current_viewer() is None:
        # Signed out (the session expired): login_required keeps what was typed and asks
        # them to sign in; nothing is done as anyone, so there is nothing to forge.
        return
    expected = session.get("csrf")
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        abort(400, description="This form has expired. Go back, reload the page and try again.")


def secure_headers(response: Response) -> Response:
    # Pages with patients' numbers and words: never cached, never framed, no scripts at all.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The page code in a URL must not leak to other sites through the Referer header.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


ERROR_TITLES = {
    400: "Something went wrong with that form",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
}


def html_error(exc: HTTPException) -> tuple[str, int]:
    code = exc.code or 500
    description = exc.description
    if code == 404:
        description = (
            "This link does not lead anywhere you can see. It may be mistyped, or belong "
            "to another practice."
        )
    return (
        render_template(
            "error.html", code=code, title=ERROR_TITLES.get(code, "Error"), message=description
        ),
        code,
    )


def protect(blueprint: Blueprint) -> None:
    """Staff-page behaviour for a blueprint: CSRF on POST, safe headers, HTML errors."""
    blueprint.before_request(check_csrf)
    blueprint.after_request(secure_headers)
    blueprint.register_error_handler(HTTPException, html_error)


protect(bp)


def current_viewer() -> Viewer | None:
    if "viewer" not in g:
        user_id = session.get("user_id")
        viewer = None
        if isinstance(user_id, int):
            with runtime_of(current_app).sessions() as db:
                viewer = load_viewer(db, user_id)
        g.viewer = viewer
    return cast(Viewer | None, g.viewer)


def viewer() -> Viewer:
    """The signed-in user, in a view behind `login_required`."""
    signed_in = current_viewer()
    assert signed_in is not None, "viewer() outside login_required"
    return signed_in


def login_required(view: F) -> F:
    """Send whoever is not signed in to /login, and back here afterwards. A form posted
    after the session expired is kept, to be shown again once they have signed in."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_viewer() is None:
            if request.method == "POST":
                drafts.keep_posted_form()
                flash(
                    "You were signed out, so that was not saved. Sign in again: what you "
                    "typed is kept.",
                    "warn",
                )
            return redirect(url_for("auth.login", next=_return_path()))
        return view(*args, **kwargs)

    wrapped.requires_login = True  # type: ignore[attr-defined]
    return cast(F, wrapped)


def _requires_login(endpoint: str | None) -> bool:
    view = current_app.view_functions.get(endpoint or "")
    return bool(getattr(view, "requires_login", False))


def _return_path() -> str:
    if request.method == "GET":
        query = request.query_string.decode("utf-8", "replace")
        return request.path + ("?" + query if query else "")
    # After signing in we cannot replay a POST: go back to the page the form was on.
    return safe_next(request.referrer and _local_part(request.referrer))


def _local_part(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + ("?" + parts.query if parts.query else "")


def safe_next(target: str | None) -> str:
    """Only a path on this site: /login?next=https://evil.example must not send a nurse
    who just typed her password to someone else's copy of our login page."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return DEFAULT_NEXT
    # Browsers read "/\evil.com" as "//evil.com", and drop tabs and newlines in URLs.
    if "\\" in target or any(ch.isspace() or ord(ch) < 32 for ch in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "csrf_field": CSRF_FIELD, "viewer": current_viewer()}


# --- views -----------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_viewer() is not None:
            return redirect(next_path)
        return render_template("login.html", next=next_path, email="", error=None)

    email = request.form.get("email", "")
    password = request.form.get("password", "")
    with session_scope(runtime_of(current_app).sessions) as db:
        signed_in = authenticate(db, email, password, now=utcnow())
    if signed_in is None:
        # The same words for an unknown email, a wrong password and a deactivated user.
        error = "That email and password do not match an active account."
        return render_template("login.html", next=next_path, email=email, error=error), 401
    # A fresh session: nothing from before signing in (a planted token) carries over,
    # except a form they typed before their session expired.
    draft = drafts.carry_over()
    session.clear()
    drafts.restore(draft)
    if draft:
        flash("Signed in again. What you typed is back in the form: check it and send it.", "ok")
    session.permanent = True
    session["user_id"] = signed_in.id
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(next_path)


@bp.post("/logout")
def logout() -> Response:
    signed_in = current_viewer()
    if signed_in is not None:
        with session_scope(runtime_of(current_app).sessions) as db:
            record(db, signed_in.id, AuditAction.LOGOUT, now=utcnow())
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
