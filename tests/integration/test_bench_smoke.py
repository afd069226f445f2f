"""`make bench-quick` runs and every text it caused arrived. Nothing about speed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from bench.run import DEFAULT_REDIS_URL
from tests.integration.conftest import DATABASE_URL, _psycopg_url, unavailable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "## Targets",
    "## Machine and versions",
    "## Settings",
    "## Webhook acknowledgement latency (ms)",
    "## Time-to-first-text (ms)",
    "## Reply-to-action latency",
    "## Highest missed-call rate held",
    "## Throughput (closed loop)",
    "## Baselines",
    "## Load generator lateness",
    "## CPU seconds and peak memory per process",
    "## Recovery report queries",
)


def test_the_quick_benchmark_runs_every_section_and_every_text_arrives(tmp_path: Path) -> None:
    redis_url = os.environ.get("RECOVERY_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        with psycopg.connect(_psycopg_url(DATABASE_URL), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL unavailable at {DATABASE_URL}: {exc}")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis unavailable at {redis_url}: {exc}")
    output = tmp_path / "results.md"

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--output",
            str(output),
            "--database-url",
            DATABASE_URL,
            "--redis-url",
            redis_url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    results = output.read_text()
    missing = [section for section in SECTIONS if section not in results]
    assert not missing, missing
    assert "| 10/s | 50/50 | 0 |" in results  # every text of the quick run arrived, once
    assert "BOOK -> booking link" in results and "page (first on-call number)" in results
