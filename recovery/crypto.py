"""Encryption of what patients write to us (it may hold PHI) before it is stored.

The keys are their own secrets (PHI_ENCRYPTION_KEYS), never derived from the session
secret: whoever can forge a staff session must not also be able to read every reply. A
list, so a key can be replaced without a flag day: the first encrypts, all decrypt, and
`recovery keys rotate` re-encrypts what older keys wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

if TYPE_CHECKING:
    from recovery.config import Settings

log = logging.getLogger(__name__)


class MissingKey(ValueError):
    pass


def new_key() -> str:
    """A fresh key for PHI_ENCRYPTION_KEYS (32 random bytes, urlsafe base64)."""
    return Fernet.generate_key().decode("ascii")


def legacy_key(secret: str) -> str:
    """The key versions before PHI_ENCRYPTION_KEYS derived from SECRET_KEY (or from
    PHI_ENCRYPTION_KEY): kept only to read what they wrote until it is re-encrypted."""
    digest = hashlib.sha256(b"recovery-phi-v1:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


class PhiCipher:
    """Fernet (AES-128-CBC + HMAC-SHA256) under a MultiFernet: `keys[0]` encrypts; every
    key, and the decrypt-only `legacy` ones after them, decrypt."""

    def __init__(self, keys: Sequence[str], *, legacy: Sequence[str] = ()) -> None:
        if not keys:
            raise MissingKey(
                "no key to encrypt patients' words: set PHI_ENCRYPTION_KEYS "
                "(`recovery keys new` prints one)"
            )
        try:
            fernets = [Fernet(k.encode("ascii")) for k in (*keys, *legacy)]
        except (ValueError, UnicodeEncodeError):
            raise MissingKey(
                "PHI_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(`recovery keys new` prints one)"
            ) from None
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Settings) -> PhiCipher:
        legacy = [legacy_key(s) for s in settings.phi_legacy_secrets]
        if legacy:
            # Said at every start, so an install that still reads under the old derived key
            # hears it until `recovery keys rotate` has run and the key is switched off.
            log.warning(
                "PHI: also decrypting with the legacy key derived from "
                "PHI_ENCRYPTION_KEY/SECRET_KEY; run `recovery keys rotate`, then set "
                "RECOVERY_PHI_LEGACY_KEY=0"
            )
        return cls(settings.phi_keys, legacy=legacy)

    def encrypt(self, text: str) -> str:
        return self._primary.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise ValueError("cannot decrypt: wrong key or damaged text") from None

    def is_current(self, token: str) -> bool:
        """Whether the first key wrote TOKEN (nothing for `keys rotate` to do)."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """TOKEN re-encrypted under the first key; ValueError when no key opens it."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise ValueError("cannot decrypt: wrong key or damaged text") from None


# What a phone system posts about a call, kept in the clear in call_events.raw_payload:
# ids, states and durations, and the practice's own line. Everything else, the caller's
# number, name and town (From, Caller, CallerName, FromZip...), a text's Body, and any field
# we do not know, is sealed: a provider that adds a field cannot leak it into the database.
CLEAR_PAYLOAD_FIELDS = frozenset(
    {
        "AccountSid",
        "ApiVersion",
        "CallSid",
        "ParentCallSid",
        "DialCallSid",
        "CallStatus",
        "DialCallStatus",
        "DialCallDuration",
        "CallDuration",
        "Direction",
        "Timestamp",
        "SequenceNumber",
        "CallbackSource",
        "To",
        "Called",
        "call_id",
        "to",
        "reason",
        "occurred_at",
    }
)
SEALED_FIELD = "_sealed"


def seal_payload(cipher: PhiCipher, payload: dict[str, Any]) -> dict[str, Any]:
    """PAYLOAD with every field not in CLEAR_PAYLOAD_FIELDS moved into one encrypted
    JSON object under SEALED_FIELD (absent when there is nothing to seal)."""
    clear = {k: v for k, v in payload.items() if k in CLEAR_PAYLOAD_FIELDS}
    rest = {k: v for k, v in payload.items() if k not in CLEAR_PAYLOAD_FIELDS}
    if rest:
        clear[SEALED_FIELD] = cipher.encrypt(json.dumps(rest, sort_keys=True))
    return clear


def open_payload(cipher: PhiCipher, stored: dict[str, Any]) -> dict[str, Any]:
    """The payload as the provider posted it."""
    opened = {k: v for k, v in stored.items() if k != SEALED_FIELD}
    sealed = stored.get(SEALED_FIELD)
    if isinstance(sealed, str):
        opened.update(json.loads(cipher.decrypt(sealed)))
    return opened


def seal(cipher: PhiCipher, text: str | None) -> str | None:
    return None if text is None else cipher.encrypt(text)


def unseal(cipher: PhiCipher, token: str | None) -> str | None:
    return None if token is None else cipher.decrypt(token)
