"""Who may call our webhooks: Twilio's signature, or our HMAC for every other system."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from twilio.request_validator import RequestValidator

MAX_SKEW_S = 300  # a signed generic webhook older than five minutes is a replay


class Forbidden(Exception):
    """The request is not from who it claims; answered 403 and nothing changes."""


def check_twilio_signature(
    auth_token: str, public_url: str, params: Mapping[str, str], signature: str | None
) -> None:
    if not auth_token:
        raise Forbidden("TWILIO_AUTH_TOKEN is not configured, so no Twilio request can be verified")
    if not signature:
        raise Forbidden("missing X-Twilio-Signature")
    if not RequestValidator(auth_token).validate(public_url, dict(params), signature):
        raise Forbidden("bad X-Twilio-Signature")


def sign_generic(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def generic_signer(
    candidates: Sequence[str],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float | None = None,
) -> int:
    """Which of `candidates` signed this request (its index); Forbidden if none did, or
    the request is stale. Every candidate is compared, so timing tells nothing of which."""
    if not candidates:
        raise Forbidden(
            "no webhook secret is configured: `recovery practices secret SLUG` makes one"
        )
    if not timestamp or not signature:
        raise Forbidden("missing X-Recovery-Timestamp or X-Recovery-Signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Forbidden("X-Recovery-Timestamp is not a Unix time in seconds") from None
    if abs((now if now is not None else time.time()) - sent_at) > MAX_SKEW_S:
        raise Forbidden("X-Recovery-Timestamp is more than 5 minutes away from now")
    found = -1
    for index, secret in enumerate(candidates):
        if hmac.compare_digest(sign_generic(secret, timestamp, body), signature) and found < 0:
            found = index
    if found < 0:
        raise Forbidden("bad X-Recovery-Signature")
    return found
