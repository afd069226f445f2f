"""A Twilio-shaped HTTP server on loopback for integration tests and benchmarks.

Point the real ``twilio`` client at it::

    with TwilioDouble(account_sid, auth_token) as double:
        client = Client(account_sid, auth_token)
        client.api.base_url = double.base_url
        client.edge = client.region = None
        client.messages.create(to="+15558675310", from_="+15005550006", body="hi")
        double.wait_for_messages(1)

It answers what Recovery calls, the way Twilio's REST API 2010-04-01 does, so that a request
the real API would refuse is refused here too: the form parameters and the response properties
follow Twilio's OpenAPI description (twilio/twilio-oai, ``twilio_api_v2010.json``), error codes
and messages Twilio's error dictionary (https://www.twilio.com/docs/api/errors). Only what the
product sends is modelled (no media, scheduling, messaging services or API keys): a parameter
it does not model is accepted and ignored, as the real API ignores what it does not know.

Endpoints (all under ``/2010-04-01/Accounts/{AccountSid}``, HTTP Basic auth):

- ``POST /Messages.json``  send a text (201, or a Twilio error)
- ``GET  /Messages.json``  list texts, newest first, by To, From and DateSent (reconciliation:
  "did this text already go out?")
- ``POST /Calls.json``     place a call (voice pages)
- ``GET  /Calls.json``     list calls, newest first, by To and From (reconciliation: "did
  this call already go out?")

Anything else is a 404 with Twilio's error JSON. Failures are injected with ``fail_next``,
``refuse_number``, ``set_delay`` (answer late, the text created only then),
``hold_answers`` (the text created at once, the answer late) and ``drop_next``. Nothing is
logged per request.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import email.utils
import json
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = ["RecordedRequest", "TwilioDouble", "sms_segments"]

API_VERSION = "2010-04-01"
ERROR_DOCS = "https://www.twilio.com/docs/errors/"

_BODY_MAX = 1600  # characters, counted in UTF-16 code units (an emoji counts twice)
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
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric "
    "sender ID.",
    21213: "A 'From' phone number is required.",
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
}

# GSM 03.38: the basic set costs one septet, the extension set two (escape + character).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
_ACCOUNT_PATH_RE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)(?P<rest>/.*)?$")
_PHONE_PUNCTUATION_RE = re.compile(r"[\s().\-]")
_FULL_NUMBER_RE = re.compile(r"^\+?[1-9]\d{6,14}$")
_SENDER_NUMBER_RE = re.compile(r"^\+?\d{3,15}$")  # includes 5-6 digit short codes


@dataclass(frozen=True)
class RecordedRequest:
    """One POST the double received, accepted or refused; ``form`` holds each parameter's
    first value."""

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


class _Dropped(Exception):
    """The text was created; the connection is closed without an answer."""


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
    units; neither is split across a segment boundary.
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


def _canonical_number(value: str) -> str:
    """``+1 (555) 010-0100`` -> ``+15550100100``."""
    return _PHONE_PUNCTUATION_RE.sub("", value.strip())


def _is_valid_url(value: str) -> bool:
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def _parse_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def _parse_filter_date(value: str) -> date | None:
    """DateSent filters: ``YYYY-MM-DD``, an ISO 8601 timestamp, or an RFC 2822 date."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()


def _new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _us_formatted(number: str) -> str:
    digits = _canonical_number(number)
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

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        received_at = time.time()
        body = self._read_body()
        double = self.server.double
        try:
            status, payload, headers = double._handle(
                method=self.command,
                target=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                received_at=received_at,
            )
        except _Dropped:
            self.close_connection = True  # sent, but the answer never leaves
            return
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
        self.wfile.write(data)


