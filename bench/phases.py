"""The benchmark's phases: each starts what it measures, drives it, and returns figures.

- `stack_rate`: the product (gunicorn + Celery worker + beat on PostgreSQL and Redis, the
  Twilio double answering after its delay) at one missed-call rate, open loop, on a fresh
  database: webhook acknowledgement latency per endpoint, time-to-first-text, CPU and
  memory of every process.
- `bare_rates` / `noop_rates`: the baselines at the same rates.
- `saturation`: closed-loop throughput of the bare app, of its durable-floor routes (one
  committed INSERT; the same plus a Celery publish) and of the product's webhook.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from celery import Celery

from bench import infra
from bench.baselines import NOOP_QUEUE, NOOP_RAN_KEY, NOOP_TASK, make_noop_celery
from bench.double import DoubleProcess, ReceivedText
from bench.load import Outcome, Saturation, closed_loop, open_loop, open_loop_calls
from bench.practices import BenchPractice, CallerNumbers
from bench.procstats import ProcessMonitor, Root, Tracked, machine_busy_s, numbered_roles
from bench.scenarios import (
    COMMIT,
    COMMIT_PUBLISH,
    REPLY_KINDS,
    REPLY_MARKERS,
    BareRequests,
    MissedCalls,
    PlannedRequest,
    ReplyTarget,
    ReplyToAction,
    Secrets,
    reply_expectations,
)
from bench.stats import Summary, summarize
from tests.support.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parent.parent
SECRETS = Secrets(
    account_sid="AC" + "b" * 32,
    auth_token="bench-auth-token-0123456789abcdef",
    webhook_secret="bench-webhook-secret",
)
# A rate "holds" when the texts all arrive and their p99 time-to-first-text is under this.
HOLD_P99_MS = 1000.0
# The bare app's durable-floor routes (bench/baselines.py), as the throughput table names them.
FLOOR_ROUTES = (
    BareRequests(COMMIT, "bare flask + one committed INSERT"),
    BareRequests(COMMIT_PUBLISH, "bare flask + committed INSERT + Celery publish"),
)


@dataclass(frozen=True)
class StackSettings:
    web_workers: int
    web_threads: int
    worker_pool: str
    worker_concurrency: int
    worker_nice: int
    double_delay_ms: float
    sweep_interval_s: float = 2.0  # the product's defaults (recovery.config), not the tests'
    sweep_grace_s: float = 3.0
    log_level: str = "INFO"
    # As the Procfile: the texts' queue and the beat jobs' own queue, on the one worker.
    worker_queues: str = "celery,periodic"


@dataclass(frozen=True)
class ProcRow:
    group: str
    name: str
    pid: int
    cpu_s: float
    peak_rss_mb: float


def proc_rows(tracked: list[Tracked]) -> list[ProcRow]:
    return [
        ProcRow(t.group, name, t.last.pid, round(t.cpu_s, 2), round(t.peak_rss_mb, 1))
        for name, t in numbered_roles(tracked)
    ]


@dataclass
class WebhookPhase:
    rate: float
    duration_s: float
    sent: int
    acked: int
    errors: int
    error_examples: list[str]
    ack_by_endpoint: dict[str, Summary | None]
    ack_all: Summary | None
    lateness: Summary | None
    achieved_rate: float
    expected_texts: int
    arrived_texts: int
    duplicate_texts: int
    refused_texts: int
    ttft: Summary | None
    server_ttft: Summary | None  # episodes.time_to_first_text_ms, as the product records it
    still_pending: int  # texts the database still had pending/sending when the drain ended
    # For texts that never reached the double: what the database says about each (a few).
    missing_details: list[str] = field(default_factory=list)
    processes: list[ProcRow] = field(default_factory=list)
    stack_cpu_s: float = 0.0
    # Everything the machine's cores did meanwhile, and the part no tracked process did
    # (other tenants of a shared machine, the kernel's own work).
    machine_busy_s: float = 0.0
    untracked_cpu_s: float = 0.0
    wall_s: float = 0.0
    # Cores the machine was busy with just before the phase, the stack idle (other tenants).
    background_cores: float = 0.0
    # Texts the beat sweeper re-queued (their first task had not run within the grace
    # period): each is a duplicate task on an already loaded queue.
    sweeper_requeued: int = 0
    # Beat's periodic jobs (sweep, escalate_pages, follow_up) the worker discarded because
    # they had expired in the queue (finding 1 of bench/README.md): 0 when they are not starved.
    periodic_discarded: int = 0
    holds: bool = False

    @property
    def missing_texts(self) -> int:
        return self.expected_texts - self.arrived_texts

    @property
    def cpu_ms_per_call(self) -> float | None:
        return self.stack_cpu_s * 1000 / self.sent if self.sent else None


@dataclass
class ReplyKindResult:
    kind: str
    expected: int
    arrived: int
    latency: Summary | None  # inbound SMS sent -> the answer's Messages.json at the double
    # Answers that never arrived: "caller ...1234: <texts the number got after the reply>".
    missing_details: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.expected - self.arrived


@dataclass
class ReplyPhase:
    """Patients answering their first text, open loop, alongside new missed calls."""

    reply_rate: float
    call_rate: float  # new missed calls per second sent between the replies
    duration_s: float
    seeded: int  # callers who got a first text before the replies started
    sent: int  # inbound SMS webhooks
    errors: int
    error_examples: list[str]
    ack: Summary | None  # the inbound SMS webhook's acknowledgement
    kinds: list[ReplyKindResult]
    calls_sent: int
    calls_errors: int
    call_texts_expected: int
    call_texts_arrived: int
    ttft: Summary | None  # the new calls' first texts, meanwhile
    lateness: Summary | None
    seed_missing: int = 0  # seeded callers whose first text never came (no reply sent)

    @property
    def total_rate(self) -> float:
        return self.reply_rate + self.call_rate

    @property
    def missing(self) -> int:
        return (
            sum(k.missing for k in self.kinds)
            + (self.call_texts_expected - self.call_texts_arrived)
            + self.seed_missing
        )

    def kind(self, name: str) -> ReplyKindResult | None:
        return next((k for k in self.kinds if k.kind == name), None)


@dataclass
class BarePhase:
    rate: float
    duration_s: float
    sent: int
    errors: int
    ack: Summary | None
    lateness: Summary | None


@dataclass
class NoopPhase:
    rate: float
    duration_s: float
    sent: int
    ran: int
    errors: int
    latency: Summary | None  # enqueue -> the task started
    lateness: Summary | None


@dataclass
class SaturationResult:
    target: str
    concurrency: int
    duration_s: float
    completed: int
    errors: int
    throughput: float
    latency: Summary | None


@dataclass
class BaselineResults:
    bare: list[BarePhase]
    noop: list[NoopPhase]
    bare_saturation: SaturationResult | None
    processes: list[ProcRow]
    # The bare app's /commit and /commit-publish closed loop: a durable webhook's floor.
    floor_saturation: list[SaturationResult] = field(default_factory=list)


def _ok_latencies(outcomes: list[Outcome]) -> list[float]:
    return [o.latency_ms for o in outcomes if o.ok]


def _errors(outcomes: list[Outcome]) -> tuple[int, list[str]]:
    bad = [o for o in outcomes if not o.ok]
    examples = sorted({o.error or f"HTTP {o.status}" for o in bad})[:5]
    return len(bad), examples


class Bench:
    """Shared context of one benchmark run: options, the double, practices, callers."""

    def __init__(
        self,
        *,
        admin_url: str,
        redis_url: str,
        work_dir: Path,
        practices: list[BenchPractice],
        practices_file: Path,
        settings: StackSettings,
        double: DoubleProcess,
        log: Callable[[str], None] = print,
        logs_dir: Path | None = None,
    ) -> None:
        self.admin_url = admin_url
        self.redis_url = redis_url
        self.work_dir = work_dir
        self.practices = practices
        self.practices_file = practices_file
        self.settings = settings
        self.double = double
        self.callers = CallerNumbers()
        self.log = log
        self.postgres = infra.PostgresProcesses(admin_url)
        self.logs_dir = logs_dir or work_dir / "logs"

    # ----------------------------------------------------------------- processes

    def _monitor(self, stack: Stack | None, *, with_postgres: bool) -> ProcessMonitor:
        import os

        roots = [
            Root("load generator", os.getpid(), "bench (load generator)", follow_children=False),
            Root("twilio double", self.double.pid, "twilio double", follow_children=False),
        ]
        if stack is not None:
            pids = stack.pids()
            if "web" in pids:
                roots.append(Root("web", pids["web"], "gunicorn master", "gunicorn worker"))
            if "worker" in pids:
                roots.append(Root("worker", pids["worker"], "celery worker", "celery pool child"))
            if "beat" in pids:
                roots.append(Root("beat", pids["beat"], "celery beat"))
        redis_pid = infra.redis_pid(self.redis_url)
        if redis_pid is not None:
            roots.append(Root("redis", redis_pid, "redis-server", follow_children=False))
        extra: dict[str, tuple[str, Callable[[], list[int]]]] = {}
        if with_postgres:
            extra["postgres"] = ("postgres backend", self.postgres.backends)
            extra["postgres (shared)"] = ("postgres background", self.postgres.background)
        return ProcessMonitor(roots, extra)

    # ----------------------------------------------------------------- the product

    def stack_config(self, database_url: str, var_dir: Path) -> StackConfig:
        s = self.settings
        return StackConfig(
            database_url=database_url,
            redis_url=self.redis_url,
            var_dir=var_dir,
            practices_file=self.practices_file,
            twilio_base_url=self.double.base_url,
            twilio_account_sid=SECRETS.account_sid,
            twilio_auth_token=SECRETS.auth_token,
            webhook_secret=SECRETS.webhook_secret,
            web_workers=s.web_workers,
            web_threads=s.web_threads,
            worker_concurrency=s.worker_concurrency,
            worker_nice=s.worker_nice,
            worker_pool=s.worker_pool,
            worker_queues=s.worker_queues,
            sweep_interval_s=s.sweep_interval_s,
            sweep_grace_s=s.sweep_grace_s,
            # The bench's clinics are one organisation behind one PBX: one shared secret
            # (a practice's own is one HMAC among theirs; the cost is the same).
            extra_env={
                "PYTHONPATH": str(ROOT),
                "LOG_LEVEL": s.log_level,
                "WEBHOOK_SECRET_ALL_PRACTICES": "1",
            },
        )

    @contextmanager
    def running_stack(self, label: str) -> Iterator[tuple[Stack, str]]:
        """A fresh database, a flushed Redis db and the product started on them."""
        with infra.fresh_database(self.admin_url) as database_url:
            infra.flush_redis(self.redis_url)
            self.double.reset()
            self.postgres.database = infra.database_name(database_url)
            stack = Stack(self.stack_config(database_url, self.work_dir / label))
            try:
                stack.start(timeout=60)
                yield stack, database_url
            finally:
                stack.stop()
                self.postgres.database = None

    def warm_up(self, stack: Stack, count: int = 24) -> None:
        """Every gunicorn worker and pool slot imports, connects and builds its clients on
        its first request; that belongs to start-up, not to the figures."""
        scenario = self._missed_calls(stack)
        requests = [scenario.build(i) for i in range(count)]
        outcomes = open_loop(stack.base_url, requests, rate=20)
        ok = sum(1 for o in outcomes if o.ok)
        self._wait_for_texts(ok, timeout_s=30)
        time.sleep(0.5)
        self.double.reset()

    def wait_for_quiet(self, max_wait_s: float = 20.0, threshold: float = 0.25) -> float:
        """The machine is shared: wait (a while, not forever) until other work leaves it
        nearly idle, and return how many cores were busy over the last 2 s."""
        deadline = time.monotonic() + max_wait_s
        while True:
            before = machine_busy_s()
            time.sleep(2.0)
            cores = (machine_busy_s() - before) / 2.0
            if cores < threshold or time.monotonic() >= deadline:
                if cores >= threshold:
                    self.log(f"  the machine is busy with other work ({cores:.2f} cores)")
                return cores

    def _missed_calls(self, stack: Stack) -> MissedCalls:
        return MissedCalls(stack.base_url, self.practices, SECRETS, self.callers)

    def _wait_for_texts(self, expected: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.double.accepted_count() >= expected:
                return True
            time.sleep(0.2)
        return self.double.accepted_count() >= expected

    def stack_rate(self, rate: float, duration_s: float, drain_timeout_s: float) -> WebhookPhase:
        count = max(1, round(rate * duration_s))
        with self.running_stack(f"stack-{rate:g}") as (stack, database_url):
            self.warm_up(stack)
            scenario = self._missed_calls(stack)
            requests = [scenario.build(i) for i in range(count)]
            background = self.wait_for_quiet()
            monitor = self._monitor(stack, with_postgres=True).start()
            phase_start_wall = time.time()
            try:
                outcomes = open_loop(stack.base_url, requests, rate)
                acked = [o for o in outcomes if o.ok]
                self._wait_for_texts(len(acked), drain_timeout_s)
                time.sleep(1.0)  # a second text to anyone (a double send) would show now
            finally:
                tracked = monitor.stop()
            wall_s = time.time() - phase_start_wall
            still_pending = _pending_texts(database_url)
            server_ttft = summarize(_server_ttft_ms(database_url, phase_start_wall))
            texts = self.double.texts()
            refused = sum(1 for t in texts if t.status >= 300)
            for name in ("web", "worker", "beat"):
                if stack.processes.get(name) and stack.processes[name].poll() is not None:
                    self.log(f"  {name} exited during the phase:\n{stack.log(name)}")
            phase = _webhook_phase(
                rate,
                duration_s,
                outcomes,
                texts_by_number(texts),
                refused,
                server_ttft,
                still_pending,
                proc_rows(tracked),
            )
            phase.sweeper_requeued = _sweeper_requeued(stack.config.var_dir / "worker.log")
            phase.periodic_discarded = _periodic_discarded(stack.config.var_dir / "worker.log")
            _keep_logs(stack, self.logs_dir / f"recovery-{rate:g}")
            if phase.missing_texts:
                phase.missing_details = _missing_details(
                    database_url, outcomes, texts_by_number(texts)
                )
                for line in phase.missing_details:
                    self.log(f"  missing text: {line}")
                self.log(f"  worker log tail:\n{stack.log('worker')[-2000:]}")
        phase.background_cores = round(background, 2)
        phase.wall_s = round(wall_s, 1)
        phase.machine_busy_s = round(monitor.machine_busy_s, 1)
        phase.untracked_cpu_s = round(
            max(0.0, monitor.machine_busy_s - sum(p.cpu_s for p in phase.processes)), 1
        )
        return phase

    def replies(
        self,
        reply_rate: float,
        call_rate: float,
        duration_s: float,
        drain_timeout_s: float,
        urgent_every: int = 10,
    ) -> ReplyPhase:
        """Reply-to-action latency on a fresh stack: first `reply_rate * duration_s` missed
        calls (at twice the reply rate) whose first texts must all arrive; then, open loop
        for `duration_s`, each of those callers answers the line that texted them (BOOK, or
        URGENT for one in `urgent_every`, at most one per practice so that a page is matched
        to its reply), interleaved with new missed calls at `call_rate`."""
        replies = max(1, round(reply_rate * duration_s))
        calls = round(call_rate * duration_s)
        with self.running_stack("stack-replies") as (stack, database_url):
            self.warm_up(stack)
            scenario = self._missed_calls(stack)
            base = 10_000_000  # call indexes of their own (call sids stay unique)
            seed_requests = [scenario.build(base + i) for i in range(replies)]
            seed_outcomes = open_loop(stack.base_url, seed_requests, reply_rate * 2)
            seed_ok = [o for o in seed_outcomes if o.ok]
            self._wait_for_texts(len(seed_ok), drain_timeout_s)
            texted = texts_by_number(self.double.texts())
            seeds: list[ReplyTarget] = []
            for o in seed_ok:
                if o.expect_to is None or o.expect_to not in texted:
                    continue
                practice, line = scenario.line_for(base + o.index)
                seeds.append(ReplyTarget(o.expect_to, line, practice.on_call, practice.slug, ""))
            seed_missing = len(seed_requests) - len(seeds)
            targets = _reply_targets(seeds, urgent_every)
            reply_scenario = ReplyToAction(stack.base_url, SECRETS, targets)
            planned: list[PlannedRequest] = []
            reply_at: dict[int, ReplyTarget] = {}  # open-loop index -> the reply's target
            call_index = base + replies
            # Replies and new calls interleaved evenly, in one open loop at the total rate.
            total = len(targets) + calls
            for slot in range(total):
                reply_due = len(reply_at) < len(targets) and (
                    calls == 0 or (len(reply_at) + 0.5) / len(targets) <= (slot + 1) / total
                )
                if reply_due or call_index >= base + replies + calls:
                    reply_at[len(planned)] = targets[len(reply_at)]
                    planned.append(reply_scenario.build(len(reply_at) - 1))
                else:
                    planned.append(scenario.build(call_index))
                    call_index += 1
            self.double.reset()
            self.wait_for_quiet(max_wait_s=10.0)
            outcomes = open_loop(stack.base_url, planned, reply_rate + call_rate)
            expected = sum(
                len(reply_expectations(reply_at[o.index])) if o.index in reply_at else 1
                for o in outcomes
                if o.ok
            )
            self._wait_for_texts(expected, drain_timeout_s)
            time.sleep(1.0)
            texts = [t for t in self.double.texts() if t.status < 300]
            _keep_logs(stack, self.logs_dir / "recovery-replies")
            phase = _reply_phase(
                reply_rate, call_rate, duration_s, len(seeds), outcomes, reply_at, texts
            )
            phase.seed_missing = seed_missing
            if phase.missing:
                self.log(f"  worker log tail:\n{stack.log('worker')[-2000:]}")
        return phase

    def stack_saturation(self, concurrency: int, duration_s: float) -> list[SaturationResult]:
        """Closed-loop throughput of the generic webhook: first with the worker stopped
        (the web tier alone, as the bare-Flask ceiling is measured: the texts wait in
        Redis), then with the worker sending every text, as in production."""
        results = []
        with self.running_stack("stack-saturation") as (stack, database_url):
            self.warm_up(stack)
            scenario = self._missed_calls(stack)
            generic = next(i for i in range(3) if scenario.build(i).endpoint == "generic json")

            def build(index: int) -> PlannedRequest:
                # Only the generic JSON webhook: one endpoint, comparable with the bare app.
                return scenario.build(index * 3 + generic)

            stack.stop_process("worker")
            web_only = closed_loop(stack.base_url, build, concurrency, duration_s)
            results.append(
                _saturation("recovery webhook, web tier only (worker stopped)", web_only)
            )
            # The texts queued meanwhile are not the next figure's work: out of Redis, and
            # out of the sweeper's sight.
            infra.flush_redis(self.redis_url)
            _retire_pending_texts(database_url)
            stack.start_worker()
            time.sleep(3.0)  # the worker's start-up is not load
            full = closed_loop(stack.base_url, build, concurrency, duration_s)
            results.append(_saturation("recovery webhook, with the worker sending texts", full))
        return results

    # ----------------------------------------------------------------- baselines

    def baselines(
        self,
        rates: list[float],
        duration_s: float,
        saturation_s: float,
        concurrency: int,
    ) -> BaselineResults:
        infra.flush_redis(self.redis_url)
        # An empty database of its own for the floor routes' scratch table, dropped after.
        with infra.fresh_database(
            self.admin_url, prefix="recovery_bench_floor", migrate_schema=False
        ) as database_url:
            config = self.stack_config(database_url, self.work_dir / "baselines")
            config.web_app = "bench.baselines:create_bare_app()"
            config.celery_app = "bench.noop_worker"
            config.worker_queues = NOOP_QUEUE  # the no-op tasks' own queue, nothing else
            config.beat = False
            self.postgres.database = infra.database_name(database_url)
            stack = Stack(config)
            try:
                stack.start(timeout=60)
                # The same warm-up as the product's: first requests and tasks excluded.
                for route in (BareRequests(), *FLOOR_ROUTES):
                    open_loop(stack.base_url, [route.build(i) for i in range(24)], rate=20)
                publisher = make_noop_celery(self.redis_url)
                client = redis.Redis.from_url(self.redis_url)
                self._noop_round(publisher, client, 24, 20.0)
                monitor = self._monitor(stack, with_postgres=True).start()
                try:
                    bare = [self._bare_rate(stack, rate, duration_s) for rate in rates]
                    saturation = None
                    floor: list[SaturationResult] = []
                    if saturation_s > 0:
                        # Each closed loop from an idle machine (as far as other tenants
                        # allow): the floor rows are read as ratios to the bare one.
                        self.wait_for_quiet(max_wait_s=10.0)
                        result = closed_loop(
                            stack.base_url, BareRequests().build, concurrency, saturation_s
                        )
                        saturation = _saturation("bare flask (no-op route)", result)
                        for route in FLOOR_ROUTES:
                            self.wait_for_quiet(max_wait_s=10.0)
                            result = closed_loop(
                                stack.base_url, route.build, concurrency, saturation_s
                            )
                            floor.append(_saturation(route.endpoint, result))
                            self.log(f"  {route.endpoint}: {floor[-1].throughput:.0f} req/s")
                    noop = [
                        self._noop_rate(publisher, client, rate, duration_s, rate * duration_s)
                        for rate in rates
                    ]
                finally:
                    tracked = monitor.stop()
            finally:
                stack.stop()
                self.postgres.database = None
                # The floor's published tasks (never consumed) leave with the rest.
                infra.flush_redis(self.redis_url)
        return BaselineResults(bare, noop, saturation, proc_rows(tracked), floor)

    def _bare_rate(self, stack: Stack, rate: float, duration_s: float) -> BarePhase:
        count = max(1, round(rate * duration_s))
        requests = [BareRequests().build(i) for i in range(count)]
        self.wait_for_quiet(max_wait_s=10.0)
        outcomes = open_loop(stack.base_url, requests, rate)
        errors, _ = _errors(outcomes)
        self.log(f"  bare flask at {rate:g}/s: {_fmt(summarize(_ok_latencies(outcomes)))}")
        return BarePhase(
            rate,
            duration_s,
            len(outcomes),
            errors,
            summarize(_ok_latencies(outcomes)),
            summarize([o.lateness_ms for o in outcomes]),
        )

    def _noop_round(
        self, publisher: Celery, client: redis.Redis, count: int, rate: float
    ) -> tuple[list[float], int, list[str], list[float]]:
        client.delete(NOOP_RAN_KEY)

        def fire(i: int) -> None:
            publisher.send_task(NOOP_TASK, args=[i], queue=NOOP_QUEUE, retry=False)

        fired = open_loop_calls(fire, count, rate)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and int(client.llen(NOOP_RAN_KEY)) < count:
            time.sleep(0.1)
        ran_at: dict[int, float] = {}
        for raw in client.lrange(NOOP_RAN_KEY, 0, -1):
            seq, at = (raw.decode() if isinstance(raw, bytes) else str(raw)).split()
            ran_at.setdefault(int(seq), float(at))
        latencies = [(ran_at[f.index] - f.sent_wall) * 1000 for f in fired if f.index in ran_at]
        errors = [f.error for f in fired if f.error]
        return latencies, len(ran_at), errors, [f.lateness_ms for f in fired]

    def _noop_rate(
        self,
        publisher: Celery,
        client: redis.Redis,
        rate: float,
        duration_s: float,
        count: float,
    ) -> NoopPhase:
        n = max(1, round(count))
        latencies, ran, errors, lateness = self._noop_round(publisher, client, n, rate)
        self.log(f"  celery no-op at {rate:g}/s: {_fmt(summarize(latencies))}")
        return NoopPhase(
            rate, duration_s, n, ran, len(errors), summarize(latencies), summarize(lateness)
        )


def texts_by_number(texts: list[ReceivedText]) -> dict[str, list[float]]:
    by_number: dict[str, list[float]] = defaultdict(list)
    for text in texts:
        if text.status < 300:
            by_number[text.to].append(text.received_at)
    for times in by_number.values():
        times.sort()
    return by_number


def _webhook_phase(
    rate: float,
    duration_s: float,
    outcomes: list[Outcome],
    texts: dict[str, list[float]],
    refused: int,
    server_ttft: Summary | None,
    still_pending: int,
    processes: list[ProcRow],
) -> WebhookPhase:
    errors, examples = _errors(outcomes)
    acked = [o for o in outcomes if o.ok]
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    for o in acked:
        by_endpoint[o.endpoint].append(o.latency_ms)
    ttft: list[float] = []
    duplicates = 0
    for o in acked:
        if o.expect_to is None:
            continue
        received = [t for t in texts.get(o.expect_to, []) if t >= o.sent_wall - 0.001]
        if received:
            ttft.append((received[0] - o.sent_wall) * 1000)
            duplicates += len(received) - 1
    span = (max(o.done for o in outcomes) - min(o.sent for o in outcomes)) if outcomes else 0
    stack_groups = {"web", "worker", "beat", "postgres", "postgres (shared)", "redis"}
    phase = WebhookPhase(
        rate=rate,
        duration_s=duration_s,
        sent=len(outcomes),
        acked=len(acked),
        errors=errors,
        error_examples=examples,
        ack_by_endpoint={k: summarize(v) for k, v in sorted(by_endpoint.items())},
        ack_all=summarize(_ok_latencies(outcomes)),
        lateness=summarize([o.lateness_ms for o in outcomes]),
        achieved_rate=len(acked) / span if span else 0.0,
        expected_texts=sum(1 for o in acked if o.expect_to is not None),
        arrived_texts=len(ttft),
        duplicate_texts=duplicates,
        refused_texts=refused,
        ttft=summarize(ttft),
        server_ttft=server_ttft,
        still_pending=still_pending,
        processes=processes,
        stack_cpu_s=round(sum(p.cpu_s for p in processes if p.group in stack_groups), 2),
    )
    phase.holds = (
        phase.errors == 0
        and phase.missing_texts == 0
        and phase.ttft is not None
        and phase.ttft.p99 < HOLD_P99_MS
    )
    return phase


def _reply_targets(seeds: list[ReplyTarget], urgent_every: int) -> list[ReplyTarget]:
    """BOOK for most; URGENT for every `urgent_every`-th reply, taking the next caller of a
    practice that has had no URGENT yet (its page goes to that practice's on-call number,
    and a second page there would be ambiguous)."""
    remaining = list(seeds)
    paged: set[str] = set()
    targets = []
    for i in range(len(seeds)):
        pick, body = 0, "BOOK"
        if urgent_every and i % urgent_every == min(3, urgent_every - 1):
            found = next((j for j, s in enumerate(remaining) if s.practice not in paged), None)
            if found is not None:
                pick, body = found, "URGENT"
        seed = remaining.pop(pick)
        if body == "URGENT":
            paged.add(seed.practice)
        targets.append(ReplyTarget(seed.caller, seed.line, seed.on_call, seed.practice, body))
    return targets


def _reply_phase(
    reply_rate: float,
    call_rate: float,
    duration_s: float,
    seeded: int,
    outcomes: list[Outcome],
    reply_at: dict[int, ReplyTarget],
    texts: list[ReceivedText],
) -> ReplyPhase:
    by_number: dict[str, list[ReceivedText]] = defaultdict(list)
    for t in texts:
        by_number[t.to].append(t)
    for received in by_number.values():
        received.sort(key=lambda t: t.received_at)
    replies = [o for o in outcomes if o.index in reply_at]
    calls = [o for o in outcomes if o.index not in reply_at]
    latencies: dict[str, list[float]] = {k: [] for k in REPLY_KINDS}
    expected: dict[str, int] = dict.fromkeys(REPLY_KINDS, 0)
    missing: dict[str, list[str]] = {k: [] for k in REPLY_KINDS}
    for o in replies:
        if not o.ok:
            continue
        for kind, number in reply_expectations(reply_at[o.index]):
            expected[kind] += 1
            marker = REPLY_MARKERS[kind]
            after = [t for t in by_number.get(number, []) if t.received_at >= o.sent_wall - 0.001]
            answer = next((t for t in after if marker in t.body), None)
            if answer is None:
                got = "; ".join(repr(t.body[:60]) for t in after) or "nothing"
                missing[kind].append(f"...{number[-4:]} got {got}")
            else:
                latencies[kind].append((answer.received_at - o.sent_wall) * 1000)
    kinds = [
        ReplyKindResult(k, expected[k], len(latencies[k]), summarize(latencies[k]), missing[k][:5])
        for k in REPLY_KINDS
        if expected[k]
    ]
    ttft = []
    call_ok = [o for o in calls if o.ok]
    for o in call_ok:
        first = next(
            (
                t
                for t in by_number.get(o.expect_to or "", [])
                if t.received_at >= o.sent_wall - 0.001
            ),
            None,
        )
        if first is not None:
            ttft.append((first.received_at - o.sent_wall) * 1000)
    errors, examples = _errors(replies)
    call_errors, _ = _errors(calls)
    return ReplyPhase(
        reply_rate=reply_rate,
        call_rate=call_rate,
        duration_s=duration_s,
        seeded=seeded,
        sent=len(replies),
        errors=errors,
        error_examples=examples,
        ack=summarize(_ok_latencies(replies)),
        kinds=kinds,
        calls_sent=len(calls),
        calls_errors=call_errors,
        call_texts_expected=len(call_ok),
        call_texts_arrived=len(ttft),
        ttft=summarize(ttft),
        lateness=summarize([o.lateness_ms for o in outcomes]),
    )


def _saturation(target: str, result: Saturation) -> SaturationResult:
    errors, _ = _errors(result.outcomes)
    return SaturationResult(
        target,
        result.concurrency,
        result.duration_s,
        result.completed,
        errors,
        round(result.throughput, 1),
        summarize(_ok_latencies(result.outcomes)),
    )


def _missing_details(
    database_url: str, outcomes: list[Outcome], texts: dict[str, list[float]], limit: int = 5
) -> list[str]:
    missing = [o.expect_to for o in outcomes if o.ok and o.expect_to and o.expect_to not in texts]
    details = []
    with psycopg.connect(infra.psycopg_url(database_url)) as conn:
        for number in missing[:limit]:
            row = conn.execute(
                "SELECT m.id, m.status, m.attempts, m.created_at, m.claimed_at, "
                "m.next_attempt_at, m.requeue_at, m.error_code, m.error_message "
                "FROM messages m WHERE m.to_number = %s ORDER BY m.id",
                (number,),
            ).fetchone()
            details.append(
                f"caller ...{number[-4:]}: "
                + (
                    "no message row"
                    if row is None
                    else "message {} {} attempts={} created={} claimed={} retry={} requeue={} "
                    "error={} {}".format(*row)
                )
            )
    return details


SWEEPER_LINE = re.compile(r"sweeper re-queued (\d+) text")


def _sweeper_requeued(worker_log: Path) -> int:
    try:
        text = worker_log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(int(n) for n in SWEEPER_LINE.findall(text))


DISCARDED_LINE = re.compile(
    r"Discarding revoked task: recovery\.(?:sweep|escalate_pages|follow_up)\b"
)


def _periodic_discarded(worker_log: Path) -> int:
    try:
        text = worker_log.read_text(errors="replace")
    except OSError:
        return 0
    return len(DISCARDED_LINE.findall(text))


def _keep_logs(stack: Stack, folder: Path) -> None:
    """The processes' logs outlive the run's temporary folder (bench/out/ is ignored)."""
    folder.mkdir(parents=True, exist_ok=True)
    for log in stack.config.var_dir.glob("*.log"):
        shutil.copyfile(log, folder / log.name)


def _retire_pending_texts(database_url: str) -> None:
    with psycopg.connect(infra.psycopg_url(database_url)) as conn:
        conn.execute(
            "UPDATE messages SET status = 'suppressed', error_message = 'benchmark: not sent' "
            "WHERE status IN ('pending', 'retrying', 'sending')"
        )


def _pending_texts(database_url: str) -> int:
    with psycopg.connect(infra.psycopg_url(database_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM messages WHERE status IN ('pending', 'retrying', 'sending')"
        ).fetchone()
    return int(row[0]) if row else 0


def _server_ttft_ms(database_url: str, since_wall: float) -> list[float]:
    with psycopg.connect(infra.psycopg_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT time_to_first_text_ms FROM episodes "
            "WHERE time_to_first_text_ms IS NOT NULL AND opened_at >= to_timestamp(%s)",
            (since_wall,),
        ).fetchall()
    return [float(r[0]) for r in rows]


def _fmt(summary: Summary | None) -> str:
    if summary is None:
        return "no samples"
    return (
        f"n={summary.count} p50={summary.p50:.1f} p95={summary.p95:.1f} "
        f"p99={summary.p99:.1f} max={summary.max:.1f} ms"
    )
