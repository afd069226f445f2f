"""The schema comes from Alembic, and Alembic agrees with the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from recovery.db import Base, make_engine

pytestmark = pytest.mark.integration

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def test_there_is_a_single_head() -> None:
    script = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    assert len(script.get_heads()) == 1


def test_upgrade_head_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_downgrade_to_base_and_back_up(database_url: str) -> None:
    from tests.integration.conftest import fresh_database

    with fresh_database() as url:
        config = alembic_config(url)
        command.downgrade(config, "base")
        command.upgrade(config, "head")
        engine = make_engine(url)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        engine.dispose()


def test_explicit_message_states_migrate_existing_rows(database_url: str) -> None:
    """A retry was pending with attempts > 0 and a routed reply had an intent; each row
    gets its state, and next_attempt_at keeps only a retry's backoff."""
    from sqlalchemy import text

    from tests.integration.conftest import fresh_database

    before = "c1a0c0a11b05"
    with fresh_database() as url:
        config = alembic_config(url)
        command.downgrade(config, before)
        engine = make_engine(url)
        with engine.begin() as connection:
            # Plain SQL: the models are at head, and the practices table has grown since.
            practice = connection.execute(
                text(
                    "INSERT INTO practices (slug, name, timezone, ring_timeout_s, hours,"
                    " holidays, visit_value, on_call, blocked_numbers, episode_window_h,"
                    " billing_sla_h, refill_sla_h, refill_cutoff, ack_timeout_s,"
                    " reply_window_h, nudge_after_h, quiet_hours, created_at) VALUES"
                    " ('valley-family', 'Valley', 'America/Chicago', 20, '{}', '[]', 0, '[]',"
                    " '[]', 12, 4, 2, '15:00', 300, 24, 4, '21:00-08:00', now()) RETURNING id"
                )
            ).scalar_one()
            rows = [
                # (direction, status, attempts, intent, next_attempt_at)
                ("outbound", "pending", 0, None, "2026-11-03 15:00:06+00"),
                ("outbound", "pending", 2, None, "2026-11-03 15:00:08+00"),
                ("outbound", "accepted", 1, None, "2026-11-03 15:00:00+00"),
                ("inbound", "received", 0, None, "2026-11-03 15:00:09+00"),
                ("inbound", "received", 0, "book", "2026-11-03 15:00:03+00"),
            ]
            for direction, status, attempts, intent, next_at in rows:
                connection.execute(
                    text(
                        "INSERT INTO messages (practice_id, direction, kind, from_number,"
                        " to_number, body, status, attempts, intent, next_attempt_at,"
                        " created_at) VALUES (:p, :d, 'first_text', '+1', '+2', '', :s, :a,"
                        " :i, :n, '2026-11-03 15:00:00+00')"
                    ),
                    {
                        "p": practice,
                        "d": direction,
                        "s": status,
                        "a": attempts,
                        "i": intent,
                        "n": next_at,
                    },
                )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            got = connection.execute(
                text(
                    "SELECT status, to_char(next_attempt_at at time zone 'UTC', 'SS'),"
                    " to_char(requeue_at at time zone 'UTC', 'SS') FROM messages ORDER BY id"
                )
            ).all()
        engine.dispose()
    assert [tuple(row) for row in got] == [
        ("pending", None, "06"),
        ("retrying", "08", "08"),
        ("accepted", None, None),
        ("received", None, "09"),
        ("routed", None, None),
    ]
