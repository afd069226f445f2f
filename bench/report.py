"""Turn a run's figures into results.md (and the same tables on stdout)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.environment import Environment
from bench.phases import (
    HOLD_P99_MS,
    BaselineResults,
    NoopPhase,
    ProcRow,
    ReplyPhase,
    SaturationResult,
    StackSettings,
    WebhookPhase,
)
from bench.report_queries import Timing
from bench.stats import Summary, ratio

REPLY_NOT_MEASURED = "not measured in this run"

# The targets (goals for this 2-core machine, not test assertions).
TARGET_ACK_RATE, TARGET_ACK_P99_MS = 100.0, 25.0
TARGET_TTFT_RATE, TARGET_TTFT_P99_MS = 50.0, 500.0
TARGET_THROUGHPUT_SHARE = 0.5
TARGET_QUARTER_MS, TARGET_YEAR_MS = 200.0, 2000.0


@dataclass
class ReportSection:
    episodes: int
    practices: int
    generate_s: float
    largest_practice_episodes: int
    runs: int
    timings: list[Timing]


@dataclass
class Results:
    mode: str
    command: str
    env: Environment
    settings: StackSettings
    rates: list[float]
    duration_s: float
    baseline_duration_s: float
    baselines: BaselineResults
    phases: list[WebhookPhase]
    stack_saturation: list[SaturationResult]
    report: ReportSection | None
    total_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    replies: ReplyPhase | None = None

    @property
    def highest_holding_rate(self) -> float | None:
        held = [p.rate for p in self.phases if p.holds]
        return max(held) if held else None

    def phase(self, rate: float) -> WebhookPhase | None:
        return next((p for p in self.phases if p.rate == rate), None)

    def bare(self, rate: float) -> Summary | None:
        return next((b.ack for b in self.baselines.bare if b.rate == rate), None)

    def noop(self, rate: float) -> NoopPhase | None:
        return next((n for n in self.baselines.noop if n.rate == rate), None)

    def noop_at_or_below(self, rate: float) -> NoopPhase | None:
        """The no-op baseline at `rate`, else at the highest baseline rate below it."""
        below = [n for n in self.baselines.noop if n.rate <= rate]
        return max(below, key=lambda n: n.rate) if below else None

    @property
    def web_saturation(self) -> SaturationResult | None:
        """The web tier's own ceiling: the figure comparable with bare Flask."""
        return self.stack_saturation[0] if self.stack_saturation else None

    @property
    def throughput_share(self) -> float | None:
        bare = self.baselines.bare_saturation
        ours = self.web_saturation
        if bare is None or ours is None:
            return None
        return ratio(ours.throughput, bare.throughput)

    @property
    def all_texts_arrived(self) -> bool:
        return all(p.missing_texts == 0 and p.errors == 0 for p in self.phases) and (
            self.replies is None or (self.replies.missing == 0 and self.replies.errors == 0)
        )


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def times(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}×" if value >= 100 else f"{value:.1f}×"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _summary_cells(s: Summary | None) -> list[str]:
    if s is None:
        return ["0", "–", "–", "–", "–"]
    return [str(s.count), ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)]


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def targets(r: Results) -> list[list[str]]:
    rows = []
    p100 = r.phase(TARGET_ACK_RATE)
    ack = p100.ack_all.p99 if p100 and p100.ack_all else None
    rows.append(
        [
            f"webhook ack p99 ≤ {TARGET_ACK_P99_MS:g} ms at {TARGET_ACK_RATE:g}/s",
            f"{ms(ack)} ms" if ack is not None else "–",
            _verdict(None if ack is None else ack <= TARGET_ACK_P99_MS),
        ]
    )
    p50 = r.phase(TARGET_TTFT_RATE)
    ttft = p50.ttft.p99 if p50 and p50.ttft else None
    complete = p50 is not None and p50.missing_texts == 0
    rows.append(
        [
            f"time-to-first-text p99 ≤ {TARGET_TTFT_P99_MS:g} ms at {TARGET_TTFT_RATE:g}/s "
            f"for {r.duration_s:g} s",
            (f"{ms(ttft)} ms" + ("" if complete else " (texts missing)"))
            if ttft is not None
            else "–",
            _verdict(None if ttft is None else ttft <= TARGET_TTFT_P99_MS and complete),
        ]
    )
    share = r.throughput_share
    bare, ours = r.baselines.bare_saturation, r.web_saturation
    rows.append(
        [
            f"webhook throughput ≥ {TARGET_THROUGHPUT_SHARE:.0%} of bare Flask",
            f"{ours.throughput:.0f} vs {bare.throughput:.0f} req/s = {share:.0%}"
            if share is not None and ours and bare
            else "–",
            _verdict(None if share is None else share >= TARGET_THROUGHPUT_SHARE),
        ]
    )
    if r.report is not None:
        migrated = [t for t in r.report.timings if t.variant.startswith("as migrated")]
        for timing, target in zip(migrated, (TARGET_QUARTER_MS, TARGET_YEAR_MS), strict=False):
            rows.append(
                [
                    f"recovery report, {timing.query} ≤ {target:g} ms "
                    f"({r.report.episodes:,} episodes)",
                    f"{ms(timing.median_ms)} ms",
                    _verdict(timing.median_ms <= target),
                ]
            )
    return rows


