"""Encryption of what patients write to us (it may hold PHI) before it is stored."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class PhiCipher:
    """Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from a configured secret.

    The key is derived rather than configured raw so one SECRET_KEY is enough for a small
    install; PHI_ENCRYPTION_KEY separates it from the session key where policy asks.
    """

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("no key to encrypt patient messages: set SECRET_KEY")
        digest = hashlib.sha256(b"recovery-phi-v1:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ValueError("cannot decrypt: wrong key or damaged text") from None
