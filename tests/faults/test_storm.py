"""The storm: every fault of this suite, in one run, while 300 missed calls, 40 urgent
replies and 30 STOPs flow. Which fault comes when is drawn from a seed (printed; set
RECOVERY_FAULT_SEED to run the same storm again): workers SIGKILLed (one in the window
after the provider took texts and before we recorded them), the provider answering 500
and 429, hanging past our timeout and then sending, sending and dropping the connection,
Redis restarted empty and PostgreSQL restarted.

After it: every call got exactly one first text, every urgent reply one 911 guidance text
and one page, every STOP held (its confirmation, then nothing automated, not even for a
later missed call), nothing went out twice, and the last text went out seconds after
the last fault, not minutes.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import requests

from tests.conftest import twilio_signature, unique_sid
from tests.faults.conftest import DIAL, FaultStack, assert_each_sent_once, caller
from tests.integration.helpers import dial_form, post_sms

pytestmark = pytest.mark.faults

CALLS = 300
URGENT = range(0, 40)  # these callers reply that it is an emergency once texted
STOPS = range(40, 70)  # these reply STOP once texted, and call again later
DR_RIVERA = "+15125550111"  # Valley Family's first on-call clinician
CALL_GAP_S = 0.08  # ~12 missed calls a second, a busy morning across a group's lines
# A killed worker's texts go out within ten seconds (test_send_once); PostgreSQL or
# Redis back, or the provider answering again, sooner. Twice that, on a busy CI machine.
QUIET_BOUND_S = 20.0
LAST_FAULT_BEFORE_END = 20  # the last fault comes with this many missed calls still to come


def _seed() -> int:
    return int(os.environ.get("RECOVERY_FAULT_SEED") or random.SystemRandom().randrange(10**6))


@dataclass
class Traffic:
    """What the patients did, as Twilio would have posted it, from background threads."""

    faults: FaultStack
    codes: Counter[int] = field(default_factory=Counter)
    stopped_at: dict[str, float] = field(default_factory=dict)  # wall clock, as the double
    errors: list[BaseException] = field(default_factory=list)
    last_answered: float = 0.0  # monotonic: the last webhook's answer
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, status: int) -> None:
        with self.lock:
            self.codes[status] += 1
            self.last_answered = time.monotonic()

    def wait_for_calls(self, n: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.calls < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def call(self, http: requests.Session, number: str, tag: str) -> None:
        url = self.faults.stack.base_url + DIAL
        form = dial_form(From=number, Caller=number, CallSid=unique_sid("CA", f"{tag}:{number}"))
        response = http.post(
            url, data=form, headers={"X-Twilio-Signature": twilio_signature(url, form)}, timeout=30
        )
        self.answered(response.status_code)

    def text(self, number: str, body: str) -> None:
        response = post_sms(self.faults.stack, body, sender=number)
        self.answered(response.status_code)

    def background(self, work: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # reported by join
                self.errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def _first_texted(faults: FaultStack) -> set[str]:
    return {
        m.form["To"]
        for m in faults.twilio.accepted_messages()
        if "sorry we missed" in m.form["Body"]
    }


def _callers(traffic: Traffic) -> None:
    with requests.Session() as http:
        for i in range(CALLS):
            traffic.call(http, caller(i), "storm")
            traffic.calls += 1
            time.sleep(CALL_GAP_S)


def _patients_answer(traffic: Traffic) -> None:
    """Each urgent or STOP patient answers once their first text has reached them; a STOP
    patient calls again two seconds later."""
    waiting = {caller(i): "my dad has chest pain" for i in URGENT}
    waiting |= {caller(i): "STOP" for i in STOPS}
    call_again: dict[str, float] = {}
    deadline = time.monotonic() + 240
    with requests.Session() as http:
        while (waiting or call_again) and time.monotonic() < deadline:
            for number in sorted(_first_texted(traffic.faults) & waiting.keys()):
                body = waiting.pop(number)
                if body == "STOP":
                    traffic.stopped_at[number] = time.time()
                    call_again[number] = time.monotonic() + 2.0
                traffic.text(number, body)
            for number, when in list(call_again.items()):
                if time.monotonic() >= when:
                    del call_again[number]
                    traffic.call(http, number, "storm-again")
            time.sleep(0.2)
    assert not waiting, f"{len(waiting)} patients never got a first text to answer"
    assert not call_again


@dataclass
class Storm:
    """The faults, in the seed's order, a few seconds apart while the traffic flows."""

    faults: FaultStack
    rng: random.Random
    log: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)
    last_ended: float = 0.0
    killed: int = 0
    first_killed: str = "worker"

    def run(self, traffic: Traffic) -> None:
        """The last fault waits for the last few missed calls, so that it meets texts in
        flight, and the quiet time after it is the recovery from it, not calls still
        coming in."""
        strikes: list[Callable[[], str]] = [
            self.kill,
            self.kill,
            self.kill_after_the_provider_took_texts,
            self.provider_500,
            self.provider_429,
            self.provider_hangs,
            self.provider_drops,
            self.redis_restart,
            self.postgres_restart,
        ]
        self.rng.shuffle(strikes)
        for n, strike in enumerate(strikes, 1):
            time.sleep(self.rng.uniform(1.0, 3.0))
            if n == len(strikes):
                traffic.wait_for_calls(CALLS - LAST_FAULT_BEFORE_END)
            at = time.monotonic() - self.began
            what = strike()
            self.last_ended = time.monotonic()
            self.log.append(f"{at:5.1f}s {what}")

    def _next_to_kill(self) -> str:
        # The two workers in turn (from the seed's choice), each killed only once the other
        # consumes again: production runs more than one worker so that a dead one's texts
        # go out without waiting for its restart, which on a loaded machine takes longer
        # than the ten seconds this proves.
        if not self.killed:
            self.first_killed = self.rng.choice(["worker", "worker-b"])
        name = self.first_killed if self.killed % 2 == 0 else _other(self.first_killed)
        self.killed += 1
        self.faults.stack.wait_worker_ready(120, _other(name))
        return name

    def kill(self) -> str:
        name = self._next_to_kill()
        self.faults.kill_worker(name)
        return f"SIGKILL {name}"

    def kill_after_the_provider_took_texts(self) -> str:
        name = self._next_to_kill()
        self.faults.twilio.hold_answers(1.0)
        time.sleep(0.5)
        self.faults.kill_worker(name)
        self.faults.twilio.hold_answers(0)
        return f"SIGKILL {name} with answers held 1 s"

    def provider_500(self) -> str:
        n = self.rng.randint(5, 15)
        self.faults.twilio.fail_next(n, status=500)
        return f"{n} x 500"

    def provider_429(self) -> str:
        n = self.rng.randint(3, 10)
        self.faults.twilio.fail_next(n, status=429, retry_after=1)
        return f"{n} x 429"

    def provider_hangs(self) -> str:
        seconds = round(self.rng.uniform(2.0, 4.0), 1)
        self.faults.twilio.set_delay(4.0)  # past our 3 s timeout, then it sends
        time.sleep(seconds)
        self.faults.twilio.set_delay(0)
        return f"provider hangs 4 s for {seconds} s"

    def provider_drops(self) -> str:
        n = self.rng.randint(3, 10)
        self.faults.twilio.drop_next(n)
        return f"{n} sent then dropped"

    def redis_restart(self) -> str:
        self.faults.redis.restart(down_s=2.0)
        return "Redis restarted (2 s away, back empty)"

    def postgres_restart(self) -> str:
        mode = self.rng.choice(["fast", "immediate"])
        away = self.faults.postgres.restart(mode)
        return f"PostgreSQL restarted -m {mode} ({away:.1f} s away)"