def _settings(r: Results) -> str:
    s = r.settings
    rows = [
        ["gunicorn", f"{s.web_workers} workers × {s.web_threads} threads (gthread)"],
        [
            "Celery worker",
            f"pool {s.worker_pool}, concurrency {s.worker_concurrency}, queues {s.worker_queues}, "
            f"nice {s.worker_nice}",
        ],
        ["Celery beat", f"sweeper every {s.sweep_interval_s:g} s, grace {s.sweep_grace_s:g} s"],
        ["Twilio double", f"answers 201 after {s.double_delay_ms:g} ms, in its own process"],
        ["log level", s.log_level],
        [
            "rates",
            ", ".join(f"{x:g}/s" for x in r.rates)
            + f", {r.duration_s:g} s each (baselines {r.baseline_duration_s:g} s each)",
        ],
        [
            "a rate holds when",
            f"no webhook error, every text arrived, p99 TTFT < {HOLD_P99_MS:g} ms",
        ],
    ]
    return table(["setting", "value"], rows)


def _environment(env: Environment) -> str:
    rows = [
        ["date", env.date],
        ["commit", env.commit],
        ["CPUs (nproc)", str(env.cpus)],
        ["memory", f"{env.memory_gib} GiB"],
        ["CPU model", env.cpu_model],
        ["kernel", env.kernel],
        ["load average at start", env.load_average],
        ["Python", env.python],
        ["PostgreSQL", env.postgresql],
        ["Redis", env.redis],
    ]
    rows += [[name, version] for name, version in env.packages.items()]
    rows += [[f"postgres {k}", v] for k, v in env.postgresql_settings.items()]
    return table(["", ""], rows)


def _ack_section(r: Results) -> str:
    rows = []
    for p in r.phases:
        bare = r.bare(p.rate)
        entries = [*p.ack_by_endpoint.items(), ("all endpoints", p.ack_all)]
        for endpoint, s in entries:
            rows.append(
                [
                    f"{p.rate:g}/s",
                    endpoint,
                    *_summary_cells(s),
                    times(ratio(s.p50 if s else None, bare.p50 if bare else None)),
                    times(ratio(s.p99 if s else None, bare.p99 if bare else None)),
                ]
            )
    header = ["rate", "endpoint", "n", "p50", "p95", "p99", "max", "p50 / bare", "p99 / bare"]
    errors = [
        f"- at {p.rate:g}/s: {p.errors} of {p.sent} webhooks failed: {', '.join(p.error_examples)}"
        for p in r.phases
        if p.errors
    ]
    return table(header, rows) + ("\n\n" + "\n".join(errors) if errors else "")


