"""CPU seconds and peak memory of processes and their children, from /proc (Linux only).

No dependency: `/proc/<pid>/stat` gives user + system CPU time (fields 14 and 15, in clock
ticks) and the parent pid, `/proc/<pid>/status` gives VmHWM, the peak resident set size
the kernel has recorded for the process. A background thread samples every tracked
process and the children it grows (gunicorn workers, Celery pool processes, PostgreSQL
backends of the benchmark database) so that a process that exits before the end of a
phase is still counted with its last sample.

A process's CPU for a phase is its CPU time at the end minus its CPU time at the start (or
all of it, when it started during the phase). Peak RSS is VmHWM: since the process
started, which for the stack's processes is the phase itself (the stack is started fresh
per phase), but for long-lived servers (PostgreSQL, Redis) is since they booted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcSample:
    pid: int
    ppid: int
    comm: str
    start_ticks: int  # when the process started (pid + start identify it across pid reuse)
    cpu_s: float
    hwm_kb: int  # peak RSS (VmHWM)
    rss_kb: int


def read_sample(pid: int) -> ProcSample | None:
    """One process's counters, or None if it is gone (or not readable)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    open_paren, close_paren = stat.find("("), stat.rfind(")")
    comm = stat[open_paren + 1 : close_paren]
    rest = stat[close_paren + 2 :].split()
    # rest[0] is field 3 (state): field k is rest[k - 3].
    ppid = int(rest[1])
    utime, stime = int(rest[11]), int(rest[12])
    start_ticks = int(rest[19])
    hwm = rss = 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return ProcSample(pid, ppid, comm, start_ticks, (utime + stime) / CLOCK_TICKS, hwm, rss)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def parent_map() -> dict[int, int]:
    """pid -> ppid for every process on the machine."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(rest[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = [root]
    while stack:
        for child in sorted(children.get(stack.pop(), [])):
            found.append(child)
            stack.append(child)
    return found


@dataclass
class Tracked:
    """One process as seen over a phase."""

    group: str
    role: str
    first: ProcSample
    last: ProcSample
    existed_at_start: bool

    @property
    def cpu_s(self) -> float:
        start = self.first.cpu_s if self.existed_at_start else 0.0
        return max(0.0, self.last.cpu_s - start)

    @property
    def peak_rss_mb(self) -> float:
        return self.last.hwm_kb / 1024


@dataclass(frozen=True)
class Root:
    """A process to follow with its children. `child_role` names them ("gunicorn worker")."""

    group: str
    pid: int
    role: str
    child_role: str | None = None
    follow_children: bool = True


@dataclass
class ProcessMonitor:
    """Samples the roots, their descendants and extra pids (found by callables) until
    stopped; `report()` gives each process's CPU seconds and peak RSS for the phase."""

    roots: list[Root]
    # group -> (role, callable returning pids), e.g. PostgreSQL backends of our database.
    extra: dict[str, tuple[str, Callable[[], list[int]]]] = field(default_factory=dict)
    interval_s: float = 0.5
    _seen: dict[tuple[int, int], Tracked] = field(default_factory=dict, init=False)
    _order: list[tuple[int, int]] = field(default_factory=list, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _busy_at_start: float = field(default=0.0, init=False)
    machine_busy_s: float = field(default=0.0, init=False)

    def start(self) -> ProcessMonitor:
        self._busy_at_start = machine_busy_s()
        self._sample(at_start=True)
        self._thread = threading.Thread(target=self._run, name="proc-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Tracked]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sample(at_start=False)
        self.machine_busy_s = machine_busy_s() - self._busy_at_start
        return self.report()

    def report(self) -> list[Tracked]:
        with self._lock:
            return [self._seen[key] for key in self._order]

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample(at_start=False)

    def _sample(self, *, at_start: bool) -> None:
        parents = parent_map()
        wanted: list[tuple[str, str, int]] = []
        for root in self.roots:
            wanted.append((root.group, root.role, root.pid))
            if not root.follow_children:
                continue
            for child in descendants(root.pid, parents):
                wanted.append((root.group, root.child_role or f"{root.role} child", child))
        for group, (role, find) in self.extra.items():
            try:
                pids = find()
            except Exception:  # noqa: BLE001 - a failed lookup only means one missed sample
                pids = []
            wanted.extend((group, role, pid) for pid in pids)
        for group, role, pid in wanted:
            sample = read_sample(pid)
            if sample is None:
                continue
            key = (pid, sample.start_ticks)
            with self._lock:
                tracked = self._seen.get(key)
                if tracked is None:
                    self._seen[key] = Tracked(group, role, sample, sample, at_start)
                    self._order.append(key)
                else:
                    tracked.last = sample


def numbered_roles(tracked: list[Tracked]) -> list[tuple[str, Tracked]]:
    """Display names: a role held by several processes gets a number ("gunicorn worker 2")."""
    counts: dict[tuple[str, str], int] = {}
    for t in tracked:
        counts[(t.group, t.role)] = counts.get((t.group, t.role), 0) + 1
    seen: dict[tuple[str, str], int] = {}
    named: list[tuple[str, Tracked]] = []
    for t in tracked:
        key = (t.group, t.role)
        seen[key] = seen.get(key, 0) + 1
        label = t.role if counts[key] == 1 else f"{t.role} {seen[key]}"
        named.append((label, t))
    return named
