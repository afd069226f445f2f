"""The recovery report over the real stack: a morning of missed calls and replies made
through the real webhooks (gunicorn, the Celery worker, PostgreSQL, Redis, the Twilio
double), then the API's figures and CSV compared with a count made by hand in the test."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.models import Episode
from recovery.services.reports import percentile
from recovery.services.tokens import create_token
from tests.conftest import generic_request, unique_sid
from tests.integration.conftest import Clock
from tests.integration.helpers import dial_form, post_sms, post_twilio, wait_for_text_to
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

DIAL = "/webhooks/twilio/voice/dial-status"
LINE, OTHER_LINE = "+15125550100", "+16175550100"
# Tuesday 24 November 2026, 10:00 in Chicago: every call below is on that local day.
TUESDAY_MORNING = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
DAY = "from=2026-11-24&to=2026-11-24"


def call(stack: Stack, caller: str, *, line: str = LINE, status: str = "no-answer") -> None:
    form = dial_form(
        From=caller,
        Caller=caller,
        To=line,
        Called=line,
        DialCallStatus=status,
        CallSid=unique_sid("CA", f"{caller}{line}{status}{datetime.now(UTC)}"),
    )
    assert post_twilio(stack, DIAL, form).status_code == 200


def missed(stack: Stack, twilio: TwilioDouble, caller: str, *, line: str = LINE) -> None:
    call(stack, caller, line=line)
    wait_for_text_to(twilio, caller, "sorry we missed your call")


def test_the_apis_figures_match_a_hand_count_of_calls_made_through_the_webhooks(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session], clock: Clock
) -> None:
    clock.set(TUESDAY_MORNING)
    booker, biller, silent, stopper, twice = (
        f"+1512555{n:04d}" for n in (1001, 1002, 1003, 1004, 1005)
    )

    # 1. Books through the tracked link: booked (and revenue: visit_value 180).
    missed(stack, twilio, booker)
    post_sms(stack, "BOOK", sender=booker)
    link = re.search(r"/b/(\S+)", wait_for_text_to(twilio, booker, "book your visit"))
    assert link is not None
    payload, headers = generic_request({"ref": link.group(1)})
    booked = requests.post(
        stack.base_url + "/webhooks/bookings", data=payload, headers=headers, timeout=5
    )
    assert booked.json()["status"] == "booked"
    # 2. A billing question: a task, the episode still open.
    missed(stack, twilio, biller)
    post_sms(stack, "BILLING", sender=biller)
    wait_for_text_to(twilio, biller, "billing")
    # 3. Never answers the text: open.
    missed(stack, twilio, silent)
    # 4. Says STOP: opted out.
    missed(stack, twilio, stopper)
    post_sms(stack, "STOP", sender=stopper)
    wait_for_text_to(twilio, stopper, "unsubscribed")
    # 5. Calls twice: one missed call (one episode), two missed-call events.
    missed(stack, twilio, twice)
    call(stack, twice)
    # Not counted: an answered call (counted as answered), another practice's missed call.
    call(stack, "+15125551006", status="completed")
    missed(stack, twilio, "+16175551007", line=OTHER_LINE)

    with sessions() as session:
        ttfts = sorted(
            e.time_to_first_text_ms
            for e in session.scalars(select(Episode).where(Episode.caller.like("+1512%")))
            if e.time_to_first_text_ms is not None
        )
        token = create_token(session, practice_slug="valley-family", name="test", now=clock.now())
        session.commit()
    assert len(ttfts) == 5  # every missed caller was texted
    auth = {"Authorization": f"Bearer {token.token}"}

    response = requests.get(
        f"{stack.base_url}/api/reports/recovery?practice=valley-family&{DAY}",
        headers=auth,
        timeout=10,
    )

    assert response.status_code == 200, response.text
    figures = response.json()
    hand = {
        "missed_calls": 5,
        "recovered": 1,
        "recovery_rate": 0.2,
        "booked": 1,
        "resolved": 0,
        "escalated": 0,
        "opted_out": 1,
        "unrecovered": 0,
        "open": 3,
        "texted": 5,
        "never_texted": 0,
        "booking_intents": 1,
        "self_scheduling_conversion": 1.0,
        "revenue_recovered": 180,
        "missed_call_events": 6,
        "answered_calls": 1,
        "answer_rate": round(1 / 7, 4),
        "ttft_p50_ms": round(percentile(ttfts, 0.5) or 0, 1),
        "ttft_p95_ms": round(percentile(ttfts, 0.95) or 0, 1),
        "ttft_max_ms": ttfts[-1],
    }
    assert {key: figures[key] for key in hand} == hand
    assert figures["tasks"]["billing"]["created"] == 1
    assert figures["tasks"]["billing"]["open"] == 1
    day = figures["per_day"]
    assert day == [{"date": "2026-11-24", "missed_calls": 5, "recovered": 1, "recovery_rate": 0.2}]
    # The same day, a week before, was empty: the previous figures are there, all zero.
    assert figures["previous"]["missed_calls"] == 0

    exported = requests.get(
        f"{stack.base_url}/api/episodes.csv?practice=valley-family&{DAY}", headers=auth, timeout=10
    )
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["outcome"] for r in rows) == ["booked", "open", "open", "open", "opted_out"]
    assert {r["caller"] for r in rows} == {f"***-***-{n}" for n in (1001, 1002, 1003, 1004, 1005)}
    assert [r["calls"] for r in rows if r["caller"].endswith("1005")] == ["2"]
    assert all(
        r["opened_at"].startswith("2026-11-24T") and r["opened_at"].endswith("-06:00") for r in rows
    )
    assert "+1512" not in exported.text

    other = requests.get(
        f"{stack.base_url}/api/reports/recovery?practice=always-open&{DAY}",
        headers=auth,
        timeout=10,
    )
    assert other.status_code == 404
