"""api tokens and report indexes

API tokens (stored hashed) for the report API; audit rows may name the token instead of
a user; the report's indexes: call events by practice and time, and the episodes index
also carries intent and call_count so the report stays an index-only scan.

Revision ID: 0854e8d1179c
Revises: edd1d5932f34
Create Date: 2026-12-02 08:11:14.954231
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "0854e8d1179c"
down_revision: str | None = "edd1d5932f34"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INCLUDE = ["outcome", "time_to_first_text_ms"]
NEW_INCLUDE = ["outcome", "time_to_first_text_ms", "intent", "call_count"]


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", recovery.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", recovery.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", recovery.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_api_tokens_practice_id_practices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_practice_id"), ["practice_id"])

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_token_id", sa.Integer(), nullable=True))
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_events_api_token_id_api_tokens"),
            "api_tokens",
            ["api_token_id"],
            ["id"],
        )

    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_events_practice_id"))
        batch_op.create_index(
            "ix_call_events_practice_id_occurred_at", ["practice_id", "occurred_at"]
        )

    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.drop_index("ix_episodes_practice_id_opened_at", postgresql_include=OLD_INCLUDE)
        batch_op.create_index(
            "ix_episodes_practice_id_opened_at",
            ["practice_id", "opened_at"],
            postgresql_include=NEW_INCLUDE,
        )


def downgrade() -> None:
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.drop_index("ix_episodes_practice_id_opened_at", postgresql_include=NEW_INCLUDE)
        batch_op.create_index(
            "ix_episodes_practice_id_opened_at",
            ["practice_id", "opened_at"],
            postgresql_include=OLD_INCLUDE,
        )

    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index("ix_call_events_practice_id_occurred_at")
        batch_op.create_index(batch_op.f("ix_call_events_practice_id"), ["practice_id"])

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_audit_events_api_token_id_api_tokens"), type_="foreignkey"
        )
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("api_token_id")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_practice_id"))
    op.drop_table("api_tokens")
