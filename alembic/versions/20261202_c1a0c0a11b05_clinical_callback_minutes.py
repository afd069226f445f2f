"""clinical callback minutes

A clinical concern's care-team task is due this many minutes after the reply, by the
clock (issue 10).

Revision ID: c1a0c0a11b05
Revises: 4469237593db
Create Date: 2026-12-02 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c1a0c0a11b05"
down_revision: str | None = "4469237593db"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("clinical_callback_min", sa.Integer(), server_default="30", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("clinical_callback_min")
