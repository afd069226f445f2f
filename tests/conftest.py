"""Helpers every suite shares: fixture payloads, signing, the practices file."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from recovery.web.security import sign_generic

FIXTURES = Path(__file__).parent / "fixtures"
PRACTICES_FILE = FIXTURES / "practices.yaml"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC0000000000000000000000000000aaaa"
WEBHOOK_SECRET = "test-webhook-secret"  # the install-wide one: refused on these 3 practices


def practice_secret(slug: str) -> str:
    """The webhook secret the test suites give each practice (give_practices_secrets)."""
    return f"test-webhook-secret-{slug}"


VALLEY_SECRET = practice_secret("valley-family")


def give_practices_secrets(session: Session) -> None:
    from recovery.models import Practice

    for practice in session.scalars(select(Practice)):
        practice.webhook_secret = practice_secret(practice.slug)


# A fixed PHI key (any Fernet key), so a test can open what the app it started stored.
PHI_KEY = "8lGZ0tD9r6XKk2d8J1m3vD9cY8rQk3k2r7cT4t0n1xE="


def load_form(name: str) -> dict[str, str]:
    """A Twilio fixture (`twilio/voice-dial-action-no-answer.form`) as its POST parameters."""
    text = (FIXTURES / name).read_text().strip()
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def twilio_signature(public_url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(public_url, form)


def generic_request(
    payload: dict[str, Any], secret: str = VALLEY_SECRET, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    timestamp = str(int(at if at is not None else time.time()))
    return body, {
        "Content-Type": "application/json",
        "X-Recovery-Timestamp": timestamp,
        "X-Recovery-Signature": sign_generic(secret, timestamp, body),
    }


def unique_sid(prefix: str, seed: str) -> str:
    return prefix + hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()
