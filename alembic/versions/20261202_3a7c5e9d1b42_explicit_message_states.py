"""explicit message states: retrying, routed; next_attempt_at means one thing

A retry was a pending text with attempts > 0, a routed reply an inbound text whose intent
was set, and next_attempt_at held a retry's backoff, the sweeper's next look at a fresh
text and at an unrouted reply. Now retrying and routed are states, next_attempt_at is the
retry's backoff only, and requeue_at the sweeper's next look at any waiting row.

Revision ID: 3a7c5e9d1b42
Revises: c1a0c0a11b05
Create Date: 2026-12-02 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "3a7c5e9d1b42"
down_revision: str | None = "c1a0c0a11b05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("requeue_at", recovery.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index("ix_messages_status_next_attempt_at")
        batch_op.create_index(
            "ix_messages_status_requeue_at", ["status", "requeue_at"], unique=False
        )
    op.execute("UPDATE messages SET status = 'retrying' WHERE status = 'pending' AND attempts > 0")
    op.execute(
        "UPDATE messages SET status = 'routed'"
        " WHERE direction = 'inbound' AND status = 'received' AND intent IS NOT NULL"
    )
    # The sweeper's next look was next_attempt_at for every waiting row; a retry keeps it
    # as its backoff too.
    op.execute(
        "UPDATE messages SET requeue_at = next_attempt_at"
        " WHERE status IN ('pending', 'retrying', 'received')"
    )
    op.execute("UPDATE messages SET next_attempt_at = NULL WHERE status <> 'retrying'")


def downgrade() -> None:
    op.execute(
        "UPDATE messages SET next_attempt_at = requeue_at WHERE status IN ('pending', 'received')"
    )
    op.execute("UPDATE messages SET status = 'received' WHERE status = 'routed'")
    op.execute("UPDATE messages SET status = 'pending' WHERE status = 'retrying'")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_requeue_at")
        batch_op.create_index(
            "ix_messages_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
        batch_op.drop_column("requeue_at")
