"""Intake: a reported call is stored once, joins or opens an episode, queues one text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery.crypto import PhiCipher
from recovery.db import session_scope
from recovery.domain.calls import CallReport
from recovery.domain.templates import SmsTemplates
from recovery.models import CallDisposition, CallEvent, Episode, Message, MessageStatus, Practice
from recovery.services.intake import IntakeResult, UnknownNumber, record_call
from tests.conftest import PHI_KEY
from tests.support.factories import missed_call_report

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
CALLER = "+15125550199"
MAIN_LINE = "+15125550100"
SECOND_LINE = "+15125550101"
FRONT_DESK = "+15125550142"  # valley-family's forward_to


def missed(
    call_id: str,
    caller: str = CALLER,
    called: str = MAIN_LINE,
    at: datetime = T0,
    forward_leg: bool = False,
) -> CallReport:
    return missed_call_report(
        at=at,
        caller=caller,
        called=called,
        call_id=call_id,
        raw_payload={"CallSid": call_id},
        forward_leg=forward_leg,
    )


def intake(
    sessions: sessionmaker[Session], templates: SmsTemplates, report: CallReport
) -> IntakeResult:
    with session_scope(sessions) as session:
        return record_call(
            session, report, templates, report.occurred_at, cipher=PhiCipher([PHI_KEY])
        )


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_first_missed_call_opens_an_episode_and_queues_a_text_from_the_called_line(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    result = intake(sessions, templates, missed("CA1", called=SECOND_LINE))

    assert result.duplicate is False
    assert result.skip_reason is None
    assert result.message_id is not None
    with sessions() as session:
        message = session.get(Message, result.message_id)
        assert message is not None
        assert message.status is MessageStatus.PENDING
        assert (message.from_number, message.to_number) == (SECOND_LINE, CALLER)
        assert message.kind == "first_text"
        assert message.episode_id == result.episode_id
        assert message.body.startswith("Valley Family Clinic:")
        call = session.get(CallEvent, result.call_id)
        assert call is not None
        assert call.disposition is CallDisposition.MISSED
        assert call.episode_id == result.episode_id


def test_repeat_call_within_the_window_joins_the_episode_without_a_new_text(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    first = intake(sessions, templates, missed("CA1"))
    second = intake(sessions, templates, missed("CA2", at=T0 + timedelta(hours=11)))

    assert second.episode_id == first.episode_id
    assert second.skip_reason == "joined_episode"
    assert second.message_id is None
    assert count(sessions, Message) == 1
    with sessions() as session:
        episode = session.get(Episode, first.episode_id)
        assert episode is not None
        assert episode.call_count == 2
        assert episode.last_call_at == T0 + timedelta(hours=11)


def test_call_after_the_window_opens_a_new_episode_and_a_new_text(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    first = intake(sessions, templates, missed("CA1"))
    later = intake(sessions, templates, missed("CA2", at=T0 + timedelta(hours=13)))

    assert later.episode_id is not None
    assert later.episode_id != first.episode_id
    assert later.message_id is not None
    assert later.message_id != first.message_id
    assert count(sessions, Message) == 2
    with sessions() as session:
        old = session.get(Episode, first.episode_id)
        new = session.get(Episode, later.episode_id)
        assert old is not None and new is not None
        assert old.joinable is False
        assert new.joinable is True
        assert new.opened_at == T0 + timedelta(hours=13)


def test_practice_episode_window_decides_what_joins(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with session_scope(sessions) as session:
        session.execute(
            update(Practice).where(Practice.slug == "valley-family").values(episode_window_h=24)
        )
    first = intake(sessions, templates, missed("CA1"))

    at_13h = intake(sessions, templates, missed("CA2", at=T0 + timedelta(hours=13)))
    at_25h = intake(sessions, templates, missed("CA3", at=T0 + timedelta(hours=25)))

    assert at_13h.episode_id == first.episode_id
    assert at_13h.skip_reason == "joined_episode"
    assert at_25h.episode_id != first.episode_id
    assert at_25h.message_id is not None


def test_duplicate_provider_call_id_is_reported_without_a_new_row(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    first = intake(sessions, templates, missed("CA1"))
    again = intake(sessions, templates, missed("CA1", at=T0 + timedelta(seconds=5)))

    assert first.duplicate is False
    assert again.duplicate is True
    assert again.message_id is None
    assert again.practice_id == first.practice_id
    assert count(sessions, CallEvent) == 1
    assert count(sessions, Message) == 1
    with sessions() as session:
        episode = session.get(Episode, first.episode_id)
        assert episode is not None
        assert episode.call_count == 1


def test_call_to_a_number_no_practice_owns_raises_unknown_number(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with pytest.raises(UnknownNumber) as excinfo:
        intake(sessions, templates, missed("CA1", called="+14155550100"))

    # The message is logged: it must not carry the full number.
    assert "4155550100" not in str(excinfo.value)
    assert count(sessions, CallEvent) == 0


def test_forward_target_is_not_a_practice_line_without_the_forward_flag(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with pytest.raises(UnknownNumber):
        intake(sessions, templates, missed("CA1", called=FRONT_DESK))


@pytest.mark.parametrize("withheld", ["anonymous", "+266696687", "", "Restricted"])
def test_withheld_caller_is_recorded_without_an_episode_or_text(
    sessions: sessionmaker[Session], templates: SmsTemplates, withheld: str
) -> None:
    result = intake(sessions, templates, missed("CA1", caller=withheld))

    assert result.duplicate is False
    assert result.skip_reason == "withheld"
    assert result.episode_id is None
    assert result.message_id is None
    assert count(sessions, Episode) == 0
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert call.caller is None
        assert call.caller_raw == withheld
        assert call.skip_reason == "withheld"


def test_forwarded_leg_finds_the_practice_and_texts_from_its_main_number(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    result = intake(sessions, templates, missed("CA1", called=FRONT_DESK, forward_leg=True))

    assert result.message_id is not None
    with sessions() as session:
        practice = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        assert result.practice_id == practice.id
        message = session.get(Message, result.message_id)
        assert message is not None
        assert message.from_number == MAIN_LINE
        call = session.get(CallEvent, result.call_id)
        assert call is not None
        assert call.called == MAIN_LINE
