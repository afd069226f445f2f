"""What a phone company would post to us, built and signed here: for `recovery simulate`,
the browser phone simulator and the benchmark's load.

Only the payloads and their signatures; who sends them (requests, an in-process client)
is the caller's business. Signed exactly as the real senders sign, so the webhooks they
reach check them as they check everyone's.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from twilio.request_validator import RequestValidator

from recovery.config import Settings

DIAL_ACTION_PATH = "/webhooks/twilio/voice/dial-status"
INBOUND_SMS_PATH = "/webhooks/twilio/sms"
GENERIC_MISSED_PATH = "/webhooks/calls/missed"
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32


@dataclass(frozen=True)
class SignedPost:
    path: str
    headers: dict[str, str]
    form: dict[str, str] | None = None  # a form post (Twilio)...
    body: bytes | None = None  # ...or a JSON body (the generic webhook)
    provider: str = "twilio"
    reference: str = ""  # the call's or the text's id at the provider


def missed_dial_action_form(
    account_sid: str, call_sid: str, caller: str, called: str
) -> dict[str, str]:
    """What Twilio posts to a <Dial action> when the desk did not pick up."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "completed",
        "DialCallStatus": "no-answer",
        "DialCallDuration": "0",
        "Direction": "inbound",
        "From": caller,
        "Caller": caller,
        "To": called,
        "Called": called,
    }


def inbound_sms_form(
    account_sid: str, sid: str, sender: str, line: str, text: str
) -> dict[str, str]:
    """What Twilio posts to the messaging webhook when someone texts a practice line."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "NumMedia": "0",
        "From": sender,
        "To": line,
        "Body": text,
    }


def twilio_signature(settings: Settings, path: str, form: dict[str, str]) -> str:
    # Twilio signs the public URL it called: the one the server checks against.
    return RequestValidator(settings.twilio_auth_token).compute_signature(
        settings.public_base_url + path, form
    )


def signed_twilio_form(settings: Settings, path: str, form: dict[str, str], ref: str) -> SignedPost:
    return SignedPost(
        path,
        {"X-Twilio-Signature": twilio_signature(settings, path, form)},
        form=form,
        reference=ref,
    )


def missed_call(
    settings: Settings, caller: str, called: str, webhook_secret: str | None = None
) -> SignedPost:
    """A missed call, through Twilio's <Dial action> when we have a Twilio token, else
    through the generic JSON webhook, signed with `webhook_secret` (the called practice's
    own) or else WEBHOOK_SECRET."""
    if settings.twilio_auth_token:
        call_sid = "CA" + secrets.token_hex(16)
        account = settings.twilio_account_sid or PLACEHOLDER_ACCOUNT_SID
        form = missed_dial_action_form(account, call_sid, caller, called)
        return signed_twilio_form(settings, DIAL_ACTION_PATH, form, call_sid)
    secret = webhook_secret or settings.webhook_secret
    if not secret:
        raise ValueError("set TWILIO_AUTH_TOKEN or WEBHOOK_SECRET to sign a simulated call")
    from recovery.web.security import sign_generic

    call_id = "sim-" + secrets.token_hex(8)
    body = json.dumps(
        {
            "call_id": call_id,
            "from": caller,
            "to": called,
            "occurred_at": datetime.now(UTC).isoformat(),
            "reason": "no-answer",
        }
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Recovery-Timestamp": timestamp,
        "X-Recovery-Signature": sign_generic(secret, timestamp, body),
    }
    return SignedPost(
        GENERIC_MISSED_PATH, headers, body=body, provider="generic", reference=call_id
    )


def text_message(settings: Settings, sender: str, line: str, text: str) -> SignedPost:
    """A text from `sender` to a practice line, as Twilio's messaging webhook posts it."""
    if not settings.twilio_auth_token:
        raise ValueError("set TWILIO_AUTH_TOKEN to sign a simulated text")
    sid = "SM" + secrets.token_hex(16)
    account = settings.twilio_account_sid or PLACEHOLDER_ACCOUNT_SID
    form = inbound_sms_form(account, sid, sender, line, text)
    return signed_twilio_form(settings, INBOUND_SMS_PATH, form, sid)
