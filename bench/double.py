"""The Twilio double (tests.support.twilio_double) in a process of its own.

In the load generator's process its request threads would share one GIL with the event
loop that sends the webhooks, and every text the double received would make a webhook
leave late. In its own process it is what it stands for: another machine's API. The
parent asks it for what it recorded with one JSON line per command over stdin/stdout
(`python -m bench.double`), which works whatever the parent's main module is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ReceivedText:
    """One POST to Messages.json as the double saw it; received_at is time.time()."""

    to: str
    from_: str
    received_at: float
    status: int
    body: str = ""


def serve(account_sid: str, auth_token: str, delay_s: float) -> None:
    from tests.support.twilio_double import TwilioDouble

    def answer(value: Any) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    with TwilioDouble(account_sid, auth_token, delay_s=delay_s) as double:
        answer(double.base_url)
        for line in sys.stdin:
            command, arg = json.loads(line)
            if command == "stop":
                break
            if command == "reset":
                double.reset()
                answer(None)
            elif command == "delay":
                double.set_delay(float(arg))
                answer(None)
            elif command == "count":
                answer(len(double.accepted_messages()))
            elif command == "texts":
                answer(
                    [
                        [
                            r.form.get("To", ""),
                            r.form.get("From", ""),
                            r.received_at,
                            r.status,
                            r.form.get("Body", ""),
                        ]
                        for r in double.messages()
                    ]
                )
            elif command == "errors":
                answer(double.server_errors)
            else:
                answer({"error": f"unknown command {command!r}"})


class DoubleProcess:
    def __init__(self, account_sid: str, auth_token: str, delay_s: float) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.double", account_sid, auth_token, str(delay_s)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        line = self._read()
        if line is None:
            raise RuntimeError("the Twilio double did not start")
        self.base_url: str = line

    @property
    def pid(self) -> int:
        return self._process.pid

    def _read(self) -> Any:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the Twilio double exited")
        return json.loads(line)

    def _ask(self, command: str, arg: Any = None) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps([command, arg]) + "\n")
        self._process.stdin.flush()
        answer = self._read()
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def reset(self) -> None:
        self._ask("reset")

    def set_delay(self, seconds: float) -> None:
        self._ask("delay", seconds)

    def accepted_count(self) -> int:
        return int(self._ask("count"))

    def texts(self) -> list[ReceivedText]:
        return [
            ReceivedText(str(a), str(b), float(c), int(d), str(e))
            for a, b, c, d, e in self._ask("texts")
        ]

    def server_errors(self) -> list[str]:
        return [str(e) for e in self._ask("errors")]

    def stop(self) -> None:
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(json.dumps(["stop", None]) + "\n")
                self._process.stdin.flush()
                self._process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait(5)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], float(sys.argv[3]))