def _other(worker: str) -> str:
    return "worker-b" if worker == "worker" else "worker"


def test_storm_of_calls_replies_and_stops_under_every_fault(faults: FaultStack) -> None:
    seed = _seed()
    print(f"\nRECOVERY_FAULT_SEED={seed}")
    traffic = Traffic(faults)
    storm = Storm(faults, random.Random(seed))
    started = time.monotonic()
    threads = [traffic.background(lambda: _callers(traffic))]
    faults.twilio.wait_for_messages(5, timeout=60)
    threads.append(traffic.background(lambda: _patients_answer(traffic)))
    storm.run(traffic)
    for thread in threads:
        thread.join(300)
        assert not thread.is_alive(), "the traffic did not finish"
    assert not traffic.errors, traffic.errors
    print("storm: " + "; ".join(storm.log))

    calls = CALLS + len(STOPS)
    assert traffic.codes == Counter({200: calls + len(URGENT) + len(STOPS)}), traffic.codes
    # A first text each, a guidance text and a page per urgent reply, a STOP confirmation.
    expected = CALLS + 2 * len(URGENT) + len(STOPS)
    proof = assert_each_sent_once(faults, expected, started, timeout=180)
    # Quiet time: from the last fault, or the last webhook if it came later (texts answer
    # webhooks: while they come, texts go), to the last text recorded.
    calm = max(storm.last_ended, traffic.last_answered)
    quiet = started + proof.settled_s - calm
    print(
        f"storm: {proof.texts} texts once each in {proof.settled_s:.1f}s, the last "
        f"{quiet:.1f}s after the last fault ({storm.last_ended - started:.1f}s) and webhook "
        f"({traffic.last_answered - started:.1f}s); worker restarts {faults.stack.restarts}"
    )

    sent = faults.twilio.accepted_messages()
    first = Counter(m.form["To"] for m in sent if "sorry we missed" in m.form["Body"])
    assert first == Counter({caller(i): 1 for i in range(CALLS)})
    guidance = Counter(m.form["To"] for m in sent if "paging our on-call" in m.form["Body"])
    assert guidance == Counter({caller(i): 1 for i in URGENT})
    pages = [m.form["Body"] for m in sent if m.form["To"] == DR_RIVERA]
    refs = {re.search(r"Ref (\d{4})", body).group(1) for body in pages}  # type: ignore[union-attr]
    assert len(pages) == len(refs) == len(URGENT)
    # Every STOP held: after it, its confirmation and nothing else, the second call too.
    after_stop = {
        number: [m.form["Body"] for m in sent if m.form["To"] == number and m.received_at > at]
        for number, at in traffic.stopped_at.items()
    }
    assert len(after_stop) == len(STOPS)
    for number, bodies in after_stop.items():
        assert len(bodies) == 1 and "unsubscribed" in bodies[0], (number, bodies)

    assert quiet < QUIET_BOUND_S, f"the last text {quiet:.1f}s after the last fault or webhook"
    assert faults.stack.restarts.get("worker", 0) + faults.stack.restarts.get("worker-b", 0) >= 3
