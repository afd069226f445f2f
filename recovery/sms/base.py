"""The SMS provider port: what the services need from whoever carries a text (or places a
page's voice call: the same provider, the same practice number)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutboundSms:
    from_number: str
    to_number: str
    body: str
    # Where the provider reports delivery; None where a provider has no callbacks.
    status_callback: str | None = None
    # Seconds the provider may keep trying before it gives the text up (urgent texts).
    validity_period_s: int | None = None


@dataclass(frozen=True)
class OutboundCall:
    """A voice page: the provider rings `to_number` from `from_number` and, once answered,
    asks `twiml_url` what to say (our signed voice webhook, which also takes the digit)."""

    from_number: str
    to_number: str
    twiml_url: str
    # What the call says: the console provider records it; Twilio hears it from twiml_url.
    words: str = ""
    # Where the provider reports how the call ended (answered, busy, no answer, failed).
    status_callback: str | None = None


@dataclass(frozen=True)
class PlacedCall:
    """A call the provider says it has placed (its call list), to tell whether ours went."""

    provider_sid: str
    created_at: datetime


@dataclass(frozen=True)
class SendResult:
    provider_sid: str


@dataclass(frozen=True)
class SentText:
    """A text the provider says it has (its message list), to tell whether ours went out."""

    provider_sid: str
    body: str
    created_at: datetime


class SendError(Exception):
    """The provider did not take the text, or we do not know whether it did.

    permanent=True means trying again cannot help (an invalid or landline number, an
    unsubscribed recipient, a refused body); False means it may (429, 5xx, a timeout).
    in_doubt=True means the request may have reached the provider and been carried out
    (a read timeout, a connection dropped after the request was written, a 5xx): the text
    may have gone, and it is never re-sent before the provider is asked (`find_sent`).
    """

    def __init__(
        self, message: str, *, permanent: bool, code: int | None = None, in_doubt: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.in_doubt = in_doubt


class SmsProvider(Protocol):
    name: str

    def send(self, sms: OutboundSms) -> SendResult: ...

    def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
        """Texts from `from_number` to `to_number` the provider created since `since`,
        newest first. Raises SendError (not permanent) when the provider cannot answer."""
        ...

    def call(self, call: OutboundCall) -> SendResult:
        """Place a call; its failures are SendErrors sorted like a text's."""
        ...

    def find_calls(self, from_number: str, to_number: str, since: datetime) -> list[PlacedCall]:
        """Calls from `from_number` to `to_number` the provider created since `since`,
        newest first; like `find_sent`, for a call whose answer we did not record."""
        ...
