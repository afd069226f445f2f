"""`recovery run`'s supervisor: a process that exits comes back after a back-off, the others
keep running, and stopping stops them all."""

from __future__ import annotations

import io
import re
import sys
import threading
import time

from honcho.printer import Printer

from recovery.supervisor import Backoff, Supervisor


def test_backoff_starts_at_once_then_doubles_up_to_its_cap() -> None:
    backoff = Backoff(initial_s=1, cap_s=8, healthy_after_s=60)

    delays = [backoff.next_delay(uptime_s=0.5) for _ in range(6)]

    assert delays == [1, 2, 4, 8, 8, 8]


def test_backoff_starts_over_once_the_process_stayed_up() -> None:
    backoff = Backoff(initial_s=1, cap_s=30, healthy_after_s=60)
    for _ in range(4):
        backoff.next_delay(uptime_s=2)

    assert backoff.next_delay(uptime_s=59) == 16  # up a while, but not long enough
    assert backoff.next_delay(uptime_s=60) == 1
    assert backoff.next_delay(uptime_s=1) == 2


def test_an_exiting_process_is_started_again_and_the_others_keep_running() -> None:
    out = io.StringIO()
    supervisor = Supervisor(
        printer=Printer(out), backoff=lambda: Backoff(initial_s=0.05, cap_s=0.2)
    )
    python = sys.executable
    supervisor.add("flaky", f"{python} -c 'print(\"up\"); raise SystemExit(3)'", env={})
    supervisor.add("steady", f"{python} -c 'import time; print(\"up\"); time.sleep(60)'", env={})

    def stop_after_three_restarts() -> None:
        deadline = time.monotonic() + 20
        while out.getvalue().count("flaky exited (rc=3)") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.stop(returncode=130)

    stopper = threading.Thread(target=stop_after_three_restarts)
    stopper.start()
    returncode = supervisor.run(handle_signals=False)
    stopper.join()

    log = out.getvalue()
    delays = re.findall(r"flaky exited \(rc=3\) after \d+ s; starting it again in ([\d.]+) s", log)
    assert delays[:3] == ["0.05", "0.1", "0.2"]
    assert log.count("steady started") == 1
    assert "steady exited" not in log
    assert re.search(r"sending SIGTERM to steady \(pid \d+\)", log)
    assert re.search(r"steady stopped \(rc=-?\d+\)", log)
    assert returncode == 130


def test_a_process_that_ignores_sigterm_is_killed() -> None:
    out = io.StringIO()
    supervisor = Supervisor(printer=Printer(out))
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    supervisor.add("stubborn", f'{sys.executable} -c "{stubborn}"', env={})

    def stop_once_up() -> None:
        deadline = time.monotonic() + 20
        while "stubborn | up" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.stop()

    threading.Thread(target=stop_once_up).start()
    started = time.monotonic()
    supervisor.run(handle_signals=False)

    assert "sending SIGKILL to stubborn" in out.getvalue()
    assert "stubborn stopped (rc=-9)" in out.getvalue()
    assert time.monotonic() - started < 15