class TwilioDouble:
    """A loopback stand-in for api.twilio.com; see the module docstring."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        delay_s: float = 0.0,
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
        self._delay_s = float(delay_s)

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seq = 0
        self._messages: list[RecordedRequest] = []
        self._accepted_count = 0
        self._calls: list[RecordedRequest] = []
        self._failures: deque[_InjectedFailure] = deque()
        self._hold_s = 0.0
        self._drops = 0
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
        return f"http://{self.host}:{self.port}"

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

    def accepted_calls(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._calls if r.accepted]

    def wait_for_calls(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``n`` calls were placed; return all placed ones."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                placed = [r for r in self._calls if r.accepted]
                if len(placed) >= n:
                    return placed
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = "\n  ".join(r.summary() for r in self._calls) or "(none)"
                    raise AssertionError(
                        f"expected >= {n} placed calls within {timeout}s, got {len(placed)} "
                        f"of {len(self._calls)} received:\n  {seen}"
                    )
                self._changed.wait(remaining)

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
            self._refused[_canonical_number(to)] = _ApiError(status, code, message)

    def hold_answers(self, seconds: float) -> None:
        """Create each accepted text at once but answer only ``seconds`` later: the window
        in which the provider has sent a text and its sender has not yet heard so."""
        if seconds < 0:
            raise ValueError("hold must be >= 0")
        with self._lock:
            self._hold_s = float(seconds)

    def drop_next(self, n: int) -> None:
        """The next ``n`` accepted texts are created, then their connection is closed
        without an answer (a load balancer timing out, a network cut)."""
        with self._lock:
            self._drops += n

    def set_delay(self, seconds: float) -> None:
        """Delay before answering each POST (other requests are served meanwhile)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._delay_s = float(seconds)

    def reset(self) -> None:
        """Forget recordings, queued failures and refused numbers.

        The delay is configuration, not an injected failure, and is kept.
        """
        with self._lock:
            self._messages.clear()
            self._accepted_count = 0
            self._calls.clear()
            self._failures.clear()
            self._drops = 0
            self._hold_s = 0.0
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
        form: dict[str, str] = {}
        if record_kind is not None:
            form = self._parse_form(headers, body)

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
            status, payload = self._route(method, path, rest, parts.query, form)
            error_headers: dict[str, str] = {}
        except _ApiError as exc:
            status, payload, error_headers = exc.status, exc.body(), exc.headers
            if record_kind is None:
                return status, payload, error_headers

        if record_kind is not None:
            record = RecordedRequest(
                method=method,
                path=path,
                form=form,
                received_at=received_at,
                account_sid=path_account,
                auth_ok=auth_ok,
                status=status,
                error_code=None if status < 300 else payload.get("code"),
                error_message=None if status < 300 else payload.get("message"),
                sid=payload.get("sid") if status < 300 else None,
                response=payload,
                seq=seq,
            )
            with self._changed:
                # Requests answer out of order under a delay; the record keeps arrival order.
                if record_kind == "message":
                    bisect.insort(self._messages, record, key=lambda r: r.seq)
                    self._accepted_count += record.accepted
                else:
                    bisect.insort(self._calls, record, key=lambda r: r.seq)
                self._changed.notify_all()
                hold, drop = self._hold_s, False
                if record_kind == "message" and record.accepted and self._drops:
                    self._drops -= 1
                    drop = True
            if record_kind == "message" and record.accepted:
                if hold > 0:
                    self._stopping.wait(hold)
                if drop:
                    raise _Dropped
        return status, payload, error_headers

    def _authenticate(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password = decoded.partition(":")
        return bool(sep) and username == self.account_sid and password == self.auth_token

    @staticmethod
    def _parse_form(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded" or not body:
            # Twilio reads form-encoded bodies only; JSON or multipart reads as no parameters.
            return {}
        form: dict[str, str] = {}
        for name, value in parse_qsl(body.decode("utf-8", errors="replace"), True):
            form.setdefault(name, value)
        return form

    def _route(
        self, method: str, path: str, rest: str, query: str, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if rest == "/Messages.json" and method == "POST":
            return 201, self._create_message(form)
        if rest == "/Messages.json" and method == "GET":
            return 200, self._list_messages(query)
        if rest == "/Calls.json" and method == "POST":
            return 201, self._create_call(form)
        if rest == "/Calls.json" and method == "GET":
            return 200, self._list_calls(query)
        raise _error(20404, 404, path=path)

    # ------------------------------------------------------------------ messages

    def _create_message(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            extra = {}
            if failure.retry_after is not None:
                extra["Retry-After"] = f"{failure.retry_after:g}"
            raise _ApiError(failure.status, failure.code, failure.message, extra)

        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to.strip():
            raise _error(21604)
        if not from_.strip():
            raise _error(21603)
        if not body:
            raise _error(21602)
        if _utf16_length(body) > _BODY_MAX:
            raise _error(21617)
        if not _FULL_NUMBER_RE.match(_canonical_number(to)):
            raise _error(21211, to=to)
        if not _SENDER_NUMBER_RE.match(_canonical_number(from_)):
            raise _error(21212, from_=from_)
        if _canonical_number(from_) == _canonical_number(to):
            raise _error(21266, to=to)
        status_callback = form.get("StatusCallback", "")
        if status_callback and not _is_valid_url(status_callback):
            raise _error(21609, value=status_callback)

        # Injected per-recipient refusals come after Twilio's own validation.
        with self._lock:
            refusal = self._refused.get(_canonical_number(to))
        if refusal is not None:
            raise _ApiError(refusal.status, refusal.code, refusal.message)

        sid = _new_sid("SM")
        uri_base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        stamp = _rfc2822(datetime.now(UTC))
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": stamp,
            "date_sent": stamp,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(sms_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri_base}/Media.json"},
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
        to = _canonical_number(params["To"]) if params.get("To") else None
        from_ = _canonical_number(params["From"]) if params.get("From") else None

        def keep(message: dict[str, Any]) -> bool:
            if to is not None and _canonical_number(message["to"]) != to:
                return False
            if from_ is not None and _canonical_number(message["from"]) != from_:
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
            ordered = [r.response for r in self._messages if r.accepted]
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

    def _list_calls(self, query: str) -> dict[str, Any]:
        params: dict[str, str] = {}
        for name, raw in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, raw)
        page_size = _parse_int(params.get("PageSize", "50"))
        if page_size is None or not 1 <= page_size <= 1000:
            raise _bad_value("PageSize", params.get("PageSize", ""))
        page = _parse_int(params.get("Page", "0"))
        if page is None or page < 0:
            raise _bad_value("Page", params.get("Page", ""))
        to = _canonical_number(params["To"]) if params.get("To") else None
        from_ = _canonical_number(params["From"]) if params.get("From") else None

        def keep(call: dict[str, Any]) -> bool:
            if to is not None and _canonical_number(call["to"]) != to:
                return False
            return from_ is None or _canonical_number(call["from"]) == from_

        with self._lock:
            ordered = [r.response for r in self._calls if r.accepted]
        matching = [c for c in reversed(ordered) if keep(c)]  # newest first
        start = page * page_size
        chunk = matching[start : start + page_size]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls.json"
        filters = {k: v for k, v in params.items() if k in ("To", "From")}

        def page_uri(index: int) -> str:
            query_items = {**filters, "PageSize": str(page_size), "Page": str(index)}
            if index > 0:
                query_items["PageToken"] = f"PACA{index * page_size}"
            return f"{base}?{urlencode(query_items, quote_via=quote)}"

        has_next = start + page_size < len(matching)
        return {
            "calls": chunk,
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }

    def _create_call(self, form: dict[str, str]) -> dict[str, Any]:
        to, from_ = form.get("To", "").strip(), form.get("From", "").strip()
        url, twiml = form.get("Url", ""), form.get("Twiml", "")
        if not to:
            raise _error(21201)
        if not from_:
            raise _error(21213)
        if not url and not twiml:
            raise _error(21205)
        if not _FULL_NUMBER_RE.match(_canonical_number(to)):
            raise _error(21211, to=to)
        if not _SENDER_NUMBER_RE.match(_canonical_number(from_)):
            raise _error(21212, from_=from_)
        if url and not _is_valid_url(url):
            raise _ApiError(400, 21205, f"Url is not a valid URL: {url}")
        if len(twiml) > _TWIML_MAX:
            raise _bad_value("Twiml", f"{twiml[:20]}...")
        status_callback = form.get("StatusCallback", "")
        if status_callback and not _is_valid_url(status_callback):
            raise _error(21609, value=status_callback)

        sid = _new_sid("CA")
        uri_base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}"
        stamp = _rfc2822(datetime.now(UTC))
        subresources = {
            "notifications": "Notifications",
            "recordings": "Recordings",
            "payments": "Payments",
            "events": "Events",
            "siprec": "Siprec",
            "streams": "Streams",
            "transcriptions": "Transcriptions",
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
                name: f"{uri_base}/{segment}.json" for name, segment in subresources.items()
            },
            "to": to,
            "to_formatted": _us_formatted(to),
            "trunk_sid": None,
            "uri": f"{uri_base}.json",
        }
