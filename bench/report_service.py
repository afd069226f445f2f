"""The recovery report as the product serves it, on the generated 1,000,000-episode history:
the service (recovery.services.reports.build_report), the /reports page and the JSON API
through the real Flask app, and the CSV streamed through the API.

    python -m bench.report_service                    # make bench-report
    python -m bench.report_service --episodes 100000 --runs 5   # quicker

bench/report_queries.py times the SQL alone; this times what a manager waits for: every
row read, tallied in Python, rendered (the page draws its SVG charts), or serialised. The
CSV is read a chunk at a time as a client would, and the memory the process allocates
while it streams is traced (tracemalloc peak): a practice-quarter and a practice's whole
year must peak alike, or the CSV is being held in memory.

The app runs in this process (Flask's test client: no network, no gunicorn), on the
machine's PostgreSQL, in a fresh database dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.generate_history import generate
from bench.infra import fresh_database
from bench.stats import percentile

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
QUARTER = (date(2026, 10, 1), date(2026, 12, 31))
YEAR = (date(2026, 1, 1), date(2026, 12, 31))
TARGET_P95_MS = 200.0


@dataclass(frozen=True)
class Timed:
    what: str
    runs_ms: list[float]
    # This process's CPU time per run (time.process_time): what the app itself costs,
    # whatever else the machine is doing; the wall time also waits for PostgreSQL and
    # for a turn on the CPU.
    cpu_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def p95(self) -> float:
        return percentile(self.runs_ms, 95)


@dataclass(frozen=True)
class Streamed:
    what: str
    rows: int
    megabytes: float
    seconds: float
    first_byte_ms: float
    peak_mib: float


def _time(what: str, runs: int, call: Callable[[], object]) -> Timed:
    call()  # warm: the figures are for a report opened twice, not a cold cache
    samples, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return Timed(what, [round(s, 1) for s in samples], [round(c, 1) for c in cpu])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="admin URL")
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/report_results.md"))
    args = parser.parse_args(argv)

    with (
        TemporaryDirectory() as work,
        fresh_database(args.database_url, "recovery_bench_rep") as url,
    ):
        print(f"generating {args.episodes:,} episodes ...", file=sys.stderr)
        stats = generate(url, args.episodes, work_dir=Path(work))
        print(f"  {stats.seconds} s", file=sys.stderr)
        timed, streamed, quarter_rows = _measure(url, stats.largest_practice_id, args.runs)
    text = _render(args, stats.largest_practice_episodes, quarter_rows, timed, streamed)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(t.p95 <= TARGET_P95_MS for t in timed) else 1


def _measure(url: str, practice_id: int, runs: int) -> tuple[list[Timed], list[Streamed], int]:
    from flask.testing import FlaskClient

    from recovery.config import Settings
    from recovery.crypto import new_key
    from recovery.db import make_engine, make_session_factory, session_scope
    from recovery.domain.periods import custom
    from recovery.models import Practice, Role, User
    from recovery.services.reports import build_report
    from recovery.services.tokens import create_token
    from recovery.web import create_app

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=url,
        SECRET_KEY="bench-report",
        PHI_ENCRYPTION_KEYS=new_key(),
        PUBLIC_BASE_URL="http://127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    sessions = make_session_factory(make_engine(url))
    now = datetime(2027, 1, 4, 15, 0, tzinfo=UTC)  # the Monday after the quarter
    with session_scope(sessions) as session:
        practice = session.get(Practice, practice_id)
        assert practice is not None
        slug = practice.slug
        manager = User(
            email="bench-manager@example.com",
            name="Bench Manager",
            password_hash="!",  # never signs in with a password: the cookie is made below
            role=Role.MANAGER,
            practice_id=practice_id,
            active=True,
        )
        session.add(manager)
        token = create_token(session, practice_slug=slug, name="bench", now=now).token
        session.flush()
        manager_id, version = manager.id, manager.session_version

    app = create_app(settings, sessions=sessions, dispatcher=_NoDispatch())
    page: FlaskClient = app.test_client()
    with page.session_transaction() as cookie:
        stamp = int(time.time())
        cookie.update(uid=manager_id, sv=version, auth=stamp, seen=stamp, csrf="bench")
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    quarter = f"from={QUARTER[0]}&to={QUARTER[1]}"

    def service() -> None:
        with sessions() as session:
            found = session.get(Practice, practice_id)
            assert found is not None
            build_report(session, [found], custom(*QUARTER), now=now)

    def get(client: FlaskClient, path: str, **kwargs: object) -> Callable[[], None]:
        def call() -> None:
            response = client.get(path, **kwargs)
            assert response.status_code == 200, response.status_code
            response.get_data()

        return call

    with sessions() as session:
        found = session.get(Practice, practice_id)
        assert found is not None
        quarter_rows = build_report(
            session, [found], custom(*QUARTER), now=now
        ).current.missed_calls
    timed = [
        _time("service: build_report", runs, service),
        _time("page: GET /reports", runs, get(page, f"/reports?{quarter}")),
        _time(
            "API: GET /api/reports/recovery",
            runs,
            get(api, f"/api/reports/recovery?practice={slug}&{quarter}", headers=auth),
        ),
    ]
    streamed = [
        _stream(
            api,
            "CSV, one practice, a quarter",
            f"/api/episodes.csv?practice={slug}&{quarter}",
            auth,
        ),
        _stream(
            api,
            "CSV, one practice, a year",
            f"/api/episodes.csv?practice={slug}&from={YEAR[0]}&to={YEAR[1]}",
            auth,
        ),
    ]
    return timed, streamed, quarter_rows


class _NoDispatch:
    """The report sends nothing; a dispatcher that would is a bug here."""

    def send_text(self, message_id: int) -> None:
        raise AssertionError("the report sent a text")

    def handle_reply(self, message_id: int) -> None:
        raise AssertionError("the report handled a reply")


def _stream(client: object, what: str, path: str, headers: dict[str, str]) -> Streamed:
    from flask.testing import FlaskClient

    assert isinstance(client, FlaskClient)
    tracemalloc.start()
    started = time.perf_counter()
    response = client.get(path, headers=headers, buffered=False)
    assert response.status_code == 200 and response.is_streamed
    size = rows = 0
    first = None
    for chunk in response.response:
        if first is None:
            first = time.perf_counter()
        data = chunk if isinstance(chunk, bytes) else chunk.encode()
        size += len(data)
        rows += data.count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Streamed(
        what,
        rows - 1,  # the header
        size / 1e6,
        seconds,
        ((first or started) - started) * 1000,
        peak / 2**20,
    )


def _load() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _render(
    args: argparse.Namespace,
    practice_episodes: int,
    quarter_rows: int,
    timed: list[Timed],
    streamed: list[Streamed],
) -> str:
    lines = [
        "# Recovery report: the service, the page, the API and the CSV",
        "",
        f"`python -m bench.report_service --episodes {args.episodes} --runs {args.runs}` "
        f"(`make bench-report`). {args.episodes:,} generated episodes over 2025-2026 across 50 "
        f"practices (`bench/generate_history.py`); the largest practice ({practice_episodes:,} "
        f"episodes in all, {quarter_rows:,} missed calls in 2026-Q4) and its quarter beside the "
        "quarter before. The app in-process (Flask's test client), PostgreSQL on the same "
        "2-core machine. One warm-up run, then the runs timed. "
        f"Load average when it ended: {_load()}.",
        "",
        f"| what | runs | p50 ms | p95 ms | goal p95 ≤ {TARGET_P95_MS:g} ms "
        "| app CPU p50 / p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for t in timed:
        verdict = "**met**" if t.p95 <= TARGET_P95_MS else "**missed**"
        cpu50, cpu95 = statistics.median(t.cpu_ms), percentile(t.cpu_ms, 95)
        lines.append(
            f"| {t.what} | {len(t.runs_ms)} | {t.p50:.1f} | {t.p95:.1f} | {verdict} "
            f"| {cpu50:.1f} / {cpu95:.1f} |"
        )
    lines += [
        "",
        "CSV through `GET /api/episodes.csv`, read chunk by chunk; peak = the most memory "
        "Python allocated while it streamed (tracemalloc):",
        "",
        "| what | rows | MB | seconds | first bytes ms | peak MiB |",
        "|---|---|---|---|---|---|",
    ]
    for s in streamed:
        lines.append(
            f"| {s.what} | {s.rows:,} | {s.megabytes:.1f} | {s.seconds:.2f} | "
            f"{s.first_byte_ms:.0f} | {s.peak_mib:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
