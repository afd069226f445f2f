"""The audit trail: one row for every view of patient data and every change staff make.

The detail names things by reference (episode, task, page code, queue), never by content:
the audit log must not become a second copy of the PHI it protects.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from recovery.models import AuditAction, AuditEvent


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
    unknown email, a change from the command line (the detail names the OS account)."""
    assert user_id is None or api_token_id is None, "a user or a token, not both"
    event = AuditEvent(
        user_id=user_id,
        api_token_id=api_token_id,
        action=action.value,
        episode_id=episode_id,
        detail=detail,
        at=now,
    )
    session.add(event)
    return event
