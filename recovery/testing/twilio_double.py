"""A Twilio-shaped HTTP server on loopback for integration tests and benchmarks.

Point the real ``twilio`` client at it::

    with TwilioDouble(account_sid, auth_token) as double:
        client = Client(account_sid, auth_token)
        client.api.base_url = double.base_url
        client.edge = client.region = None
        client.messages.create(to="+15558675310", from_="+15005550006", body="hi")
        double.wait_for_messages(1)

It answers like Twilio's REST API 2010-04-01 so that a request the real API would refuse is
refused here too. It follows Twilio's OpenAPI description (twilio/twilio-oai,
``twilio_api_v2010.json``): the form parameters of ``POST .../Messages.json`` and
``.../Calls.json``, the "one of" groups the spec lists under ``x-twilio.conditional``, and the
properties of the ``api.v2010.account.message`` and ``api.v2010.account.call`` schemas. The
spec documents no error responses at all, so error codes and messages come from Twilio's error
dictionary (https://www.twilio.com/docs/api/errors); where the dictionary has no specific code
for a malformed value the double answers code 400 ("Bad Request").

Endpoints (all under ``/2010-04-01/Accounts/{AccountSid}``, HTTP Basic auth):

- ``POST /Messages.json``        create a message (201, or a Twilio error)
- ``GET  /Messages.json``        list messages, newest first (To, From, DateSent filters, paging)
- ``GET  /Messages/{Sid}.json``  fetch a message
- ``POST /Calls.json``           create a call
- ``GET  /Calls/{Sid}.json``     fetch a call

Anything else is a 404 with Twilio's error JSON. Nothing is logged per request.

Run standalone::

    python -m recovery.testing.twilio_double --port 8999 --account-sid AC... --auth-token ...
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import contextlib
import email.utils
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = [
    "CALL_CREATE_PARAMS",
    "MESSAGE_CREATE_PARAMS",
    "RecordedRequest",
    "TwilioDouble",
    "main",
    "sms_segments",
]

API_VERSION = "2010-04-01"
ERROR_DOCS = "https://www.twilio.com/docs/errors/"

# The form parameters the spec lists for POST /2010-04-01/Accounts/{AccountSid}/Messages.json.
# Anything else is recorded in RecordedRequest.unknown_params and otherwise ignored, as the real
# API ignores parameters it does not know (twilio 9.13 itself sends `MessageIntent`, which the
# spec does not list).
MESSAGE_CREATE_PARAMS: frozenset[str] = frozenset(
    {
        "To",
        "StatusCallback",
        "ApplicationSid",
        "MaxPrice",
        "ProvideFeedback",
        "Attempt",
        "ValidityPeriod",
        "ForceDelivery",
        "ContentRetention",
        "AddressRetention",
        "SmartEncoded",
        "PersistentAction",
        "TrafficType",
        "ShortenUrls",
        "ScheduleType",
        "SendAt",
        "SendAsMms",
        "ContentVariables",
        "RiskCheck",
        "From",
        "FallbackFrom",
        "MessagingServiceSid",
        "Body",
        "MediaUrl",
        "ContentSid",
    }
)

# The form parameters the spec lists for POST /2010-04-01/Accounts/{AccountSid}/Calls.json.
CALL_CREATE_PARAMS: frozenset[str] = frozenset(
    {
        "To",
        "From",
        "Method",
        "FallbackUrl",
        "FallbackMethod",
        "StatusCallback",
        "StatusCallbackEvent",
        "StatusCallbackMethod",
        "SendDigits",
        "Timeout",
        "Record",
        "RecordingChannels",
        "RecordingStatusCallback",
        "RecordingStatusCallbackMethod",
        "SipAuthUsername",
        "SipAuthPassword",
        "MachineDetection",
        "MachineDetectionTimeout",
        "RecordingStatusCallbackEvent",
        "Trim",
        "CallerId",
        "MachineDetectionSpeechThreshold",
        "MachineDetectionSpeechEndThreshold",
        "MachineDetectionSilenceTimeout",
        "AsyncAmd",
        "AsyncAmdStatusCallback",
        "AsyncAmdStatusCallbackMethod",
        "Byoc",
        "CallReason",
        "CallToken",
        "RecordingTrack",
        "TimeLimit",
        "ClientNotificationUrl",
        "Url",
        "Twiml",
        "ApplicationSid",
    }
)

_MESSAGE_BOOLEANS = ("ProvideFeedback", "ForceDelivery", "SmartEncoded", "ShortenUrls", "SendAsMms")
_MESSAGE_ENUMS: dict[str, frozenset[str]] = {
    "ContentRetention": frozenset({"retain", "discard"}),
    "AddressRetention": frozenset({"retain", "obfuscate"}),
    "TrafficType": frozenset({"free"}),
    "ScheduleType": frozenset({"fixed"}),
    "RiskCheck": frozenset({"enable", "disable"}),
}
_CALL_METHOD_PARAMS = (
    "Method",
    "FallbackMethod",
    "StatusCallbackMethod",
    "RecordingStatusCallbackMethod",
    "AsyncAmdStatusCallbackMethod",
)
_CALL_URL_PARAMS = ("FallbackUrl", "StatusCallback", "AsyncAmdStatusCallback")
_CALL_INTEGERS = (
    "MachineDetectionTimeout",
    "MachineDetectionSpeechThreshold",
    "MachineDetectionSpeechEndThreshold",
    "MachineDetectionSilenceTimeout",
    "TimeLimit",
)

_BODY_MAX = 1600  # characters, counted in UTF-16 code units (an emoji counts twice)
_MEDIA_MAX = 10
_TWIML_MAX = 4000

# The codes the double answers with, and the default message for each.
_KNOWN_MESSAGES: dict[int, str] = {
    400: "Bad Request",
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21201: "No 'To' number is specified",
    21205: "Url parameter is required.",
    21208: "Timeout must be an integer between 1 and 600",
    21209: "Method must be one of GET or POST",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric "
    "sender ID.",
    21213: "A 'From' phone number is required.",
    21218: "ApplicationSid {value} is not a valid application SID.",
    21266: "'To' and 'From' number cannot be the same: {to}",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' "
    "number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "The StatusCallback URL {value} is not a valid URL.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number: {from_} via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21620: "Invalid media URL(s).",
    21623: "Number of media files exceeds allowed limit.",
    21624: "Invalid validity period value.",
    21655: "The ContentSid is Invalid.",
    21656: "The ContentVariables Parameter is invalid.",
    21701: "The Messaging Service Sid {value} is invalid.",
    35114: "Scheduling does not support this timestamp.",
}

# GSM 03.38: the basic set costs one septet, the extension set two (escape + character).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
_API_KEY_RE = re.compile(r"^SK[0-9a-fA-F]{32}$")
_ACCOUNT_PATH_RE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)(?P<rest>/.*)?$")
_MESSAGE_PATH_RE = re.compile(r"^/Messages/(?P<sid>[^/]+)\.json$")
_CALL_PATH_RE = re.compile(r"^/Calls/(?P<sid>[^/]+)\.json$")
_MESSAGE_SID_RE = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_CALL_SID_RE = re.compile(r"^CA[0-9a-fA-F]{32}$")
_SID_PATTERNS = {
    "MessagingServiceSid": re.compile(r"^MG[0-9a-fA-F]{32}$"),
    "ContentSid": re.compile(r"^HX[0-9a-fA-F]{32}$"),
    "ApplicationSid": re.compile(r"^AP[0-9a-fA-F]{32}$"),
    "Byoc": re.compile(r"^BY[0-9a-fA-F]{32}$"),
}
_CHANNEL_RE = re.compile(r"^(?P<channel>[A-Za-z][A-Za-z0-9-]*):(?P<address>.+)$")
_PHONE_PUNCTUATION_RE = re.compile(r"[\s().\-]")
_FULL_NUMBER_RE = re.compile(r"^\+?[1-9]\d{6,14}$")
_SENDER_NUMBER_RE = re.compile(r"^\+?\d{3,15}$")  # includes 5-6 digit short codes
_ALPHANUMERIC_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 +\-_&]{1,11}$")


@dataclass(frozen=True)
class RecordedRequest:
    """One POST the double received, accepted or refused.

    ``form`` holds the first value of each form parameter; ``form_lists`` holds every value
    (``MediaUrl``, ``PersistentAction`` and ``StatusCallbackEvent`` repeat). ``unknown_params``
    are the parameter names the spec does not list for the endpoint; they are kept in ``form``.
    """

    method: str
    path: str
    form: dict[str, str]
    received_at: float
    account_sid: str
    auth_ok: bool
    status: int = 0
    error_code: int | None = None
    error_message: str | None = None
    sid: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    form_lists: dict[str, list[str]] = field(default_factory=dict)
    unknown_params: tuple[str, ...] = ()
    seq: int = 0

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def summary(self) -> str:
        outcome = f"{self.status}" + (f"/{self.error_code}" if self.error_code else "")
        return (
            f"#{self.seq} {self.method} {self.path} -> {outcome} "
            f"To={self.form.get('To')!r} Body={self.form.get('Body', '')[:40]!r}"
        )


@dataclass(frozen=True)
class _InjectedFailure:
    status: int
    code: int
    message: str
    retry_after: float | None


class _ApiError(Exception):
    def __init__(
        self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"{ERROR_DOCS}{self.code}",
            "status": self.status,
        }


def _error(code: int, status: int = 400, **fields: str) -> _ApiError:
    return _ApiError(status, code, _KNOWN_MESSAGES[code].format(**fields))


def _bad_value(name: str, value: str) -> _ApiError:
    return _ApiError(400, 400, f"Invalid value {value!r} for parameter '{name}'.")


def sms_segments(body: str) -> int:
    """How many SMS segments ``body`` takes: GSM-7 160 (153 per part), else UCS-2 70 (67).

    GSM-7 extension characters cost two septets and UCS-2 astral characters (emoji) two code
    units; neither is split across a segment boundary. An empty body (a media-only message)
    counts as one segment, as Twilio reports it.
    """
    if not body:
        return 1
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in body):
        units = [2 if ch in _GSM7_EXTENSION else 1 for ch in body]
        single, multi = 160, 153
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, multi = 70, 67
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for unit in units:
        if used + unit > multi:
            segments += 1
            used = 0
        used += unit
    return segments


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment.replace(microsecond=0))


def _canonical_address(value: str) -> str:
    """``+1 (555) 010-0100`` -> ``+15550100100``; ``whatsapp:+1 555...`` keeps its prefix."""
    value = value.strip()
    match = _CHANNEL_RE.match(value)
    if match:
        return f"{match['channel'].lower()}:{_canonical_address(match['address'])}"
    return _PHONE_PUNCTUATION_RE.sub("", value)


def _is_valid_recipient(value: str) -> bool:
    canonical = _canonical_address(value)
    match = _CHANNEL_RE.match(canonical)
    if match:
        if match["channel"] in ("whatsapp", "sms", "mms", "rcs"):
            return bool(_FULL_NUMBER_RE.match(match["address"]))
        return bool(match["address"])
    return bool(_FULL_NUMBER_RE.match(canonical))


def _is_valid_sender(value: str) -> bool:
    stripped = value.strip()
    if _CHANNEL_RE.match(stripped):
        return True
    if _SENDER_NUMBER_RE.match(_canonical_address(stripped)):
        return True
    return bool(_ALPHANUMERIC_SENDER_RE.match(stripped))


def _is_valid_url(value: str, *, allow_underscore_host: bool = True) -> bool:
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False
    return allow_underscore_host or "_" not in host


def _parse_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def _parse_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def _parse_iso8601(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_filter_date(value: str) -> date | None:
    """DateSent filters: ``YYYY-MM-DD``, an ISO 8601 timestamp, or an RFC 2822 date."""
    text = value.strip()
    moment = _parse_iso8601(text)
    if moment is not None:
        return moment.astimezone(UTC).date()
    try:
        return email.utils.parsedate_to_datetime(text).astimezone(UTC).date()
    except (TypeError, ValueError, IndexError):
        return None


def _new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _us_formatted(number: str) -> str:
    digits = _canonical_address(number)
    if re.fullmatch(r"\+1\d{10}", digits):
        return f"({digits[2:5]}) {digits[5:8]}-{digits[8:]}"
    return number


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], double: TwilioDouble) -> None:
        self.double = double
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Never print to stderr: a client hanging up mid-request is normal under load, and
        # anything else is kept for the test to look at (TwilioDouble.server_errors).
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or exc is None:
            return
        self.double._record_server_error(repr(exc))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the twilio client's requests.Session expects
    server_version = "twilio-double/1"
    sys_version = ""
    timeout = 120  # seconds an idle keep-alive connection is kept
    # The headers and the body leave in two writes; with Nagle's algorithm the body waited
    # for the client's delayed ACK, 40 ms on every answer (measured: 48 ms per send against
    # a double set to answer at once), which no real API adds.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: benchmarks send thousands of requests."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        received_at = time.time()
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            body = b""
        double = self.server.double
        try:
            status, payload, headers = double._handle(
                method=self.command,
                target=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                received_at=received_at,
            )
        except Exception:  # a bug in the double: answer like Twilio's 500, keep the traceback
            double._record_server_error(traceback.format_exc())
            error = _ApiError(500, 20500, _KNOWN_MESSAGES[20500])
            status, payload, headers = error.status, error.body(), {}
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Twilio-Request-Id", _new_sid("RQ"))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class TwilioDouble:
    """A loopback stand-in for api.twilio.com; see the module docstring.

    ``api_keys`` maps API key SIDs (``SK...``) to their secrets. Per the project's convention a
    well-formed ``SK...`` username not in ``api_keys`` is accepted with the auth token as its
    password.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        delay_s: float = 0.0,
        *,
        api_keys: Mapping[str, str] | None = None,
    ) -> None:
        if not _ACCOUNT_SID_RE.match(account_sid):
            raise ValueError(f"account_sid must match ^AC[0-9a-fA-F]{{32}}$, got {account_sid!r}")
        if not auth_token:
            raise ValueError("auth_token must not be empty")
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self._requested_port = port
        self._api_keys = dict(api_keys or {})
        self._delay_s = float(delay_s)

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seq = 0
        self._messages: list[RecordedRequest] = []
        self._accepted_count = 0
        self._calls: list[RecordedRequest] = []
        self._message_store: dict[str, dict[str, Any]] = {}
        self._call_store: dict[str, dict[str, Any]] = {}
        self._failures: deque[_InjectedFailure] = deque()
        self._refused: dict[str, _ApiError] = {}
        self._server_errors: list[str] = []

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TwilioDouble:
        if self._server is not None:
            raise RuntimeError("TwilioDouble already started")
        self._stopping.clear()
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"twilio-double:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes requests sleeping in the injected delay
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> TwilioDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("TwilioDouble is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ inspection

    def messages(self) -> list[RecordedRequest]:
        """Every POST to Messages.json, accepted or refused, in arrival order."""
        with self._lock:
            return list(self._messages)

    def accepted_messages(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._messages if r.accepted]

    def calls(self) -> list[RecordedRequest]:
        """Every POST to Calls.json, accepted or refused, in arrival order."""
        with self._lock:
            return list(self._calls)

    def _record_server_error(self, description: str) -> None:
        with self._lock:
            self._server_errors.append(description)

    @property
    def server_errors(self) -> list[str]:
        """Exceptions raised inside the double while serving (a bug in the double if any)."""
        with self._lock:
            return list(self._server_errors)

    def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``n`` messages were accepted; return all accepted ones."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if self._accepted_count >= n:
                    return [r for r in self._messages if r.accepted]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    accepted = [r for r in self._messages if r.accepted]
                    seen = "\n  ".join(r.summary() for r in self._messages) or "(none)"
                    raise AssertionError(
                        f"expected >= {n} accepted messages within {timeout}s, got "
                        f"{len(accepted)} accepted of {len(self._messages)} received:\n  {seen}"
                    )
                self._changed.wait(remaining)

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        n: int,
        status: int = 500,
        code: int | None = None,
        message: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        """The next ``n`` Messages.json POSTs (that pass authentication) get this error.

        ``code`` defaults to 20000 + status (20429, 20500, 20503, ...). ``retry_after`` adds a
        Retry-After header.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx HTTP status")
        resolved_code = code if code is not None else 20000 + status
        if message is None:
            template = _KNOWN_MESSAGES.get(resolved_code)
            if template is None or "{" in template:
                template = HTTPStatus(status).phrase
            message = template
        failure = _InjectedFailure(status, resolved_code, message, retry_after)
        with self._lock:
            self._failures.extend([failure] * n)

    def refuse_number(
        self,
        to: str,
        code: int = 21211,
        status: int = 400,
        message: str | None = None,
    ) -> None:
        """Every message to ``to`` gets this error: 21211 invalid number, 21614 not a mobile
        number, 21610 unsubscribed (STOP), 21612 unreachable, 21408 region not enabled."""
        if message is None:
            template = _KNOWN_MESSAGES.get(code, "The 'To' number {to} was refused.")
            message = template.format(to=to, from_="", path="", value=to)
        with self._lock:
            self._refused[_canonical_address(to)] = _ApiError(status, code, message)

    def set_delay(self, seconds: float) -> None:
        """Delay before answering each POST (other requests are served meanwhile)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._delay_s = float(seconds)

    def reset(self) -> None:
        """Forget recordings, stored resources, queued failures and refused numbers.

        The delay is configuration, not an injected failure, and is kept.
        """
        with self._lock:
            self._messages.clear()
            self._accepted_count = 0
            self._calls.clear()
            self._message_store.clear()
            self._call_store.clear()
            self._failures.clear()
            self._refused.clear()
            self._server_errors.clear()

    # ------------------------------------------------------------------ request handling

    def _handle(
        self,
        *,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: float,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self._seq += 1
            seq = self._seq
            delay = self._delay_s
        if method == "POST" and delay > 0:
            self._stopping.wait(delay)

        parts = urlsplit(target)
        path = parts.path
        match = _ACCOUNT_PATH_RE.match(path)
        rest = (match["rest"] or "") if match else ""
        path_account = match["account"] if match else ""
        auth_ok = self._authenticate(headers.get("authorization"))

        record_kind: str | None = None
        if match and method == "POST" and rest in ("/Messages.json", "/Calls.json"):
            record_kind = "message" if rest == "/Messages.json" else "call"
        form_lists: dict[str, list[str]] = {}
        if record_kind is not None:
            form_lists = self._parse_form(headers, body)

        try:
            if not match:
                raise _error(20404, 404, path=path)
            if not auth_ok:
                raise _ApiError(
                    401,
                    20003,
                    _KNOWN_MESSAGES[20003],
                    {"WWW-Authenticate": 'Basic realm="Twilio API"'},
                )
            if path_account != self.account_sid:
                raise _error(20404, 404, path=path)
            status, payload = self._route(method, path, rest, parts.query, form_lists)
            error_headers: dict[str, str] = {}
        except _ApiError as exc:
            status, payload, error_headers = exc.status, exc.body(), exc.headers
            if record_kind is None:
                return status, payload, error_headers

        if record_kind is not None:
            known = MESSAGE_CREATE_PARAMS if record_kind == "message" else CALL_CREATE_PARAMS
            record = RecordedRequest(
                method=method,
                path=path,
                form={name: values[0] for name, values in form_lists.items()},
                received_at=received_at,
                account_sid=path_account,
                auth_ok=auth_ok,
                status=status,
                error_code=None if status < 300 else payload.get("code"),
                error_message=None if status < 300 else payload.get("message"),
                sid=payload.get("sid") if status < 300 else None,
                response=payload,
                form_lists=form_lists,
                unknown_params=tuple(sorted(set(form_lists) - known)),
                seq=seq,
            )
            with self._changed:
                if status < 300:
                    store = self._message_store if record_kind == "message" else self._call_store
                    store[payload["sid"]] = payload
                if record_kind == "message":
                    bisect.insort(self._messages, record, key=lambda r: r.seq)
                    self._accepted_count += record.accepted
                else:
                    bisect.insort(self._calls, record, key=lambda r: r.seq)
                self._changed.notify_all()
        return status, payload, error_headers

    def _authenticate(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password = decoded.partition(":")
        if not sep:
            return False
        if username == self.account_sid:
            return password == self.auth_token
        if _API_KEY_RE.match(username):
            expected = self._api_keys.get(username, self.auth_token)
            return password == expected
        return False

    @staticmethod
    def _parse_form(headers: Mapping[str, str], body: bytes) -> dict[str, list[str]]:
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded" or not body:
            # Twilio reads form-encoded bodies only; JSON or multipart reads as no parameters.
            return {}
        lists: dict[str, list[str]] = {}
        text = body.decode("utf-8", errors="replace")
        for name, value in parse_qsl(text, keep_blank_values=True):
            lists.setdefault(name, []).append(value)
        return lists

    def _route(
        self,
        method: str,
        path: str,
        rest: str,
        query: str,
        form: dict[str, list[str]],
    ) -> tuple[int, dict[str, Any]]:
        if rest == "/Messages.json":
            if method == "POST":
                return 201, self._create_message(form)
            if method == "GET":
                return 200, self._list_messages(query)
        elif rest == "/Calls.json":
            if method == "POST":
                return 201, self._create_call(form)
        elif method == "GET":
            message_match = _MESSAGE_PATH_RE.match(rest)
            if message_match and _MESSAGE_SID_RE.match(message_match["sid"]):
                with self._lock:
                    found = self._message_store.get(message_match["sid"])
                if found is not None:
                    return 200, found
            call_match = _CALL_PATH_RE.match(rest)
            if call_match and _CALL_SID_RE.match(call_match["sid"]):
                with self._lock:
                    found = self._call_store.get(call_match["sid"])
                if found is not None:
                    return 200, found
        raise _error(20404, 404, path=path)

    # ------------------------------------------------------------------ messages

    def _create_message(self, lists: dict[str, list[str]]) -> dict[str, Any]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            extra = {}
            if failure.retry_after is not None:
                extra["Retry-After"] = f"{failure.retry_after:g}"
            raise _ApiError(failure.status, failure.code, failure.message, extra)

        def value(name: str) -> str:
            values = lists.get(name)
            return values[0] if values else ""

        to, from_, service = value("To"), value("From"), value("MessagingServiceSid")
        body, content_sid = value("Body"), value("ContentSid")
        media = [url for url in lists.get("MediaUrl", []) if url]

        # Required parameters ("one of" groups per the spec's x-twilio.conditional).
        if not to.strip():
            raise _error(21604)
        if not from_.strip() and not service.strip():
            raise _error(21603)
        if not body and not media and not content_sid:
            raise _error(21602)
        if _utf16_length(body) > _BODY_MAX:
            raise _error(21617)

        # Addresses.
        if not _is_valid_recipient(to):
            raise _error(21211, to=to)
        if from_ and not _is_valid_sender(from_):
            raise _error(21212, from_=from_)
        if from_ and _canonical_address(from_) == _canonical_address(to):
            raise _error(21266, to=to)

        # Formats of the remaining parameters.
        if service and not _SID_PATTERNS["MessagingServiceSid"].match(service):
            raise _error(21701, value=service)
        if content_sid and not _SID_PATTERNS["ContentSid"].match(content_sid):
            raise _error(21655)
        application_sid = value("ApplicationSid")
        if application_sid and not _SID_PATTERNS["ApplicationSid"].match(application_sid):
            raise _error(21218, value=application_sid)
        status_callback = value("StatusCallback")
        if status_callback and not _is_valid_url(status_callback, allow_underscore_host=False):
            raise _error(21609, value=status_callback)
        if len(media) > _MEDIA_MAX:
            raise _error(21623)
        if any(not _is_valid_url(url) for url in media):
            raise _error(21620)
        validity = value("ValidityPeriod")
        if validity:
            seconds = _parse_int(validity)
            if seconds is None or not 1 <= seconds <= 36000:
                raise _error(21624)
        for name in _MESSAGE_BOOLEANS:
            raw = value(name)
            if raw and _parse_bool(raw) is None:
                raise _bad_value(name, raw)
        for name, allowed in _MESSAGE_ENUMS.items():
            raw = value(name)
            if raw and raw not in allowed:
                raise _bad_value(name, raw)
        attempt = value("Attempt")
        if attempt and _parse_int(attempt) is None:
            raise _bad_value("Attempt", attempt)
        max_price = value("MaxPrice")
        if max_price:
            try:
                float(max_price)
            except ValueError:
                raise _bad_value("MaxPrice", max_price) from None
        content_variables = value("ContentVariables")
        if content_variables:
            try:
                parsed = json.loads(content_variables)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise _error(21656)
        now = datetime.now(UTC)
        send_at_raw = value("SendAt")
        send_at = _parse_iso8601(send_at_raw) if send_at_raw else None
        if send_at_raw and send_at is None:
            raise _error(35114)
        # Scheduling only takes effect with a Messaging Service; without one Twilio drops the
        # scheduling parameters and sends at once.
        scheduled = value("ScheduleType") == "fixed" and send_at is not None and bool(service)
        if scheduled and send_at is not None:
            lead = send_at - now
            if lead < timedelta(minutes=15) or lead > timedelta(days=35):
                raise _error(35114)

        # Injected per-recipient refusals come after Twilio's own validation.
        with self._lock:
            refusal = self._refused.get(_canonical_address(to))
        if refusal is not None:
            raise _ApiError(refusal.status, refusal.code, refusal.message)

        sid = _new_sid("MM" if media else "SM")
        uri_base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        stamp = _rfc2822(now)
        sender_assigned = bool(from_)
        subresource_uris = {"media": f"{uri_base}/Media.json"}
        if _parse_bool(value("ProvideFeedback") or "false"):
            subresource_uris["feedback"] = f"{uri_base}/Feedback.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": stamp,
            "date_sent": None if scheduled else stamp,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service or None,
            "num_media": str(len(media)),
            # A Messaging Service message has no sender yet, hence "0" (per the spec).
            "num_segments": str(sms_segments(body)) if sender_assigned and not scheduled else "0",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "scheduled" if scheduled else "queued",
            "subresource_uris": subresource_uris,
            "to": to,
            "uri": f"{uri_base}.json",
        }

    def _list_messages(self, query: str) -> dict[str, Any]:
        params: dict[str, str] = {}
        for name, raw in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, raw)
        page_size = _parse_int(params.get("PageSize", "50"))
        if page_size is None or not 1 <= page_size <= 1000:
            raise _bad_value("PageSize", params.get("PageSize", ""))
        page = _parse_int(params.get("Page", "0"))
        if page is None or page < 0:
            raise _bad_value("Page", params.get("Page", ""))
        date_filters: list[tuple[str, date]] = []
        for name in ("DateSent", "DateSent<", "DateSent>"):
            if params.get(name):
                parsed = _parse_filter_date(params[name])
                if parsed is None:
                    raise _bad_value(name, params[name])
                date_filters.append((name, parsed))
        to = _canonical_address(params["To"]) if params.get("To") else None
        from_ = _canonical_address(params["From"]) if params.get("From") else None

        def keep(message: dict[str, Any]) -> bool:
            if to is not None and _canonical_address(message["to"] or "") != to:
                return False
            if from_ is not None and _canonical_address(message["from"] or "") != from_:
                return False
            if date_filters:
                if message["date_sent"] is None:
                    return False
                sent = email.utils.parsedate_to_datetime(message["date_sent"]).date()
                for name, bound in date_filters:
                    if name == "DateSent" and sent != bound:
                        return False
                    if name == "DateSent<" and sent > bound:
                        return False
                    if name == "DateSent>" and sent < bound:
                        return False
            return True

        with self._lock:
            ordered = [self._message_store[r.sid] for r in self._messages if r.sid]
        matching = [m for m in reversed(ordered) if keep(m)]  # newest first
        start = page * page_size
        chunk = matching[start : start + page_size]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        filters = {k: v for k, v in params.items() if k in ("To", "From") or k.startswith("Date")}

        def page_uri(index: int) -> str:
            query_items = {**filters, "PageSize": str(page_size), "Page": str(index)}
            if index > 0:
                query_items["PageToken"] = f"PASM{index * page_size}"
            return f"{base}?{urlencode(query_items, quote_via=quote)}"

        has_next = start + page_size < len(matching)
        return {
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "messages": chunk,
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }

    # ------------------------------------------------------------------ calls

    def _create_call(self, lists: dict[str, list[str]]) -> dict[str, Any]:
        def value(name: str) -> str:
            values = lists.get(name)
            return values[0] if values else ""

        to, from_ = value("To").strip(), value("From").strip()
        url, twiml, application_sid = value("Url"), value("Twiml"), value("ApplicationSid")
        if not to:
            raise _error(21201)
        if not from_:
            raise _error(21213)
        if not url and not twiml and not application_sid:
            raise _error(21205)
        if not _CHANNEL_RE.match(to) and not _FULL_NUMBER_RE.match(_canonical_address(to)):
            raise _error(21211, to=to)
        if not _CHANNEL_RE.match(from_) and not _SENDER_NUMBER_RE.match(_canonical_address(from_)):
            raise _error(21212, from_=from_)
        if url and not _is_valid_url(url):
            raise _ApiError(400, 21205, f"Url is not a valid URL: {url}")
        if application_sid and not _SID_PATTERNS["ApplicationSid"].match(application_sid):
            raise _error(21218, value=application_sid)
        if len(twiml) > _TWIML_MAX:
            raise _bad_value("Twiml", f"{twiml[:20]}...")
        for name in _CALL_METHOD_PARAMS:
            raw = value(name)
            if raw and raw.upper() not in ("GET", "POST"):
                raise _error(21209)
        for name in _CALL_URL_PARAMS:
            raw = value(name)
            if raw and not _is_valid_url(raw, allow_underscore_host=False):
                if name == "StatusCallback":
                    raise _error(21609, value=raw)
                raise _bad_value(name, raw)
        timeout = value("Timeout")
        if timeout:
            seconds = _parse_int(timeout)
            if seconds is None or not 1 <= seconds <= 600:
                raise _error(21208)
        record = value("Record")
        if record and _parse_bool(record) is None:
            raise _bad_value("Record", record)
        for name in _CALL_INTEGERS:
            raw = value(name)
            if raw and _parse_int(raw) is None:
                raise _bad_value(name, raw)
        byoc = value("Byoc")
        if byoc and not _SID_PATTERNS["Byoc"].match(byoc):
            raise _bad_value("Byoc", byoc)

        sid = _new_sid("CA")
        uri_base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}"
        stamp = _rfc2822(datetime.now(UTC))
        subresources = (
            "notifications",
            "recordings",
            "payments",
            "events",
            "siprec",
            "streams",
            "transcriptions",
            "user_defined_message_subscriptions",
            "user_defined_messages",
        )
        camel = {
            "user_defined_message_subscriptions": "UserDefinedMessageSubscriptions",
            "user_defined_messages": "UserDefinedMessages",
        }
        return {
            "account_sid": self.account_sid,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": stamp,
            "date_updated": stamp,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": _us_formatted(from_),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                name: f"{uri_base}/{camel.get(name, name.capitalize())}.json"
                for name in subresources
            },
            "to": to,
            "to_formatted": _us_formatted(to),
            "trunk_sid": None,
            "uri": f"{uri_base}.json",
        }


