"""The leak audit on a year of a busy practice: 1,000,000 call-log rows, timed, with the
peak memory of the process that reads them.

    python -m bench.leak_audit                 # 100,000 and 1,000,000 rows, both formats
    python -m bench.leak_audit --quick         # 20,000 rows: does it run

Each run generates a call log (seeded) into a temporary file, then audits it with
`recovery audit-calls FILE --json` in a child process of its own, so that the peak
resident memory (the child's ru_maxrss) is the audit's alone. A Python process that only
imports the audit is measured too: the difference is what the audit itself held. Two
formats, two orders: Asterisk's Master.csv (no header, oldest first, where only callers
who missed a call are remembered) and Twilio's export (newest first, with the dialled
legs to join, where every caller is remembered). Writes bench/leak_audit_results.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "bench" / "leak_audit_results.md"
RECOVERY = Path(sys.executable).parent / "recovery"
CALLERS = 150_000  # distinct numbers calling a busy practice in a year
SEED = 20261203


def write_master_csv(path: Path, rows: int, callers: int = CALLERS) -> None:
    """Asterisk's cdr_csv order, oldest first: a year of weekdays, 25% missed."""
    rng = random.Random(SEED)
    start = datetime(2026, 1, 5, 8)
    step = timedelta(seconds=250 * 9 * 3600 / rows)  # spread over 250 days of 9 hours
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        at = start
        for n in range(rows):
            at += step
            if at.hour >= 17:
                at = at.replace(hour=8) + timedelta(days=1)
            if at.weekday() >= 5:
                at += timedelta(days=7 - at.weekday())
            caller = f"512{5000000 + rng.randrange(callers):07d}"
            missed = rng.random() < 0.25
            stamp = at.isoformat(sep=" ", timespec="seconds")
            writer.writerow(
                [
                    "",
                    caller,
                    "100",
                    "from-pstn",
                    f"<{caller}>",
                    f"PJSIP/trunk-{n:08x}",
                    "PJSIP/100-00000001",
                    "Dial",
                    "PJSIP/100&PJSIP/101,20",
                    stamp,
                    "" if missed else stamp,
                    stamp,
                    30,
                    0 if missed else 25,
                    "NO ANSWER" if missed else "ANSWERED",
                    "DOCUMENTATION",
                    f"{1767600000 + n}.{n}",
                    "",
                ]
            )


def write_twilio_csv(path: Path, rows: int, callers: int = CALLERS) -> None:
    """The Console's export, newest first: each call an inbound leg (completed) and the
    leg it dialled (the outcome), so `rows` rows are rows // 2 calls."""
    rng = random.Random(SEED)
    calls = rows // 2
    end = datetime(2026, 12, 31, 23)
    step = timedelta(seconds=365 * 86400 / calls)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["Call Sid", "Parent Call Sid", "Start Time", "From", "To", "Direction", "Status"]
        )
        at = end
        for n in range(calls):
            at -= step
            caller = f"+1512{5000000 + rng.randrange(callers):07d}"
            outcome = "no-answer" if rng.random() < 0.25 else "completed"
            parent = f"CA{n:032x}"
            stamp = at.strftime("%a, %d %b %Y %H:%M:%S +0000")
            writer.writerow(
                [f"CB{n:032x}", parent, stamp, caller, "+15125550111", "outbound-dial", outcome]
            )
            writer.writerow([parent, "", stamp, caller, "+15125550100", "inbound", "completed"])


