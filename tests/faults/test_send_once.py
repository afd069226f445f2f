"""Each fault in the window where a text may have left without our knowing: every patient
still gets exactly one text, every clinician exactly one page per urgent reply, and none is
lost. The figures each scenario prints are the ones the README's Reliability section cites.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from tests.faults.conftest import (
    FaultStack,
    assert_each_sent_once,
    missed_calls,
    urgent_replies,
    wait_accepted,
)

pytestmark = pytest.mark.faults

CALLS = 40
DR_RIVERA = "+15125550111"  # Valley Family's first on-call clinician


def test_worker_killed_after_the_provider_took_texts_and_before_we_recorded_them(
    faults: FaultStack,
) -> None:
    faults.twilio.hold_answers(1.0)  # each text is sent at once, its answer a second late
    started = time.monotonic()
    missed_calls(faults, CALLS, "kill")
    wait_accepted(faults.twilio, 10)
    killed = faults.kill_worker()  # with up to 20 texts sent and not yet recorded
    faults.twilio.hold_answers(0)

    proof = assert_each_sent_once(faults, CALLS, started)
    recovered = started + proof.settled_s - killed
    print(f"\nSIGKILL: {proof.texts} texts once each; all recorded {recovered:.1f}s after the kill")
    assert faults.stack.restarts.get("worker", 0) >= 1
    # A killed worker's texts go out (or are found to have gone) within ten seconds: its
    # leases lapse (4 s at most after the kill), the next sweep (every 1 s) takes them
    # back and the other worker sends them, without waiting for a restart.
    assert recovered < 10, f"recovered {recovered:.1f}s after the kill"


def test_worker_killed_while_urgent_replies_page_the_clinician(faults: FaultStack) -> None:
    patients = missed_calls(faults, 12, "urgent")
    assert_each_sent_once(faults, 12, time.monotonic())
    faults.twilio.hold_answers(1.0)
    started = time.monotonic()
    urgent_replies(faults, patients)
    wait_accepted(faults.twilio, 12 + 4)
    faults.kill_worker()
    faults.twilio.hold_answers(0)

    # Each urgent reply: the 911 guidance to the patient, then a page to the clinician.
    proof = assert_each_sent_once(faults, 12 * 3, started)
    sent = faults.twilio.accepted_messages()
    guidance = Counter(m.form["To"] for m in sent if "paging our on-call" in m.form["Body"])
    assert guidance == Counter({p: 1 for p in patients})
    pages = [m.form["Body"] for m in sent if m.form["To"] == DR_RIVERA]
    refs = {re.search(r"Ref (\d{4})", body).group(1) for body in pages}  # type: ignore[union-attr]
    assert len(pages) == len(refs) == 12
    print(f"\nSIGKILL mid-paging: {proof.texts} texts, 12 pages, settled in {proof.settled_s:.1f}s")


def test_provider_hangs_past_our_timeout_then_sends(faults: FaultStack) -> None:
    faults.twilio.set_delay(4.0)  # the provider timeout is 3 s; each text is created at 4 s
    started = time.monotonic()
    missed_calls(faults, 20, "hang")
    wait_accepted(faults.twilio, 20, timeout=40)
    faults.twilio.set_delay(0)

    proof = assert_each_sent_once(faults, 20, started)
    print(f"\nhang past timeout: {proof.texts} texts once each, settled in {proof.settled_s:.1f}s")


def test_provider_takes_texts_then_drops_the_connection(faults: FaultStack) -> None:
    faults.twilio.drop_next(10)
    started = time.monotonic()
    missed_calls(faults, 20, "drop")

    proof = assert_each_sent_once(faults, 20, started)
    print(f"\naccept then drop: {proof.texts} texts once each, settled in {proof.settled_s:.1f}s")


def test_provider_answers_500_and_429_and_each_text_still_goes_once(faults: FaultStack) -> None:
    faults.twilio.fail_next(8, status=500)
    faults.twilio.fail_next(4, status=429, retry_after=1)
    started = time.monotonic()
    missed_calls(faults, 20, "5xx")

    proof = assert_each_sent_once(faults, 20, started)
    refused = [m for m in faults.twilio.messages() if not m.accepted]
    assert len(refused) == 12
    print(f"\n500/429: {proof.texts} texts once each, settled in {proof.settled_s:.1f}s")


def test_database_away_between_the_providers_answer_and_our_update(faults: FaultStack) -> None:
    faults.twilio.hold_answers(1.5)
    started = time.monotonic()
    missed_calls(faults, CALLS, "pg")
    wait_accepted(faults.twilio, 10)
    faults.database.cut()  # the answers now arrive with no database to write them to
    time.sleep(6.0)  # longer than the worker's own retries of the write (3.75 s)
    faults.twilio.hold_answers(0)
    faults.database.restore()

    proof = assert_each_sent_once(faults, CALLS, started, timeout=90)
    print(f"\nPostgreSQL cut: {proof.texts} texts once each, settled in {proof.settled_s:.1f}s")
