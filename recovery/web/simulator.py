"""The phone simulator: a patient's phone in the browser, for trying the product.

Only where no real text can leave (SMS_PROVIDER=console); everywhere else it is a 404.
"Call and hang up" and "Send" post signed provider events through the real webhooks
(in-process, through the whole app: signature checks, parsing, storing and queueing as for
Twilio), so what the visitor sees is what a patient would get.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from recovery import simulation
from recovery.db import session_scope, utcnow
from recovery.domain.phones import parse_number
from recovery.services import simulator
from recovery.services.webhook_secrets import line_secret
from recovery.web import runtime_of
from recovery.web.auth import protect
from recovery.web.live import allow_own_scripts

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
# Registered before protect(): after-request functions run last-registered first, so this
# one amends the safe headers protect() sets.
bp.after_request(allow_own_scripts)
protect(bp)

DEFAULT_PHONE = "+15125550199"
# A link in a text, as a phone's messages app finds it: up to the next space, without the
# sentence's own full stop or bracket after it.
_LINK = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)"


@bp.app_template_filter("links")
def links(text: str) -> Markup:
    """The text, escaped, with its links tappable: the page link in a clinician's page,
    the booking link, the set-password link. A new tab, as a phone leaves its messages,
    and no Referer (the simulator's address holds the phone number)."""
    out: list[str] = []
    last = 0
    for found in _LINK.finditer(text):
        url = found.group(0).rstrip(_TRAILING)
        out.append(escape(text[last : found.start()]))
        out.append(
            Markup('<a href="{0}" target="_blank" rel="noopener noreferrer">{0}</a>').format(url)
        )
        last = found.start() + len(url)
    out.append(escape(text[last:]))
    return Markup("").join(out)


@bp.before_request
def _console_only() -> None:
    if runtime_of(current_app).settings.sms_provider != "console":
        abort(404)


def _lines() -> list[simulator.Line]:
    with runtime_of(current_app).sessions() as session:
        return simulator.practice_lines(session)


def _chosen(lines: list[simulator.Line]) -> tuple[simulator.Line | None, str]:
    wanted = request.values.get("line", "")
    line = next((ln for ln in lines if ln.number == wanted), lines[0] if lines else None)
    phone = parse_number(request.values.get("phone") or DEFAULT_PHONE).e164 or DEFAULT_PHONE
    return line, phone


def _thread(line: simulator.Line | None, phone: str) -> list[simulator.Bubble]:
    if line is None:
        return []
    runtime = runtime_of(current_app)
    with runtime.sessions() as session:
        return simulator.thread(session, runtime.cipher, line, phone)


@bp.get("")
def phone() -> str:
    lines = _lines()
    line, number = _chosen(lines)
    return render_template(
        "simulator.html",
        lines=lines,
        line=line,
        phone=number,
        bubbles=_thread(line, number),
        thread_url=url_for("simulator.thread", line=line.number if line else "", phone=number),
    )


@bp.get("/thread")
def thread() -> str:
    """The messages alone, for the page to poll: texts appear without a reload."""
    line, number = _chosen(_lines())
    return render_template("simulator_thread.html", bubbles=_thread(line, number))


def _post(signed: simulation.SignedPost) -> int:
    client = current_app.test_client()
    if signed.form is not None:
        answer = client.post(signed.path, data=signed.form, headers=signed.headers)
    else:
        answer = client.post(signed.path, data=signed.body, headers=signed.headers)
    return answer.status_code


def _back(line: str, phone: str) -> Response:
    return redirect(url_for("simulator.phone") + "?" + urlencode({"line": line, "phone": phone}))


def _form_numbers() -> tuple[str, str] | None:
    lines = _lines()
    line = next((ln for ln in lines if ln.number == request.form.get("line")), None)
    phone = parse_number(request.form.get("phone")).e164
    if line is None or phone is None:
        flash("Pick a practice line and type a valid phone number (+1 512 555 0199).", "warn")
        return None
    if phone in {ln.number for ln in lines}:
        flash("That is a practice line: call from a patient's number.", "warn")
        return None
    return line.number, phone


@bp.post("/call")
def call() -> Response:
    numbers = _form_numbers()
    if numbers is None:
        return redirect(url_for("simulator.phone"))
    line, phone = numbers
    runtime = runtime_of(current_app)
    secret = None
    if not runtime.settings.twilio_auth_token:
        # The generic webhook, signed as the practice's own PBX would sign it.
        with session_scope(runtime.sessions) as session:
            found = line_secret(session, line, now=utcnow())
            secret = found.secret if found else None
    try:
        status = _post(simulation.missed_call(runtime.settings, phone, line, secret))
    except ValueError as exc:
        flash(str(exc), "warn")
        return _back(line, phone)
    if status >= 300:
        flash(f"The missed-call webhook answered {status}.", "warn")
    else:
        flash("You called and hung up before anyone answered. Watch for the text.", "ok")
    return _back(line, phone)


@bp.post("/text")
def text() -> Response:
    numbers = _form_numbers()
    body = (request.form.get("body") or "").strip()
    if numbers is None:
        return redirect(url_for("simulator.phone"))
    line, phone = numbers
    if not body:
        return _back(line, phone)
    try:
        status = _post(
            simulation.text_message(runtime_of(current_app).settings, phone, line, body[:1600])
        )
    except ValueError as exc:
        flash(str(exc), "warn")
        return _back(line, phone)
    if status >= 300:
        flash(f"The messaging webhook answered {status}.", "warn")
    return _back(line, phone)
