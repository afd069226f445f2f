"""The services the benchmark stands on: a fresh PostgreSQL database per run, a dedicated
Redis database, and where their processes are (for CPU and memory accounting)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
from sqlalchemy.engine import make_url

from bench.procstats import PROC, parent_map

# PostgreSQL's own processes that work for every database: commits are written by the WAL
# writer, dirty pages by the background writer and the checkpointer.
PG_BACKGROUND = ("walwriter", "background writer", "checkpointer", "autovacuum")


def psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str, database: str) -> str:
    rendered = (
        make_url(url)
        .set(drivername="postgresql+psycopg2", database=database)
        .render_as_string(hide_password=False)
    )
    return str(rendered)


@contextmanager
def fresh_database(
    admin_url: str, prefix: str = "recovery_bench", *, migrate_schema: bool = True
) -> Iterator[str]:
    """A new database migrated with Alembic (as tests/integration/conftest.py does; empty
    with migrate_schema=False), dropped afterwards. Yields its SQLAlchemy URL."""
    from recovery.cli import migrate
    from recovery.config import Settings

    admin = psycopg_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(admin_url, name)
    try:
        if migrate_schema:
            migrate(Settings(_env_file=None, DATABASE_URL=url))  # type: ignore[call-arg]
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_name(url: str) -> str:
    name = make_url(url).database
    assert name is not None
    return name


def flush_redis(url: str) -> None:
    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()


class PostgresProcesses:
    """Finds the server processes that serve the benchmark: the backends connected to its
    database (each connection is one process) and the shared background writers."""

    def __init__(self, admin_url: str) -> None:
        self._admin = psycopg_url(admin_url)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.database: str | None = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._admin, autocommit=True, connect_timeout=3)
        return self._conn

    def backends(self) -> list[int]:
        if self.database is None:
            return []
        rows = (
            self._connection()
            .execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            )
            .fetchall()
        )
        return [int(str(row[0])) for row in rows]

    def background(self) -> list[int]:
        found = []
        parents = parent_map()
        for pid in parents:
            try:
                cmdline = (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith("postgres: ") and any(k in cmdline for k in PG_BACKGROUND):
                found.append(pid)
        return sorted(found)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def redis_pid(url: str) -> int | None:
    info = redis.Redis.from_url(url, socket_connect_timeout=2).info("server")
    pid = info.get("process_id")
    if pid is None or not Path(f"/proc/{pid}").exists():
        return None
    return int(pid)
