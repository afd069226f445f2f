"""practices.webhook_secret (and the rotated one's grace period)

Each practice signs its generic webhooks with its own secret, and what it signs acts on
that practice only; WEBHOOK_SECRET alone stays valid for single-practice installs.

Revision ID: e5c11a2b3d04
Revises: 7d2f4b1e9a30
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "e5c11a2b3d04"
down_revision: str | None = "7d2f4b1e9a30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_secret", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("previous_webhook_secret", sa.String(length=128), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "previous_webhook_secret_until",
                recovery.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("previous_webhook_secret_until")
        batch_op.drop_column("previous_webhook_secret")
        batch_op.drop_column("webhook_secret")
