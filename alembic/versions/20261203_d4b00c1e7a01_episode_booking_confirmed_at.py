"""episodes.booking_confirmed_at

A booking confirmation is recorded even when it cannot end the episode (an urgent page is
still open on it): the episode stays open for the clinician, and the booking is not lost.

Revision ID: d4b00c1e7a01
Revises: 7cb3378a90de
Create Date: 2026-12-03 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "d4b00c1e7a01"
down_revision: str | None = "7cb3378a90de"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("booking_confirmed_at", recovery.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.drop_column("booking_confirmed_at")
