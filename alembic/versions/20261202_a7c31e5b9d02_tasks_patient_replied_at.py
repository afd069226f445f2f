"""tasks.patient_replied_at

The patient wrote again while a task was open: the queue says so until staff answer.

Revision ID: a7c31e5b9d02
Revises: c1a0c0a11b06
Create Date: 2026-12-02 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "a7c31e5b9d02"
down_revision: str | None = "c1a0c0a11b06"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("patient_replied_at", recovery.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("patient_replied_at")
