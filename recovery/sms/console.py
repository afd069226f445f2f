"""The console provider: records texts (and voice pages' calls) in a file and prints them,
sends nothing.

It is the embedded default, so a new user sees the whole loop without a Twilio account.
The file (var/outbox.jsonl) names the recipient only masked, with a keyed digest of the
number so we can still answer "did a text to this number go out?" (find_sent): a copy of
the file, or a look over a shoulder at the terminal, gives no patient's number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from recovery.domain.phones import mask
from recovery.sms.base import OutboundCall, OutboundSms, PlacedCall, SendResult, SentText

CALL = "call"  # a record's kind; a record without one is a text (the outbox's first shape)


def outbox_key(phi_key: str) -> bytes:
    """The digest key of the outbox, from the first PHI key (every process has it): a
    digest without a key would be undone by trying the few billion numbers there are."""
    return hashlib.sha256(b"recovery-outbox-v1:" + phi_key.encode()).digest()


def number_digest(key: bytes, number: str) -> str:
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


class ConsoleProvider:
    name = "console"

    def __init__(self, outbox: Path, stream: TextIO | None = None, *, key: bytes) -> None:
        self._outbox = outbox
        self._stream = stream or sys.stdout
        self._key = key
        self._lock = threading.Lock()

    def send(self, sms: OutboundSms) -> SendResult:
        return self._record("SMS", "CM", sms.from_number, sms.to_number, sms.body)

    def call(self, call: OutboundCall) -> SendResult:
        """Recorded like a text, with kind "call" and the words the call would say."""
        return self._record("CALL", "CA", call.from_number, call.to_number, call.words, CALL)

    def _record(
        self, label: str, prefix: str, from_: str, to: str, body: str, kind: str | None = None
    ) -> SendResult:
        sid = prefix + secrets.token_hex(16)
        record = {
            "sid": sid,
            "at": datetime.now(UTC).isoformat(),
            "from": from_,  # a practice line
            "to": mask(to),
            "to_digest": number_digest(self._key, to),
            "body": body,
            **({"kind": kind} if kind else {}),
        }
        with self._lock:
            self._outbox.parent.mkdir(parents=True, exist_ok=True)
            with self._outbox.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            banner = f"--- {label} {sid} from {from_} to {mask(to)} ---"
            self._stream.write(f"\n{banner}\n{body}\n{'-' * len(banner)}\n")
            self._stream.flush()
        return SendResult(provider_sid=sid)

    def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
        found = [
            SentText(r["sid"], r["body"], datetime.fromisoformat(r["at"]))
            for r in self._records(from_number, to_number)
            if r.get("kind") != CALL
        ]
        return [text for text in reversed(found) if text.created_at >= since]

    def find_calls(self, from_number: str, to_number: str, since: datetime) -> list[PlacedCall]:
        found = [
            PlacedCall(r["sid"], datetime.fromisoformat(r["at"]))
            for r in self._records(from_number, to_number)
            if r.get("kind") == CALL
        ]
        return [call for call in reversed(found) if call.created_at >= since]

    def _records(self, from_number: str, to_number: str) -> list[dict[str, str]]:
        with self._lock:
            records = read_outbox(self._outbox)
        digest = number_digest(self._key, to_number)
        return [r for r in records if r["from"] == from_number and r.get("to_digest") == digest]


def read_outbox(outbox: Path) -> list[dict[str, str]]:
    if not outbox.exists():
        return []
    with outbox.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