# ---------------------------------------------------------------------- standalone


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m recovery.testing.twilio_double",
        description="Serve a Twilio-shaped REST API on loopback for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument(
        "--account-sid",
        default=os.environ.get("TWILIO_ACCOUNT_SID", ""),
        help="defaults to $TWILIO_ACCOUNT_SID",
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN", ""),
        help="defaults to $TWILIO_AUTH_TOKEN",
    )
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before each POST answer")
    args = parser.parse_args(argv)
    if not args.account_sid or not args.auth_token:
        parser.error("--account-sid and --auth-token are required (or the TWILIO_* variables)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: list[tuple[int, Any]] = [
        (sig, signal.signal(sig, on_signal)) for sig in (signal.SIGINT, signal.SIGTERM)
    ]
    try:
        double = TwilioDouble(
            args.account_sid,
            args.auth_token,
            host=args.host,
            port=args.port,
            delay_s=args.delay_ms / 1000.0,
        )
    except ValueError as exc:
        print(f"twilio double: {exc}", file=sys.stderr)
        return 2
    try:
        with double:
            print(f"twilio double listening on {double.base_url}", flush=True)
            while not stop.wait(0.5):
                pass
            accepted = len(double.accepted_messages())
            received = len(double.messages())
    finally:
        for sig, handler in previous:
            signal.signal(sig, handler)
    print(f"twilio double accepted {accepted} messages ({received - accepted} refused)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
