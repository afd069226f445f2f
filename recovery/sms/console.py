"""The console provider: records texts in a file and prints them, sends nothing.

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
from recovery.sms.base import OutboundSms, SendResult, SentText


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
        sid = "CM" + secrets.token_hex(16)
        record = {
            "sid": sid,
            "at": datetime.now(UTC).isoformat(),
            "from": sms.from_number,  # a practice line
            "to": mask(sms.to_number),
            "to_digest": number_digest(self._key, sms.to_number),
            "body": sms.body,
        }
        with self._lock:
            self._outbox.parent.mkdir(parents=True, exist_ok=True)
            with self._outbox.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            banner = f"--- SMS {sid} from {sms.from_number} to {mask(sms.to_number)} ---"
            self._stream.write(f"\n{banner}\n{sms.body}\n{'-' * len(banner)}\n")
            self._stream.flush()
        return SendResult(provider_sid=sid)

    def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
        with self._lock:
            records = read_outbox(self._outbox)
        digest = number_digest(self._key, to_number)
        found = [
            SentText(r["sid"], r["body"], datetime.fromisoformat(r["at"]))
            for r in records
            if r["from"] == from_number and r.get("to_digest") == digest
        ]
        return [text for text in reversed(found) if text.created_at >= since]


def read_outbox(outbox: Path) -> list[dict[str, str]]:
    if not outbox.exists():
        return []
    with outbox.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