def _ttft_section(r: Results) -> str:
    rows = []
    for p in r.phases:
        noop = r.noop(p.rate)
        n = noop.latency if noop else None
        s = p.ttft
        rows.append(
            [
                f"{p.rate:g}/s",
                f"{p.arrived_texts}/{p.expected_texts}",
                str(p.duplicate_texts),
                *(_summary_cells(s)[1:]),
                times(ratio(s.p50 if s else None, n.p50 if n else None)),
                times(ratio(s.p99 if s else None, n.p99 if n else None)),
                "yes" if p.holds else "no",
            ]
        )
    header = [
        "rate",
        "texts arrived",
        "duplicates",
        "p50",
        "p95",
        "p99",
        "max",
        "p50 / no-op",
        "p99 / no-op",
        "holds",
    ]
    server_rows = [
        [
            f"{p.rate:g}/s",
            *_summary_cells(p.server_ttft),
            str(p.still_pending),
            str(p.sweeper_requeued),
            str(p.periodic_discarded),
        ]
        for p in r.phases
    ]
    missing = [
        f"- at {p.rate:g}/s, {p.missing_texts} text(s) had not reached the double when the "
        "drain ended: " + "; ".join(p.missing_details)
        for p in r.phases
        if p.missing_texts
    ]
    return (
        table(header, rows)
        + "\n\nAs the product records it (`episodes.time_to_first_text_ms`: webhook received by "
        "the app -> provider accepted the text, so it also counts the double's delay):\n\n"
        + table(
            [
                "rate",
                "n",
                "p50",
                "p95",
                "p99",
                "max",
                "still pending at the end",
                "re-queued by the sweeper",
                "periodic jobs discarded (expired)",
            ],
            server_rows,
        )
        + ("\n\n" + "\n".join(missing) if missing else "")
    )


def _reply_headline(r: Results) -> str:
    rp = r.replies
    if rp is None:
        return f"Reply-to-action latency: {REPLY_NOT_MEASURED}."
    parts = [
        f"{k.kind} p50 {ms(k.latency.p50)} / p99 {ms(k.latency.p99)} ms"
        if k.latency
        else f"{k.kind}: none arrived"
        for k in rp.kinds
    ]
    return (
        f"Reply-to-action latency ({rp.reply_rate:g} replies/s with {rp.call_rate:g} new "
        "missed calls/s): " + "; ".join(parts) + "."
    )


def _reply_section(r: Results) -> str:
    rp = r.replies
    if rp is None:
        return REPLY_NOT_MEASURED + "."
    noop_phase = r.noop_at_or_below(rp.total_rate)
    n = noop_phase.latency if noop_phase else None
    rows = []
    for k in rp.kinds:
        s = k.latency
        rows.append(
            [
                k.kind,
                f"{k.arrived}/{k.expected}",
                *(_summary_cells(s)[1:]),
                times(ratio(s.p50 if s else None, n.p50 if n else None)),
                times(ratio(s.p99 if s else None, n.p99 if n else None)),
            ]
        )
    rows.append(
        [
            "the new missed calls meanwhile: first text",
            f"{rp.call_texts_arrived}/{rp.call_texts_expected}",
            *(_summary_cells(rp.ttft)[1:]),
            times(ratio(rp.ttft.p50 if rp.ttft else None, n.p50 if n else None)),
            times(ratio(rp.ttft.p99 if rp.ttft else None, n.p99 if n else None)),
        ]
    )
    header = ["action", "arrived", "p50", "p95", "p99", "max", "p50 / no-op", "p99 / no-op"]
    baseline = f"{noop_phase.rate:g}/s" if noop_phase else "–"
    ack = rp.ack
    lines = [
        f"A fresh stack; {rp.seeded} callers each got their first text (missed calls at "
        f"{2 * rp.reply_rate:g}/s, all texts waited for); then, open loop for "
        f"{rp.duration_s:g} s, each of them answered the line that texted them with a signed "
        f"Twilio inbound SMS (`POST /webhooks/twilio/sms`) at {rp.reply_rate:g}/s, BOOK for "
        "most and URGENT for one in ten (at most one per practice: its page goes to that "
        f"practice's on-call number), interleaved with {rp.call_rate:g} new missed calls/s. "
        "Latency is from the inbound SMS leaving the generator to the answer's `Messages.json` "
        "request reaching the double (the first text to that number after the reply that "
        "carries the template's words: *book your visit*, *911*, *URGENT*). Ratios are to the "
        f"Celery no-op round trip at {baseline} (the baseline rate at or below the total "
        f"{rp.total_rate:g}/s).",
        table(header, rows),
        f"Inbound SMS webhook acknowledgement: {_fmt_summary(ack)}; {rp.errors} of {rp.sent} "
        f"failed{': ' + ', '.join(rp.error_examples) if rp.error_examples else ''}. "
        f"Generator lateness: {_fmt_summary(rp.lateness)}.",
    ]
    missing = [
        f"- {k.missing} {k.kind} never arrived: " + "; ".join(k.missing_details)
        for k in rp.kinds
        if k.missing
    ]
    if rp.seed_missing:
        missing.append(f"- {rp.seed_missing} caller(s) never got a first text (no reply sent)")
    if missing:
        lines.append("\n".join(missing))
    return "\n\n".join(lines)


