"""Audit events: append-only and hash-chained

Each row gets its place (seq), the hash of the row before it and its own hash; existing rows
are chained in id order. audit_chain holds the last place and hash (its row is locked by
each append). On PostgreSQL, UPDATE, DELETE and TRUNCATE on audit_events are revoked from
PUBLIC: run the app as a role that does not own the table (an owner keeps every right).

Revision ID: a0d17c4a1e01
Revises: 57693d8cb964
Create Date: 2026-12-03 11:25:00
"""

from collections.abc import Sequence
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

import recovery.db

revision: str = "a0d17c4a1e01"
down_revision: str | None = "57693d8cb964"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from recovery.services.audit import CHAIN_ID, GENESIS, row_hash

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer),
        sa.column("user_id", sa.Integer),
        sa.column("api_token_id", sa.Integer),
        sa.column("action", sa.String),
        sa.column("episode_id", sa.Integer),
        sa.column("detail", sa.Text),
        sa.column("at", recovery.db.UTCDateTime()),
        sa.column("seq", sa.Integer),
        sa.column("prev_hash", sa.String),
        sa.column("row_hash", sa.String),
    )
    bind = op.get_bind()
    seq, last = 0, GENESIS
    rows = bind.execute(
        sa.select(
            events.c.id,
            events.c.user_id,
            events.c.api_token_id,
            events.c.action,
            events.c.episode_id,
            events.c.detail,
            events.c.at,
        ).order_by(events.c.id)
    ).all()
    for row in rows:
        seq += 1
        content = SimpleNamespace(**row._asdict(), seq=seq)
        digest = row_hash(last, content)  # type: ignore[arg-type]
        bind.execute(
            events.update()
            .where(events.c.id == row.id)
            .values(seq=seq, prev_hash=last, row_hash=digest)
        )
        last = digest
    op.bulk_insert(chain, [{"id": CHAIN_ID, "seq": seq, "last_hash": last}])
    if bind.dialect.name == "postgresql":
        # Every role granted a right to rewrite the trail loses it (PUBLIC too); the owner
        # cannot be kept out by a REVOKE, hence: the app runs as a role that is not it.
        grantees = bind.execute(
            sa.text(
                "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
                " WHERE table_name = 'audit_events' AND table_schema = current_schema()"
                " AND privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')"
                " AND grantee <> (SELECT tableowner FROM pg_tables"
                "   WHERE tablename = 'audit_events' AND schemaname = current_schema())"
            )
        ).scalars()
        for grantee in ["PUBLIC", *(f'"{g}"' for g in grantees if g != "PUBLIC")]:
            op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {grantee}")


def downgrade() -> None:
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
