"""Webhooks from phone systems: verify, parse, store + enqueue, answer. Nothing slow here.

Each handler checks the signature first, validates the payload second, records the call in
one transaction (a duplicate trips a unique constraint), queues the text only after that
commit, and answers at once: TwiML for Twilio, JSON for everyone else.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from recovery import metrics
from recovery.db import database_error_words, retry_while_database_away, session_scope, utcnow
from recovery.domain.calls import MISSED_REASONS, CallReport
from recovery.domain.messages import StatusOutcome
from recovery.domain.pages import CallStep
from recovery.domain.phones import mask, parse_number
from recovery.domain.states import EpisodeStatus
from recovery.schemas.webhooks import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    BookingConfirmation,
    GenericMissedCall,
    TwilioCallStatus,
    TwilioDialAction,
    TwilioInboundSms,
    TwilioIncomingCall,
    TwilioMessageStatus,
    TwilioPageCall,
    TwilioPageCallStatus,
)
from recovery.services import voice_pages
from recovery.services.errors import NotFound
from recovery.services.intake import IntakeResult, UnknownNumber, find_practice, record_call
from recovery.services.outcomes import confirm_booking
from recovery.services.outreach import record_status
from recovery.services.replies import record_inbound
from recovery.services.webhook_secrets import signers
from recovery.sms.twilio import CALL_STATUSES, TWILIO_STATUSES
from recovery.web import Runtime, runtime_of
from recovery.web.security import Forbidden, check_twilio_signature, generic_signer

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

DIAL_STATUS_PATH = "/webhooks/twilio/voice/dial-status"


@bp.before_request
def _bounded_body() -> None:
    """Refuse an oversized body before a byte of it is read or parsed (a signature check
    reads all of it), and cap what werkzeug will read when no length was announced."""
    request.max_content_length = MAX_BODY_BYTES
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        abort(413, description=f"the request body is over {MAX_BODY_BYTES // 1024} KB")


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden) -> tuple[Response, int]:
    log.warning("refused %s %s: %s", request.method, request.path, exc)
    return jsonify(error="forbidden", reason=str(exc)), 403


@bp.errorhandler(ValidationError)
def _malformed(exc: ValidationError) -> tuple[Response, int]:
    details = [
        {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
    ]
    reason = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
    return jsonify(error="malformed payload", reason=reason, details=details), 400


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[Response, int]:
    log.warning("%s %s: %s", request.method, request.path, exc)
    return jsonify(error="not found", reason=str(exc)), 404


@bp.errorhandler(UnknownNumber)
def _unknown_number(exc: UnknownNumber) -> tuple[Response, int]:
    log.warning("%s %s: %s", request.method, request.path, exc)
    return jsonify(error="unknown number", reason=str(exc)), 404


def _runtime() -> Runtime:
    return runtime_of(current_app)


View = Callable[..., ResponseReturnValue]


def waits_for_the_database(view: View) -> View:
    """Run the webhook again while the database is away, for up to
    RECOVERY_DATABASE_WAIT_S, then let it answer 503 (recovery/web/__init__.py).

    Twilio does not retry a webhook that answered 5xx (its default retries only a
    connection it could not open), so a missed call that failed during a PostgreSQL
    restart was a patient never texted. Running it again is safe: each run is one
    transaction, rolled back when the database went away, and if the cut came during the
    commit the second run finds the call or text by its unique provider id, as it would
    find Twilio's own retry."""

    @functools.wraps(view)
    def wrapper(*args: object, **kwargs: object) -> ResponseReturnValue:
        waited: list[Exception] = []

        def waiting(exc: Exception) -> None:
            waited.append(exc)  # once a request: the outage is logged, not each retry
            log.warning("%s: database away (%s); waiting", request.path, database_error_words(exc))

        response = retry_while_database_away(
            lambda: view(*args, **kwargs), _runtime().settings.database_wait_s, waiting
        )
        if waited:
            log.info("%s: answered after waiting for the database", request.path)
        return response

    wrapper.waits_for_the_database = True  # type: ignore[attr-defined]
    return wrapper


