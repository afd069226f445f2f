"""An hour of `make run`: a missed call every few seconds, and the product must stay up.

Starts `recovery run` in a fresh folder on the embedded default (SQLite, the filesystem
broker, the console provider), as a new user would, and posts the signed webhook `recovery
simulate missed-call` posts, from a new number every `--interval` seconds for `--duration`
seconds. Then
counts what a user would notice: calls answered, first texts (each caller exactly one),
how long each took, processes that exited (and were started again by the supervisor),
crashes in the logs, and whether `recovery run` itself was still up at the end.

    .venv/bin/python -m bench.soak                           # an hour, a call every 5 s
    .venv/bin/python -m bench.soak --duration 120 --interval 2

Exit status 1 if a caller got no text or two, or `recovery run` died.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import requests

from bench.stats import percentile
from tests.support.embedded import EmbeddedRun


@dataclass
class SoakResult:
    duration_s: float
    interval_s: float
    calls: int
    calls_refused: int
    texts: int
    callers_without_text: int
    callers_texted_twice: int
    text_p50_ms: float
    text_p99_ms: float
    text_max_ms: float
    restarts: dict[str, int]
    unrecoverable_errors: int
    tracebacks: int
    run_up_at_end: bool

    @property
    def ok(self) -> bool:
        return (
            self.run_up_at_end
            and self.calls_refused == 0
            and self.callers_without_text == 0
            and self.callers_texted_twice == 0
        )

    def summary(self) -> str:
        restarts = ", ".join(f"{k} {v}" for k, v in sorted(self.restarts.items())) or "none"
        return (
            f"{self.duration_s / 60:.0f} min, a call every {self.interval_s:g} s: "
            f"{self.calls} calls ({self.calls_refused} refused), {self.texts} first texts, "
            f"{self.callers_without_text} callers without a text, "
            f"{self.callers_texted_twice} texted twice; time to text p50 "
            f"{self.text_p50_ms:.0f} ms, p99 {self.text_p99_ms:.0f} ms, max "
            f"{self.text_max_ms:.0f} ms; restarts: {restarts}; "
            f"{self.unrecoverable_errors} unrecoverable errors, {self.tracebacks} tracebacks; "
            f"`recovery run` {'up' if self.run_up_at_end else 'DOWN'} at the end"
        )


def caller_number(n: int) -> str:
    return f"+1512556{n:04d}"  # nobody at the example practices has one of these


def soak(folder: Path, duration_s: float, interval_s: float) -> SoakResult:
    run = EmbeddedRun(folder)
    run.start()
    posted: dict[str, float] = {}
    refused = 0
    started = time.monotonic()
    try:
        n = 0
        while time.monotonic() - started < duration_s:
            due = started + n * interval_s
            time.sleep(max(0.0, due - time.monotonic()))
            caller = caller_number(n)
            at = time.time()
            try:
                answer = run.post_missed_call(caller)
                answer.raise_for_status()
            except requests.RequestException as exc:
                refused += 1
                print(f"soak: call {n} refused: {exc}", file=sys.stderr)
            else:
                posted[caller] = at
            n += 1
            if n % 60 == 0:
                print(f"soak: {n} calls, {time.monotonic() - started:.0f} s", file=sys.stderr)
        # The last calls' texts are a second or so behind.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if set(posted) <= {t["to"] for t in run.texts_to_any(set(posted))}:
                break
            time.sleep(1)
        run_up = run.process is not None and run.process.poll() is None
        log = run.log()
    finally:
        run.stop()

    texts_by_caller: dict[str, list[float]] = {}
    for text in run.texts_to_any(set(posted)):
        sent = datetime.fromisoformat(text["at"]).timestamp()
        texts_by_caller.setdefault(text["to"], []).append(sent)
    latencies = sorted(
        (min(sent) - posted[caller]) * 1000 for caller, sent in texts_by_caller.items()
    )
    restarts: dict[str, int] = {}
    for name in re.findall(r"\| (\w+) exited \(rc=", log):
        restarts[name] = restarts.get(name, 0) + 1
    return SoakResult(
        duration_s=duration_s,
        interval_s=interval_s,
        calls=len(posted) + refused,
        calls_refused=refused,
        texts=sum(len(v) for v in texts_by_caller.values()),
        callers_without_text=sum(1 for c in posted if c not in texts_by_caller),
        callers_texted_twice=sum(1 for v in texts_by_caller.values() if len(v) > 1),
        text_p50_ms=percentile(latencies, 50) if latencies else 0.0,
        text_p99_ms=percentile(latencies, 99) if latencies else 0.0,
        text_max_ms=latencies[-1] if latencies else 0.0,
        restarts=restarts,
        unrecoverable_errors=log.count("Unrecoverable error"),
        tracebacks=log.count("Traceback"),
        run_up_at_end=run_up,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between calls")
    parser.add_argument("--folder", type=Path, default=None, help="default: a new temp folder")
    parser.add_argument("--output", type=Path, default=Path("bench/out/soak.json"))
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="recovery-soak-"))
    print(f"soak: `recovery run` in {folder} (its log: {folder / 'run.log'})", file=sys.stderr)
    result = soak(folder, args.duration, args.interval)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({**asdict(result), "ok": result.ok}, indent=2) + "\n")
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
