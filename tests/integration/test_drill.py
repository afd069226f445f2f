"""The fire drill over the real stack: `recovery paging drill` commits the TEST pages, the
worker sends them through the twilio client, ACKs come back through the SMS webhook and
are recorded once with their time; no episode, page or task is touched."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.models import Drill, DrillAnswer, Episode, EpisodeStatus, Page, PageStatus, Task
from tests.integration.helpers import post_sms, settle, texts_to, wait_for_text_to
from tests.integration.test_two_way import DR_RIVERA, NURSE_LEE, missed_call
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

RECOVERY = Path(sys.executable).parent / "recovery"


def run_drill(stack: Stack) -> str:
    done = subprocess.run(
        [str(RECOVERY), "paging", "drill", "valley-family"],
        env=stack.env,
        cwd=stack.config.var_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_drill_records_who_answered_and_how_fast_and_touches_no_episode(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    # A real page is under way for a patient when the manager runs the drill.
    missed_call(stack, twilio)
    post_sms(stack, "my dad has chest pain")
    wait_for_text_to(twilio, DR_RIVERA, "URGENT Valley Family Clinic")
    episodes, tasks = count(sessions, Episode), count(sessions, Task)

    output = run_drill(stack)

    found = re.search(r"drill (T\d{4}): TEST page texted to 2 on call", output)
    assert found is not None, output
    code = found.group(1)
    assert f"{stack.base_url}/admin/drills/" in output
    for person in (DR_RIVERA, NURSE_LEE):
        body = wait_for_text_to(twilio, person, f"fire drill {code}")
        assert body.startswith("TEST ONLY, no patient is waiting")

    post_sms(stack, f"ACK {code}", sender=NURSE_LEE)
    wait_for_text_to(twilio, NURSE_LEE, f"drill {code} answered")
    post_sms(stack, f"ACK {code}", sender=DR_RIVERA)
    wait_for_text_to(twilio, DR_RIVERA, f"drill {code} answered")
    # Lee again: recorded once, no second confirmation.
    post_sms(stack, f"ack {code}", sender=NURSE_LEE)
    settle(twilio, len(twilio.accepted_messages()))
    assert len([t for t in texts_to(twilio, NURSE_LEE) if "answered" in t]) == 1

    with sessions() as session:
        drill = session.scalars(select(Drill)).one()
        answers = {
            a.name: (a.answered_at - drill.started_at).total_seconds()
            for a in session.scalars(select(DrillAnswer))
        }
        page = session.scalars(select(Page)).one()
        episode = session.scalars(select(Episode)).one()
    assert drill.code == code
    assert set(answers) == {"Nurse Lee", "Dr. Rivera"}
    assert all(0 <= seconds < 120 for seconds in answers.values())
    # The patient's page is still being paged and their episode is still open: the drill's
    # ACKs took nothing real, and made no episode or task of their own.
    assert page.status is PageStatus.ACTIVE and page.acknowledged_by is None
    assert episode.status is EpisodeStatus.OPEN and episode.outcome is None
    assert (count(sessions, Episode), count(sessions, Task)) == (episodes, tasks)
    assert count(sessions, Page) == 1
