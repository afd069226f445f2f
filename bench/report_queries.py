"""The recovery report's query, and its benchmark on a generated history.

The report does not exist in the product yet; this is the SQL it will run (one statement,
one row per practice and period), written down here so its cost is known before it is
built:

- missed-call episodes in the period (every episode starts with a missed call);
- recovered = outcome booked or resolved, and the recovery rate;
- time-to-first-text p50 / p95 / max from episodes.time_to_first_text_ms (percentile_cont,
  NULLs, i.e. never texted, are left out);
- booked episodes x the practice's visit_value = revenue recovered.

A period is in the practice's own time zone ("Q3" for a clinic in Denver starts at midnight
in Denver), so the bounds are converted per practice with AT TIME ZONE.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

REPORT_SQL = """
SELECT p.id AS practice_id,
       p.slug,
       count(*) AS missed_call_episodes,
       count(*) FILTER (WHERE e.outcome IN ('booked', 'resolved')) AS recovered,
       round(count(*) FILTER (WHERE e.outcome IN ('booked', 'resolved'))::numeric
             / count(*), 4) AS recovery_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY e.time_to_first_text_ms) AS ttft_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY e.time_to_first_text_ms) AS ttft_p95_ms,
       max(e.time_to_first_text_ms) AS ttft_max_ms,
       count(*) FILTER (WHERE e.outcome = 'booked') AS booked,
       count(*) FILTER (WHERE e.outcome = 'booked') * p.visit_value AS revenue_recovered
FROM practices p
JOIN episodes e
  ON e.practice_id = p.id
 AND e.opened_at >= (%(start)s::timestamp AT TIME ZONE p.timezone)
 AND e.opened_at <  (%(end)s::timestamp AT TIME ZONE p.timezone)
{where}
GROUP BY p.id, p.slug, p.visit_value
ORDER BY p.slug
"""
ONE_PRACTICE = "WHERE p.id = %(practice_id)s"

# Indexes to compare. The migrations create ix_episodes_practice_id_opened_at on
# (practice_id, opened_at) INCLUDE (outcome, time_to_first_text_ms) (migration e845087c02c0,
# finding 7 of bench/README.md); the other rows put back what it replaced, in the benchmark
# database only, to show what the index buys.
INDEX_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("as migrated: (practice_id, opened_at) INCLUDE (outcome, time_to_first_text_ms)", ()),
    (
        "(practice_id, opened_at)",
        (
            "DROP INDEX IF EXISTS ix_episodes_practice_id_opened_at",
            "CREATE INDEX bench_episodes_practice_opened ON episodes (practice_id, opened_at)",
        ),
    ),
    (
        "before the migration: (practice_id)",
        (
            "DROP INDEX IF EXISTS bench_episodes_practice_opened",
            "CREATE INDEX bench_episodes_practice_id ON episodes (practice_id)",
        ),
    ),
)


@dataclass(frozen=True)
class ReportQuery:
    name: str
    start: date
    end: date
    practice_id: int | None

    def sql(self) -> str:
        return REPORT_SQL.format(where=ONE_PRACTICE if self.practice_id is not None else "")

    def params(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "practice_id": self.practice_id,
        }


@dataclass
class Timing:
    query: str
    variant: str
    runs_ms: list[float]
    rows: int
    episodes_counted: int
    plan: str  # EXPLAIN ANALYZE of one run
    plan_summary: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)


@dataclass
class ReportBenchmark:
    episodes: int
    practices: int
    generate_s: float
    queries: list[ReportQuery]
    timings: list[Timing] = field(default_factory=list)


def run_report(conn: psycopg.Connection[Any], query: ReportQuery) -> list[tuple[Any, ...]]:
    return conn.execute(query.sql(), query.params()).fetchall()


def _plan_summary(plan: str) -> str:
    """The access paths of a plan in a few words: which scans touched episodes."""
    keep = []
    for line in plan.splitlines():
        text = line.strip().lstrip("-> ").strip()
        if " on episodes" in text or "Scan" in text and "episodes" in text:
            keep.append(text.split("  (")[0])
    return "; ".join(dict.fromkeys(keep)) or plan.splitlines()[0]


def time_query(
    conn: psycopg.Connection[Any], query: ReportQuery, variant: str, runs: int
) -> Timing:
    run_report(conn, query)  # warm the cache: the figures are for a report run twice
    samples = []
    rows: list[tuple[Any, ...]] = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = run_report(conn, query)
        samples.append((time.perf_counter() - started) * 1000)
    explain = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS) " + query.sql(),
        query.params(),
    ).fetchall()
    plan = "\n".join(str(r[0]) for r in explain)
    return Timing(
        query=query.name,
        variant=variant,
        runs_ms=[round(s, 2) for s in samples],
        rows=len(rows),
        episodes_counted=sum(int(r[2]) for r in rows),
        plan=plan,
        plan_summary=_plan_summary(plan),
    )


def benchmark(database_url: str, queries: list[ReportQuery], runs: int) -> list[Timing]:
    """Time every query under every index variant (indexes are created in this benchmark
    database only; the product's migrations are not touched)."""
    from bench.infra import psycopg_url

    timings = []
    # prepare_threshold=None: every run is planned afresh, as a report page's one-off query.
    with psycopg.connect(
        psycopg_url(database_url), autocommit=True, prepare_threshold=None
    ) as conn:
        for variant, statements in INDEX_VARIANTS:
            for statement in statements:
                conn.execute(statement)
            if statements:
                conn.execute("VACUUM ANALYZE episodes")
            for query in queries:
                timings.append(time_query(conn, query, variant, runs))
    return timings
