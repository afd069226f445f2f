"""The recovery report's hand-made week (tests/unit/test_reports.py) on PostgreSQL, where
the episodes are added up by the database instead of row by row in Python: the same
assertions must hold for both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from recovery.schemas.practices import read_practices
from recovery.services.practices import load_practices
from tests.conftest import PRACTICES_FILE
from tests.integration.conftest import TABLES
from tests.unit.test_reports import (  # noqa: F401 - collected again, here on PostgreSQL
    test_an_empty_range_has_no_rates_rather_than_zero,
    test_answer_rate_pages_and_tasks,
    test_days_and_the_heat_map_are_on_chicago_clocks,
    test_outcomes_recovery_rate_and_revenue_match_the_hand_count,
    test_the_csv_rows_are_local_masked_and_say_whether_tasks_met_their_sla,
    test_the_previous_week_stands_beside_it,
    test_time_to_first_text_percentiles_leave_out_the_never_texted,
    week,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def practices(sessions: sessionmaker[Session]) -> Iterator[None]:
    with sessions.begin() as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        load_practices(session, read_practices(PRACTICES_FILE))
    yield


def test_postgresql_adds_the_episodes_up_itself(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert session.get_bind().dialect.name == "postgresql"
