"""The OpenAPI document of what machines call: every webhook and every /api/ endpoint.

Built from the pydantic models the endpoints validate with (recovery/schemas/webhooks.py),
so a field, a cap or a pattern added there is in the document at once; the routes are
listed here, and tests/unit/test_openapi.py fails when they and the app's routes differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from recovery.schemas.webhooks import (
    MAX_BODY_BYTES,
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


class Refusal(BaseModel):
    """Every refusal of a machine endpoint: what went wrong, and why, for the caller's logs."""

    error: str = Field(description="short name: forbidden, malformed payload, not found, ...")
    reason: str = Field(description="what to fix")
    details: list[dict[str, str]] | None = Field(
        default=None, description="for a malformed payload: each field and its problem"
    )


class CallRecorded(BaseModel):
    status: str = Field(description="recorded, or duplicate (the call was already reported)")
    call_id: int | None = None
    episode_id: int | None = None
    texting: bool | None = Field(default=None, description="a first text was queued")
    skip_reason: str | None = Field(default=None, description="why no text, if none")


class BookingAnswer(BaseModel):
    status: str = Field(
        description="booked; recorded (an urgent page is open: the episode stays open); "
        "unmatched (no episode: 200 so the booking system does not retry)"
    )
    episode_id: int | None = None
    reason: str | None = None


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TWIML = "text/xml"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    content_type: str = FORM
    security: str = "twilio"  # twilio | practiceHmac | bearer
    answers: dict[str, tuple[str, type[BaseModel] | str | None]] = field(default_factory=dict)
    query: tuple[tuple[str, str, bool], ...] = ()  # (name, description, required)


_REFUSALS: dict[str, tuple[str, type[BaseModel] | str | None]] = {
    "400": ("malformed payload", Refusal),
    "403": ("bad or missing signature", Refusal),
    "404": ("no practice owns the number (or it is another practice's)", Refusal),
    "413": (f"body over {MAX_BODY_BYTES // 1024} KB", Refusal),
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/webhooks/twilio/voice",
        "An incoming call: ring the front desk in hours, else say a text is coming",
        TwilioIncomingCall,
        answers={"200": ("TwiML", TWIML)},
    ),
    Operation(
        "post",
        "/webhooks/twilio/voice/dial-status",
        "The <Dial action>: the front desk's phone rang out (a missed call) or was answered",
        TwilioDialAction,
        answers={"200": ("TwiML", TWIML)},
    ),
    Operation(
        "post",
        "/webhooks/twilio/voice/status",
        "Call-progress callbacks, for set-ups that forward calls without our <Dial>",
        TwilioCallStatus,
        answers={"204": ("recorded, or a progress event ignored", None)},
    ),
    Operation(
        "post",
        "/webhooks/twilio/voice/page",
        "A voice page's call, answered (say the page, gather one digit) or a digit pressed "
        "(1 takes the page, as ACK <code> does)",
        TwilioPageCall,
        answers={"200": ("TwiML", TWIML)},
        query=(("message_id", "our id of the call, put in the URL we gave Twilio", True),),
    ),
    Operation(
        "post",
        "/webhooks/twilio/voice/page/status",
        "How a voice page's call ended (its StatusCallback)",
        TwilioPageCallStatus,
        answers={"204": ("recorded (or an unknown call, ignored)", None)},
        query=(("message_id", "our id of the call, put in the callback URL", False),),
    ),
    Operation(
        "post",
        "/webhooks/twilio/sms/status",
        "A text's delivery status (the StatusCallback; ?message_id= is ours)",
        TwilioMessageStatus,
        answers={"204": ("recorded (or an unknown message, ignored)", None)},
        query=(("message_id", "our id of the text, put in the callback URL", False),),
    ),
    Operation(
        "post",
        "/webhooks/twilio/sms",
        "A text to a practice line: stored encrypted, routed by the worker",
        TwilioInboundSms,
        answers={"200": ("empty TwiML", TWIML)},
    ),
    Operation(
        "post",
        "/webhooks/calls/missed",
        "A missed call from any other phone system, signed with the practice's secret",
        GenericMissedCall,
        JSON,
        "practiceHmac",
        answers={"200": ("recorded or duplicate", CallRecorded)},
    ),
    Operation(
        "post",
        "/webhooks/bookings",
        "The booking system confirms a booking, signed with the practice's secret",
        BookingConfirmation,
        JSON,
        "practiceHmac",
        answers={"200": ("booked, recorded or unmatched", BookingAnswer)},
    ),
    Operation(
        "get",
        "/api/reports/recovery",
        "The recovery report of the token's practice over a date range",
        security="bearer",
        answers={
            "200": ("the report's figures", "object"),
            "400": ("the dates are not a range", Refusal),
            "401": ("no, unknown or revoked token", Refusal),
            "404": ("another practice than the token's", Refusal),
        },
        query=(
            ("from", "first day, YYYY-MM-DD", False),
            ("to", "last day, YYYY-MM-DD", False),
            ("practice", "the token's practice's slug (any other is 404)", False),
        ),
    ),
    Operation(
        "get",
        "/api/episodes.csv",
        "The range's episodes as CSV (masked callers, no patient words)",
        security="bearer",
        answers={
            "200": ("CSV", "text/csv"),
            "400": ("the dates are not a range", Refusal),
            "401": ("no, unknown or revoked token", Refusal),
            "404": ("another practice than the token's", Refusal),
        },
        query=(
            ("from", "first day, YYYY-MM-DD", False),
            ("to", "last day, YYYY-MM-DD", False),
            ("practice", "the token's practice's slug (any other is 404)", False),
        ),
    ),
)

