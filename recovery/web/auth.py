"""Sign-in for staff: the login form, the second factor, the session cookie,
`login_required`, and CSRF.

The session is Flask's signed cookie (SECRET_KEY). It holds the user's id, the session
version it was issued under, when it was issued and last used, and a CSRF token; nothing
else. On every request the user is read from the database: a deactivated user, or one
whose session version moved on (sign-out, new password, "sign out everywhere"), is out at
once; so is a session idle longer than RECOVERY_SESSION_IDLE_S or older than
RECOVERY_SESSION_MAX_S. Every staff page, whoever writes it, gets this by `login_required`.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast
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
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from recovery.db import session_scope, utcnow
from recovery.models import AuditAction, Role
from recovery.services import totp
from recovery.services.audit import record
from recovery.services.auth import (
    Viewer,
    authenticate,
    find_user,
    has_active_user,
    load_viewer,
    normalize_email,
    record_sign_in,
    sign_out_everywhere,
)
from recovery.services.errors import NotAllowed
from recovery.web import drafts, runtime_of

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# The front door: it sends each user to their own start page (home_path).
DEFAULT_NEXT = "/"
CSRF_FIELD = "csrf_token"
# The address whose password was just set from a link: the sign-in page it lands on fills
# it in (in the signed session cookie, not the URL, so no access log keeps it).
SIGN_IN_AS = "sign_in_as"
# The password step of a sign-in that still needs a code is good for this long.
PENDING_S = 5 * 60
# The "you will be signed out" page comes this long before the idle sign-out.
IDLE_WARNING_S = 120
STRICT_TRANSPORT = "max-age=31536000; includeSubDomains"

F = TypeVar("F", bound=Callable[..., Any])


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    settings = runtime_of(app).settings
    https = settings.public_base_url.startswith("https://")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        PERMANENT_SESSION_LIFETIME=settings.session_max_s,
    )
    if https:
        # Every answer, webhooks included: a browser that once reached us over https
        # never again tries plain http, where a café's Wi-Fi could read the cookie.
        app.after_request(_strict_transport)
    if not app.config.get("SECRET_KEY"):
        log.warning("SECRET_KEY is not set: staff cannot sign in")


def _strict_transport(response: Response) -> Response:
    response.headers["Strict-Transport-Security"] = STRICT_TRANSPORT
    return response


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
    if code in (403, 404):
        _audit_denied(code)
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


def _audit_denied(code: int) -> None:
    """A signed-in user asked for what is not theirs (or not there): worth a row, since a
    user walking through other practices' page codes looks exactly like this."""
    signed_in = current_viewer()
    if signed_in is None:
        return
    with session_scope(runtime_of(current_app).sessions) as db:
        record(
            db,
            signed_in.id,
            AuditAction.DENIED,
            now=utcnow(),
            detail=f"{code} {request.method} {request.path}"[:500],
        )


def current_viewer() -> Viewer | None:
    if "viewer" not in g:
        g.viewer = _session_viewer()
    return cast(Viewer | None, g.viewer)


def _session_viewer() -> Viewer | None:
    user_id = session.get("uid")
    if not isinstance(user_id, int):
        return None
    runtime = runtime_of(current_app)
    with runtime.sessions() as db:
        signed_in = load_viewer(db, user_id)
    if signed_in is None or session.get("sv") != signed_in.session_version:
        # Deactivated, signed out elsewhere, or the password changed: this cookie is dead.
        session.clear()
        return None
    now = int(utcnow().timestamp())
    issued, seen = session.get("auth"), session.get("seen")
    settings = runtime.settings
    reason = None
    if not isinstance(issued, int) or not isinstance(seen, int):
        reason = "malformed"
    elif now - issued > settings.session_max_s:
        reason = "max age"
    elif now - seen > settings.session_idle_s:
        reason = "idle"
    if reason is not None:
        with session_scope(runtime.sessions) as db:
            record(db, signed_in.id, AuditAction.SESSION_EXPIRED, now=utcnow(), detail=reason)
        session.clear()
        minutes = settings.session_idle_s // 60
        flash(
            f"You were signed out after {minutes} minutes without activity."
            if reason == "idle"
            else "You were signed out: sessions last a working day at most.",
            "warn",
        )
        return None
    if (
        request.endpoint != "auth.idle_warning"
        and request.headers.get("X-Requested-With") != "live"
    ):
        # Looking at the warning is not activity, nor is a page polling for news (live.js):
        # a queue left open on an unattended desk still signs out. Anything else is.
        session["seen"] = now
    return signed_in


def viewer() -> Viewer:
    """The signed-in user, in a view behind `login_required`."""
    signed_in = current_viewer()
    assert signed_in is not None, "viewer() outside login_required"
    return signed_in


def home_path(signed_in: Viewer) -> str:
    """Where a user starts: a manager on the recovery report (what they are here for),
    everyone else on the task queue."""
    if signed_in.role is Role.MANAGER:
        return url_for("reports.report")
    return url_for("staff.tasks")


