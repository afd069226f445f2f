"""untextable numbers

A number the provider said no text can reach (Twilio 21211 not a valid number, 21614 not a
mobile): the practice's calls from it become call-back tasks instead of texts.

Revision ID: 7d2f4b1e9a30
Revises: d4b00c1e7a01
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "7d2f4b1e9a30"
down_revision: str | None = "d4b00c1e7a01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "untextable_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("marked_at", recovery.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_untextable_numbers_practice_id_practices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_untextable_numbers")),
        sa.UniqueConstraint(
            "practice_id", "phone", name=op.f("uq_untextable_numbers_practice_id_phone")
        ),
    )


def downgrade() -> None:
    op.drop_table("untextable_numbers")
