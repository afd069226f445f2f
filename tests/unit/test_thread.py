"""A patient's conversations with a practice read as one thread: a text after one ended
opens the next episode (each missed call keeps its own outcome), and /episodes/<id> of
either shows both, with a reply from the ended one going to the open one."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import session_scope, utcnow
from recovery.domain.messages import MessageKind
from recovery.domain.templates import SmsTemplates
from recovery.models import AuditEvent, Episode, EpisodeOutcome, EpisodeStatus, Message
from recovery.services.replies import handle_reply, record_inbound
from tests.e2e import scenario
from tests.e2e.scenario import BASE_URL, BILLING_CALLER, LINE, OTHER_LINE, Scenario
from tests.unit.test_staff_pages import sign_in, text_of

LATER_WORDS = "thanks! one more thing, is parking free"


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    return scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())


def patient_texts(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    settings: Settings,
    words: str,
    *,
    line: str = LINE,
) -> int:
    """The billing patient texts the practice line; returns the episode it landed in."""
    cipher = PhiCipher.from_settings(settings)
    now = utcnow()
    with session_scope(sessions) as session:
        stored = record_inbound(
            session,
            cipher,
            provider_sid=f"SM{now.timestamp()}{line}",
            from_raw=BILLING_CALLER,
            to_raw=line,
            body=words,
            now=now,
        )
        assert stored.message_id is not None
        handle_reply(
            session, templates, cipher, stored.message_id, now=now, public_base_url=BASE_URL
        )
        message = session.get(Message, stored.message_id)
        assert message is not None and message.episode_id is not None
        return message.episode_id


def test_a_text_after_the_conversation_ended_shows_in_the_same_thread(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    settings: Settings,
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/tasks/{world.billing_task_id}/complete", data={"csrf_token": token})
    earlier = world.billing_episode_id
    with sessions() as session:
        ended = session.get(Episode, earlier)
        assert ended is not None and ended.outcome is EpisodeOutcome.RESOLVED

    later = patient_texts(sessions, templates, settings, LATER_WORDS)

    # Underneath, a new episode: the first one keeps its outcome (the report counts calls).
    assert later != earlier
    with sessions() as session:
        ended = session.get(Episode, earlier)
        assert ended is not None and ended.outcome is EpisodeOutcome.RESOLVED
    old_page = text_of(client.get(f"/episodes/{earlier}"))
    new_page = text_of(client.get(f"/episodes/{later}"))
    for page in (old_page, new_page):
        assert "BILLING" in page and LATER_WORDS in page
        assert page.index("BILLING") < page.index(
            f"Conversation #{later} began: the patient texted"
        )
        assert page.index(f"Conversation #{later} began") < page.index(LATER_WORDS)
    assert "it goes on in" in old_page and f'href="/episodes/{later}"' in old_page
    assert f"Outcome of #{earlier}: Resolved" in new_page
    assert "it goes on in" not in new_page
    with sessions() as session:
        views = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "view_episode")
        ).all()
    assert f"episode {earlier}; thread {earlier},{later}" in views


def test_a_reply_from_the_ended_conversation_goes_to_the_open_one(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    settings: Settings,
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/tasks/{world.billing_task_id}/complete", data={"csrf_token": token})
    later = patient_texts(sessions, templates, settings, LATER_WORDS)

    client.post(
        f"/episodes/{world.billing_episode_id}/reply",
        data={"csrf_token": token, "text": "Yes, parking is free behind the building."},
    )

    with sessions() as session:
        reply = session.scalars(
            select(Message).where(Message.kind == MessageKind.STAFF_REPLY)
        ).one()
        assert reply.episode_id == later and reply.to_number == BILLING_CALLER
        open_one = session.get(Episode, later)
        assert open_one is not None and open_one.status is EpisodeStatus.OPEN
    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))
    assert "Dana Front replied" in page


def test_the_thread_is_one_practice_s(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    settings: Settings,
) -> None:
    # The same number texting another practice is that practice's patient, not this thread.
    elsewhere = patient_texts(sessions, templates, settings, "hi there", line=OTHER_LINE)
    sign_in(client, world.users.desk)

    page = text_of(client.get(f"/episodes/{world.billing_episode_id}"))

    assert "hi there" not in page and f"#{elsewhere}" not in page
    assert "Conversations" not in page  # a thread of one lists nothing
    assert client.get(f"/episodes/{elsewhere}").status_code == 404


def test_a_thread_lists_its_conversations_with_their_outcomes(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    settings: Settings,
) -> None:
    token = sign_in(client, world.users.desk)
    client.post(f"/episodes/{world.billing_episode_id}/book", data={"csrf_token": token})
    later = patient_texts(sessions, templates, settings, LATER_WORDS)

    page = text_of(client.get(f"/episodes/{later}"))

    assert f"#{world.billing_episode_id}</a> Booked" in page
    assert f"<strong>#{later}</strong> open" in page
