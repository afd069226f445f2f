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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from twilio.request_validator import RequestValidator

from bench.practices import BenchPractice, CallerNumbers
from recovery.web.security import sign_generic

DIAL_STATUS = "/webhooks/twilio/voice/dial-status"
CALL_STATUS = "/webhooks/twilio/voice/status"
GENERIC = "/webhooks/calls/missed"
BARE = "/noop"


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

    def build(self, index: int) -> PlannedRequest:
        practice = self.practices[(index * 7) % len(self.practices)]
        line = practice.numbers[(index // len(self.practices)) % len(practice.numbers)]
        caller = next(self.callers)
        kind = index % 3
        call_sid = f"CA{index:08d}{caller[-10:]}{'0' * 14}"
        if kind == 0:
            form = {
                "AccountSid": self.secrets.account_sid,
                "ApiVersion": "2010-04-01",
                "CallSid": call_sid,
                "CallStatus": "completed",
                "DialCallStatus": "no-answer",
                "DialCallDuration": "0",
                "Direction": "inbound",
                "From": caller,
                "Caller": caller,
                "To": line,
                "Called": line,
            }
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
    """The ceiling: a POST of a webhook-sized JSON body to a Flask route that does nothing."""

    name = "bare flask no-op"
    available = True
    unavailable_reason = ""

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
        return PlannedRequest("bare flask", BARE, body, {"Content-Type": "application/json"}, None)


class ReplyToAction:
    """A patient's reply (inbound SMS) -> the reply text, or the page to on-call staff,
    reaching the double. Needs the inbound-SMS webhook, which does not exist yet: once it
    does, `build()` posts a signed Twilio inbound-SMS form from a caller who already got a
    first text (keyword BOOK for a reply, URGENT for a page: `expect_to` is the patient or
    the on-call number), and the run measures it like time-to-first-text."""

    name = "reply -> action"
    available = False
    unavailable_reason = "inbound SMS not built yet"

    def build(self, index: int) -> PlannedRequest:
        raise NotImplementedError(self.unavailable_reason)
