"""The real stack under faults: gunicorn, a threaded Celery worker, beat, the twilio client
against the loopback double, a private redis-server this suite can restart and flush, and
a private PostgreSQL cluster this suite can restart and kill, reached through a proxy it
can cut (the shared servers themselves are never touched).

Every scenario ends in the same proof (`assert_each_sent_once`): nothing is left waiting,
every text we stored went out exactly once, under the provider id we recorded.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import migrate
from recovery.config import Settings
from recovery.db import make_engine, make_session_factory, utcnow
from recovery.domain.states import sources
from recovery.models import Direction, Message, MessageStatus
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, twilio_signature, unique_sid
from tests.integration.conftest import TABLES, stack_config, unavailable
from tests.integration.helpers import dial_form, post_sms
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack
from tests.support.tcp_proxy import TcpProxy
from tests.support.twilio_double import TwilioDouble

DIAL = "/webhooks/twilio/voice/dial-status"
# Waiting for a worker, or with one.
WAITING = (*sources(MessageStatus.SENDING), MessageStatus.SENDING)


@dataclass
class FaultStack:
    stack: Stack
    twilio: TwilioDouble
    sessions: sessionmaker[Session]
    database: TcpProxy
    redis: RedisServer
    postgres: PostgresServer

    def kill_worker(self, name: str = "worker") -> float:
        """SIGKILL a worker (no shutdown, no acks); the stack's supervisor restarts it,
        as a process manager would. Returns when it was killed."""
        pid = self.stack.processes[name].pid
        os.killpg(pid, signal.SIGKILL)
        return time.monotonic()


@pytest.fixture(scope="session")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    if not RedisServer.available():
        unavailable("redis-server is not installed: the fault suite restarts its own Redis")
    if not PostgresServer.available():
        unavailable("PostgreSQL's initdb is not installed: the fault suite restarts its own")
    redis_server = RedisServer(tmp_path_factory.mktemp("redis"))
    with (
        PostgresServer() as postgres,
        TwilioDouble(ACCOUNT_SID, AUTH_TOKEN) as twilio,
        redis_server,
    ):
        url = postgres.create_database("recovery")
        migrate(Settings(_env_file=None, DATABASE_URL=url))  # type: ignore[call-arg]
        direct = make_url(url)
        proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432).start()
        through_proxy = direct.set(host="127.0.0.1", port=proxy.port)
        config = stack_config(
            through_proxy.render_as_string(hide_password=False),
            redis_server.url,
            twilio,
            tmp_path_factory.mktemp("faults"),
        )
        config.worker_concurrency = 20  # the Procfile's
        # The provider timeout, claim lease (3 s, 4 s) and sweep interval (1 s) are the
        # product's defaults: a dead worker's texts wait for a lapsed lease and a sweep.
        config.sweep_interval_s = Settings.model_fields["sweep_interval_s"].default
        engine = make_engine(url)
        stack = Stack(config)
        try:
            stack.start(timeout=120)  # a busy CI machine boots gunicorn and Celery slowly
            # A second worker, as production runs more than one: the one killed is restarted
            # by the supervisor, and its texts must not wait for that.
            stack.start_worker("worker-b")
            # Booting on a busy machine takes a while: a kill before the second worker
            # consumes would leave no live worker at all, not the fault meant.
            stack.wait_worker_ready(120, "worker-b")
            yield FaultStack(
                stack, twilio, make_session_factory(engine), proxy, redis_server, postgres
            )
        finally:
            stack.stop()
            proxy.cut()
            engine.dispose()


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> None:
    if "faults" not in request.fixturenames:
        return
    faults: FaultStack = request.getfixturevalue("faults")
    with faults.sessions.begin() as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    faults.twilio.reset()
    faults.twilio.set_delay(0)


def caller(i: int) -> str:
    return f"+1512555{2000 + i:04d}"


def missed_calls(faults: FaultStack, n: int, tag: str, first: int = 0) -> list[str]:
    """n missed calls from n different callers (from caller(first) on), all answered 200."""
    callers = [caller(i) for i in range(first, first + n)]
    url = faults.stack.base_url + DIAL
    with requests.Session() as http:
        for number in callers:
            sid = unique_sid("CA", f"{tag}:{number}")
            form = dial_form(From=number, Caller=number, CallSid=sid)
            response = http.post(
                url, data=form, headers={"X-Twilio-Signature": twilio_signature(url, form)}
            )
            assert response.status_code == 200, response.text
    return callers


def urgent_replies(faults: FaultStack, callers: list[str]) -> None:
    for number in callers:
        assert post_sms(faults.stack, "my dad has chest pain", sender=number).status_code == 200


def wait_accepted(twilio: TwilioDouble, n: int, timeout: float = 30.0) -> None:
    twilio.wait_for_messages(n, timeout=timeout)


@dataclass
class Proof:
    texts: int
    settled_s: float  # from the call to the last stored text being recorded


def assert_each_sent_once(
    faults: FaultStack, expected: int, since: float, timeout: float = 60.0, suppressed: int = 0
) -> Proof:
    """Nothing waits any more; each stored text went out exactly once, under the provider
    id we recorded; nothing else went out; and nothing more goes out in a quiet second.
    `suppressed` texts (over a cap) are stored, never sent, and not in `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        with faults.sessions() as session:
            waiting = session.scalar(
                select(func.count()).select_from(Message).where(Message.status.in_(WAITING))
            )
        if not waiting:
            break
        if time.monotonic() > deadline:
            with faults.sessions() as session:
                rows = session.execute(
                    select(
                        Message.id,
                        Message.status,
                        Message.attempts,
                        Message.created_at,
                        Message.next_attempt_at,
                        Message.dispatched_at,
                        Message.lease_until,
                        Message.in_doubt_since,
                        Message.error_message,
                    ).where(Message.status.in_(WAITING))
                ).all()
            detail = "\n  ".join(str(tuple(row)) for row in rows)
            raise AssertionError(
                f"{waiting} text(s) still waiting after {timeout}s at {utcnow()}:\n  {detail}"
            )
        time.sleep(0.1)
    settled = time.monotonic() - since
    time.sleep(1.5)  # a late second send would show here
    with faults.sessions() as session:
        ours = session.execute(
            select(Message.provider_sid, Message.status, Message.to_number).where(
                Message.direction == Direction.OUTBOUND
            )
        ).all()
    sent = faults.twilio.accepted_messages()
    twice = [
        pair for pair, n in Counter((m.form["To"], m.form["Body"]) for m in sent).items() if n > 1
    ]
    assert not twice, f"sent twice: {twice}"
    held = [row for row in ours if row.status is MessageStatus.SUPPRESSED]
    assert [row for row in held if row.provider_sid is not None] == []
    assert len(held) == suppressed, f"{len(held)} texts suppressed, {suppressed} expected"
    ours = [row for row in ours if row.status is not MessageStatus.SUPPRESSED]
    assert [row for row in ours if row.status is not MessageStatus.ACCEPTED] == []
    assert sorted(str(row.provider_sid) for row in ours) == sorted(str(m.sid) for m in sent)
    assert len(ours) == expected, f"{len(ours)} texts stored, {expected} expected"
    return Proof(len(ours), settled)
