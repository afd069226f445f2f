"""`recovery run`'s supervisor: the web server, the worker and beat, each restarted when it
exits, until Ctrl-C stops them all.

honcho's own manager stops everything when one process exits: one worker crash took the
web server and beat down with it, and the product stayed down until someone noticed. This
keeps honcho's parts (a process in its own session, so Ctrl-C reaches only us and each child
gets an orderly SIGTERM; the coloured, prefixed output) and replaces the loop: a process
that exits is started again after a short back-off, with a line saying so, and the others
never notice.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any

from honcho.colour import get_colours
from honcho.compat import ProcessManager
from honcho.printer import Message, Printer
from honcho.process import Process

SYSTEM = "system"
# After SIGTERM, how long a process may take to finish what it is doing before SIGKILL.
KILL_WAIT_S = 5.0
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Backoff:
    """How long to wait before starting a process that exited: at once the first time,
    doubling while it keeps failing, never longer than `cap_s`; a process that stayed up
    `healthy_after_s` starts over from the shortest wait. A process that cannot start (a
    port in use) is retried every `cap_s` instead of in a tight loop."""

    initial_s: float = 1.0
    cap_s: float = 30.0
    healthy_after_s: float = 60.0
    failures: int = 0

    def next_delay(self, uptime_s: float) -> float:
        if uptime_s >= self.healthy_after_s:
            self.failures = 0
        delay = min(self.cap_s, self.initial_s * 2**self.failures)
        self.failures += 1
        return delay


@dataclass
class _Child:
    process: Process
    backoff: Backoff
    runner: multiprocessing.Process | None = None
    pid: int | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # when it exited and waits to be started again
    restarts: int = 0

    @property
    def running(self) -> bool:
        return self.runner is not None


@dataclass
class Supervisor:
    printer: Printer = field(default_factory=lambda: Printer(sys.stdout))
    clock: Callable[[], float] = time.monotonic
    backoff: Callable[[], Backoff] = Backoff
    _children: dict[str, _Child] = field(default_factory=dict)
    _events: Any = field(default_factory=multiprocessing.Queue)
    _colours: Any = field(default_factory=get_colours)
    _stopping_since: float | None = None
    returncode: int = 0

    def add(self, name: str, cmd: str, env: dict[str, str]) -> None:
        # exec: the pid we report and signal, and the exit code we log, are the process's
        # own, not those of the shell honcho starts it with.
        process = Process(f"exec {cmd}", name=name, colour=next(self._colours), env=env)
        self._children[name] = _Child(process, self.backoff())
        self.printer.width = max(self.printer.width, len(name), len(SYSTEM))

    def run(self, *, handle_signals: bool = True) -> int:
        """Start every process and keep them running until SIGINT or SIGTERM (or `stop()`);
        then stop them all and return the shell's exit code for that signal."""
        if handle_signals:
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
        for name in self._children:
            self._start(name)
        while not (self._stopping_since is not None and not self._any_running()):
            self._handle(self._next_event())
            self._tick()
        return self.returncode

    def stop(self, returncode: int = 0) -> None:
        if self._stopping_since is not None:
            return
        self._stopping_since = self.clock()
        self.returncode = returncode
        for name, child in self._children.items():
            child.restart_at = None
            if child.running and child.pid is not None:
                self._say(f"sending SIGTERM to {name} (pid {child.pid})")
                ProcessManager().terminate(child.pid)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._say(f"{signal.Signals(signum).name} received")
        self.stop(EXIT_CODES.get(signal.Signals(signum), 1))

    def _next_event(self) -> Message | None:
        try:
            return self._events.get(timeout=0.1)
        except queue.Empty:
            return None

    def _handle(self, msg: Message | None) -> None:
        if msg is None:
            return
        child = self._children[msg.name]
        if msg.type == "line":
            self.printer.write(msg)
        elif msg.type == "start":
            child.pid = msg.data["pid"]
            self._say(f"{msg.name} started (pid={child.pid})")
            if self._stopping_since is not None:  # started just before Ctrl-C
                ProcessManager().terminate(child.pid)
        elif msg.type == "stop":
            self._exited(msg.name, child, msg.data["returncode"])

    def _exited(self, name: str, child: _Child, returncode: int) -> None:
        if child.runner is not None:
            child.runner.join()
        child.runner = None
        if self._stopping_since is not None:
            self._say(f"{name} stopped (rc={returncode})")
            return
        uptime = self.clock() - child.started_at
        delay = child.backoff.next_delay(uptime)
        child.restart_at = self.clock() + delay
        self._say(
            f"{name} exited (rc={returncode}) after {uptime:.0f} s; "
            f"starting it again in {delay:g} s"
        )

    def _tick(self) -> None:
        now = self.clock()
        if self._stopping_since is not None:
            if now - self._stopping_since > KILL_WAIT_S:
                for name, child in self._children.items():
                    if child.running and child.pid is not None:
                        self._say(f"sending SIGKILL to {name} (pid {child.pid})")
                        ProcessManager().kill(child.pid)
                self._stopping_since = now  # and again every KILL_WAIT_S until gone
            return
        for name, child in self._children.items():
            if child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._start(name)

    def _start(self, name: str) -> None:
        child = self._children[name]
        child.restart_at = None
        child.pid = None
        child.started_at = self.clock()
        child.runner = multiprocessing.Process(
            name=name, target=child.process.run, args=(self._events, True)
        )
        child.runner.start()

    def _any_running(self) -> bool:
        return any(child.running for child in self._children.values())

    def _say(self, text: str) -> None:
        self.printer.write(
            Message(type="line", data=text + "\n", time=datetime.now(), name=SYSTEM, colour=None)
        )
