"""The ceilings our figures are measured against, run under the same process settings.

- A bare Flask app (`create_bare_app`) served by the same gunicorn command line as the
  product (workers, threads): one POST route that reads the body and answers 200. No
  webhook can be acknowledged faster than this on this machine.
- A no-op Celery task on the same Redis, with the product's Celery configuration
  (acks_late, prefetch, transport options: copied from `workers.celery_app.make_celery`)
  and the same pool and concurrency. Its body notes the time it started in a Redis list,
  so the benchmark measures enqueue -> start: no queued step can start sooner.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from flask import Flask, Response, jsonify, request

NOOP_QUEUE = "bench-noop"
NOOP_TASK = "bench.noop"
NOOP_RAN_KEY = "bench:noop:ran"
# The Celery settings that shape a task's trip through the queue.
COPIED_CELERY_SETTINGS = (
    "task_acks_late",
    "task_reject_on_worker_lost",
    "task_ignore_result",
    "worker_prefetch_multiplier",
    "broker_connection_retry_on_startup",
    "broker_url",
    "broker_transport_options",
)


def create_bare_app() -> Flask:
    app = Flask(__name__)

    @app.post("/noop")
    def noop() -> Response:
        request.get_data()
        return jsonify(status="ok")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return app


_redis: Any = None


def make_noop_celery(redis_url: str) -> Celery:
    from recovery.config import Settings
    from workers.celery_app import make_celery

    product = make_celery(Settings(_env_file=None, REDIS_URL=redis_url))  # type: ignore[call-arg]
    app = Celery("bench-noop")
    app.conf.update({name: product.conf[name] for name in COPIED_CELERY_SETTINGS})
    app.conf.task_default_queue = NOOP_QUEUE

    @app.task(name=NOOP_TASK)
    def noop(seq: int) -> None:
        started = time.time()
        global _redis
        if _redis is None:  # per process, after the pool forked
            import redis

            _redis = redis.Redis.from_url(redis_url)
        _redis.rpush(NOOP_RAN_KEY, f"{seq} {started!r}")

    return app


def worker_app() -> Celery:
    """The app `celery -A bench.noop_worker worker` runs (REDIS_URL from the Stack's env)."""
    return make_noop_celery(os.environ["REDIS_URL"])
