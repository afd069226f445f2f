"""PostgreSQL restarted while missed calls and urgent replies flow: `pg_ctl restart -m fast`
(every session rolled back and disconnected), `-m immediate` (every backend killed, then
crash recovery), and the postmaster SIGKILLed and started again. The database is the
suite's own cluster (tests/support/postgres_server.py), never the shared one.

The webhooks keep answering 200 through each restart (the request waits for the database,
bounded, instead of failing: Twilio does not retry a 5xx by default, and a missed call lost
is a patient not called back); gunicorn, both workers and beat stay up, the same
processes; and every call gets exactly one first text, every urgent reply exactly one
guidance text and one page.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import twilio_signature, unique_sid
from tests.faults.conftest import DIAL, FaultStack, assert_each_sent_once, caller, missed_calls
from tests.integration.helpers import load_form

pytestmark = pytest.mark.faults

EARLY = 20  # callers texted before the restarts, who reply urgently during them
CALLS = 60  # missed calls during the restarts
DR_RIVERA = "+15125550111"  # Valley Family's first on-call clinician
LINE = "+15125550100"


@dataclass
class Answers:
    """What the webhooks answered, as Twilio would see it."""

    codes: Counter[int] = field(default_factory=Counter)
    slowest_s: float = 0.0
    posted_at: dict[str, float] = field(default_factory=dict)  # by caller, wall clock
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, http: requests.Session, url: str, form: dict[str, str]) -> None:
        began = time.monotonic()
        self.posted_at[form["From"]] = time.time()  # the double stamps texts with time.time()
        # Twilio's default: one retry of a connection that failed, none of an answer.
        for attempt in range(2):
            try:
                response = http.post(
                    url,
                    data=form,
                    headers={"X-Twilio-Signature": twilio_signature(url, form)},
                    timeout=15,  # Twilio's read timeout
                )
                break
            except requests.ConnectionError:
                if attempt:
                    raise
        with self.lock:
            self.codes[response.status_code] += 1
            self.slowest_s = max(self.slowest_s, time.monotonic() - began)


def _in_background(answers: Answers, work: Callable[[requests.Session], None]) -> threading.Thread:
    def run() -> None:
        try:
            with requests.Session() as http:
                work(http)
        except BaseException as exc:  # reported by _join
            answers.errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _join(threads: list[threading.Thread], answers: Answers) -> None:
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "the webhooks did not finish"
    assert not answers.errors, answers.errors


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _waits_logged(faults: FaultStack) -> int:
    """Webhooks that met the database away and answered once it was back."""
    log = (faults.stack.config.var_dir / "web.log").read_text(errors="replace")
    return log.count("answered after waiting for the database")


def test_postgres_restarted_fast_immediate_and_killed_while_calls_and_replies_flow(
    faults: FaultStack,
) -> None:
    early = missed_calls(faults, EARLY, "pg-early")
    assert_each_sent_once(faults, EARLY, time.monotonic())
    pids = faults.stack.pids()
    web_workers = _children(pids["web"])
    restarts = dict(faults.stack.restarts)
    waited_before = _waits_logged(faults)
    base = faults.stack.base_url
    answers = Answers()

    def calls(http: requests.Session) -> None:
        for i in range(EARLY, EARLY + CALLS):
            number = caller(i)
            form = load_form("twilio/voice-dial-action-no-answer.form")
            form.update(From=number, Caller=number, CallSid=unique_sid("CA", f"pg:{number}"))
            answers.post(http, base + DIAL, form)
            time.sleep(0.1)

    def replies(http: requests.Session) -> None:
        for number in early:
            form = load_form("twilio/sms-inbound.form")
            sid = unique_sid("SM", f"pg-urgent:{number}")
            form.update(
                Body="my dad has chest pain", From=number, To=LINE, MessageSid=sid, SmsSid=sid
            )
            form["SmsMessageSid"] = sid
            answers.post(http, base + "/webhooks/twilio/sms", form)
            time.sleep(0.3)

    started = time.monotonic()
    threads = [_in_background(answers, calls), _in_background(answers, replies)]
    outages: list[tuple[str, float]] = []
    time.sleep(1.0)
    outages.append(("fast", faults.postgres.restart("fast")))
    time.sleep(1.5)
    outages.append(("immediate", faults.postgres.restart("immediate")))
    time.sleep(1.5)
    outages.append(("kill -9", faults.postgres.kill_and_start()))
    _join(threads, answers)
    # Quiet time: from the database back and the last webhook answered to the last text.
    back = time.monotonic()
    print(
        "\nPostgreSQL away: "
        + ", ".join(f"{mode} {seconds:.1f}s" for mode, seconds in outages)
        + f"; webhooks {dict(answers.codes)} ({_waits_logged(faults) - waited_before} "
        f"waited for it), slowest {answers.slowest_s:.1f}s"
    )

    # Each accepted call its first text; each urgent reply its 911 guidance and a page.
    proof = assert_each_sent_once(faults, EARLY + CALLS + 2 * EARLY, started, timeout=90)
    quiet = max(0.0, started + proof.settled_s - back)
    print(
        f"PostgreSQL restarts: {proof.texts} texts once each, the last {quiet:.1f}s after "
        f"the last restart and webhook ({proof.settled_s:.1f}s from the first)"
    )
    assert answers.codes == Counter({200: CALLS + EARLY}), answers.codes
    sent = faults.twilio.accepted_messages()
    # What a patient waited: from their call or reply to its text reaching the provider
    # (the first text; for a reply, the 911 guidance sent with its page).
    waited = sorted(
        m.received_at - answers.posted_at[m.form["To"]]
        for m in sent
        if m.form["To"] in answers.posted_at
        and (m.form["To"] not in early) == ("paging our on-call" not in m.form["Body"])
    )
    assert len(waited) == CALLS + EARLY
    print(
        f"webhook to its text: median {waited[len(waited) // 2]:.2f}s, "
        f"90th {waited[len(waited) * 9 // 10]:.2f}s, worst {waited[-1]:.2f}s"
    )
    guidance = Counter(m.form["To"] for m in sent if "paging our on-call" in m.form["Body"])
    assert guidance == Counter({p: 1 for p in early})
    pages = [m.form["Body"] for m in sent if m.form["To"] == DR_RIVERA]
    refs = {re.search(r"Ref (\d{4})", body).group(1) for body in pages}  # type: ignore[union-attr]
    assert len(pages) == len(refs) == EARLY

    # The restarts did meet webhooks in flight (else this proves nothing), and they waited.
    assert _waits_logged(faults) > waited_before
    # The same processes throughout: nothing exited and had to be restarted, not even a
    # gunicorn worker (its master would replace one silently).
    assert faults.stack.pids() == pids
    assert _children(pids["web"]) == web_workers
    assert faults.stack.restarts == restarts, faults.stack.log("worker")
    # And they work on the restarted database: a new caller is texted.
    missed_calls(faults, 1, "pg-after", first=EARLY + CALLS)
    assert_each_sent_once(faults, EARLY + CALLS + 2 * EARLY + 1, time.monotonic())


def test_postgres_away_past_the_wait_a_webhook_answers_503_and_its_retry_is_texted_once(
    faults: FaultStack,
) -> None:
    """Longer than RECOVERY_DATABASE_WAIT_S (8 s): the webhook gives up with a 503 that
    says so, and the retry (a phone system's, or Twilio's with a retry override) once the
    database is back is the call's one record and one text."""
    pids = faults.stack.pids()
    restarts = dict(faults.stack.restarts)
    base = faults.stack.base_url
    number = caller(0)
    form = load_form("twilio/voice-dial-action-no-answer.form")
    form.update(From=number, Caller=number, CallSid=unique_sid("CA", f"pg-long:{number}"))
    headers = {"X-Twilio-Signature": twilio_signature(base + DIAL, form)}

    faults.postgres.stop("fast")
    try:
        health = requests.get(base + "/healthz", timeout=15)
        began = time.monotonic()
        refused = requests.post(base + DIAL, data=form, headers=headers, timeout=15)
        waited = time.monotonic() - began
    finally:
        faults.postgres.start()
    retried = requests.post(base + DIAL, data=form, headers=headers, timeout=15)
    print(f"\nPostgreSQL down past the wait: 503 after {waited:.1f}s, the retry 200")

    assert (health.status_code, health.json()["database"]) == (503, "unavailable")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert refused.json()["reason"] == "the database is unavailable; try again in a moment"
    assert 7.5 < waited < 14  # the 8 s wait, then the answer (not Twilio's 15 s timeout)
    assert retried.status_code == 200, retried.text
    assert_each_sent_once(faults, 1, time.monotonic())
    assert faults.stack.pids() == pids
    assert faults.stack.restarts == restarts, faults.stack.log("worker")
