"""The Twilio provider: the twilio client, with its failures sorted into retry or not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import requests
import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from recovery.models.message import MessageStatus
from recovery.sms.base import (
    OutboundCall,
    OutboundSms,
    PlacedCall,
    SendError,
    SendResult,
    SentText,
)

# Twilio errors that no retry can fix: the number is invalid (21211, 21217), not a mobile
# (21614), unsubscribed from this sender (21610), not SMS-capable or blocked (21612, 21408),
# a body that cannot be sent (21617, 21602), the From is not ours (21606, 21659).
PERMANENT_CODES = frozenset(
    {21211, 21217, 21408, 21602, 21606, 21610, 21612, 21614, 21617, 21659, 30004, 30006}
)
# The same for a call: the From is not a verified caller id of ours (21210), the To is
# invalid or cannot be called (21211, 21214, 13223, 13224), or is in a country we may not
# call (21215, 21216).
CALL_PERMANENT_CODES = frozenset({13223, 13224, 21210, 21211, 21214, 21215, 21216, 21217})


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str = "",
        *,
        timeout_s: float,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._api_base_url = api_base_url
        self._timeout_s = timeout_s
        # One client per thread: twilio's HTTP client keeps the last response on itself and
        # returns it from there, so two threads sharing one can each get the other's
        # answer (and the same message sid). A threaded worker sends from many threads.
        self._local = threading.local()

    def client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            http_client = TwilioHttpClient(timeout=self._timeout_s)
            client = Client(self._account_sid, self._auth_token, http_client=http_client)
            if self._api_base_url:
                # A Twilio-compatible API (SignalWire, a test double): edge and region
                # would rewrite the host back to *.twilio.com, so they must be unset.
                client.api.base_url = self._api_base_url
                client.edge = None
                client.region = None
            self._local.client = client
        return client

    def send(self, sms: OutboundSms) -> SendResult:
        params: dict[str, str | int] = {
            "to": sms.to_number,
            "from_": sms.from_number,
            "body": sms.body,
        }
        if sms.status_callback:
            params["status_callback"] = sms.status_callback
        if sms.validity_period_s:
            params["validity_period"] = sms.validity_period_s
        try:
            message = self.client().messages.create(**params)
        except TwilioRestException as exc:
            raise classify_error(exc) from exc
        except (TwilioException, OSError) as exc:  # connection errors, timeouts
            raise SendError(
                f"twilio unreachable: {exc}", permanent=False, in_doubt=_may_have_arrived(exc)
            ) from exc
        if not message.sid:
            raise SendError("twilio answered without a message sid", permanent=False)
        return SendResult(provider_sid=message.sid)

    def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
        # No DateSent filter: Twilio leaves date_sent empty while a text is still queued
        # (behind its number's rate), and such a text has gone as far as we are concerned.
        # The newest page for one pair of numbers reaches back far enough; the time is
        # compared here, on date_created.
        with _lookup("message list"):
            found = self.client().messages.list(
                to=to_number, from_=from_number, limit=_LOOKUP_PAGE, page_size=_LOOKUP_PAGE
            )
        return [
            SentText(m.sid, m.body or "", m.date_created)
            for m in found
            if m.sid and m.date_created is not None and m.date_created >= since
        ]

    def call(self, call: OutboundCall) -> SendResult:
        params = {
            "to": call.to_number,
            "from_": call.from_number,
            # Twilio fetches what to say when the call is answered, and posts the digit
            # pressed back to the same signed webhook.
            "url": call.twiml_url,
            "method": "POST",
        }
        if call.status_callback:
            params["status_callback"] = call.status_callback
            params["status_callback_method"] = "POST"
        try:
            placed = self.client().calls.create(**params)
        except TwilioRestException as exc:
            raise classify_error(exc, CALL_PERMANENT_CODES) from exc
        except (TwilioException, OSError) as exc:
            raise SendError(
                f"twilio unreachable: {exc}", permanent=False, in_doubt=_may_have_arrived(exc)
            ) from exc
        if not placed.sid:
            raise SendError("twilio answered without a call sid", permanent=False)
        return SendResult(provider_sid=placed.sid)

    def find_calls(self, from_number: str, to_number: str, since: datetime) -> list[PlacedCall]:
        # No StartTime filter, for the reason find_sent has none: a queued call has none.
        with _lookup("call list"):
            found = self.client().calls.list(
                to=to_number, from_=from_number, limit=_LOOKUP_PAGE, page_size=_LOOKUP_PAGE
            )
        return [
            PlacedCall(c.sid, c.date_created)
            for c in found
            if c.sid and c.date_created is not None and c.date_created >= since
        ]


_LOOKUP_PAGE = 50


@contextmanager
def _lookup(what: str) -> Iterator[None]:
    """A failed reconciliation lookup (messages or calls list) is a transient error, not an
    answer: the same translation for both lists."""
    try:
        yield
    except TwilioRestException as exc:
        raise SendError(f"twilio {what}: {exc.status} {exc.code}", permanent=False) from exc
    except (TwilioException, OSError) as exc:
        raise SendError(f"twilio unreachable: {exc}", permanent=False) from exc


def _may_have_arrived(exc: BaseException) -> bool:
    """False only when the request certainly never reached Twilio (no connection was made);
    a read timeout or a connection dropped mid-answer may follow a text Twilio sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return not isinstance(inner, urllib3.exceptions.NewConnectionError)
    return True


def classify_error(
    exc: TwilioRestException, permanent_codes: frozenset[int] = PERMANENT_CODES
) -> SendError:
    code = exc.code if isinstance(exc.code, int) else None
    status = exc.status or 0
    if code in permanent_codes:
        permanent = True
    elif status in (401, 403, 429) or status >= 500:
        # 401/403 are our credentials: an operator fixes them and the waiting texts go out.
        permanent = False
    else:
        # Other 4xx are our mistakes (a bad request, a refused parameter): retrying the same
        # request would fail the same way, and an operator must look.
        permanent = status >= 400
    # A 5xx may come from a proxy in front of a Twilio that did send the text.
    return SendError(
        f"twilio {status} {code}: {exc.msg}",
        permanent=permanent,
        code=code,
        in_doubt=status >= 500,
    )


STATUS_CALLBACK_PATH = "/webhooks/twilio/sms/status"
# A voice page's TwiML (and the digit pressed), and how its call ended.
VOICE_PAGE_PATH = "/webhooks/twilio/voice/page"
VOICE_PAGE_STATUS_PATH = "/webhooks/twilio/voice/page/status"

# Twilio's MessageStatus values in our states. queued/accepted/scheduled/sending all mean
# "Twilio has it", which is what ACCEPTED records; read is delivery with a receipt.
TWILIO_STATUSES = {
    "accepted": MessageStatus.ACCEPTED,
    "scheduled": MessageStatus.ACCEPTED,
    "queued": MessageStatus.ACCEPTED,
    "sending": MessageStatus.ACCEPTED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}

# Twilio's final CallStatus values for a voice page, in the same states: answered reads as
# delivered (someone, or a voicemail, heard it); a call nobody picked up never reached
# the clinician, like an undelivered text.
CALL_STATUSES = {
    "completed": MessageStatus.DELIVERED,
    "busy": MessageStatus.UNDELIVERED,
    "no-answer": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
