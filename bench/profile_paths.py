"""CPU per missed call, in one process: the webhook (Flask test client) and the send task.

    python -m bench.profile_paths [--calls 2000] [--profile web|send]

Runs the product's code against a fresh PostgreSQL database and the real Celery publisher
(Redis), with the Twilio double in its own process answering at once, and prints the CPU
milliseconds (this process only: no gunicorn, no generator, no double) per webhook and per
send. With --profile it prints cProfile's top functions for that path. Findings 3 and 10 of
bench/README.md come from it; it is for looking, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.double import DoubleProcess
from bench.infra import flush_redis, fresh_database
from bench.practices import BenchPractice, CallerNumbers, make_practices, write_practices_file
from bench.run import DEFAULT_ADMIN_URL, DEFAULT_REDIS_URL
from recovery.config import Settings
from recovery.crypto import new_key
from recovery.web.security import sign_generic

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "profile-token"
WEBHOOK_SECRET = "profile-secret"


def _settings(database_url: str, redis_url: str, double_url: str, practices: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=double_url,
        PUBLIC_BASE_URL="http://127.0.0.1:1",
        RECOVERY_PRACTICES_FILE=str(practices),
        SECRET_KEY="x" * 32,
        PHI_ENCRYPTION_KEYS=new_key(),
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        WEBHOOK_SECRET_ALL_PRACTICES=True,  # the bench's clinics share one PBX
        LOG_LEVEL="INFO",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", choices=("web", "send"))
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)

    practices = make_practices(50)
    double = DoubleProcess(ACCOUNT_SID, AUTH_TOKEN, 0.0)
    flush_redis(args.redis_url)
    try:
        with (
            fresh_database(args.database_url, "recovery_profile") as url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            settings = _settings(
                url,
                args.redis_url,
                double.base_url,
                write_practices_file(Path(tmp) / "p.yaml", practices),
            )
            os.environ["RECOVERY_VAR_DIR"] = tmp
            _run(settings, practices, args.calls, args.profile or "")
    finally:
        double.stop()
        flush_redis(args.redis_url)
    return 0


def _signed_calls(practices: list[BenchPractice], count: int) -> list[tuple[bytes, str, str]]:
    """Generic JSON missed calls, each from a new caller: every one is a full intake."""
    callers = CallerNumbers()
    signed = []
    for i in range(count):
        payload = {
            "call_id": f"pbx-{i}",
            "from": next(callers),
            "to": practices[(i * 7) % len(practices)].numbers[0],
            "occurred_at": datetime.now(UTC).isoformat(),
            "reason": "no-answer",
        }
        body = json.dumps(payload).encode()
        stamp = str(int(time.time()))
        signed.append((body, stamp, sign_generic(WEBHOOK_SECRET, stamp, body)))
    return signed


class Meter:
    """CPU and wall time of a stretch of work in this process, optionally profiled."""

    def __init__(self, profiler: cProfile.Profile | None) -> None:
        self.profiler = profiler
        self.cpu_s = self.wall_s = 0.0

    def __enter__(self) -> Meter:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        if self.profiler:
            self.profiler.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.profiler:
            self.profiler.disable()
        self.cpu_s = time.process_time() - self._cpu
        self.wall_s = time.perf_counter() - self._wall


def _run(settings: Settings, practices: list[BenchPractice], calls: int, profile: str) -> None:
    from sqlalchemy import select

    from recovery.models import Message
    from recovery.web import create_app
    from workers.celery_app import make_celery

    celery = make_celery(settings)
    celery.set_current()  # the shared tasks below run in this app, with these settings
    celery.loader.import_default_modules()  # workers.tasks, as a worker does at start
    send_text = celery.tasks["recovery.send_text"]
    client = create_app(settings).test_client()
    signed = _signed_calls(practices, calls)

    def webhooks(items: list[tuple[bytes, str, str]]) -> None:
        for body, stamp, signature in items:
            response = client.post(
                "/webhooks/calls/missed",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Recovery-Timestamp": stamp,
                    "X-Recovery-Signature": signature,
                },
            )
            assert response.status_code == 200, response.get_data(as_text=True)

    def sends(message_ids: list[int]) -> None:
        for message_id in message_ids:
            assert send_text.run(message_id) == "accepted"

    # CPU time, not wall: waiting for PostgreSQL is not what we are looking for here.
    profiler = cProfile.Profile(time.process_time) if profile else None
    warm = min(100, calls // 10)  # imports, caches, connections: not per-call costs
    webhooks(signed[:warm])
    with Meter(profiler if profile == "web" else None) as web:
        webhooks(signed[warm:])
    with send_text.resources.sessions() as session:
        ids = list(session.scalars(select(Message.id).order_by(Message.id)))
    sends(ids[:warm])
    with Meter(profiler if profile == "send" else None) as send:
        sends(ids[warm:])

    n = calls - warm
    print(
        f"webhook (generic JSON: intake + publish): {web.cpu_s * 1000 / n:.2f} ms CPU, "
        f"{web.wall_s * 1000 / n:.2f} ms wall per call"
    )
    print(
        f"send task (claim, render, twilio client, record): {send.cpu_s * 1000 / n:.2f} ms "
        f"CPU, {send.wall_s * 1000 / n:.2f} ms wall per text"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    raise SystemExit(main())
