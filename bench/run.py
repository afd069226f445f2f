"""`make bench`: the production shape on this machine, driven open loop, measured.

    python -m bench.run            # the full run (about 15 minutes): writes bench/results.md
    python -m bench.run --quick    # a smoke run (about a minute): every text must arrive

It starts gunicorn serving the app, a Celery worker and beat on Redis, a fresh PostgreSQL
database per phase, and a Twilio-shaped server on loopback that answers after a delay;
drives signed missed-call webhooks at each rate; measures the baselines (a bare Flask app,
a no-op Celery task) in the same run; then times the recovery report on a generated
history. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

from bench import environment
from bench.double import DoubleProcess
from bench.generate_history import generate
from bench.infra import fresh_database
from bench.phases import SECRETS, Bench, StackSettings, WebhookPhase, _fmt
from bench.practices import make_practices, write_practices_file
from bench.report import ReportSection, Results, render
from bench.report_queries import ReportQuery, benchmark

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results.md"
QUICK_OUTPUT = ROOT / "bench" / "out" / "results-quick.md"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Not the integration tests' /15: a benchmark flushes its Redis database.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
BEYOND = (300.0, 400.0, 600.0, 800.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of every section")
    parser.add_argument("--output", type=Path, help="results file (default bench/results.md)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("RECOVERY_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL URL that may CREATE DATABASE (each phase gets a fresh one)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("RECOVERY_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="a Redis database the benchmark may flush",
    )
    parser.add_argument("--rates", help="missed calls per second, comma-separated")
    parser.add_argument("--duration", type=float, help="seconds per rate (full: 60)")
    parser.add_argument("--baseline-duration", type=float, help="seconds per baseline rate")
    parser.add_argument(
        "--no-beyond",
        action="store_true",
        help="do not try rates above the last one when it holds",
    )
    parser.add_argument(
        "--reply-rate", type=float, default=5.0, help="inbound SMS replies per second"
    )
    parser.add_argument(
        "--reply-call-rate",
        type=float,
        default=5.0,
        help="new missed calls per second sent between the replies",
    )
    parser.add_argument("--reply-duration", type=float, help="seconds of replies (full: 30)")
    parser.add_argument("--skip-replies", action="store_true")
    parser.add_argument("--saturation-duration", type=float, help="closed-loop seconds")
    parser.add_argument("--saturation-clients", type=int, default=16)
    parser.add_argument("--drain-timeout", type=float, help="seconds to wait for late texts")
    parser.add_argument("--double-delay-ms", type=float, default=80.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--worker-pool", default="threads", choices=("prefork", "threads"))
    parser.add_argument("--worker-concurrency", type=int, default=20)
    parser.add_argument(
        "--worker-nice", type=int, default=10, help="the worker's niceness (the Procfile's: 10)"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--episodes", type=int, help="report history size (full: 1,000,000)")
    parser.add_argument("--report-runs", type=int, help="timed runs per report query")
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument(
        "--history-with-calls",
        action="store_true",
        help="also generate call events and first texts (the report does not read them)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.rates = (
        [float(x) for x in args.rates.split(",")]
        if args.rates
        else ([10.0] if quick else [10.0, 50.0, 100.0, 200.0])
    )
    args.duration = args.duration or (5.0 if quick else 60.0)
    args.baseline_duration = args.baseline_duration or (3.0 if quick else 30.0)
    args.reply_duration = args.reply_duration or (3.0 if quick else 30.0)
    args.saturation_duration = args.saturation_duration or (2.0 if quick else 10.0)
    args.drain_timeout = args.drain_timeout or (30.0 if quick else 60.0)
    args.episodes = args.episodes or (20_000 if quick else 1_000_000)
    args.report_runs = args.report_runs or (3 if quick else 5)
    args.beyond = not (quick or args.no_beyond)
    args.output = args.output or (QUICK_OUTPUT if quick else DEFAULT_OUTPUT)
    return args


def log(message: str) -> None:
    print(message, flush=True)


def run_phases(bench: Bench, args: argparse.Namespace) -> list[WebhookPhase]:
    phases: list[WebhookPhase] = []
    plan = list(args.rates)
    index = 0
    while index < len(plan):
        rate = plan[index]
        log(f"recovery at {rate:g} missed calls/s for {args.duration:g} s ...")
        phase = bench.stack_rate(rate, args.duration, args.drain_timeout)
        phases.append(phase)
        log(
            f"  ack {_fmt(phase.ack_all)}\n  time-to-first-text {_fmt(phase.ttft)}; "
            f"{phase.arrived_texts}/{phase.expected_texts} texts, {phase.errors} errors, "
            f"{'holds' if phase.holds else 'does not hold'}"
        )
        index += 1
        if index == len(plan) and args.beyond and phase.holds:
            plan += [r for r in BEYOND if r > rate][:1]
    return phases


def report_benchmark(args: argparse.Namespace, work_dir: Path) -> ReportSection:
    log(f"report benchmark: generating {args.episodes:,} episodes ...")
    with fresh_database(args.database_url, prefix="recovery_bench_history") as url:
        stats = generate(
            url,
            args.episodes,
            with_calls_and_messages=args.history_with_calls,
            work_dir=work_dir,
        )
        log(f"  generated in {stats.seconds} s")
        queries = [
            ReportQuery(
                "one practice, one quarter",
                date(2026, 10, 1),
                date(2027, 1, 1),
                stats.largest_practice_id,
            ),
            ReportQuery("all practices, one year", date(2026, 1, 1), date(2027, 1, 1), None),
        ]
        timings = benchmark(url, queries, args.report_runs)
    for t in timings:
        log(f"  {t.query} [{t.variant}]: median {t.median_ms:.1f} ms")
    return ReportSection(
        episodes=stats.episodes,
        practices=stats.practices,
        generate_s=stats.seconds,
        largest_practice_episodes=stats.largest_practice_episodes,
        runs=args.report_runs,
        timings=timings,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = StackSettings(
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        worker_pool=args.worker_pool,
        worker_concurrency=args.worker_concurrency,
        worker_nice=args.worker_nice,
        double_delay_ms=args.double_delay_ms,
        log_level=args.log_level,
    )
    env = environment.collect(args.database_url, args.redis_url)
    log(f"bench: {env.cpus} CPUs, {env.cpu_model}, PostgreSQL {env.postgresql}, Redis {env.redis}")
    with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp:
        work_dir = Path(tmp)
        practices = make_practices(50)
        practices_file = write_practices_file(work_dir / "practices.yaml", practices)
        double = DoubleProcess(SECRETS.account_sid, SECRETS.auth_token, args.double_delay_ms / 1000)
        bench = Bench(
            admin_url=args.database_url,
            redis_url=args.redis_url,
            work_dir=work_dir,
            practices=practices,
            practices_file=practices_file,
            settings=settings,
            double=double,
            log=log,
            logs_dir=args.output.parent / "out" / f"logs-{'quick' if args.quick else 'full'}"
            if args.output.parent.name == "bench"
            else args.output.parent / "logs",
        )
        try:
            log("baselines: bare Flask and a Celery no-op task ...")
            baselines = bench.baselines(
                args.rates,
                args.baseline_duration,
                args.saturation_duration,
                args.saturation_clients,
            )
            phases = run_phases(bench, args)
            replies = None
            if not args.skip_replies:
                log(
                    f"replies: {args.reply_rate:g}/s for {args.reply_duration:g} s with "
                    f"{args.reply_call_rate:g} new missed calls/s ..."
                )
                replies = bench.replies(
                    args.reply_rate, args.reply_call_rate, args.reply_duration, args.drain_timeout
                )
                for kind in replies.kinds:
                    log(f"  {kind.kind}: {kind.arrived}/{kind.expected}, {_fmt(kind.latency)}")
                    for line in kind.missing_details:
                        log(f"  missing answer: {line}")
                log(
                    f"  new calls' first texts: {replies.call_texts_arrived}/"
                    f"{replies.call_texts_expected}; {replies.errors} reply webhook errors"
                )
            clients, seconds = args.saturation_clients, args.saturation_duration
            log(f"throughput: {clients} clients for {seconds:g} s ...")
            saturation = bench.stack_saturation(args.saturation_clients, args.saturation_duration)
            for result in saturation:
                log(f"  {result.target}: {result.throughput:.0f} webhooks/s")
            server_errors = double.server_errors()
        finally:
            double.stop()
            bench.postgres.close()
        report = None if args.skip_report else report_benchmark(args, work_dir)

    command = "python -m bench.run" + (" " + shlex.join(argv) if argv else "")
    if argv is None and len(sys.argv) > 1:
        command = "python -m bench.run " + shlex.join(sys.argv[1:])
    results = Results(
        mode="quick" if args.quick else "full",
        command=command,
        env=env,
        settings=settings,
        rates=args.rates,
        duration_s=args.duration,
        baseline_duration_s=args.baseline_duration,
        baselines=baselines,
        phases=phases,
        stack_saturation=saturation,
        report=report,
        total_s=time.perf_counter() - started,
        replies=replies,
    )
    if server_errors:
        results.notes.append(f"The Twilio double raised {len(server_errors)} error(s).")
    markdown = render(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown, encoding="utf-8")
    raw = args.output.with_suffix(".json")
    raw.write_text(json.dumps(asdict(results), indent=1, default=str), encoding="utf-8")
    print("\n" + markdown)
    log(f"wrote {args.output} (raw figures: {raw})")

    failed = [p for p in phases if p.missing_texts or p.errors or p.duplicate_texts]
    replies_failed = replies is not None and bool(
        replies.missing or replies.errors or replies.calls_errors
    )
    if args.quick and (failed or replies_failed):
        for p in failed:
            log(
                f"FAILED at {p.rate:g}/s: {p.missing_texts} text(s) missing, {p.errors} webhook "
                f"error(s), {p.duplicate_texts} duplicate(s)"
            )
        if replies is not None and replies_failed:
            log(
                f"FAILED replies: {replies.missing} answer(s) or text(s) missing, "
                f"{replies.errors} inbound SMS error(s), {replies.calls_errors} call error(s)"
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
