"""Encrypt at rest what was still plaintext: red-flag evidence, task notes, raw payloads

messages.intent_evidence ("red_flag:chest pain") repeats the patient's words; tasks.note
(and the copy Undo keeps) is what staff wrote about a patient; call_events.raw_payload held
the caller's number, name and town verbatim. Existing rows are encrypted here, under the
first of PHI_ENCRYPTION_KEYS (a database with rows to encrypt and no key is refused, and
nothing is changed); a database with none needs no key.

Revision ID: e5a1ed0c0de1
Revises: e5c11a2b3d04
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "e5a1ed0c0de1"
down_revision: str | None = "e5c11a2b3d04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_COLUMNS = (
    ("messages", "intent_evidence"),
    ("tasks", "note"),
    ("undoable_actions", "task_note"),
)


class _Cipher:
    """Built on first use: an empty database (a fresh install, the tests) needs no key."""

    def __init__(self) -> None:
        self._cipher: Any = None

    def get(self) -> Any:
        if self._cipher is None:
            from recovery.config import Settings
            from recovery.crypto import PhiCipher

            settings = context.config.attributes.get("settings") or Settings()
            self._cipher = PhiCipher.from_settings(settings)
        return self._cipher


def _each_text(change: Callable[[str], str]) -> None:
    bind = op.get_bind()
    for table_name, column_name in TEXT_COLUMNS:
        table = sa.table(table_name, sa.column("id", sa.Integer), sa.column(column_name, sa.Text))
        column = table.c[column_name]
        rows = bind.execute(sa.select(table.c.id, column).where(column.is_not(None))).all()
        for row_id, value in rows:
            bind.execute(
                table.update().where(table.c.id == row_id).values({column_name: change(value)})
            )


def _each_payload(change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    bind = op.get_bind()
    table = sa.table("call_events", sa.column("id", sa.Integer), sa.column("raw_payload", sa.JSON))
    for row_id, payload in bind.execute(sa.select(table.c.id, table.c.raw_payload)).all():
        if isinstance(payload, dict) and payload:
            bind.execute(
                table.update().where(table.c.id == row_id).values(raw_payload=change(payload))
            )


def upgrade() -> None:
    from recovery.crypto import SEALED_FIELD, seal_payload

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column(
            "intent_evidence",
            existing_type=sa.String(length=100),
            type_=sa.Text(),
            existing_nullable=True,
        )
    cipher = _Cipher()
    _each_text(lambda value: cipher.get().encrypt(value))
    _each_payload(
        lambda payload: payload if SEALED_FIELD in payload else seal_payload(cipher.get(), payload)
    )


def downgrade() -> None:
    from recovery.crypto import open_payload

    cipher = _Cipher()
    _each_text(lambda value: cipher.get().decrypt(value))
    _each_payload(lambda payload: open_payload(cipher.get(), payload))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column(
            "intent_evidence",
            existing_type=sa.Text(),
            type_=sa.String(length=100),
            existing_nullable=True,
        )
