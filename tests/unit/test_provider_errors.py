"""Errors that mean something: the provider's refusal or the carrier's report says what the
number is, and the episode goes where a person can still reach the patient.

The twilio client against the Twilio double (its `refuse_number`), our services on the
migrated schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.calls import SkipReason
from recovery.domain.messages import Unreachable, unreachable_reason
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Message,
    MessageStatus,
    OptOut,
    Task,
    TaskQueue,
    UntextableNumber,
)
from recovery.services.outreach import SendPolicy, deliver, record_status
from recovery.sms.twilio import TwilioProvider
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.factories import CALLER, missed_call
from tests.support.twilio_double import TwilioDouble

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # a Tuesday, 9 a.m. in Chicago: open
CALLBACK = "https://recovery.example.com/webhooks/twilio/sms/status"


@pytest.fixture(scope="module")
def double() -> Iterator[TwilioDouble]:
    with TwilioDouble(ACCOUNT_SID, AUTH_TOKEN) as running:
        yield running


@pytest.fixture
def provider(double: TwilioDouble, monkeypatch: pytest.MonkeyPatch) -> TwilioProvider:
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    double.reset()
    return TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=double.base_url, timeout_s=5.0)


def call_and_send(
    sessions: sessionmaker[Session], templates: SmsTemplates, provider: TwilioProvider
) -> int:
    """A missed call, and its first text through deliver(): the message id."""
    with session_scope(sessions) as session:
        result = missed_call(session, templates, at=T0)
    assert result.message_id is not None
    deliver(
        sessions,
        provider,
        result.message_id,
        status_callback=CALLBACK,
        policy=SendPolicy(),
        clock=lambda: T0,
    )
    return result.message_id


def episode_and_tasks(sessions: sessionmaker[Session]) -> tuple[Episode, list[Task]]:
    with sessions() as session:
        episode = session.scalars(select(Episode)).one()
        tasks = list(session.scalars(select(Task).where(Task.episode_id == episode.id)))
        session.expunge_all()
    return episode, tasks


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (21610, Unreachable.OPTED_OUT),
        (21211, Unreachable.NOT_TEXTABLE),
        (21614, Unreachable.NOT_TEXTABLE),
        *((code, Unreachable.UNDELIVERED) for code in range(30003, 30009)),
    ],
)
def test_each_code_has_its_meaning(code: int, meaning: Unreachable) -> None:
    assert unreachable_reason(code) is meaning


@pytest.mark.parametrize("code", [None, 20429, 20500, 21612, 30001, 30002, 30009, 30010])
def test_other_codes_are_about_the_attempt_only(code: int | None) -> None:
    assert unreachable_reason(code) is None


def test_21610_from_the_carrier_opts_the_number_out_and_ends_the_episode_opted_out(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    provider: TwilioProvider,
    double: TwilioDouble,
) -> None:
    double.refuse_number(CALLER, code=21610)

    message_id = call_and_send(sessions, templates, provider)

    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert (message.status, message.error_code) == (MessageStatus.FAILED, 21610)
        opt_out = session.scalars(select(OptOut)).one()
        assert (opt_out.phone, opt_out.opted_in_at) == (CALLER, None)
    episode, tasks = episode_and_tasks(sessions)
    assert (episode.status, episode.outcome) == (EpisodeStatus.CLOSED, EpisodeOutcome.OPTED_OUT)
    assert tasks == []
    # Their next call gets no text: they are opted out like any STOP.
    with session_scope(sessions) as session:
        again = missed_call(session, templates, at=T0 + timedelta(days=1))
    assert again.skip_reason is SkipReason.OPTED_OUT


@pytest.mark.parametrize("code", [21211, 21614])
def test_an_invalid_or_landline_number_becomes_a_front_desk_call_back(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    provider: TwilioProvider,
    double: TwilioDouble,
    code: int,
) -> None:
    double.refuse_number(CALLER, code=code)

    message_id = call_and_send(sessions, templates, provider)

    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert (message.status, message.error_code) == (MessageStatus.FAILED, code)
        marked = session.scalars(select(UntextableNumber)).one()
        assert (marked.phone, marked.error_code) == (CALLER, code)
    episode, [task] = episode_and_tasks(sessions)
    assert episode.status is EpisodeStatus.OPEN  # a person owns it now
    assert (task.queue, task.reason) == (TaskQueue.FRONT_DESK, TaskReason.CALL_BACK)
    assert task.due_at > T0

    # The next call from that number is not texted (nothing sent to the double again):
    # the voice answer asks them to call back, and the episode keeps its one task.
    sent_before = len(double.messages())
    with session_scope(sessions) as session:
        again = missed_call(session, templates, at=T0 + timedelta(minutes=5))
    assert again.skip_reason is SkipReason.NOT_TEXTABLE and again.message_id is None
    assert again.skip_reason.untextable
    assert len(double.messages()) == sent_before
    _, tasks = episode_and_tasks(sessions)
    assert len(tasks) == 1


def test_a_new_episode_from_an_untextable_number_gets_its_own_call_back(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    provider: TwilioProvider,
    double: TwilioDouble,
) -> None:
    double.refuse_number(CALLER, code=21614)
    call_and_send(sessions, templates, provider)
    with session_scope(sessions) as session:  # its window passed: a new call, a new episode
        session.execute(update(Episode).values(joinable=False))

    with session_scope(sessions) as session:
        again = missed_call(session, templates, at=T0 + timedelta(days=2))
    assert again.skip_reason is SkipReason.NOT_TEXTABLE
    with sessions() as session:
        tasks = session.scalars(select(Task).where(Task.episode_id == again.episode_id)).all()
        assert [(t.queue, t.reason) for t in tasks] == [
            (TaskQueue.FRONT_DESK, TaskReason.CALL_BACK)
        ]


@pytest.mark.parametrize("code", [30003, 30005, 30006, 30008])
def test_a_first_text_the_carrier_could_not_deliver_becomes_a_call_back(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    provider: TwilioProvider,
    double: TwilioDouble,
    code: int,
) -> None:
    message_id = call_and_send(sessions, templates, provider)
    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None and message.status is MessageStatus.ACCEPTED
        sid = message.provider_sid
    assert sid is not None and sid in {m.sid for m in double.accepted_messages()}

    # Twilio's StatusCallback: undelivered, with the carrier's code.
    with session_scope(sessions) as session:
        record_status(session, sid, MessageStatus.UNDELIVERED, code, T0 + timedelta(seconds=5))

    episode, [task] = episode_and_tasks(sessions)
    assert episode.status is EpisodeStatus.OPEN
    assert (task.queue, task.reason) == (TaskQueue.FRONT_DESK, TaskReason.CALL_BACK)
    with sessions() as session:
        # Not marked: a handset that was off may be on tomorrow.
        assert session.scalars(select(UntextableNumber)).all() == []
    # A second report of the same failure does not make a second task.
    with session_scope(sessions) as session:
        record_status(session, sid, MessageStatus.UNDELIVERED, code, T0 + timedelta(seconds=9))
    _, tasks = episode_and_tasks(sessions)
    assert len(tasks) == 1


def test_an_undelivered_text_other_than_the_first_makes_no_call_back(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    provider: TwilioProvider,
) -> None:
    message_id = call_and_send(sessions, templates, provider)
    with session_scope(sessions) as session:
        message = session.get(Message, message_id)
        assert message is not None and message.provider_sid is not None
        sid = message.provider_sid
        message.kind = message.kind.NUDGE
    with session_scope(sessions) as session:
        record_status(session, sid, MessageStatus.UNDELIVERED, 30003, T0 + timedelta(seconds=5))

    _, tasks = episode_and_tasks(sessions)
    assert tasks == []