def _verified_twilio_form() -> dict[str, str]:
    settings = _runtime().settings
    # Twilio signs the URL it called, which behind a proxy is not the one Flask sees.
    url = settings.public_base_url + request.full_path.rstrip("?")
    params = request.form.to_dict()
    check_twilio_signature(
        settings.twilio_auth_token, url, params, request.headers.get("X-Twilio-Signature")
    )
    if request.files:
        raise MalformedPayload("a webhook carries no file uploads")
    return params


def _intake(report: CallReport, signed_for: int | None = None) -> IntakeResult:
    """Record the call; `signed_for` is the practice whose secret signed the request, and
    a call to another practice's number is answered as if no practice owned it."""
    runtime = _runtime()
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        practice = find_practice(session, report, runtime.practices)
        if signed_for is not None and practice.id != signed_for:
            raise UnknownNumber(f"no practice owns {mask(parse_number(report.called_raw).e164)}")
        result = record_call(
            session, report, runtime.templates, now, practice, cipher=runtime.cipher
        )
    _enqueue(runtime, result)
    return result


def _enqueue(runtime: Runtime, result: IntakeResult) -> None:
    if result.message_id is not None:
        _queue(runtime.dispatcher.send_text, result.message_id, "message")


def _queue(dispatch: Callable[[int], None], message_id: int, what: str) -> None:
    """Queue work for a row already committed; a broker failure is only a delay."""
    try:
        dispatch(message_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure means the same thing here
        # The row is committed; the sweeper queues it once the broker is back.
        log.warning("%s %s not queued (%s); the sweeper will pick it up", what, message_id, exc)


def _twiml(response: VoiceResponse | MessagingResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def _say_text_coming(result: IntakeResult, opening: str) -> VoiceResponse:
    response = VoiceResponse()
    if result.skip_reason is not None and result.skip_reason.untextable:
        response.say(f"{opening} Please call us back during our opening hours. Goodbye.")
    else:
        response.say(f"{opening} We'll send you a text message in a moment. Goodbye.")
    response.hangup()
    return response


@bp.post("/twilio/voice")
@waits_for_the_database
def twilio_voice() -> Response:
    """A call to a practice line: ring the front desk in hours, else say a text is coming."""
    params = _verified_twilio_form()
    incoming = TwilioIncomingCall.model_validate(params, context=_live())
    runtime = _runtime()
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        report = CallReport(
            provider="twilio",
            provider_call_id=incoming.call_sid,
            caller_raw=incoming.from_,
            called_raw=incoming.to,
            answered=False,
            reason="after_hours",
            occurred_at=now,
            raw_payload=params,
        )
        practice = find_practice(session, report, runtime.practices)
        if practice.forward_to and practice.business_hours().is_open(now):
            response = VoiceResponse()
            response.dial(
                practice.forward_to,
                timeout=practice.ring_timeout_s,
                action=runtime.settings.public_base_url + DIAL_STATUS_PATH,
                method="POST",
            )
            return _twiml(response)
        if not practice.forward_to:
            report = replace(report, reason="unstaffed")
        result = record_call(
            session, report, runtime.templates, now, practice, cipher=runtime.cipher
        )
        name = practice.name
    _enqueue(runtime, result)
    return _twiml(
        _say_text_coming(result, f"Thank you for calling {name}. We're closed right now.")
    )


@bp.post("/twilio/voice/dial-status")
@waits_for_the_database
def twilio_dial_status() -> Response:
    """The <Dial action>: the front desk's phone rang out (missed) or was answered."""
    params = _verified_twilio_form()
    action = TwilioDialAction.model_validate(params, context=_live())
    status = action.dial_call_status
    answered = status in ("completed", "answered")
    result = _intake(
        CallReport(
            provider="twilio",
            provider_call_id=action.call_sid,
            caller_raw=action.from_,
            called_raw=action.to,
            answered=answered,
            reason=status,
            occurred_at=utcnow(),
            raw_payload=params,
        )
    )
    if answered:
        return _twiml(VoiceResponse())
    return _twiml(_say_text_coming(result, "Sorry we couldn't get to the phone."))


@bp.post("/twilio/voice/status")
@waits_for_the_database
def twilio_call_status() -> Response:
    """Call-progress callbacks, for set-ups that forward calls without our <Dial>."""
    params = _verified_twilio_form()
    event = TwilioCallStatus.model_validate(params, context=_live())
    status = event.call_status.lower()
    # A child leg (the forwarded ring) speaks for its parent, the patient's inbound call;
    # keying on the parent makes this and the <Dial action> of the same call one event.
    call_id = event.parent_call_sid or event.call_sid
    answered = status == "completed" and event.parent_call_sid is not None
    if status not in MISSED_REASONS and not answered:
        return Response("", status=204)  # ringing, in-progress, a parent's own completion
    _intake(
        CallReport(
            provider="twilio",
            provider_call_id=call_id,
            caller_raw=event.from_,
            called_raw=event.to,
            answered=answered,
            reason=status,
            occurred_at=event.timestamp or utcnow(),
            raw_payload=params,
            called_is_forward_target=event.parent_call_sid is not None,
        )
    )
    return Response("", status=204)


# How long the call waits for the digit after the page's words, in seconds.
GATHER_TIMEOUT_S = 8


@bp.post("/twilio/voice/page")
@waits_for_the_database
def twilio_voice_page() -> Response:
    """A voice page's call was answered (say the page, wait for one digit), or the
    clinician pressed a key (1 takes the page, as "ACK <code>" does)."""
    params = _verified_twilio_form()
    call = TwilioPageCall.model_validate({**params, "message_id": request.args.get("message_id")})
    runtime = _runtime()
    with session_scope(runtime.sessions) as session:
        answer = voice_pages.answer(
            session,
            runtime.templates,
            call.message_id,
            digits=call.digits,
            now=utcnow(),
            public_base_url=runtime.settings.public_base_url,
        )
    for message_id in answer.message_ids:
        _queue(runtime.dispatcher.send_text, message_id, "message")
    response = VoiceResponse()
    if answer.step is CallStep.PROMPT:
        # The digit comes back here, to the URL Twilio signed (it carries our message id).
        here = runtime.settings.public_base_url + request.full_path.rstrip("?")
        gather = response.gather(num_digits=1, action=here, method="POST", timeout=GATHER_TIMEOUT_S)
        gather.say(answer.words)
        response.say("No key was pressed. The page is still open: reply ACK to its text.")
    elif answer.step is CallStep.TAKEN:
        response.say("You have the page. Its details are in your text messages. Goodbye.")
    elif answer.step is CallStep.ALREADY_TAKEN:
        response.say(f"This page was already taken by {answer.acknowledged_by}. Goodbye.")
    else:
        response.say("This page is no longer open. Goodbye.")
    response.hangup()
    return _twiml(response)


@bp.post("/twilio/voice/page/status")
@waits_for_the_database
def twilio_voice_page_status() -> Response:
    """How a voice page's call ended: answered, or busy / no answer / failed, which like
    an undelivered page text escalates at once when nothing else of its step got through."""
    params = _verified_twilio_form()
    report = TwilioPageCallStatus.model_validate(
        {**params, "message_id": request.args.get("message_id")}
    )
    status = CALL_STATUSES.get(report.call_status)
    if status is None:
        return Response("", status=204)  # queued, ringing, in-progress: not an ending
    with session_scope(_runtime().sessions) as session:
        record_status(session, report.call_sid, status, None, utcnow(), report.message_id)
    return Response("", status=204)


@bp.post("/twilio/sms/status")
@waits_for_the_database
def twilio_sms_status() -> Response:
    params = _verified_twilio_form()
    report = TwilioMessageStatus.model_validate(params, context=_live())
    status = TWILIO_STATUSES.get(report.message_status.lower())
    if status is None:
        log.info("message %s: status %r ignored", report.message_sid, report.message_status)
        return Response("", status=204)
    # Ours, put in the callback URL when the text was sent (outreach.status_callback_for).
    message_id = request.args.get("message_id", type=int)
    with session_scope(_runtime().sessions) as session:
        outcome = record_status(
            session, report.message_sid, status, report.error_code, utcnow(), message_id
        )
    if outcome is StatusOutcome.DUPLICATE:
        metrics.DUPLICATE_SIDS.inc()
    elif outcome is not StatusOutcome.UNKNOWN:
        metrics.TEXTS.labels(status=status.value).inc()
    if outcome is StatusOutcome.UNKNOWN:
        # 2xx all the same: a 4xx would only make Twilio retry a message we will never know.
        log.info("status for unknown message %s ignored", report.message_sid)
    return Response("", status=204)


class MalformedPayload(ValueError):
    pass


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, brackets inside strings aside;
    a linear scan with no recursion, so any input is safe to measure."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN; nobody else does


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def _live() -> dict[str, Any]:
    """The validation context: what "now" is for the live-event window."""
    return {"now": utcnow()}


@bp.errorhandler(MalformedPayload)
def _not_json(exc: MalformedPayload) -> tuple[Response, int]:
    return jsonify(error="malformed payload", reason=str(exc)), 400


def _verified_json() -> tuple[dict[str, Any], int | None]:
    """The body of a signed request as a JSON object, and the practice whose secret signed
    it (None: the install-wide WEBHOOK_SECRET, where that may act on every practice)."""
    body = request.get_data(cache=True)
    runtime = _runtime()
    with session_scope(runtime.sessions) as session:
        candidates = signers(
            session,
            shared_secret=runtime.settings.webhook_secret,
            shared_for_all=runtime.settings.webhook_secret_all_practices,
            now=utcnow(),
        )
    signer = candidates[
        generic_signer(
            [c.secret for c in candidates],
            request.headers.get("X-Recovery-Timestamp"),
            request.headers.get("X-Recovery-Signature"),
            body,
        )
    ]
    if signer.refused:
        raise Forbidden(signer.refused)
    if json_depth(body) > MAX_JSON_DEPTH:
        # Checked on the bytes: json.loads itself recurses, and dies, on deep enough input.
        raise MalformedPayload(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload: Any = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 5000 digits
        raise MalformedPayload(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("body must be a JSON object")
    return payload, signer.practice_id


@bp.post("/twilio/sms")
@waits_for_the_database
def twilio_inbound_sms() -> Response:
    """A text to a practice line: store it (encrypted) and let the worker route it."""
    params = _verified_twilio_form()
    sms = TwilioInboundSms.model_validate(params, context=_live())
    runtime = _runtime()
    with session_scope(runtime.sessions) as session:
        result = record_inbound(
            session,
            runtime.cipher,
            provider_sid=sms.message_sid,
            from_raw=sms.from_,
            to_raw=sms.to,
            body=sms.body,
            now=utcnow(),
        )
    if result.message_id is not None:
        _queue(runtime.dispatcher.handle_reply, result.message_id, "reply")
    # The answer goes out through the worker, so Twilio gets an empty TwiML response.
    return _twiml(MessagingResponse())


@bp.post("/bookings")
@waits_for_the_database
def booking_confirmed() -> tuple[Response, int]:
    """A booking system confirms a booking; the episode ends booked."""
    payload, signed_for = _verified_json()
    confirmation = BookingConfirmation.model_validate(payload)
    with session_scope(_runtime().sessions) as session:
        episode = confirm_booking(
            session,
            now=utcnow(),
            token=confirmation.ref,
            practice_slug=confirmation.practice,
            phone=confirmation.phone,
            practice_id=signed_for,
        )
        episode_id = episode.id if episode is not None else None
        still_open = episode is not None and episode.status is EpisodeStatus.OPEN
    if episode_id is None:
        # 200 all the same: the booking system must not retry a booking we cannot place.
        return jsonify(status="unmatched"), 200
    if still_open:
        return jsonify(
            status="recorded",
            episode_id=episode_id,
            reason="an urgent page is open on this episode; it stays open until acknowledged",
        ), 200
    return jsonify(status="booked", episode_id=episode_id), 200


@bp.post("/calls/missed")
@waits_for_the_database
def generic_missed_call() -> tuple[Response, int]:
    """Any other phone system: signed JSON {call_id, from, to, occurred_at, reason}."""
    payload, signed_for = _verified_json()
    call = GenericMissedCall.model_validate(payload, context=_live())
    result = _intake(
        CallReport(
            provider="generic",
            provider_call_id=call.call_id,
            caller_raw=call.from_,
            called_raw=call.to,
            answered=call.reason == "answered",
            reason=call.reason,
            occurred_at=call.occurred_at,
            raw_payload=payload,
        ),
        signed_for,
    )
    if result.duplicate:
        return jsonify(status="duplicate"), 200
    log.info("generic call %s from %s recorded", result.call_id, mask(call.from_))
    return jsonify(
        status="recorded",
        call_id=result.call_id,
        episode_id=result.episode_id,
        texting=result.message_id is not None,
        skip_reason=result.skip_reason,
    ), 200
