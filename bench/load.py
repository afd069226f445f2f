"""Load generators: open loop (requests leave on schedule) and closed loop (saturation).

Open loop: request i is due at start + i / rate and leaves then, whether or not earlier
requests have been answered; each is its own asyncio task, so a slow answer never delays
a later send and a slow server cannot hide its queue (closed-loop generators wait, and
so report the latency of a server that only ever sees as much load as it can take). The
generator records for each request when it was due, when it actually left (the difference
is the generator's own lateness, reported so that a busy generator is visible), and when
the answer was read.

On this machine the generator shares two cores with the stack it measures: its lateness
is the evidence of how much that matters.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from bench.scenarios import PlannedRequest

REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Outcome:
    index: int
    endpoint: str
    expect_to: str | None
    due: float  # perf_counter time the request was scheduled for
    sent: float  # perf_counter time it left
    sent_wall: float  # time.time() when it left, comparable with the double's clock
    done: float  # perf_counter time the answer was read (or the error seen)
    status: int  # HTTP status, or 0 for a connection error or timeout
    error: str | None = None

    @property
    def latency_ms(self) -> float:
        return (self.done - self.sent) * 1000

    @property
    def lateness_ms(self) -> float:
        return (self.sent - self.due) * 1000

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _session() -> aiohttp.ClientSession:
    # A new connection per request: webhooks come from a provider's fleet of machines, not
    # down one kept-alive socket. A reused connection would also pin every request to the
    # one gunicorn worker that accepted it (measured: one worker at 8.4 CPU s, the other
    # idle), which no real sender does. limit=0: no cap on concurrent connections, or the
    # pool itself would queue requests (a closed loop in disguise).
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def _send(
    session: aiohttp.ClientSession, base_url: str, index: int, request: PlannedRequest, due: float
) -> Outcome:
    sent = time.perf_counter()
    sent_wall = time.time()
    try:
        async with session.post(
            base_url + request.path, data=request.body, headers=request.headers
        ) as response:
            await response.read()
            status = response.status
        error = None
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, error = 0, f"{type(exc).__name__}: {exc}"
    return Outcome(
        index,
        request.endpoint,
        request.expect_to,
        due,
        sent,
        sent_wall,
        time.perf_counter(),
        status,
        error,
    )


async def _open_loop(
    base_url: str, requests: Sequence[PlannedRequest], rate: float, lead_s: float
) -> list[Outcome]:
    async with _session() as session:
        start = time.perf_counter() + lead_s
        tasks: list[asyncio.Task[Outcome]] = []
        for i, request in enumerate(requests):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(session, base_url, i, request, due)))
        return list(await asyncio.gather(*tasks))


def open_loop(
    base_url: str, requests: Sequence[PlannedRequest], rate: float, lead_s: float = 0.2
) -> list[Outcome]:
    """Send every request at `rate` per second from now + lead_s; one Outcome each."""
    return asyncio.run(_open_loop(base_url, requests, rate, lead_s))


@dataclass(frozen=True)
class Saturation:
    concurrency: int
    duration_s: float
    outcomes: list[Outcome]

    @property
    def completed(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def throughput(self) -> float:
        return self.completed / self.duration_s


async def _closed_loop(
    base_url: str,
    build: Callable[[int], PlannedRequest],
    concurrency: int,
    duration_s: float,
) -> Saturation:
    counter = iter(range(10**9))
    outcomes: list[Outcome] = []
    async with _session() as session:
        start = time.perf_counter()
        end = start + duration_s

        async def client() -> None:
            while True:
                now = time.perf_counter()
                if now >= end:
                    return
                index = next(counter)
                outcome = await _send(session, base_url, index, build(index), now)
                if outcome.done <= end:  # only what completed inside the window counts
                    outcomes.append(outcome)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return Saturation(concurrency, duration_s, outcomes)


def closed_loop(
    base_url: str, build: Callable[[int], PlannedRequest], concurrency: int, duration_s: float
) -> Saturation:
    """`concurrency` clients, each sending its next request as soon as the last one is
    answered, for `duration_s`: the server's throughput ceiling for this request."""
    return asyncio.run(_closed_loop(base_url, build, concurrency, duration_s))


@dataclass(frozen=True)
class Fired:
    index: int
    due: float
    sent: float
    sent_wall: float
    error: str | None

    @property
    def lateness_ms(self) -> float:
        return (self.sent - self.due) * 1000


def open_loop_calls(
    fire: Callable[[int], None], count: int, rate: float, lead_s: float = 0.2
) -> list[Fired]:
    """The open loop for a synchronous action (publishing a Celery task): call fire(i) at
    start + i / rate from one thread. Publishing takes a fraction of a millisecond, far
    below the gaps between sends at these rates; the lateness shows if it ever is not."""
    fired: list[Fired] = []
    start = time.perf_counter() + lead_s
    sleeper = threading.Event()
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            sleeper.wait(delay)
        sent = time.perf_counter()
        sent_wall = time.time()
        try:
            fire(i)
            error = None
        except Exception as exc:  # noqa: BLE001 - recorded and reported, never hidden
            error = f"{type(exc).__name__}: {exc}"
        fired.append(Fired(i, due, sent, sent_wall, error))
    return fired
