"""fire drills

A drill texts the on-call roster a TEST page and records who answers, and how fast; its
own tables, so nothing that counts pages ever sees one (issue 10).

Revision ID: 57693d8cb964
Revises: 9b4d2e6f8a15
Create Date: 2026-12-03 10:10:39.826394
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "57693d8cb964"
down_revision: str | None = "9b4d2e6f8a15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.Column("roster", sa.JSON(), nullable=False),
        sa.Column("started_at", recovery.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", recovery.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", recovery.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_drills_practice_id_practices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drills")),
        sa.UniqueConstraint("code", name=op.f("uq_drills_code")),
    )
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drills_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "drill_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("answered_at", recovery.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_answers_drill_id_drills")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_answers")),
        sa.UniqueConstraint("drill_id", "phone", name=op.f("uq_drill_answers_drill_id_phone")),
    )
    with op.batch_alter_table("drill_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_answers_drill_id"), ["drill_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drill_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_answers_drill_id"))

    op.drop_table("drill_answers")
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drills_practice_id"))

    op.drop_table("drills")
