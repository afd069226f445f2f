"""Generate a history of missed-call episodes for the report benchmark, fast.

    python -m bench.generate_history --create                        # a new database
    python -m bench.generate_history --database-url postgresql://...  # an empty migrated one

The practices come from the benchmark's practices file (loaded with the product's own
loader); episodes are written with COPY (psycopg), never the ORM, in the order they
happened, as the product appends them. The data is deterministic for a seed.

What the report reads is on the episode row: opened_at, outcome, time_to_first_text_ms
(and the practice's visit_value), so by default only episodes are generated.
`--with-calls-and-messages` adds each episode's call events and first text as well, for
reports that will need them (time-to-first-text from the call's own end time).

Shape of the data (roughly what the product's sources describe):
- practices of uneven size (the largest has ~7% of all episodes, the smallest ~1%);
- calls in business hours more than at night, every day over `--days` days from
  2025-01-01 (730 days: to the end of 2026);
- outcomes: 36% booked, 15% resolved, 2% escalated, 3% opted out, 44% unrecovered; the
  episodes of the last day are still open;
- time-to-first-text lognormal around 420 ms, 0.5% slow (3-120 s, retries), 2% never
  texted (NULL).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench import infra
from bench.practices import make_practices, write_practices_file

HISTORY_START = datetime(2025, 1, 1, tzinfo=UTC)
OUTCOMES = (
    ("booked", 0.36, "book"),
    ("resolved", 0.15, "billing"),
    ("escalated", 0.02, "urgent"),
    ("opted_out", 0.03, None),
    ("unrecovered", 0.44, None),
)
# Calls per UTC hour: US business hours (13:00-01:00 UTC) carry most of them.
HOUR_WEIGHTS = [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 6, 9, 10, 10, 9, 9, 10, 10, 9, 8, 6, 4]
CHUNK = 50_000

EPISODE_COLUMNS = (
    "id, practice_id, caller, status, joinable, opened_at, last_call_at, call_count, "
    "first_text_accepted_at, time_to_first_text_ms, outcome, outcome_at, intent, language, "
    "unclear_replies"
)
CALL_COLUMNS = (
    "id, practice_id, provider, provider_call_id, caller, caller_raw, called, disposition, "
    "reason, skip_reason, occurred_at, received_at, episode_id, raw_payload"
)
MESSAGE_COLUMNS = (
    "id, practice_id, episode_id, direction, kind, from_number, to_number, body, status, "
    "attempts, provider, provider_sid, created_at, accepted_at, delivered_at, status_updated_at"
)


@dataclass(frozen=True)
class HistoryStats:
    episodes: int
    call_events: int
    messages: int
    practices: int
    seconds: float
    largest_practice_id: int
    largest_practice_episodes: int
    first: datetime
    last: datetime


def _ts(value: datetime) -> str:
    return value.isoformat(sep=" ")


def _load_practices(database_url: str, practices_count: int, work_dir: Path) -> list[tuple]:
    """Practices through the product's loader; returns (id, visit_value, numbers) each."""
    from recovery.db import make_engine, make_session_factory, session_scope
    from recovery.schemas.practices import read_practices
    from recovery.services.practices import load_practices

    path = write_practices_file(
        work_dir / "history-practices.yaml", make_practices(practices_count)
    )
    engine = make_engine(database_url)
    with session_scope(make_session_factory(engine)) as session:
        load_practices(session, read_practices(path))
    engine.dispose()
    with psycopg.connect(infra.psycopg_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT p.id, p.visit_value, array_agg(n.number ORDER BY n.position) "
            "FROM practices p JOIN practice_numbers n ON n.practice_id = p.id "
            "GROUP BY p.id ORDER BY p.id"
        ).fetchall()
    return [tuple(row) for row in rows]


def _opened_times(rng: random.Random, count: int, days: int) -> list[float]:
    """Seconds since HISTORY_START, sorted: the order the product would have written them."""
    hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=count)
    times = [rng.randrange(days) * 86400 + h * 3600 + rng.random() * 3600 for h in hours]
    times.sort()
    return times


