"""`recovery run` (what `make run` starts) keeps the product up: a worker that dies is
started again, the web server and beat never notice, texts go out again, and Ctrl-C still
stops everything. Runs on the embedded default, so it needs no PostgreSQL or Redis."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.embedded import EmbeddedRun, alive


@pytest.fixture
def embedded_run(tmp_path: Path) -> Iterator[EmbeddedRun]:
    run = EmbeddedRun(tmp_path / "fresh-checkout")
    run.start()
    try:
        yield run
    finally:
        run.stop()


def test_a_killed_worker_comes_back_and_the_next_call_is_still_texted(
    embedded_run: EmbeddedRun,
) -> None:
    run = embedded_run
    [web], [beat], [worker] = run.pids("web"), run.pids("beat"), run.pids("worker")

    os.killpg(worker, signal.SIGKILL)  # the process and anything it started
    run.wait_for(lambda: len(run.pids("worker")) == 2, 60, "the worker is started again")
    run.wait_for(lambda: run.log().count("ready.") >= 2, 120, "the new worker is ready")

    assert "worker exited (rc=-9)" in run.log()
    caller = "+15125550163"
    answered = run.simulate_call(caller)
    assert answered.returncode == 0, answered.stdout + answered.stderr
    run.wait_for(lambda: len(run.texts_to(caller)) == 1, 60, "the first text to the caller")
    assert run.pids("web") == [web] and run.pids("beat") == [beat]
    assert alive(web) and alive(beat)

    new_worker = run.pids("worker")[-1]
    assert run.stop() == 130
    assert "SIGINT received" in run.log()
    for pid in (web, beat, new_worker):
        assert not alive(pid)
