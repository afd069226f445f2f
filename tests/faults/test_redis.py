"""Redis goes away while calls flow: restarted (every connection reset, every key lost) or
flushed under live connections (the queues and kombu's bindings gone). The worker and beat
stay up through it, and every call still gets exactly one first text once Redis is back.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.faults.conftest import FaultStack, assert_each_sent_once, missed_calls

pytestmark = pytest.mark.faults

CALLS = 40


def _calls_in_background(faults: FaultStack, n: int, tag: str) -> threading.Thread:
    """n missed calls, one after another, while the test does something to Redis."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            missed_calls(faults, n, tag)
        except BaseException as exc:  # reported by the join below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def _join(thread: threading.Thread) -> None:
    thread.join(120)
    assert not thread.is_alive(), "the missed calls did not finish"
    errors: list[BaseException] = thread.errors  # type: ignore[attr-defined]
    assert not errors, errors


def _processes_stayed_up(faults: FaultStack, before: dict[str, int]) -> None:
    # The stack's supervisor restarts whatever exits; the point here is that nothing had to.
    assert faults.stack.restarts == before, (
        f"restarted: {faults.stack.restarts} (before: {before})\n{faults.stack.log('worker')}"
    )


def test_redis_restarted_while_calls_flow(faults: FaultStack) -> None:
    before = dict(faults.stack.restarts)
    started = time.monotonic()
    calls = _calls_in_background(faults, CALLS, "redis-restart")
    faults.twilio.wait_for_messages(5, timeout=60)
    faults.redis.restart(down_s=3.0)  # 3 s gone, then back empty
    restarted = time.monotonic()
    _join(calls)

    proof = assert_each_sent_once(faults, CALLS, started, timeout=120)
    quiet = started + proof.settled_s - restarted
    print(f"\nRedis restart: {proof.texts} texts once each, all out {quiet:.1f}s after it was back")
    _processes_stayed_up(faults, before)
    # And the worker consumes again: a new caller is texted.
    missed_calls(faults, 1, "redis-after-restart", first=CALLS)
    assert_each_sent_once(faults, CALLS + 1, time.monotonic())
    _processes_stayed_up(faults, before)


def test_redis_flushed_while_calls_flow(faults: FaultStack) -> None:
    before = dict(faults.stack.restarts)
    started = time.monotonic()
    calls = _calls_in_background(faults, CALLS, "redis-flush")
    faults.twilio.wait_for_messages(5, timeout=60)
    faults.redis.flush()  # queued tasks, unacked index, kombu's exchange bindings: gone
    flushed = time.monotonic()
    _join(calls)

    proof = assert_each_sent_once(faults, CALLS, started, timeout=120)
    quiet = started + proof.settled_s - flushed
    print(f"\nRedis flush: {proof.texts} texts once each, all out {quiet:.1f}s after the flush")
    _processes_stayed_up(faults, before)
    missed_calls(faults, 1, "redis-after-flush", first=CALLS)
    assert_each_sent_once(faults, CALLS + 1, time.monotonic())
