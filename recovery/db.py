"""The database: declarative base, shared column types, engine and sessions.

Plain SQLAlchemy 2 sessions, so the web app, the workers, the CLI and the tests share this
module without a Flask app in sight.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

from sqlalchemy import JSON, DateTime, Enum, MetaData, String, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import (
    DeclarativeBase,
    Session,
    make_transient_to_detached,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Tests of the whole stack drive time across processes (a Friday-evening reply, an
# unacknowledged page five minutes later) through a file holding an offset in seconds,
# read at every call. Each process's edge (the web app, the worker, the CLI) installs it
# from Settings (`use_clock_offset_file`); production never sets it, and nothing reads the
# environment here.
_clock_offset_file: Path | None = None


def use_clock_offset_file(path: Path | None) -> None:
    global _clock_offset_file
    _clock_offset_file = path


def utcnow() -> datetime:
    now = datetime.now(UTC)
    if _clock_offset_file is not None:
        with suppress(FileNotFoundError, ValueError):
            now += timedelta(seconds=float(_clock_offset_file.read_text() or 0))
    return now


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL keeps the zone; SQLite (the embedded default) drops it, and a naive datetime
    compared with an aware one raises, so every value is normalised on the way in and out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum_cls: type[enum.Enum]) -> Enum:
    """Enums stored by value as plain strings: readable in psql, no ALTER TYPE to add one."""
    return Enum(
        enum_cls,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        validate_strings=True,
        length=32,
    )


created_at = Annotated[datetime, mapped_column(UTCDateTime, default=utcnow, nullable=False)]
phone = Annotated[str, mapped_column(String(20))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime, dict[str, Any]: JSON}


# What the driver raises while the database is away (restarting, failing over, its
# connections cut): refused, closed under us, "shutting down", "starting up". The
# transaction is rolled back with it, so the unit of work may run again.
DATABASE_AWAY: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


T = TypeVar("T")


def retry_while_database_away(
    run: Callable[[], T],
    wait_s: float,
    on_first_failure: Callable[[Exception], None] | None = None,
) -> T:
    """`run()`, and again while it fails because the database is away, for up to `wait_s`
    (pauses from 50 ms doubling to 500 ms, the last try at the deadline); then its error.
    `run` must be safe to run again: one transaction, or idempotent ones."""
    deadline = time.monotonic() + wait_s
    pause = 0.05
    failed = False
    while True:
        try:
            return run()
        except DATABASE_AWAY as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            if not failed and on_first_failure is not None:
                on_first_failure(exc)
            failed = True
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.5)


def database_error_words(exc: BaseException) -> str:
    """The driver's own first line (refused, shutting down) for a log, never the
    statement and its parameters that SQLAlchemy's message adds."""
    words = str(getattr(exc, "orig", None) or exc).strip()
    return words.splitlines()[0] if words else type(exc).__name__


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the web process read while the worker writes; foreign keys are off
            # by default in SQLite and we rely on them.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_unique(session: Session, row: Base) -> bool:
    """Insert `row`; False, and nothing inserted, if a unique constraint says it exists
    already. The constraint decides, not a SELECT beforehand, so two concurrent duplicates
    (a retried webhook, two calls at once) cannot both get in.

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING` (PostgreSQL and SQLite) instead of the
    ORM's savepoint, insert and release: every webhook inserts twice, and the statements
    and the flush around them were a fifth of its CPU (bench/README.md, finding 11). The
    row then joins the session as if loaded, so later changes to it are plain UPDATEs.
    """
    state = inspect(row)
    mapper = state.mapper
    if any(rel.key in state.dict for rel in mapper.relationships):
        raise ValueError("insert_unique takes column values only, not relationships")
    table = mapper.local_table
    insert = _INSERTS.get(session.get_bind().dialect.name)
    if insert is None:  # pragma: no cover - only PostgreSQL and SQLite are supported
        raise NotImplementedError(session.get_bind().dialect.name)
    values = {
        prop.columns[0].key: state.dict[prop.key]
        for prop in mapper.column_attrs
        if prop.key in state.dict
    }
    inserted = session.execute(
        insert(table).values(values).on_conflict_do_nothing().returning(*table.columns)
    ).first()
    if inserted is None:
        return False
    for prop in mapper.column_attrs:
        set_committed_value(row, prop.key, inserted._mapping[prop.columns[0]])
    make_transient_to_detached(row)
    session.add(row)
    return True


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
