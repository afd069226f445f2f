"""A booking confirmed while an urgent page is still paging: recorded, and nothing stops.

A patient who says "chest pain" and then books a visit online has not stopped being an
emergency; the page must keep escalating until a clinician takes it.
"""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, EpisodeOutcome, EpisodeStatus, Page, PageStatus
from recovery.services.outcomes import confirm_booking
from tests.conftest import generic_request
from tests.unit.test_paging import RIVERA, T0, TIMEOUT, ack, start, sweep

BOOKINGS = "/webhooks/bookings"


def _with_token(sessions: sessionmaker[Session], episode_id: int, token: str) -> None:
    with session_scope(sessions) as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        episode.booking_token = token


def _load(sessions: sessionmaker[Session], page_id: int) -> tuple[Episode, Page]:
    with sessions() as session:
        page = session.get(Page, page_id)
        assert page is not None
        episode = session.get(Episode, page.episode_id)
        assert episode is not None
        return episode, page


def test_the_service_records_the_booking_and_leaves_episode_and_page_open(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    _with_token(sessions, page.episode_id, "urgent-tok")

    with session_scope(sessions) as session:
        episode = confirm_booking(session, now=T0 + timedelta(seconds=30), token="urgent-tok")
        assert episode is not None and episode.status is EpisodeStatus.OPEN

    episode, page = _load(sessions, page.id)
    assert episode.status is EpisodeStatus.OPEN and episode.outcome is None
    assert episode.booking_confirmed_at == T0 + timedelta(seconds=30)
    assert page.status is PageStatus.ACTIVE
    # The chain goes on: nobody took it, so the next person is paged at the timeout.
    assert sweep(sessions, templates, T0 + TIMEOUT + timedelta(seconds=1))


def test_a_signed_booking_during_a_page_answers_recorded_and_the_ack_ends_it_escalated(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    _with_token(sessions, page.episode_id, "urgent-tok2")

    body, headers = generic_request({"ref": "urgent-tok2"})
    response = client.post(BOOKINGS, data=body, headers=headers)

    assert response.status_code == 200
    assert response.json is not None and response.json["status"] == "recorded"
    assert "urgent page" in response.json["reason"]
    episode, stored = _load(sessions, page.id)
    assert episode.status is EpisodeStatus.OPEN and episode.booking_confirmed_at is not None
    assert stored.status is PageStatus.ACTIVE

    ack(sessions, templates, RIVERA, stored.code, T0 + timedelta(seconds=60))
    episode, stored = _load(sessions, page.id)
    assert stored.status is PageStatus.ACKNOWLEDGED
    assert episode.outcome is EpisodeOutcome.ESCALATED


def test_a_booking_without_a_page_still_closes_the_episode_booked(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    ack(sessions, templates, RIVERA, _load(sessions, page.id)[1].code, T0 + timedelta(seconds=5))
    # A second episode of another caller, no page: booked at once.
    with session_scope(sessions) as session:
        other = Episode(
            practice_id=_load(sessions, page.id)[0].practice_id,
            caller="+15125550188",
            opened_at=T0,
            last_call_at=T0,
            booking_token="plain-tok",
        )
        session.add(other)
    body, headers = generic_request({"ref": "plain-tok"})
    response = client.post(BOOKINGS, data=body, headers=headers)
    assert response.json is not None and response.json["status"] == "booked"
