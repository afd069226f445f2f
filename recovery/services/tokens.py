"""API tokens: made for one practice, shown once, stored as a SHA-256, revocable.

A token reads that practice's report and CSV through the API and nothing else. The
token is `rcv_` and 32 random bytes; `prefix` (its first 12 characters) is kept in clear
so `recovery tokens list` can tell tokens apart without being able to use them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.models import ApiToken, Practice

TOKEN_PREFIX = "rcv_"  # noqa: S105 - a marker, not a secret
PREFIX_LENGTH = 12


class TokenError(ValueError):
    """The token cannot be made or revoked as asked; the message says why."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str  # shown once, never stored


@dataclass(frozen=True)
class TokenOwner:
    """Who an API request is: the token's id (for the audit trail) and its practice."""

    token_id: int
    practice_id: int


def create_token(session: Session, *, practice_slug: str, name: str, now: datetime) -> NewToken:
    practice = session.scalars(select(Practice).where(Practice.slug == practice_slug)).first()
    if practice is None:
        raise TokenError(f"no practice {practice_slug!r}")
    if not name.strip():
        raise TokenError("give the token a name: what will use it")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        practice_id=practice.id,
        name=name.strip()[:100],
        token_hash=hash_token(token),
        prefix=token[:PREFIX_LENGTH],
        created_at=now,
    )
    session.add(row)
    session.flush()
    return NewToken(row.id, token)


def list_tokens(session: Session) -> list[tuple[ApiToken, str]]:
    rows = session.execute(
        select(ApiToken, Practice.slug)
        .join(Practice, Practice.id == ApiToken.practice_id)
        .order_by(Practice.slug, ApiToken.id)
    ).all()
    return [(token, slug) for token, slug in rows]


def revoke_token(session: Session, token_id: int, *, now: datetime) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise TokenError(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def authenticate_token(session: Session, token: str, *, now: datetime) -> TokenOwner | None:
    """The live token's owner, or None for an unknown or revoked one."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(token)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    # The lookup is by hash, so timing says nothing about the token; compare anyway.
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at:
        return None
    row.last_used_at = now
    return TokenOwner(row.id, row.practice_id)
