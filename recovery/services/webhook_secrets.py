"""Each practice's own webhook secret: who may sign a generic webhook, and for which practice.

A booking system or a PBX signs its requests (HMAC, recovery/web/security.py) with the
secret of the practice it serves, and what it signs acts on that practice only. The
install-wide WEBHOOK_SECRET acts on every practice, so it is honoured only where that is no
wider than one practice: a single-practice install, or one whose operator said all its
practices are one organisation (WEBHOOK_SECRET_ALL_PRACTICES). A rotated secret keeps
working for ROTATION_GRACE, so the sender can be updated without dropping a booking.

The secrets are stored as they are: verifying an HMAC needs the secret itself, not a hash
of it, and the key that could encrypt it would sit beside it in the same process.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.domain.phones import parse_number
from recovery.models import Practice
from recovery.services.errors import NotFound
from recovery.services.practices import find_practice_by_number

ROTATION_GRACE = timedelta(hours=24)


class SecretChange(enum.Enum):
    SHOWN = "shown"  # it existed; printed
    CREATED = "created"  # the practice had none
    ROTATED = "rotated"  # a new one; the old one works until previous_until


@dataclass(frozen=True)
class PracticeSecret:
    practice_id: int
    slug: str
    secret: str
    change: SecretChange
    previous_until: datetime | None = None


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


def practice_secret(
    session: Session, slug: str, *, now: datetime, rotate: bool = False
) -> PracticeSecret:
    """The practice's secret, made if it has none; `rotate` makes a new one and keeps the
    current one valid for ROTATION_GRACE. NotFound for an unknown slug."""
    practice = session.scalars(
        select(Practice).where(Practice.slug == slug).with_for_update()
    ).first()
    if practice is None:
        raise NotFound(f"no practice {slug}")
    change = SecretChange.SHOWN
    if practice.webhook_secret is None:
        practice.webhook_secret = new_secret()
        change = SecretChange.CREATED
    elif rotate:
        practice.previous_webhook_secret = practice.webhook_secret
        practice.previous_webhook_secret_until = now + ROTATION_GRACE
        practice.webhook_secret = new_secret()
        change = SecretChange.ROTATED
    return PracticeSecret(
        practice.id,
        practice.slug,
        practice.webhook_secret,
        change,
        practice.previous_webhook_secret_until if change is SecretChange.ROTATED else None,
    )


def line_secret(session: Session, line: str, *, now: datetime) -> PracticeSecret | None:
    """The secret of the practice that owns `line` (made if it has none), to sign a
    simulated call to it; None when no practice owns the line."""
    number = parse_number(line).e164
    practice = find_practice_by_number(session, number) if number else None
    if practice is None:
        return None
    return practice_secret(session, practice.slug, now=now)


@dataclass(frozen=True)
class Signer:
    """A secret that may sign a generic webhook. practice_id None: any practice (the
    install-wide WEBHOOK_SECRET); `refused` says why such a secret may not sign here."""

    secret: str
    practice_id: int | None
    refused: str | None = None


SHARED_REFUSED = (
    "WEBHOOK_SECRET signs for every practice only on a single-practice install; this one has "
    "{n} practices: sign with the practice's own secret (`recovery practices secret SLUG`)"
)


def signers(
    session: Session, *, shared_secret: str, shared_for_all: bool, now: datetime
) -> list[Signer]:
    """Every secret that may sign a generic webhook now, each with the practice it may act
    on: the practices' own (and a rotated one in its grace period), then the shared one."""
    found: list[Signer] = []
    rows = session.execute(
        select(
            Practice.id,
            Practice.webhook_secret,
            Practice.previous_webhook_secret,
            Practice.previous_webhook_secret_until,
        )
    ).all()
    for practice_id, current, previous, until in rows:
        if current:
            found.append(Signer(current, practice_id))
        if previous and until is not None and until > now:
            found.append(Signer(previous, practice_id))
    if shared_secret:
        # `rows` holds every practice already: their number needs no second query.
        count = len(rows)
        refused = None if shared_for_all or count <= 1 else SHARED_REFUSED.format(n=count)
        found.append(Signer(shared_secret, None, refused))
    return found
