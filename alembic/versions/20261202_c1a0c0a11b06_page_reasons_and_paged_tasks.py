"""page reasons and paged tasks

Why a page started (an urgent reply, or a clinical task nobody claimed in time), and on
a clinical task the page its breach started, so it is paged once (issue 10).

Revision ID: c1a0c0a11b06
Revises: 3a7c5e9d1b42
Create Date: 2026-12-02 18:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c1a0c0a11b06"
down_revision: str | None = "3a7c5e9d1b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason", sa.String(length=32), server_default="page", nullable=False)
        )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("page_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_page_id_pages"), "pages", ["page_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tasks_page_id_pages"), type_="foreignkey")
        batch_op.drop_column("page_id")
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_column("reason")