def _onward(next_path: str, signed_in: Viewer) -> str:
    return home_path(signed_in) if next_path == DEFAULT_NEXT else next_path


def refuse(exc: Exception) -> NoReturn:
    """A service's refusal as the answer: 403 with its reason when the user may see the
    thing but not do this; 404 otherwise, so another practice's records look absent."""
    if isinstance(exc, NotAllowed):
        abort(403, description=str(exc))
    abort(404)


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


def no_one_can_sign_in() -> bool:
    """A fresh install, no active account yet: the landing and sign-in pages then show the
    command that makes the first one (first_account.html). Asked only by those two pages,
    not on every page, and it tells a visitor nothing once anyone can sign in."""
    with runtime_of(current_app).sessions() as db:
        return not has_active_user(db)


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    signed_in = current_viewer()
    idle_s = runtime_of(current_app).settings.session_idle_s
    return {
        "csrf_token": csrf_token,
        "csrf_field": CSRF_FIELD,
        "viewer": signed_in,
        "idle_minutes": idle_s // 60,
        # No scripts on our pages: a plain <meta refresh> brings up the warning page.
        "idle_warning_after_s": max(1, idle_s - IDLE_WARNING_S) if signed_in else None,
    }


# --- views -----------------------------------------------------------------------------


def _client() -> str:
    # The peer gunicorn sees. Behind a reverse proxy, run gunicorn with
    # --forwarded-allow-ips so this is the browser's address, not the proxy's.
    return request.remote_addr or "unknown"


