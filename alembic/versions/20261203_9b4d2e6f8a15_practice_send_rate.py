"""practice send_rate_per_s

Each practice number's send rate in segments a second (a US long code: 1): a token bucket
per sending number holds a burst back with us instead of the carriers filtering it.

Revision ID: 9b4d2e6f8a15
Revises: 3c9e5a7d1f42
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b4d2e6f8a15"
down_revision: str | None = "3c9e5a7d1f42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("send_rate_per_s", sa.Float(), server_default="1", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("send_rate_per_s")
