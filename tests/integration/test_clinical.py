"""The clinical-concern tier over the real stack: a symptom without a red flag gets the
911 sentence and a nurse's task; nobody claims it in time, and it is paged, once."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.pages import PageReason
from recovery.domain.tasks import TaskReason
from recovery.models import Page, PageStatus, Task, TaskQueue, TaskStatus
from tests.integration.conftest import Clock
from tests.integration.helpers import post_sms, texts_to, wait_for_text_to
from tests.integration.test_two_way import DR_RIVERA, NURSE_LEE, PATIENT, missed_call, wait_for
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration


def test_a_symptom_gets_the_clinical_text_and_a_care_team_task_paged_once_when_unclaimed(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session], clock: Clock
) -> None:
    missed_call(stack, twilio)
    post_sms(stack, "my knee has been swollen and sore since sunday")

    answer = wait_for_text_to(twilio, PATIENT, "nurse")
    assert "call 911" in answer and "knee" not in answer
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert (task.queue, task.reason) == (TaskQueue.CARE_TEAM, TaskReason.CLINICAL)
        assert round((task.due_at - task.created_at).total_seconds()) == 30 * 60
    time.sleep(1.0)
    assert texts_to(twilio, DR_RIVERA) == []  # nobody is paged while the task is in time

    clock.advance(30 * 60 + 1)  # the callback time passes and nobody claimed it
    page_text = wait_for_text_to(twilio, DR_RIVERA, "clinical question")
    assert PATIENT not in page_text and "knee" not in page_text
    code = re.search(r"Ref (\d{4})", page_text)
    assert code is not None

    time.sleep(3.0)  # beat sweeps every half second in the test stack: no second page
    assert len(texts_to(twilio, DR_RIVERA)) == 1
    with sessions() as session:
        page = session.scalars(select(Page)).one()
        assert page.reason is PageReason.CLINICAL_OVERDUE
        assert session.scalars(select(Task)).one().page_id == page.id

    clock.advance(301)  # the same chain as an urgent page: the next on call
    wait_for_text_to(twilio, NURSE_LEE, f"Ref {code.group(1)}")
    post_sms(stack, f"ACK {code.group(1)}", sender=NURSE_LEE)
    wait_for_text_to(twilio, NURSE_LEE, "is yours")

    def taken() -> bool:
        with sessions() as session:
            task = session.scalars(select(Task)).one()
            page = session.scalars(select(Page)).one()
            return page.status is PageStatus.ACKNOWLEDGED and task.status is TaskStatus.CLAIMED

    wait_for(taken)
    assert len(texts_to(twilio, DR_RIVERA)) == 1


def test_a_booking_that_names_a_symptom_gets_the_link_and_a_task_beside_it(
    stack: Stack, twilio: TwilioDouble, sessions: sessionmaker[Session]
) -> None:
    missed_call(stack, twilio)
    post_sms(stack, "my back hurts, can I come in")
    wait_for_text_to(twilio, PATIENT, "book your visit")
    with sessions() as session:
        assert session.scalars(select(Task)).one().reason is TaskReason.CLINICAL