def _fmt_summary(s: Summary | None) -> str:
    if s is None:
        return "no samples"
    return f"n={s.count}, p50 {ms(s.p50)}, p95 {ms(s.p95)}, p99 {ms(s.p99)}, max {ms(s.max)} ms"


def _highest(r: Results) -> str:
    held = r.highest_holding_rate
    tried = ", ".join(f"{p.rate:g}/s {'held' if p.holds else 'did not hold'}" for p in r.phases)
    if held is None:
        return f"**None of the rates tried held** ({tried})."
    return f"**{held:g} missed calls per second** (tried: {tried})."


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _throughput(r: Results) -> str:
    rows = []
    bare = r.baselines.bare_saturation
    floor = r.baselines.floor_saturation
    for s in (bare, *floor, *r.stack_saturation):
        if s is None:
            continue
        rows.append(
            [
                s.target,
                str(s.concurrency),
                f"{s.duration_s:g}",
                f"{s.throughput:.0f}",
                _share(ratio(s.throughput, bare.throughput) if bare else None),
                *_summary_cells(s.latency)[1:],
                str(s.errors),
            ]
        )
    share = r.throughput_share
    text = table(
        [
            "target",
            "clients",
            "seconds",
            "req/s",
            "of bare Flask",
            "p50",
            "p95",
            "p99",
            "max",
            "errors",
        ],
        rows,
    )
    if share is not None:
        text += (
            f"\n\nThe web tier's throughput is **{share:.0%}** of the bare-Flask ceiling "
            "(both without a worker competing for the cores)."
        )
        full = r.stack_saturation[-1] if len(r.stack_saturation) > 1 else None
        bare = r.baselines.bare_saturation
        if full is not None and bare is not None:
            share_full = ratio(full.throughput, bare.throughput) or 0.0
            text += (
                " With the worker sending the texts, as in production, "
                f"{full.throughput:.0f} missed calls/s ({share_full:.0%})."
            )
    if bare is not None and len(floor) == 2:
        commit, publish = (ratio(f.throughput, bare.throughput) for f in floor)
        text += (
            f"\n\nA route that only commits one row reaches **{_share(commit)}** of bare Flask; "
            f"commit + publish **{_share(publish)}**: the ceiling for any design that records "
            "the call durably before answering (store, then enqueue), on this stack"
        )
        ours = r.web_saturation
        of_floor = ratio(ours.throughput, floor[1].throughput) if ours else None
        text += (
            f" (the web tier reaches {_share(of_floor)} of commit + publish)."
            if of_floor is not None
            else "."
        )
    return text


