"""The report's square and band filters (tests/unit/test_report_links.py) on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from recovery.schemas.practices import read_practices
from recovery.services.practices import load_practices
from tests.conftest import PRACTICES_FILE
from tests.integration.conftest import TABLES
from tests.unit.test_report_links import (  # noqa: F401 - collected again, here on PostgreSQL
    test_the_square_and_band_filters_in_the_database,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def practices(sessions: sessionmaker[Session]) -> Iterator[None]:
    with sessions.begin() as session:
        assert session.get_bind().dialect.name == "postgresql"
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        load_practices(session, read_practices(PRACTICES_FILE))
    yield