_SECURITY_SCHEMES = {
    "twilio": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Twilio-Signature",
        "description": "Twilio's signature of PUBLIC_BASE_URL + path and the form, keyed "
        "with TWILIO_AUTH_TOKEN",
    },
    "practiceHmac": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Recovery-Signature",
        "description": "sha256= + hex HMAC-SHA256 of '<X-Recovery-Timestamp>.<raw body>' "
        "keyed with the practice's webhook secret (`recovery practices secret SLUG`); "
        "X-Recovery-Timestamp within 5 minutes of now",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "`recovery tokens create`"},
}


def _content(kind: type[BaseModel] | str | None, content_type: str = JSON) -> dict[str, Any]:
    if kind is None:
        return {}
    if isinstance(kind, str):
        if kind == "object":
            return {"content": {JSON: {"schema": {"type": "object"}}}}
        return {"content": {kind: {"schema": {"type": "string"}}}}
    return {
        "content": {content_type: {"schema": {"$ref": f"#/components/schemas/{kind.__name__}"}}}
    }


def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = sorted(
        {op.body for op in OPERATIONS if op.body} | {Refusal, CallRecorded, BookingAnswer},
        key=lambda m: m.__name__,
    )
    inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in models]
    _, schemas = models_json_schema(
        inputs,
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        answers = {**(_REFUSALS if op.body else {}), **op.answers}
        operation: dict[str, Any] = {
            "summary": op.summary,
            "security": [{op.security: []}],
            "responses": {
                code: {"description": text, **_content(kind)}
                for code, (text, kind) in sorted(answers.items())
            },
        }
        if op.body is not None:
            operation["requestBody"] = {"required": True, **_content(op.body, op.content_type)}
        if op.query:
            operation["parameters"] = [
                {
                    "name": n,
                    "in": "query",
                    "description": d,
                    "required": r,
                    "schema": {"type": "string"},
                }
                for n, d, r in op.query
            ]
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Recovery: webhooks and API",
            "version": "1",
            "description": "What phone systems, booking systems and other tools call. Every "
            f"request body is at most {MAX_BODY_BYTES // 1024} KB; the signature is checked "
            "first, then the schema below; a refusal is JSON {error, reason}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": _SECURITY_SCHEMES,
        },
    }