def _ttft_ms(rng: random.Random) -> int | None:
    roll = rng.random()
    if roll < 0.02:
        return None
    if roll < 0.025:
        return rng.randrange(3_000, 120_000)
    return max(80, round(rng.lognormvariate(math.log(420), 0.45)))


def _rows(
    rng: random.Random, count: int, days: int, practices: list[tuple], with_related: bool
) -> Iterator[tuple[str, str, str]]:
    """(episode line, call event lines, message line) per episode, COPY text format."""
    weights = [1 / math.sqrt(i + 1) for i in range(len(practices))]
    chosen = rng.choices(range(len(practices)), weights=weights, k=count)
    opened = _opened_times(rng, count, days)
    end = days * 86400
    outcome_names = [o[0] for o in OUTCOMES]
    outcome_weights = [o[1] for o in OUTCOMES]
    intents = {o[0]: o[2] for o in OUTCOMES}
    call_id = 0
    for i in range(count):
        episode_id = i + 1
        practice_id, _, numbers = practices[chosen[i]]
        area = rng.choice(("212", "312", "415", "512", "617", "713"))
        caller = f"+1{area}{rng.randrange(2_000_000, 9_999_999)}"
        opened_at = HISTORY_START + timedelta(seconds=opened[i])
        calls = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
        last_call = opened_at + timedelta(minutes=(calls - 1) * rng.randrange(2, 90))
        ttft = _ttft_ms(rng)
        accepted = opened_at + timedelta(milliseconds=ttft) if ttft is not None else None
        still_open = end - opened[i] < 86400
        if still_open:
            status, outcome, outcome_at, intent = "open", None, None, None
        else:
            status = "closed"
            outcome = rng.choices(outcome_names, weights=outcome_weights)[0]
            outcome_at = opened_at + timedelta(minutes=rng.randrange(1, 24 * 60))
            intent = intents[outcome]
        language = "es" if rng.random() < 0.06 else "en"
        episode = "\t".join(
            (
                str(episode_id),
                str(practice_id),
                caller,
                status,
                "f",
                _ts(opened_at),
                _ts(last_call),
                str(calls),
                _ts(accepted) if accepted else "\\N",
                str(ttft) if ttft is not None else "\\N",
                outcome or "\\N",
                _ts(outcome_at) if outcome_at else "\\N",
                intent or "\\N",
                language,
                "0",
            )
        )
        if not with_related:
            yield episode + "\n", "", ""
            continue
        line = numbers[i % len(numbers)]
        call_lines = []
        for c in range(calls):
            call_id += 1
            at = opened_at + (last_call - opened_at) * (c / max(calls - 1, 1))
            call_lines.append(
                "\t".join(
                    (
                        str(call_id),
                        str(practice_id),
                        "twilio",
                        f"CA{call_id:032x}",
                        caller,
                        caller,
                        line,
                        "missed",
                        "no-answer",
                        "joined_episode" if c else "\\N",
                        _ts(at),
                        _ts(at),
                        str(episode_id),
                        "{}",
                    )
                )
                + "\n"
            )
        message = ""
        if accepted is not None:
            delivered = accepted + timedelta(seconds=rng.randrange(1, 20))
            message = (
                "\t".join(
                    (
                        str(episode_id),
                        str(practice_id),
                        str(episode_id),
                        "outbound",
                        "first_text",
                        line,
                        caller,
                        "Bench Clinic: sorry we missed your call! Reply 1 BOOK, 2 BILLING.",
                        "delivered",
                        "1",
                        "twilio",
                        f"SM{episode_id:032x}",
                        _ts(opened_at),
                        _ts(accepted),
                        _ts(delivered),
                        _ts(delivered),
                    )
                )
                + "\n"
            )
        yield episode + "\n", "".join(call_lines), message


