"""message dead_letter_alerted_at

A text whose temporary errors never cleared is dead-lettered; the sweep that alerts the
practice's manager about it marks it once here.

Revision ID: 3c9e5a7d1f42
Revises: e5a1ed0c0de1
Create Date: 2026-12-03 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "3c9e5a7d1f42"
down_revision: str | None = "e5a1ed0c0de1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "dead_letter_alerted_at", recovery.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("dead_letter_alerted_at")
