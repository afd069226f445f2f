"""Re-encrypting what is stored under an older PHI key with the first one (`keys rotate`).

Batches of rows by id, one commit each: a rotate stopped halfway (a deploy, Ctrl-C) keeps
what it did, and the next run skips every value the first key already wrote, so running it
again is always safe and ends with nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from recovery.crypto import SEALED_FIELD, PhiCipher
from recovery.models import CallEvent, Message, Task, UndoableAction, User

log = logging.getLogger(__name__)

# Every column that holds a Fernet token (one PHI value each).
ENCRYPTED_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    Message.body_ciphertext,
    Message.intent_evidence,
    Task.note,
    UndoableAction.task_note,
    User.totp_secret,
)


@dataclass
class RotateReport:
    rotated: int = 0  # re-encrypted under the first key
    current: int = 0  # the first key wrote it already
    unreadable: int = 0  # no configured key opens it: left as it is, and said so


def rotate(
    sessions: sessionmaker[Session],
    cipher: PhiCipher,
    *,
    batch_size: int = 500,
    progress: Callable[[str], None] = log.info,
) -> RotateReport:
    report = RotateReport()
    for column in ENCRYPTED_COLUMNS:
        _rotate_column(sessions, cipher, column, batch_size, report, progress)
    _rotate_payloads(sessions, cipher, batch_size, report, progress)
    return report


def rotate_value(cipher: PhiCipher, token: str, report: RotateReport) -> str | None:
    """TOKEN under the first key, or None when it is already (or cannot be opened)."""
    if cipher.is_current(token):
        report.current += 1
        return None
    try:
        fresh = cipher.rotate(token)
    except ValueError:
        report.unreadable += 1
        return None
    report.rotated += 1
    return fresh


def _rotate_column(
    sessions: sessionmaker[Session],
    cipher: PhiCipher,
    column: InstrumentedAttribute[Any],
    batch_size: int,
    report: RotateReport,
    progress: Callable[[str], None],
) -> None:
    model = column.class_
    name = f"{model.__tablename__}.{column.key}"
    last_id = 0
    while True:
        with sessions.begin() as session:
            rows = session.execute(
                select(model.id, column)
                .where(model.id > last_id, column.is_not(None), column != "")
                .order_by(model.id)
                .limit(batch_size)
                .with_for_update()
            ).all()
            if not rows:
                return
            before = report.rotated
            for row_id, token in rows:
                unreadable = report.unreadable
                fresh = rotate_value(cipher, token, report)
                if report.unreadable > unreadable:
                    progress(f"{name} {row_id}: no configured key opens it")
                if fresh is not None:
                    session.execute(
                        update(model).where(model.id == row_id).values({column.key: fresh})
                    )
            last_id = rows[-1][0]
        progress(f"{name}: up to id {last_id}, {report.rotated - before} re-encrypted")


def _rotate_payloads(
    sessions: sessionmaker[Session],
    cipher: PhiCipher,
    batch_size: int,
    report: RotateReport,
    progress: Callable[[str], None],
) -> None:
    """call_events.raw_payload: the sealed field inside each JSON object."""
    last_id = 0
    while True:
        with sessions.begin() as session:
            rows = session.execute(
                select(CallEvent.id, CallEvent.raw_payload)
                .where(CallEvent.id > last_id)
                .order_by(CallEvent.id)
                .limit(batch_size)
                .with_for_update()
            ).all()
            if not rows:
                return
            before = report.rotated
            for row_id, payload in rows:
                token = payload.get(SEALED_FIELD) if isinstance(payload, dict) else None
                if not isinstance(token, str):
                    continue
                unreadable = report.unreadable
                fresh = rotate_value(cipher, token, report)
                if report.unreadable > unreadable:
                    progress(f"call_events.raw_payload {row_id}: no configured key opens it")
                if fresh is not None:
                    session.execute(
                        update(CallEvent)
                        .where(CallEvent.id == row_id)
                        .values(raw_payload={**payload, SEALED_FIELD: fresh})
                    )
            last_id = rows[-1][0]
        progress(
            f"call_events.raw_payload: up to id {last_id}, {report.rotated - before} re-encrypted"
        )