@dataclass(frozen=True)
class Run:
    label: str
    rows: int
    size_mb: float
    seconds: float
    cpu_s: float
    peak_mib: float
    baseline_mib: float
    figures: dict[str, object]

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def _child_peak(command: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, the child's peak RSS in MiB, its stdout. On a shared
    machine the CPU time is the steadier figure. Each command runs in a fresh
    interpreter started from here, so ru_maxrss of the waited-for child is its own."""
    code = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "s = time.perf_counter() - t;"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "peak = u.ru_maxrss; cpu = u.ru_utime + u.ru_stime;"
        "sys.stderr.write(p.stderr);"
        "print(json.dumps({'rc': p.returncode, 's': s, 'cpu': cpu, 'peak_kb': peak,"
        " 'out': p.stdout}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *command], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{command} failed: {done.stderr[-2000:]}")
    return result["s"], result["cpu"], result["peak_kb"] / 1024, result["out"]


def run_one(label: str, rows: int, writer: object, folder: Path, baseline: float) -> Run:
    path = folder / f"{label.split()[0].lower()}-{rows}.csv"
    t = time.perf_counter()
    writer(path, rows)  # type: ignore[operator]
    made = time.perf_counter() - t
    print(f"  {label}: {rows:,} rows written in {made:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    seconds, cpu, peak, out = _child_peak(
        [str(RECOVERY), "audit-calls", str(path), "--json", "--visit-value", "200"]
    )
    figures = json.loads(out)
    size = path.stat().st_size / 1e6
    path.unlink()
    print(
        f"    audited in {seconds:.1f} s ({cpu:.1f} s of CPU, {rows / seconds:,.0f} rows/s), "
        "peak RSS "
        f"{peak:.0f} MiB (an interpreter that only imports the audit: {baseline:.0f} MiB); "
        f"{figures['calls']:,} calls, {figures['missed']:,} missed, "
        f"{figures['callers_missed']:,} callers who missed one"
    )
    return Run(label, rows, size, seconds, cpu, peak, baseline, figures)


def render(runs: list[Run], load: str) -> str:
    lines = [
        "# Leak audit on a large call log",
        "",
        f"`python -m bench.leak_audit` on {platform.node()} ({os.cpu_count()} CPUs, load "
        f"average {load} at the start), {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}.",
        "Each log is generated (seeded), then audited by `recovery audit-calls FILE --json` "
        f"in a process of its own; {CALLERS:,} distinct callers, 25% of calls missed. Peak "
        "memory is that process's peak resident set (ru_maxrss); the baseline is an "
        "interpreter that only imports the audit.",
        "",
        "| log | rows | file | wall time | CPU time | rows/s | peak RSS | baseline "
        "| callers who missed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        held = r.figures["callers_missed"]
        lines.append(
            f"| {r.label} | {r.rows:,} | {r.size_mb:.0f} MB | {r.seconds:.1f} s "
            f"| {r.cpu_s:.1f} s | "
            f"{r.rows_per_s:,.0f} | {r.peak_mib:.0f} MiB | {r.baseline_mib:.0f} MiB | {held:,} |"
        )
    lines += [
        "",
        "Figures of each run (the audit's JSON): "
        + "; ".join(
            f"{r.label} {r.rows:,}: {r.figures['calls']:,} calls, {r.figures['missed']:,} "
            f"missed, {r.figures['callers_never_reached']:,} never reached, "
            f"${r.figures['annual_leak_usd']:,} a year"
            for r in runs
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.leak_audit", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 rows: does it run")
    parser.add_argument("--rows", type=int, action="append", help="rows per log (repeatable)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = args.rows or ([20_000] if args.quick else [100_000, 1_000_000])
    output = args.output or (
        ROOT / "bench" / "out" / "leak_audit-quick.md" if args.quick else OUTPUT
    )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    _, _, baseline, _ = _child_peak(
        [sys.executable, "-c", "import recovery.services.leak_audit, recovery.cli"]
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="leak-audit-bench-") as tmp:
        folder = Path(tmp)
        for rows in sizes:
            runs.append(
                run_one(
                    "Asterisk Master.csv, oldest first", rows, write_master_csv, folder, baseline
                )
            )
            runs.append(
                run_one("Twilio export, newest first", rows, write_twilio_csv, folder, baseline)
            )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(runs, load))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
