"""tasks: SLA breach, escalation to the manager, assignment to a person

Tasks already past due when this runs count as breached at their due time: the sweep's
first tick must not text the manager about every overdue task of the past.

Revision ID: b8d42f6ca113
Revises: a7c31e5b9d02
Create Date: 2026-12-02 18:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "b8d42f6ca113"
down_revision: str | None = "a7c31e5b9d02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("breached_at", recovery.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("escalated_at", recovery.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("assigned_to", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_assigned_to_users"), "users", ["assigned_to"], ["id"]
        )
        batch_op.create_index(
            "ix_tasks_status_breached_at_due_at", ["status", "breached_at", "due_at"], unique=False
        )
    op.execute(
        "UPDATE tasks SET breached_at = due_at "
        "WHERE status <> 'done' AND due_at < CURRENT_TIMESTAMP"
    )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_status_breached_at_due_at")
        batch_op.drop_constraint(batch_op.f("fk_tasks_assigned_to_users"), type_="foreignkey")
        batch_op.drop_column("assigned_to")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("breached_at")
