"""The audit chain on PostgreSQL: concurrent writers never fork it, and the app's role
cannot rewrite it."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from recovery.db import make_engine, make_session_factory, utcnow
from recovery.models import AuditAction
from recovery.services.audit import record, verify
from tests.integration.conftest import fresh_database

pytestmark = pytest.mark.integration

WRITERS = 8
EACH = 25


def test_concurrent_appends_keep_one_valid_chain() -> None:
    with fresh_database() as url:
        engine = make_engine(url, pool_size=WRITERS)
        sessions = make_session_factory(engine)
        start = threading.Barrier(WRITERS)
        failures: list[BaseException] = []

        def write(writer: int) -> None:
            try:
                start.wait()
                for n in range(EACH):
                    with sessions.begin() as session:
                        # Two rows per transaction: a transaction's rows stay together.
                        for part in ("a", "b"):
                            record(
                                session,
                                None,
                                AuditAction.VIEW_REPORT,
                                now=utcnow(),
                                detail=f"writer {writer} row {n}{part}",
                            )
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert not failures, failures
        with sessions() as session:
            checked, broken = verify(session)
            seqs = session.execute(
                text("SELECT count(DISTINCT seq), max(seq) FROM audit_events")
            ).one()
        engine.dispose()
    assert broken is None
    assert checked == WRITERS * EACH * 2 == seqs[0] == seqs[1]


def test_the_apps_role_may_append_but_not_update_or_delete() -> None:
    role = f"recovery_app_{uuid.uuid4().hex[:8]}"
    with fresh_database() as url:
        admin = make_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE ROLE {role}"))
        try:
            # An app role granted everything on every table, then the migration runs again.
            with admin.begin() as connection:
                connection.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
                connection.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"))
            from alembic import command

            from tests.integration.test_migrations import alembic_config

            command.downgrade(alembic_config(url), "57693d8cb964")
            with admin.begin() as connection:
                connection.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
            command.upgrade(alembic_config(url), "head")
            # The chain's own row: the app locks and moves it on every append.
            with admin.begin() as connection:
                connection.execute(text(f"GRANT SELECT, INSERT, UPDATE ON audit_chain TO {role}"))

            sessions = make_session_factory(admin)
            with sessions.begin() as session:
                session.execute(text(f"SET LOCAL ROLE {role}"))
                record(session, None, AuditAction.VIEW_REPORT, now=utcnow(), detail="appended")
            for statement in (
                "UPDATE audit_events SET detail = 'x'",
                "DELETE FROM audit_events",
                "TRUNCATE audit_events",
            ):
                with (
                    pytest.raises(ProgrammingError, match="permission denied"),
                    admin.begin() as connection,
                ):
                    connection.execute(text(f"SET LOCAL ROLE {role}"))
                    connection.execute(text(statement))
            with sessions() as session:
                assert verify(session) == (1, None)
        finally:
            with admin.begin() as connection:
                connection.execute(text(f"DROP OWNED BY {role}"))
                connection.execute(text(f"DROP ROLE {role}"))
            admin.dispose()
