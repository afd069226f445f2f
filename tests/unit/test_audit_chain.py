"""The audit trail is append-only and hash-chained: `recovery audit verify` finds the first
edited, inserted or deleted row."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from recovery.cli import main
from recovery.config import Settings
from recovery.db import make_engine, make_session_factory, utcnow
from recovery.models import AuditAction, AuditEvent
from recovery.services.audit import record, verify
from tests.conftest import PRACTICES_FILE

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


@pytest.fixture
def cli_env(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    monkeypatch.chdir(settings.var_dir.parent)  # no developer's .env


def five_rows(sessions: sessionmaker[Session]) -> None:
    for n in range(5):
        with sessions.begin() as session:
            record(session, None, AuditAction.VIEW_REPORT, now=utcnow(), detail=f"report {n}")


def sql(sessions: sessionmaker[Session], statement: str) -> None:
    with sessions.begin() as session:
        session.execute(text(statement))


def verified() -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify"])
    return result.exit_code, result.output


def test_rows_are_chained_in_order_and_verify_says_intact(
    cli_env: None, sessions: sessionmaker[Session]
) -> None:
    five_rows(sessions)

    with sessions() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
        assert all(b.prev_hash == a.row_hash for a, b in zip(rows, rows[1:], strict=False))
    code, output = verified()
    assert code == 0 and "intact: 5 rows" in output


def test_an_edited_row_is_found(cli_env: None, sessions: sessionmaker[Session]) -> None:
    five_rows(sessions)

    sql(sessions, "UPDATE audit_events SET detail = 'nothing to see' WHERE seq = 3")

    code, output = verified()
    assert code == 1 and "edited at seq 3" in output


def test_a_row_deleted_from_the_middle_is_found(
    cli_env: None, sessions: sessionmaker[Session]
) -> None:
    five_rows(sessions)

    sql(sessions, "DELETE FROM audit_events WHERE seq = 2")

    code, output = verified()
    assert code == 1 and "deleted at seq 2" in output


def test_the_last_rows_deleted_are_found(cli_env: None, sessions: sessionmaker[Session]) -> None:
    five_rows(sessions)

    sql(sessions, "DELETE FROM audit_events WHERE seq >= 4")

    code, output = verified()
    assert code == 1 and "deleted at seq 4" in output and "ends at seq 3, not 5" in output


def test_an_inserted_row_is_found(cli_env: None, sessions: sessionmaker[Session]) -> None:
    five_rows(sessions)
    sql(
        sessions,
        "INSERT INTO audit_events (action, detail, at) VALUES ('view_report', 'forged',"
        " '2026-12-01 10:00:00')",
    )

    code, output = verified()
    assert code == 1 and "inserted" in output and "outside the chain" in output

    sql(sessions, "DELETE FROM audit_events WHERE seq IS NULL")
    sql(
        sessions,
        "INSERT INTO audit_events (action, detail, at, seq, prev_hash, row_hash) VALUES"
        " ('view_report', 'forged', '2026-12-01 10:00:00', 6, 'x', 'y')",
    )
    code, output = verified()
    assert code == 1 and "inserted at seq 6" in output


def test_a_rolled_back_transaction_leaves_no_row_and_no_gap(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError), sessions.begin() as session:
        record(session, None, AuditAction.VIEW_REPORT, now=utcnow(), detail="lost")
        raise RuntimeError("the page failed")
    five_rows(sessions)

    with sessions() as session:
        checked, broken = verify(session)
        details = session.scalars(select(AuditEvent.detail)).all()
    assert (checked, broken) == (5, None) and "lost" not in details


def test_practices_load_from_the_command_line_is_audited(
    cli_env: None, sessions: sessionmaker[Session]
) -> None:
    loaded = CliRunner().invoke(main, ["practices", "load", str(PRACTICES_FILE)])

    assert loaded.exit_code == 0, loaded.output
    with sessions() as session:
        [detail] = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "cli_change")
        ).all()
    assert detail.startswith(f"practices load {PRACTICES_FILE.name}: 0 new, ") and " by " in detail


def test_the_migration_chains_the_rows_already_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "57693d8cb964")
    engine = make_engine(url)
    with engine.begin() as connection:
        for n in range(3):
            connection.execute(
                text(
                    "INSERT INTO audit_events (action, detail, at) VALUES ('view_report', :d,"
                    " '2026-12-01 10:00:0' || :d)"
                ),
                {"d": str(n)},
            )

    command.upgrade(config, "head")

    with make_session_factory(engine)() as session:
        assert verify(session) == (3, None)
    engine.dispose()