def _too_many(account: str, email: str, next_path: str, template: str, **context: Any) -> Any:
    runtime = runtime_of(current_app)
    blocked = runtime.throttle.blocked(account, _client())
    if blocked is None:
        return None
    with session_scope(runtime.sessions) as db:
        user = find_user(db, account)
        record(
            db,
            user.id if user else None,
            AuditAction.LOGIN_THROTTLED,
            now=utcnow(),
            detail=f"{blocked.by} from {_client()}"
            + ("" if user else f" for unknown email {account}"[:300]),
        )
    minutes = max(1, (blocked.retry_after_s + 59) // 60)
    error = (
        f"Too many failed sign-ins. Try again in {minutes} minute"
        f"{'s' if minutes > 1 else ''}, or ask your practice's administrator."
    )
    body = render_template(template, next=next_path, email=email, error=error, **context)
    return body, 429, {"Retry-After": str(blocked.retry_after_s)}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        signed_in = current_viewer()
        if signed_in is not None:
            return redirect(_onward(next_path, signed_in))
        email = str(session.pop(SIGN_IN_AS, ""))[:300]
        return render_template(
            "login.html",
            next=next_path,
            email=email,
            error=None,
            first_account=no_one_can_sign_in(),
        )

    email = request.form.get("email", "")[:300]
    password = request.form.get("password", "")[:1000]
    account = normalize_email(email)
    refused = _too_many(account, email, next_path, "login.html")
    if refused is not None:
        return refused
    runtime = runtime_of(current_app)
    with session_scope(runtime.sessions) as db:
        signed_in = authenticate(db, email, password, now=utcnow(), client=_client())
    if signed_in is None:
        runtime.throttle.failed(account, _client())
        # The same words for an unknown email, a wrong password and a deactivated user.
        error = "That email and password do not match an active account."
        page = render_template(
            "login.html",
            next=next_path,
            email=email,
            error=error,
            first_account=no_one_can_sign_in(),
        )
        return page, 401
    runtime.throttle.succeeded(account)
    if signed_in.needs_second_factor:
        _start_second_factor(signed_in, next_path)
        with session_scope(runtime.sessions) as db:
            record(db, signed_in.id, AuditAction.LOGIN_SECOND_FACTOR, now=utcnow())
        return redirect(url_for("auth.second_factor" if signed_in.totp_enrolled else "auth.enrol"))
    _finish_sign_in(signed_in)
    return redirect(_onward(next_path, signed_in))


def _start_second_factor(signed_in: Viewer, next_path: str) -> None:
    # A fresh session holding only "this password was right, just now": not signed in.
    draft = drafts.carry_over()
    session.clear()
    drafts.restore(draft)
    session["pending_uid"] = signed_in.id
    session["pending_sv"] = signed_in.session_version
    session["pending_at"] = int(utcnow().timestamp())
    session["pending_next"] = next_path
    session["csrf"] = secrets.token_urlsafe(32)


def _pending_viewer() -> Viewer | None:
    user_id, started = session.get("pending_uid"), session.get("pending_at")
    if not isinstance(user_id, int) or not isinstance(started, int):
        return None
    if utcnow().timestamp() - started > PENDING_S:
        return None
    with runtime_of(current_app).sessions() as db:
        pending = load_viewer(db, user_id)
    if pending is None or pending.session_version != session.get("pending_sv"):
        return None
    return pending


def _finish_sign_in(signed_in: Viewer) -> None:
    # A fresh session, a new cookie: nothing from before signing in (a planted token, a
    # cookie someone saw on the login page) carries over, except a form they typed
    # before their session expired.
    now = int(utcnow().timestamp())
    draft = drafts.carry_over()
    session.clear()
    drafts.restore(draft)
    if draft:
        flash("Signed in again. What you typed is back in the form: check it and send it.", "ok")
    session.permanent = True
    session["uid"] = signed_in.id
    session["sv"] = signed_in.session_version
    session["sid"] = secrets.token_urlsafe(16)
    session["auth"] = now
    session["seen"] = now
    session["csrf"] = secrets.token_urlsafe(32)
    g.viewer = signed_in
    with session_scope(runtime_of(current_app).sessions) as db:
        record_sign_in(db, signed_in.id, now=utcnow(), client=_client())


def _back_to_login() -> Response:
    session.clear()
    flash("Sign in again: that sign-in took too long.", "warn")
    return redirect(url_for("auth.login"))


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor() -> Any:
    pending = _pending_viewer()
    if pending is None or not pending.totp_enrolled:
        return _back_to_login()
    next_path = safe_next(session.get("pending_next"))
    if request.method == "GET":
        return render_template("login_code.html", error=None, email=pending.email, next=next_path)
    refused = _too_many(pending.email, pending.email, next_path, "login_code.html")
    if refused is not None:
        return refused
    runtime = runtime_of(current_app)
    with session_scope(runtime.sessions) as db:
        result = totp.check(
            db, runtime.cipher, pending.id, request.form.get("code", "")[:40], now=utcnow()
        )
        if not result.ok:
            record(db, pending.id, AuditAction.LOGIN_FAILED, now=utcnow(), detail="wrong code")
    if not result.ok:
        runtime.throttle.failed(pending.email, _client())
        error = "That code is not right. Type the 6 digits your app shows now, or a recovery code."
        return render_template(
            "login_code.html", error=error, email=pending.email, next=next_path
        ), 401
    runtime.throttle.succeeded(pending.email)
    _finish_sign_in(pending)
    if result.used_recovery_code:
        flash(
            f"You used a recovery code; {result.recovery_codes_left} left. "
            "Ask your administrator for new ones if you lost your phone.",
            "warn",
        )
    return redirect(_onward(next_path, pending))


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol() -> Any:
    pending = _pending_viewer()
    if pending is None or pending.totp_enrolled:
        return _back_to_login()
    next_path = safe_next(session.get("pending_next"))
    secret = session.get("enrol_secret")
    if not isinstance(secret, str):
        secret = totp.new_secret()
        session["enrol_secret"] = secret
    uri = totp.provisioning_uri(secret, pending.email)
    # segno's own SVG markup; the only outside input it encodes is the user's address.
    page = {"secret": secret, "qr": Markup(totp.qr_svg(uri))}  # noqa: S704
    if request.method == "GET":
        return render_template("login_enrol.html", error=None, email=pending.email, **page)
    refused = _too_many(pending.email, pending.email, next_path, "login_enrol.html", **page)
    if refused is not None:
        return refused
    runtime = runtime_of(current_app)
    with session_scope(runtime.sessions) as db:
        codes = totp.enrol(
            db, runtime.cipher, pending.id, secret, request.form.get("code", "")[:40], now=utcnow()
        )
    if codes is None:
        runtime.throttle.failed(pending.email, _client())
        error = "That code is not right: type the 6 digits the app shows for Recovery now."
        return render_template("login_enrol.html", error=error, email=pending.email, **page), 401
    with runtime.sessions() as db:
        enrolled = load_viewer(db, pending.id)
    assert enrolled is not None
    _finish_sign_in(enrolled)
    return render_template("recovery_codes.html", codes=codes, next=next_path)


@bp.get("/session/idle")
@login_required
def idle_warning() -> Any:
    """Shown by a <meta refresh> shortly before the idle sign-out; looking at it does not
    count as activity, pressing its button does."""
    next_path = safe_next(request.args.get("next"))
    settings = runtime_of(current_app).settings
    seen = session.get("seen")
    left = settings.session_idle_s - (int(utcnow().timestamp()) - int(seen or 0))
    return render_template("idle.html", next=next_path, left_s=max(1, left) + 1)


@bp.post("/session/stay")
@login_required
def stay_signed_in() -> Response:
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Response:
    signed_in = current_viewer()
    if signed_in is not None:
        with session_scope(runtime_of(current_app).sessions) as db:
            # Signing out here signs out everywhere: a cookie copied off this machine
            # (or left signed in on another) is no good after this.
            sign_out_everywhere(db, signed_in.id)
            record(db, signed_in.id, AuditAction.LOGOUT, now=utcnow())
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
