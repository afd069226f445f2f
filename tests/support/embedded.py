"""`recovery run` as a new user runs it: in a fresh folder, on the embedded default (SQLite,
the filesystem broker, the console provider), driven by `recovery simulate` from outside.
Used by the test that kills the worker under it and by the hour's soak (bench/soak.py).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from recovery.cli import post_twilio_dial_action
from recovery.config import Settings
from recovery.sms.console import number_digest, outbox_key, read_outbox
from tests.support.stack import free_port

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
LINE = "+15125550100"  # Valley Family Clinic's line in examples/practices.yaml
# Whatever the calling shell points at (a test database, Redis) is not the embedded default.
FOREIGN_ENV = ("DATABASE_URL", "REDIS_URL", "SMS_PROVIDER", "RECOVERY_VAR_DIR", "PORT")


@dataclass
class EmbeddedRun:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "run.log"

    @property
    def outbox(self) -> Path:
        return self.folder / "var" / "outbox.jsonl"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
        env.pop("RECOVERY_TEST_CLOCK_FILE", None)
        return env

    def start(self, timeout_s: float = 180) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(REPO / "examples", self.folder / "examples", dirs_exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(BIN / "recovery"), "run", "--port", str(self.port)],
            cwd=self.folder,
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal: signals reach `run` alone
        )
        self.wait_for(lambda: self.log().count("ready.") >= 1, timeout_s, "the worker is ready")
        self.wait_for(self.web_answers, timeout_s, "the web server answers")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def web_answers(self) -> bool:
        try:
            return requests.get(self.base_url + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def pids(self, name: str) -> list[int]:
        """Every pid `run` started NAME with, in order."""
        return [int(p) for p in re.findall(rf"\| {name} started \(pid=(\d+)\)", self.log())]

    def texts_to(self, number: str) -> list[dict[str, str]]:
        return self.texts_to_any({number})

    def texts_to_any(self, numbers: set[str]) -> list[dict[str, str]]:
        """The texts to any of NUMBERS, each with its full number in "to" (the outbox has it
        masked, and a digest keyed from the run's own PHI key)."""
        key = outbox_key(self.phi_key())
        by_digest = {number_digest(key, n): n for n in numbers}
        return [
            {**t, "to": by_digest[t["to_digest"]]}
            for t in read_outbox(self.outbox)
            if t.get("to_digest") in by_digest
        ]

    def phi_key(self) -> str:
        """The first PHI key of the .env `recovery run` wrote in the folder."""
        for line in (self.folder / ".env").read_text(encoding="utf-8").splitlines():
            if line.startswith("PHI_ENCRYPTION_KEYS="):
                return line.split("=", 1)[1].split(",")[0].strip()
        raise AssertionError("no PHI_ENCRYPTION_KEYS in the run's .env")

    def simulate_call(self, caller: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "recovery"), "simulate", "missed-call", "--from", caller, "--no-wait"],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def post_missed_call(self, caller: str) -> requests.Response:
        """The signed webhook `simulate missed-call` posts, from this process: no command
        to start per call, and the time it is posted is the time it is measured from."""
        settings = Settings(
            _env_file=self.folder / ".env",  # type: ignore[call-arg]
            RECOVERY_VAR_DIR=str(self.folder / "var"),
            PUBLIC_BASE_URL=self.base_url,
        )
        call_sid = "CA" + secrets.token_hex(16)
        return post_twilio_dial_action(settings, self.base_url, call_sid, caller, LINE)

    def wait_for(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"`recovery run` exited waiting for {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout_s} s: {what}\n{self.tail()}")
            time.sleep(0.2)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self, timeout_s: float = 60) -> int:
        """Ctrl-C, as a person would; whatever is left after that is killed."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
        return self.process.returncode


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
