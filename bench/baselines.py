"""The ceilings our figures are measured against, run under the same process settings.

- A bare Flask app (`create_bare_app`) served by the same gunicorn command line as the
  product (workers, threads): one POST route that reads the body and answers 200. No
  webhook can be acknowledged faster than this on this machine.
- The floor of a durable webhook, on the same bare app (routes added when the process has
  DATABASE_URL and REDIS_URL, as the bench's Stack gives it): `POST /commit` INSERTs one
  small row through a pooled SQLAlchemy engine (the product's `make_engine`) and commits;
  `POST /commit-publish` then also publishes one Celery task with the product's publisher
  (`CeleryDispatcher`, `retry=False`) to a queue nobody consumes. No webhook that records
  the call durably before answering (store, then enqueue) can be faster on this stack.
- A no-op Celery task on the same Redis, with the product's Celery configuration
  (acks_late, prefetch, transport options: copied from `workers.celery_app.make_celery`)
  and the same pool and concurrency. Its body notes the time it started in a Redis list,
  so the benchmark measures enqueue -> start: no queued step can start sooner.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from flask import Flask, Response, jsonify, request
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, insert, text

from workers.dispatch import CeleryDispatcher

NOOP_QUEUE = "bench-noop"
NOOP_TASK = "bench.noop"
NOOP_RAN_KEY = "bench:noop:ran"
# The durable-webhook floor: its scratch table (in the phase's own database) and the queue
# its tasks go to (nobody consumes it; the bench flushes its Redis database afterwards).
FLOOR_TABLE = "bench_floor"
FLOOR_QUEUE = "bench-floor"
FLOOR_TASK = "bench.floor"
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

    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        _add_floor_routes(app, database_url, redis_url)
    return app


class FloorPublisher(CeleryDispatcher):
    """The product's publisher (its Celery configuration and fail-fast transport options),
    sending a task name no worker knows to a queue no worker reads."""

    def publish(self, row_id: int) -> None:
        self._celery.send_task(FLOOR_TASK, args=[row_id], queue=FLOOR_QUEUE, retry=False)


def _add_floor_routes(app: Flask, database_url: str, redis_url: str) -> None:
    from recovery.config import Settings
    from recovery.db import make_engine

    metadata = MetaData()
    table = Table(
        FLOOR_TABLE,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),  # bigserial
        Column("call_id", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
    )
    engine = make_engine(database_url)  # pooled, pool_pre_ping=True, as the product's
    with engine.begin() as conn:
        # Every gunicorn worker builds the app at once, and two concurrent CREATE TABLE IF
        # NOT EXISTS can still collide in PostgreSQL's catalog: one at a time.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": FLOOR_TABLE})
        metadata.create_all(conn, checkfirst=True)
    publisher = FloorPublisher.from_settings(
        Settings(_env_file=None, REDIS_URL=redis_url)  # type: ignore[call-arg]
    )
    assert isinstance(publisher, FloorPublisher)  # from_settings builds `cls`

    def record() -> int:
        payload = request.get_json(silent=True)
        call_id = str(payload.get("call_id", "")) if isinstance(payload, dict) else ""
        with engine.begin() as conn:
            row_id = conn.execute(
                insert(table)
                .values(call_id=call_id, received_at=datetime.now(UTC))
                .returning(table.c.id)
            ).scalar_one()
        return int(row_id)

    @app.post("/commit")
    def commit() -> Response:
        record()
        return jsonify(status="ok")

    @app.post("/commit-publish")
    def commit_publish() -> Response:
        publisher.publish(record())
        return jsonify(status="ok")


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