def _baselines(r: Results) -> str:
    bare_rows = [[f"{b.rate:g}/s", *_summary_cells(b.ack), str(b.errors)] for b in r.baselines.bare]
    noop_rows = [
        [f"{n.rate:g}/s", f"{n.ran}/{n.sent}", *_summary_cells(n.latency)[1:], str(n.errors)]
        for n in r.baselines.noop
    ]
    return (
        "Bare gunicorn + Flask, a POST route that does nothing (acknowledgement latency, ms):\n\n"
        + table(["rate", "n", "p50", "p95", "p99", "max", "errors"], bare_rows)
        + "\n\nCelery no-op task on the same Redis, same pool and concurrency "
        "(enqueue -> task started, ms):\n\n"
        + table(["rate", "ran", "p50", "p95", "p99", "max", "errors"], noop_rows)
    )


def _lateness(r: Results) -> str:
    rows = []
    for b in r.baselines.bare:
        rows.append([f"bare flask {b.rate:g}/s", *_summary_cells(b.lateness)])
    for n in r.baselines.noop:
        rows.append([f"celery no-op {n.rate:g}/s", *_summary_cells(n.lateness)])
    for p in r.phases:
        rows.append([f"recovery {p.rate:g}/s", *_summary_cells(p.lateness)])
    if r.replies is not None:
        rows.append(
            [f"replies + calls {r.replies.total_rate:g}/s", *_summary_cells(r.replies.lateness)]
        )
    return (
        "How late each request left compared with its schedule (ms). The generator shares the "
        "two cores with everything it measures; a late send is load the stack did not get, "
        "so a large lateness here means the figures above flatter the stack.\n\n"
        + table(["phase", "n", "p50", "p95", "p99", "max"], rows)
    )


def _process_table(rows: list[ProcRow], seconds: float | None = None) -> str:
    body = []
    for row in rows:
        share = f"{row.cpu_s / seconds:.0%}" if seconds else "–"
        body.append(
            [row.group, row.name, str(row.pid), f"{row.cpu_s:.2f}", share, f"{row.peak_rss_mb:.0f}"]
        )
    return table(["group", "process", "pid", "CPU s", "of one core", "peak RSS MB"], body)


def _group_totals(rows: list[ProcRow]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0.0) + row.cpu_s
    return totals


def _processes(r: Results) -> str:
    parts = [
        "CPU seconds are user + system time from /proc/<pid>/stat over the phase (the load "
        "and the drain after it); peak RSS is VmHWM from /proc/<pid>/status. PostgreSQL "
        "backends are the connections to the phase's database; the PostgreSQL background "
        "processes and Redis serve the whole machine (other tenants included), and their peak "
        "RSS is since they started.",
    ]
    groups = sorted({row.group for p in r.phases for row in p.processes})
    summary_rows = []
    for p in r.phases:
        totals = _group_totals(p.processes)
        per_call = p.cpu_ms_per_call
        summary_rows.append(
            [
                f"{p.rate:g}/s",
                f"{p.wall_s:g}",
                *(f"{totals.get(g, 0.0):.1f}" for g in groups),
                f"{p.stack_cpu_s:.1f}",
                ms(per_call),
                f"{p.machine_busy_s:.1f} of {2 * p.wall_s:.0f}" if p.wall_s else "–",
                f"{p.untracked_cpu_s:.1f}",
                f"{p.background_cores:.2f}",
            ]
        )
    if summary_rows:
        parts.append(
            "CPU seconds by group, per phase (the stack is web + worker + beat + PostgreSQL + "
            "Redis; *machine busy* is all cores from /proc/stat against the phase's wall time "
            "× 2 cores; *untracked* is busy time no listed process accounts for: other "
            "tenants of this shared machine and the kernel's network work; *busy cores before* "
            "is the machine's load in the 2 s before the phase, the stack idle):\n\n"
            + table(
                [
                    "rate",
                    "wall s",
                    *groups,
                    "stack total",
                    "stack CPU ms per call",
                    "machine busy",
                    "untracked",
                    "busy cores before",
                ],
                summary_rows,
            )
        )
    for p in r.phases:
        seconds = p.duration_s
        parts.append(
            f"**Recovery at {p.rate:g}/s** ({p.sent} calls):\n\n"
            + _process_table(p.processes, seconds)
        )
    if r.baselines.processes:
        parts.append(
            "**Baselines** (bare Flask with its durable-floor routes and Celery no-op, all "
            "their rates together; PostgreSQL is the floor routes' database):\n\n"
            + _process_table(r.baselines.processes)
        )
    return "\n\n".join(parts)


