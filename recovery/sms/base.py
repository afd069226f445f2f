"""The SMS provider port: what the services need from whoever carries a text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundSms:
    from_number: str
    to_number: str
    body: str
    # Where the provider reports delivery; None where a provider has no callbacks.
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider_sid: str


class SendError(Exception):
    """The provider did not take the text.

    permanent=True means trying again cannot help (an invalid or landline number, an
    unsubscribed recipient, a refused body); False means it may (429, 5xx, a timeout).
    """

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class SmsProvider(Protocol):
    name: str

    def send(self, sms: OutboundSms) -> SendResult: ...
