"""The database away for a moment, in-process: the next `times` statements on an engine
fail as psycopg fails while PostgreSQL restarts. For unit tests of what rides a restart
out; the real restarts are in tests/faults/test_postgres.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError


class _Restarting(Exception):
    """What the driver says (its text is psycopg's for a fast shutdown)."""


@contextmanager
def database_away(engine: Engine, times: int | None = None) -> Iterator[list[int]]:
    """The next `times` statements (None: every one, until the block ends) raise
    OperationalError. Yields a one-item list: how many statements were refused."""
    refused = [0]

    def refuse(*_: Any) -> None:
        if times is None or refused[0] < times:
            refused[0] += 1
            raise OperationalError(
                "SELECT ...",
                {},
                _Restarting("terminating connection due to administrator command"),
            )

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield refused
    finally:
        event.remove(engine, "before_cursor_execute", refuse)
