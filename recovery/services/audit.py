"""The audit trail: one row for every view of patient data and every change staff make.

The detail names things by reference (episode, task, page code, queue), never by content:
the audit log must not become a second copy of the PHI it protects.

Append-only and hash-chained: each row carries its place (`seq`), the hash of the row
before it and its own hash over both and its content (a canonical JSON), so an edited,
inserted or deleted row breaks the chain where it is (`verify`). Rows are chained when
their transaction commits, after every other lock it took: the chain's one row
(audit_chain) is locked only for the commit, so two writers never chain onto the same
row and no business lock waits behind it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from recovery.models import AuditAction, AuditChain, AuditEvent

GENESIS = "0" * 64
CHAIN_ID = 1
_PENDING = "recovery.audit.pending"


def record(
    session: Session,
    user_id: int | None,
    action: AuditAction,
    *,
    now: datetime,
    episode_id: int | None = None,
    detail: str = "",
    api_token_id: int | None = None,
) -> AuditEvent:
    """`user_id` is who was signed in; for an API call it is None and `api_token_id` says
    which token read the data. Neither, for what no one signed in did: a sign-in with an
    unknown email, a change from the command line (the detail names the OS account).

    The row is written when the session commits (chained then); rolled back, it is not."""
    assert user_id is None or api_token_id is None, "a user or a token, not both"
    audit_event = AuditEvent(
        user_id=user_id,
        api_token_id=api_token_id,
        action=action.value,
        episode_id=episode_id,
        detail=detail,
        at=now,
    )
    pending: list[AuditEvent] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "before_commit", _append_pending)
        event.listen(session, "after_rollback", _forget_pending)
    pending.append(audit_event)
    return audit_event


def _forget_pending(session: Session) -> None:
    session.info.get(_PENDING, []).clear()


def _append_pending(session: Session) -> None:
    pending: list[AuditEvent] = session.info.get(_PENDING, [])
    if not pending:
        return
    events, pending[:] = list(pending), []
    append(session, events)


def append(session: Session, events: list[AuditEvent]) -> None:
    """Chain EVENTS onto the end, in order, holding the chain's row for the transaction."""
    # UPDATE first: it takes the row's lock on PostgreSQL and the write lock on SQLite
    # before the head is read, so a concurrent appender waits here instead of forking.
    locked = session.execute(
        update(AuditChain).where(AuditChain.id == CHAIN_ID).values(seq=AuditChain.seq)
    )
    if locked.rowcount == 0:  # type: ignore[attr-defined]
        session.add(AuditChain(id=CHAIN_ID, seq=0, last_hash=GENESIS))
        session.flush()
    head = session.execute(
        select(AuditChain.seq, AuditChain.last_hash).where(AuditChain.id == CHAIN_ID)
    ).one()
    seq, last = head.seq, head.last_hash
    for audit_event in events:
        seq += 1
        audit_event.seq = seq
        audit_event.prev_hash = last
        audit_event.row_hash = last = row_hash(last, audit_event)
        session.add(audit_event)
    session.execute(
        update(AuditChain).where(AuditChain.id == CHAIN_ID).values(seq=seq, last_hash=last)
    )


def canonical(audit_event: AuditEvent) -> str:
    """The row's content as hashed: sorted keys, no spaces, UTC microseconds."""
    at = audit_event.at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return json.dumps(
        {
            "seq": audit_event.seq,
            "at": at.isoformat(timespec="microseconds"),
            "user_id": audit_event.user_id,
            "api_token_id": audit_event.api_token_id,
            "action": audit_event.action,
            "episode_id": audit_event.episode_id,
            "detail": audit_event.detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def row_hash(prev_hash: str, audit_event: AuditEvent) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical(audit_event)}".encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold: what happened, and where."""

    kind: str  # "edited", "inserted", "deleted"
    seq: int | None
    row_id: int | None
    reason: str


def verify(session: Session, *, batch_size: int = 1000) -> tuple[int, Break | None]:
    """(rows checked, the first break or None)."""
    checked = 0
    expected_seq, last = 1, GENESIS
    unplaced = session.scalar(select(AuditEvent.id).where(AuditEvent.seq.is_(None)).limit(1))
    for row in _rows(session, batch_size):
        checked += 1
        assert row.seq is not None
        if row.seq > expected_seq:
            missing = f"{expected_seq}" + (f"-{row.seq - 1}" if row.seq - 1 > expected_seq else "")
            return checked, Break("deleted", expected_seq, None, f"seq {missing} missing")
        if row.prev_hash != last:
            return checked, Break(
                "inserted", row.seq, row.id, "its previous hash is not the row before it"
            )
        if row.row_hash != row_hash(row.prev_hash, row):
            return checked, Break("edited", row.seq, row.id, "its content no longer hashes")
        expected_seq, last = row.seq + 1, row.row_hash
    if unplaced is not None:
        return checked, Break("inserted", None, unplaced, "a row outside the chain (no seq)")
    head = session.execute(select(AuditChain.seq, AuditChain.last_hash)).first()
    if head is not None and (head.seq, head.last_hash) != (expected_seq - 1, last):
        return checked, Break(
            "deleted",
            expected_seq,
            None,
            f"the chain ends at seq {expected_seq - 1}, not {head.seq}",
        )
    return checked, None


def _rows(session: Session, batch_size: int) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq.is_not(None), AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq or after
        session.expunge_all()
