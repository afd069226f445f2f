"""A page text that cannot reach its clinician escalates at once, not after ack_timeout_s."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.messages import MessageKind, StatusOutcome
from recovery.domain.templates import SmsTemplates
from recovery.models import Direction, Message, MessageStatus, OptOut
from recovery.services.outreach import SendPolicy, deliver, record_status
from recovery.sms.base import SendError
from tests.unit.test_outreach import FakeProvider
from tests.unit.test_paging import (
    LEE,
    MANAGER,
    MANAGER_ENTRY,
    RIVERA,
    T0,
    TIMEOUT,
    load_page,
    practice,
    recipients,
    set_manager,
    start,
    sweep,
    texts,
)


def report(sessions: sessionmaker[Session], message_id: int, status: MessageStatus) -> None:
    """The carrier's delivery report for a page text we sent."""
    with session_scope(sessions) as session:
        message = session.get(Message, message_id)
        assert message is not None
        message.provider_sid = f"SM{message_id:032d}"
        message.status = MessageStatus.ACCEPTED
    with session_scope(sessions) as session:
        outcome = record_status(session, f"SM{message_id:032d}", status, 30003, T0)
        assert outcome is StatusOutcome.APPLIED


def test_an_undelivered_page_text_pages_the_next_person_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, [to_rivera] = start(sessions, templates)
    report(sessions, to_rivera, MessageStatus.UNDELIVERED)

    assert load_page(sessions, page.id).next_escalation_at == T0
    assert recipients(sessions, sweep(sessions, templates, T0 + timedelta(seconds=1))) == [LEE]
    # ...and the next deadline is a full timeout from then, as for any escalation.
    assert load_page(sessions, page.id).next_escalation_at == T0 + timedelta(seconds=1) + TIMEOUT


def test_a_delivered_or_sent_page_text_waits_for_the_timeout(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, [to_rivera] = start(sessions, templates)
    report(sessions, to_rivera, MessageStatus.DELIVERED)
    assert load_page(sessions, page.id).next_escalation_at == T0 + TIMEOUT
    assert sweep(sessions, templates, T0 + timedelta(seconds=1)) == []


def test_a_page_text_the_provider_refuses_for_good_escalates_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, [to_rivera] = start(sessions, templates)
    provider = FakeProvider(SendError("twilio 400 21614", permanent=True, code=21614))
    result = deliver(
        sessions,
        provider,
        to_rivera,
        status_callback=None,
        policy=SendPolicy(deadline=timedelta(hours=6)),
        clock=lambda: T0,
    )
    assert result.status == "failed"
    assert load_page(sessions, page.id).next_escalation_at == T0


def test_a_page_text_suppressed_by_an_old_opt_out_escalates_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with session_scope(sessions) as session:
        session.add(OptOut(practice_id=practice(session).id, phone=RIVERA, opted_out_at=T0))
    page, [to_rivera] = start(sessions, templates)
    result = deliver(
        sessions,
        FakeProvider(),
        to_rivera,
        status_callback=None,
        policy=SendPolicy(deadline=timedelta(hours=6)),
        clock=lambda: T0,
    )
    assert result.status == "suppressed"
    assert recipients(sessions, sweep(sessions, templates, T0)) == [LEE]


def test_one_unreached_text_of_a_round_that_reached_others_waits_for_the_timeout(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    set_manager(sessions, MANAGER_ENTRY)
    page, _ = start(sessions, templates)
    sweep(sessions, templates, T0 + TIMEOUT)  # Lee
    everyone = sweep(sessions, templates, T0 + 2 * TIMEOUT)  # round 1: all three at once
    assert sorted(recipients(sessions, everyone)) == sorted([RIVERA, LEE, MANAGER])
    due = load_page(sessions, page.id).next_escalation_at

    first, second, third = [m for m in everyone if m not in set(calls_in(sessions, everyone))]
    report(sessions, first, MessageStatus.FAILED)
    report(sessions, second, MessageStatus.UNDELIVERED)
    assert load_page(sessions, page.id).next_escalation_at == due  # one still reached
    report(sessions, third, MessageStatus.UNDELIVERED)
    # Round 1 rings them too: while a call may still be answered, the round stands.
    assert load_page(sessions, page.id).next_escalation_at == due
    *ringing, last = calls_in(sessions, everyone)
    for call in ringing:
        report(sessions, call, MessageStatus.UNDELIVERED)
    assert load_page(sessions, page.id).next_escalation_at == due
    report(sessions, last, MessageStatus.FAILED)
    assert load_page(sessions, page.id).next_escalation_at == T0  # nobody reached: now


def calls_in(sessions: sessionmaker[Session], ids: list[int]) -> list[int]:
    return [m.id for m in texts(sessions, ids) if m.kind is MessageKind.PAGE_CALL]


def test_a_late_report_about_an_earlier_step_changes_nothing(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, [to_rivera] = start(sessions, templates)
    sweep(sessions, templates, T0 + TIMEOUT)  # Lee was paged: Rivera's step is over
    due = load_page(sessions, page.id).next_escalation_at
    report(sessions, to_rivera, MessageStatus.UNDELIVERED)
    assert load_page(sessions, page.id).next_escalation_at == due


def test_an_undelivered_patient_text_is_not_a_page(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    with session_scope(sessions) as session:
        patient_text = Message(
            practice_id=practice(session).id,
            direction=Direction.OUTBOUND,
            kind=MessageKind.FIRST_TEXT,
            from_number="+15125550100",
            to_number="+15125550199",
            body="hi",
            status=MessageStatus.ACCEPTED,
            provider_sid="SM" + "7" * 32,
            created_at=T0,
        )
        session.add(patient_text)
    with session_scope(sessions) as session:
        record_status(session, "SM" + "7" * 32, MessageStatus.UNDELIVERED, 30003, T0)
    assert load_page(sessions, page.id).next_escalation_at == T0 + TIMEOUT