def generate(
    database_url: str,
    episodes: int,
    practices_count: int = 50,
    days: int = 730,
    seed: int = 1,
    with_calls_and_messages: bool = False,
    work_dir: Path | None = None,
) -> HistoryStats:
    """Fill an empty, migrated database with `episodes` episodes (and practices)."""
    started = time.perf_counter()
    work_dir = work_dir or Path.cwd()
    practices = _load_practices(database_url, practices_count, work_dir)
    rng = random.Random(seed)
    counts = {"calls": 0, "messages": 0}
    per_practice: dict[int, int] = {}
    with psycopg.connect(infra.psycopg_url(database_url)) as conn, conn.cursor() as cur:
        buffers: dict[str, list[str]] = {"episodes": [], "call_events": [], "messages": []}
        columns = {
            "episodes": EPISODE_COLUMNS,
            "call_events": CALL_COLUMNS,
            "messages": MESSAGE_COLUMNS,
        }

        def flush(table: str) -> None:
            if not buffers[table]:
                return
            with cur.copy(f"COPY {table} ({columns[table]}) FROM STDIN") as copy:
                copy.write("".join(buffers[table]).encode())
            buffers[table].clear()

        for episode, calls, message in _rows(
            rng, episodes, days, practices, with_calls_and_messages
        ):
            buffers["episodes"].append(episode)
            practice_id = int(episode.split("\t", 2)[1])
            per_practice[practice_id] = per_practice.get(practice_id, 0) + 1
            if calls:
                buffers["call_events"].append(calls)
                counts["calls"] += calls.count("\n")
            if message:
                buffers["messages"].append(message)
                counts["messages"] += 1
            if len(buffers["episodes"]) >= CHUNK:
                for table in buffers:
                    flush(table)
        for table in buffers:
            flush(table)
        for table in buffers:  # our own constant table names, not input
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        conn.commit()
    with psycopg.connect(infra.psycopg_url(database_url), autocommit=True) as conn:
        # The visibility map lets the report use index-only scans, as it would on a table
        # autovacuum has been over.
        for table in ("episodes", "call_events", "messages", "practices"):
            conn.execute(f"VACUUM ANALYZE {table}")
    largest = max(per_practice, key=lambda p: per_practice[p])
    return HistoryStats(
        episodes=episodes,
        call_events=counts["calls"],
        messages=counts["messages"],
        practices=len(practices),
        seconds=round(time.perf_counter() - started, 1),
        largest_practice_id=largest,
        largest_practice_episodes=per_practice[largest],
        first=HISTORY_START,
        last=HISTORY_START + timedelta(days=days),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate_history", description=__doc__)
    parser.add_argument("--database-url", help="an empty database migrated to head")
    parser.add_argument(
        "--create",
        action="store_true",
        help="create and migrate a new database on the server of --admin-url (kept)",
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--practices", type=int, default=50)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--with-calls-and-messages", action="store_true")
    args = parser.parse_args(argv)
    if bool(args.database_url) == bool(args.create):
        parser.error("give either --database-url or --create")
    url = args.database_url
    if args.create:
        url = create_database(args.admin_url, "recovery_history")
    stats = generate(
        url, args.episodes, args.practices, args.days, args.seed, args.with_calls_and_messages
    )
    print(f"database: {url}")
    print(
        f"{stats.episodes} episodes, {stats.call_events} call events, {stats.messages} "
        f"messages across {stats.practices} practices in {stats.seconds} s; the largest "
        f"practice (id {stats.largest_practice_id}) has {stats.largest_practice_episodes}"
    )
    return 0


def create_database(admin_url: str, prefix: str) -> str:
    """A new migrated database that is *not* dropped afterwards (the CLI's --create)."""
    import uuid

    from recovery.cli import migrate
    from recovery.config import Settings

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(infra.psycopg_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = infra.sqlalchemy_url(admin_url, name)
    migrate(Settings(_env_file=None, DATABASE_URL=url))  # type: ignore[call-arg]
    return url


if __name__ == "__main__":
    sys.exit(main())
