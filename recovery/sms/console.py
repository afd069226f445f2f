"""The console provider: records texts in a file and prints them, sends nothing.

It is the embedded default, so a new user sees the whole loop without a Twilio account.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from recovery.sms.base import OutboundSms, SendResult, SentText


class ConsoleProvider:
    name = "console"

    def __init__(self, outbox: Path, stream: TextIO | None = None) -> None:
        self._outbox = outbox
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send(self, sms: OutboundSms) -> SendResult:
        sid = "CM" + secrets.token_hex(16)
        record = {
            "sid": sid,
            "at": datetime.now(UTC).isoformat(),
            "from": sms.from_number,
            "to": sms.to_number,
            "body": sms.body,
        }
        with self._lock:
            self._outbox.parent.mkdir(parents=True, exist_ok=True)
            with self._outbox.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            banner = f"--- SMS {sid} from {sms.from_number} to {sms.to_number} ---"
            self._stream.write(f"\n{banner}\n{sms.body}\n{'-' * len(banner)}\n")
            self._stream.flush()
        return SendResult(provider_sid=sid)

    def find_sent(self, from_number: str, to_number: str, since: datetime) -> list[SentText]:
        with self._lock:
            records = read_outbox(self._outbox)
        found = [
            SentText(r["sid"], r["body"], datetime.fromisoformat(r["at"]))
            for r in records
            if r["from"] == from_number and r["to"] == to_number
        ]
        return [text for text in reversed(found) if text.created_at >= since]


def read_outbox(outbox: Path) -> list[dict[str, str]]:
    if not outbox.exists():
        return []
    with outbox.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
