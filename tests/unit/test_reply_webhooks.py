"""The inbound SMS webhook, the booking confirmation and the tracked booking link."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.models import Direction, Episode, EpisodeOutcome, Message
from tests.conftest import generic_request, load_form, twilio_signature
from tests.unit.conftest import PUBLIC_BASE_URL, RecordingDispatcher

SMS = "/webhooks/twilio/sms"


def post_sms(client: FlaskClient, **overrides: str):  # type: ignore[no-untyped-def]
    form = load_form("twilio/sms-inbound.form")
    form.update(overrides)
    signature = twilio_signature(PUBLIC_BASE_URL + SMS, form)
    return client.post(SMS, data=form, headers={"X-Twilio-Signature": signature})


def test_inbound_sms_is_stored_encrypted_queued_and_answered_with_empty_twiml(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    response = post_sms(client, Body="Book")

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert b"<Response />" in response.data
    with sessions() as session:
        message = session.scalars(select(Message)).one()
        assert message.direction is Direction.INBOUND
        assert message.body == "" and message.body_ciphertext
        assert message.provider_sid == "SM5d2e8f1a3b4c5d6e7f8091a2b3c4d5e6"
    assert dispatcher.replies == [message.id]


def test_duplicate_inbound_sms_is_acknowledged_and_stored_once(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    assert post_sms(client).status_code == 200
    assert post_sms(client).status_code == 200
    with sessions() as session:
        assert len(session.scalars(select(Message)).all()) == 1
    assert len(dispatcher.replies) == 1


def test_inbound_sms_with_a_bad_signature_is_refused(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/sms-inbound.form")
    response = client.post(SMS, data=form, headers={"X-Twilio-Signature": "bad"})
    assert response.status_code == 403
    with sessions() as session:
        assert session.scalars(select(Message)).all() == []


def test_inbound_sms_without_a_message_sid_is_400(client: FlaskClient) -> None:
    response = post_sms(client, MessageSid="")
    assert response.status_code == 400
    assert response.json is not None and "MessageSid" in response.json["reason"]


def test_inbound_sms_to_a_number_no_practice_owns_is_404(client: FlaskClient) -> None:
    assert post_sms(client, To="+14155550100").status_code == 404


def test_booking_confirmation_needs_a_ref_or_practice_and_phone(client: FlaskClient) -> None:
    body, headers = generic_request({"practice": "valley-family"})
    response = client.post("/webhooks/bookings", data=body, headers=headers)
    assert response.status_code == 400
    assert response.json is not None and "give ref" in response.json["reason"]


def test_booking_confirmation_for_an_unknown_ref_is_acknowledged_unmatched(
    client: FlaskClient,
) -> None:
    body, headers = generic_request({"ref": "nope"})
    response = client.post("/webhooks/bookings", data=body, headers=headers)
    assert response.status_code == 200 and response.json == {"status": "unmatched"}


def test_booking_confirmation_must_be_signed(client: FlaskClient) -> None:
    body, headers = generic_request({"ref": "x"}, secret="wrong")
    assert client.post("/webhooks/bookings", data=body, headers=headers).status_code == 403


def test_booking_link_redirects_with_the_ref_and_the_booking_closes_the_episode(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        from datetime import UTC, datetime

        from recovery.models import Practice

        practice = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        now = datetime.now(UTC)
        episode = Episode(
            practice_id=practice.id,
            caller="+15125550199",
            opened_at=now,
            last_call_at=now,
            booking_token="tok123",
        )
        session.add(episode)

    clicked = client.get("/b/tok123")
    assert clicked.status_code == 302
    assert clicked.headers["Location"] == "https://book.example.com/valley-family?ref=tok123"

    body, headers = generic_request({"practice": "valley-family", "phone": "(512) 555-0199"})
    response = client.post("/webhooks/bookings", data=body, headers=headers)
    assert response.json is not None and response.json["status"] == "booked"
    with sessions() as session:
        stored = session.scalars(select(Episode)).one()
        assert stored.outcome is EpisodeOutcome.BOOKED
        assert stored.booking_clicked_at is not None


def test_unknown_booking_link_is_404(client: FlaskClient) -> None:
    assert client.get("/b/unknown").status_code == 404
