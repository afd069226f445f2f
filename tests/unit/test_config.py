"""Settings: the database URL the product hands SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery.config import Settings
from recovery.db import make_engine


def settings_with(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://app:pw@db:5432/recovery", "postgresql+psycopg2://app:pw@db:5432/recovery"),
        ("postgresql://app@db/recovery", "postgresql+psycopg2://app@db/recovery"),
        ("postgresql+psycopg://app@db/recovery", "postgresql+psycopg://app@db/recovery"),
    ],
)
def test_postgres_urls_get_the_psycopg2_driver_unless_they_name_one(
    given: str, expected: str
) -> None:
    assert settings_with(DATABASE_URL=given).effective_database_url == expected


def test_the_postgresql_driver_is_psycopg2() -> None:
    url = settings_with(DATABASE_URL="postgres://app@127.0.0.1:1/recovery").effective_database_url
    engine = make_engine(url)

    assert engine.dialect.driver == "psycopg2"


def test_without_a_database_url_the_embedded_sqlite_file_is_under_var(tmp_path: Path) -> None:
    settings = settings_with(RECOVERY_VAR_DIR=str(tmp_path))

    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve()}/recovery.db"


def test_a_dead_workers_texts_are_taken_back_well_inside_ten_seconds() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    # A live worker's one request ends (answered or timed out) before its lease lapses,
    # even if the lease keeper never renews it.
    assert settings.claim_lease_s > settings.provider_timeout_s
    # Killed just after renewing: the lease lapses a whole lease later and the next sweep
    # takes its texts; the rest of the ten seconds is for the claim, lookup and record.
    assert settings.claim_lease_s + settings.sweep_interval_s <= 5.0


def test_a_lease_no_longer_than_the_provider_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="RECOVERY_CLAIM_LEASE_S"):
        Settings(_env_file=None, RECOVERY_CLAIM_LEASE_S=3, RECOVERY_PROVIDER_TIMEOUT_S=3)  # type: ignore[call-arg]
