"""undoable actions: what Complete and Mark booked changed, for Undo within minutes

Revision ID: 7cb3378a90de
Revises: 5a1e0c3d9b7f
Create Date: 2026-12-03 09:48:57.601897
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "7cb3378a90de"
down_revision: str | None = "5a1e0c3d9b7f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "undoable_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("complete_task", "mark_booked", name="undokind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("done_at", recovery.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("undone_at", recovery.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "task_status",
            sa.Enum("open", "claimed", "done", name="taskstatus", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("task_claimed_by", sa.String(length=100), nullable=True),
        sa.Column("task_claimed_at", recovery.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("task_note", sa.Text(), nullable=True),
        sa.Column(
            "episode_status",
            sa.Enum("open", "closed", name="episodestatus", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column(
            "episode_outcome",
            sa.Enum(
                "booked",
                "resolved",
                "escalated",
                "opted_out",
                "unrecovered",
                name="episodeoutcome",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("episode_outcome_at", recovery.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("episode_joinable", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episodes.id"], name=op.f("fk_undoable_actions_episode_id_episodes")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_undoable_actions_practice_id_practices"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_undoable_actions_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_undoable_actions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undoable_actions")),
    )
    with op.batch_alter_table("undoable_actions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_undoable_actions_user_id_done_at", ["user_id", "done_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("undoable_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_undoable_actions_user_id_done_at")

    op.drop_table("undoable_actions")
