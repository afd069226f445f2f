"""An outage of Redis or a worker delays texts but never drops one."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import make_engine, make_session_factory
from recovery.models import Message, MessageStatus
from tests.integration.conftest import REDIS_URL, fresh_database, stack_config, unavailable
from tests.integration.helpers import dial_form, post_twilio, settle
from tests.support.stack import Stack, free_port
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

DIAL = "/webhooks/twilio/voice/dial-status"


def test_a_task_lost_with_the_queue_is_sent_by_the_sweeper(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    stack.stop_process("worker")
    try:
        response = post_twilio(stack, DIAL, dial_form())
        assert response.status_code == 200
        # The task sat in Redis for the stopped worker; losing the queue loses it.
        redis.Redis.from_url(REDIS_URL).flushdb()
        with sessions() as session:
            assert session.scalars(select(Message)).one().status is MessageStatus.PENDING
    finally:
        stack.start_worker()
    settle(twilio, 1)


class RedisServer:
    """A redis-server of this test's own, so it can be stopped without harming the rest."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def outage_stack(
    own_redis: RedisServer, twilio: TwilioDouble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, sessionmaker[Session]]]:
    # A database of its own too: the session's stack sweeps its database and would send
    # this test's pending text through its own, healthy Redis.
    with fresh_database() as url:
        config = stack_config(url, own_redis.url, twilio, tmp_path_factory.mktemp("outage"))
        engine = make_engine(url)
        with Stack(config) as running:
            yield running, make_session_factory(engine)
        engine.dispose()


def test_redis_down_at_webhook_time_delays_the_text_but_loses_nothing(
    outage_stack: tuple[Stack, sessionmaker[Session]],
    own_redis: RedisServer,
    twilio: TwilioDouble,
) -> None:
    stack, sessions = outage_stack
    twilio.reset()
    own_redis.stop()
    try:
        started = time.monotonic()
        response = post_twilio(stack, DIAL, dial_form())
        answered_in = time.monotonic() - started

        assert response.status_code == 200
        assert answered_in < 1.0, "a webhook must not hang on a dead broker"
        health = requests.get(stack.base_url + "/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable", "database": "ok", "broker": "unavailable"}
        with sessions() as session:
            assert session.scalars(select(Message)).one().status is MessageStatus.PENDING
        time.sleep(1.0)
        assert twilio.accepted_messages() == []
    finally:
        own_redis.start()
    twilio.wait_for_messages(1, timeout=60)
    settle(twilio, 1, quiet_s=1.0)