def _report_section(r: Results) -> str:
    if r.report is None:
        return "Skipped (--skip-report)."
    rep = r.report
    rows = [
        [
            t.query,
            t.variant,
            ms(t.median_ms),
            ", ".join(ms(x) for x in t.runs_ms),
            f"{t.episodes_counted:,}",
            t.plan_summary,
        ]
        for t in rep.timings
    ]
    return (
        f"{rep.episodes:,} generated episodes across {rep.practices} practices over two years "
        f"(2025-2026), written with COPY in {rep.generate_s:g} s (`bench/generate_history.py`). "
        f"One practice = the largest ({rep.largest_practice_episodes:,} episodes in all); the "
        "quarter is 2026-Q4 and the year 2026, each in the practice's time zone. Median of "
        f"{rep.runs} runs after one warm-up run; the SQL is `bench/report_queries.py`. The "
        "first row is the schema as migrated; the later rows replace its index with what it "
        "replaced, in the benchmark database only.\n\n"
        + table(["query", "indexes", "median ms", "runs ms", "episodes", "plan"], rows)
    )


def render(r: Results) -> str:
    held = r.highest_holding_rate
    sections = [
        "# Benchmark results",
        f"`{r.command}` ({r.mode} run, {r.total_s / 60:.1f} minutes), {r.env.date}. "
        "Written by `bench/run.py`; see `bench/README.md` for what each figure means and "
        "the findings.",
        "## Targets",
        table(["target (2 cores)", "measured", ""], targets(r)),
        f"Highest missed-call rate held (every text arrived, p99 time-to-first-text < "
        f"{HOLD_P99_MS:g} ms): **{'none' if held is None else f'{held:g}/s'}**. "
        + _reply_headline(r),
        "## Machine and versions",
        _environment(r.env),
        "## Settings",
        _settings(r),
        "## Webhook acknowledgement latency (ms)",
        "Open loop: each webhook leaves on schedule whether or not earlier ones were answered. "
        "Latency is from the request leaving the generator to the answer read. Endpoints take "
        "turns; ratios are to the bare-Flask baseline at the same rate.",
        _ack_section(r),
        "## Time-to-first-text (ms)",
        "From the webhook leaving the generator to the text's `Messages.json` request reaching "
        "the Twilio double (matched by the caller's number; every call is from a new caller). "
        "Ratios are to the Celery no-op round trip at the same rate.",
        _ttft_section(r),
        "## Reply-to-action latency",
        _reply_section(r),
        "## Highest missed-call rate held",
        _highest(r),
        "## Throughput (closed loop)",
        "Clients that each send the next request as soon as the last is answered, for the "
        "ceiling of each server. The product's figure uses the generic JSON webhook (each call "
        "a new caller, so every request is a full intake and queues a text) with its worker "
        "running. The two rows under bare Flask are the same app's `POST /commit` (one INSERT "
        "of a small row, committed, through a pooled SQLAlchemy engine, into a scratch table "
        "of an empty database) and `POST /commit-publish` (the same, then one Celery task "
        "published with the product's publisher to a queue nobody reads): "
        "`bench/baselines.py`.",
        _throughput(r),
        "## Baselines",
        _baselines(r),
        "## Load generator lateness",
        _lateness(r),
        "## CPU seconds and peak memory per process",
        _processes(r),
        "## Recovery report queries",
        _report_section(r),
    ]
    notes = [
        "The load generator (one asyncio process), the Twilio double (its own process) and the "
        "whole stack share the machine's 2 cores, and PostgreSQL and Redis are shared with "
        "anything else running on it: the figures are a floor for what the product does on "
        "2 dedicated cores, not a ceiling.",
        *r.notes,
    ]
    sections += ["## Notes", "\n".join(f"- {n}" for n in notes)]
    return "\n\n".join(sections) + "\n"
