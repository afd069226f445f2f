"""Claim leases: a worker's hold on the texts it is sending, renewed while it lives.

A claim (outreach.claim) is good until the row's lease_until. While a send is in flight
its worker process renews the lease every third of it, so a slow provider never loses a
live worker its claim; a worker that dies stops renewing, and its texts are taken back
within one lease (outreach.due_for_dispatch) instead of after a fixed two minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import utcnow
from recovery.models import Message, MessageStatus

log = logging.getLogger(__name__)


def renew(session: Session, claims: dict[int, datetime], until: datetime) -> int:
    """Extend our claims to `until`. Fenced by claimed_at: a claim that lapsed and was taken
    by another worker (a new claimed_at) is not ours to extend. Returns how many held."""
    if not claims:
        return 0
    messages = cast(Table, Message.__table__)
    result = session.connection().execute(
        update(messages)
        .where(
            messages.c.id == bindparam("mid"),
            messages.c.claimed_at == bindparam("claimed"),
            messages.c.status == MessageStatus.SENDING.value,
        )
        .values(lease_until=until),
        [{"mid": mid, "claimed": claimed} for mid, claimed in claims.items()],
    )
    return int(result.rowcount)


class LeaseKeeper:
    """One per process: a daemon thread renewing the leases of the texts in flight here."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lease: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._lease = lease
        self._clock = clock
        self._held: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, message_id: int, claimed_at: datetime) -> Iterator[None]:
        with self._lock:
            self._held[message_id] = claimed_at
            if self._thread is None:
                # Started on first use, in the process that sends (never before a fork).
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(message_id, None)

    def renew_now(self) -> None:
        with self._lock:
            held = dict(self._held)
        if not held:
            return
        with self._sessions.begin() as session:
            renew(session, held, self._clock() + self._lease)

    def _run(self) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            time.sleep(interval)
            try:
                self.renew_now()
            except SQLAlchemyError as exc:
                # The database is away: the lease may lapse, and the sweeper (once the
                # database is back) asks the provider before anything is sent again.
                log.warning("could not renew send leases: %s", exc.__class__.__name__)
