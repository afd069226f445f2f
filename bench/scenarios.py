"""What the load generator sends, and which text at the Twilio double each request should
cause: the "action" whose latency a scenario measures.

A scenario turns a request index into a signed webhook (`PlannedRequest`) whose
`expect_to` names the number the resulting text goes to; the run matches the first text
the double received for that number *after* the request was sent. Adding a scenario means
writing one `build()`; the load generator, the matching and the report are shared.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from twilio.request_validator import RequestValidator

from bench.practices import BenchPractice, CallerNumbers
from recovery.cli import missed_dial_action_form
from recovery.web.security import sign_generic

DIAL_STATUS = "/webhooks/twilio/voice/dial-status"
CALL_STATUS = "/webhooks/twilio/voice/status"
GENERIC = "/webhooks/calls/missed"
BARE = "/noop"
COMMIT = "/commit"  # the bare app, plus one committed INSERT
COMMIT_PUBLISH = "/commit-publish"  # ... plus one Celery task published
INBOUND_SMS = "/webhooks/twilio/sms"


@dataclass(frozen=True)
class PlannedRequest:
    endpoint: str  # a short label for the report
    path: str
    body: bytes
    headers: dict[str, str]
    expect_to: str | None  # the number a text should reach because of this request


class Scenario(Protocol):
    name: str
    available: bool
    unavailable_reason: str

    def build(self, index: int) -> PlannedRequest: ...


@dataclass(frozen=True)
class Secrets:
    account_sid: str
    auth_token: str
    webhook_secret: str


class MissedCalls:
    """Missed calls, spread over the practices' lines and three webhook endpoints in turn:
    Twilio's <Dial action>, Twilio's call-status callback, and the signed generic JSON one.
    Every call is from a new caller, so every call must produce exactly one first text."""

    name = "missed call -> first text"
    available = True
    unavailable_reason = ""

    def __init__(
        self,
        public_base_url: str,
        practices: list[BenchPractice],
        secrets: Secrets,
        callers: CallerNumbers,
    ) -> None:
        self.public_base_url = public_base_url
        self.practices = practices
        self.secrets = secrets
        self.callers = callers
        self._validator = RequestValidator(secrets.auth_token)

    def line_for(self, index: int) -> tuple[BenchPractice, str]:
        """The practice and the line call `index` rings."""
        practice = self.practices[(index * 7) % len(self.practices)]
        return practice, practice.numbers[(index // len(self.practices)) % len(practice.numbers)]

    def build(self, index: int) -> PlannedRequest:
        practice, line = self.line_for(index)
        caller = next(self.callers)
        kind = index % 3
        call_sid = f"CA{index:08d}{caller[-10:]}{'0' * 14}"
        if kind == 0:
            form = missed_dial_action_form(self.secrets.account_sid, call_sid, caller, line)
            return self._twilio("twilio dial-status", DIAL_STATUS, form, caller)
        if kind == 1:
            form = {
                "AccountSid": self.secrets.account_sid,
                "ApiVersion": "2010-04-01",
                "CallSid": call_sid,
                "CallStatus": "no-answer",
                "Direction": "inbound",
                "From": caller,
                "To": line,
                "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            }
            return self._twilio("twilio call-status", CALL_STATUS, form, caller)
        payload = {
            "call_id": f"pbx-{index}-{caller[1:]}",
            "from": caller,
            "to": line,
            "occurred_at": datetime.now(UTC).isoformat(),
            "reason": "no-answer",
        }
        body = json.dumps(payload).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Recovery-Timestamp": timestamp,
            "X-Recovery-Signature": sign_generic(self.secrets.webhook_secret, timestamp, body),
        }
        return PlannedRequest("generic json", GENERIC, body, headers, caller)

    def _twilio(self, label: str, path: str, form: dict[str, str], caller: str) -> PlannedRequest:
        from urllib.parse import urlencode

        signature = self._validator.compute_signature(self.public_base_url + path, form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        return PlannedRequest(label, path, urlencode(form).encode(), headers, caller)


class BareRequests:
    """The ceiling: a POST of a webhook-sized JSON body to a Flask route that does nothing
    (or, with `path`, to one of the bare app's durable-floor routes)."""

    name = "bare flask no-op"
    available = True
    unavailable_reason = ""

    def __init__(self, path: str = BARE, endpoint: str = "bare flask") -> None:
        self.path = path
        self.endpoint = endpoint

    def build(self, index: int) -> PlannedRequest:
        body = json.dumps(
            {
                "call_id": f"pbx-{index}",
                "from": "+12125550000",
                "to": "+15125550100",
                "occurred_at": datetime.now(UTC).isoformat(),
                "reason": "no-answer",
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        return PlannedRequest(self.endpoint, self.path, body, headers, None)


@dataclass(frozen=True)
class ReplyTarget:
    """A caller who got a first text from `line` (one of `practice`'s numbers), and what
    they answer."""

    caller: str
    line: str
    on_call: str  # the practice's on-call number: where an URGENT reply's page goes
    practice: str
    body: str  # "BOOK" or "URGENT"

    @property
    def urgent(self) -> bool:
        return self.body == "URGENT"


# What each reply must cause, and how its text is recognised at the double: the kind, the
# number it goes to, and a phrase of the product's template (recovery/domain/templates.py).
REPLY_BOOK = "BOOK -> booking link (patient)"
REPLY_URGENT_GUIDANCE = "URGENT -> 911 guidance (patient)"
REPLY_URGENT_PAGE = "URGENT -> page (first on-call number)"
REPLY_KINDS = (REPLY_BOOK, REPLY_URGENT_GUIDANCE, REPLY_URGENT_PAGE)
REPLY_MARKERS = {
    REPLY_BOOK: "book your visit",
    REPLY_URGENT_GUIDANCE: "911",
    REPLY_URGENT_PAGE: "URGENT",
}


def reply_expectations(target: ReplyTarget) -> list[tuple[str, str]]:
    """(kind, number) of every text the reply must cause."""
    if target.urgent:
        return [(REPLY_URGENT_GUIDANCE, target.caller), (REPLY_URGENT_PAGE, target.on_call)]
    return [(REPLY_BOOK, target.caller)]


class ReplyToAction:
    """A patient's reply (a signed Twilio inbound SMS to the line that texted them) -> the
    answer reaching the double: for BOOK the booking link to the patient, for URGENT the
    911 guidance to the patient and the page to the practice's first on-call number.
    `expect_to` is the patient; the page is matched by the run (`reply_expectations`)."""

    name = "reply -> action"
    available = True
    unavailable_reason = ""

    def __init__(self, public_base_url: str, secrets: Secrets, targets: list[ReplyTarget]):
        self.public_base_url = public_base_url
        self.secrets = secrets
        self.targets = targets
        self._validator = RequestValidator(secrets.auth_token)

    def build(self, index: int) -> PlannedRequest:
        from urllib.parse import urlencode

        target = self.targets[index]
        sid = "SM" + uuid.uuid4().hex
        form = {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": target.body,
            "FromCountry": "US",
            "To": target.line,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.secrets.account_sid,
            "From": target.caller,
            "ApiVersion": "2010-04-01",
        }
        signature = self._validator.compute_signature(self.public_base_url + INBOUND_SMS, form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        label = "inbound sms " + target.body
        return PlannedRequest(label, INBOUND_SMS, urlencode(form).encode(), headers, target.caller)
