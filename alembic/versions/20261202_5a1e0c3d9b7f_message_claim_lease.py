"""message claim lease and in-doubt marker

A claim becomes a short lease (lease_until) so a dead worker's texts go out in seconds; a
text whose send may have reached the provider is marked in_doubt_since, and the provider
is asked before it is sent again.

Revision ID: 5a1e0c3d9b7f
Revises: b8d42f6ca113
Create Date: 2026-12-02 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "5a1e0c3d9b7f"
down_revision: str | None = "b8d42f6ca113"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_until", recovery.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("in_doubt_since", recovery.db.UTCDateTime(timezone=True), nullable=True)
        )
    # A text claimed before this migration had no lease: it lapses at once, and since its
    # worker may have sent it, the provider is asked first.
    op.execute(
        "UPDATE messages SET lease_until = claimed_at, in_doubt_since = claimed_at"
        " WHERE status = 'sending'"
    )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("in_doubt_since")
        batch_op.drop_column("lease_until")
