"""The webhooks through Flask's test client, on SQLite, with the queue recorded."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.models import CallDisposition, CallEvent, Episode, Message, MessageStatus, OptOut
from recovery.models.practice import Practice
from tests.conftest import generic_request, load_form, twilio_signature, unique_sid
from tests.unit.conftest import PUBLIC_BASE_URL, RecordingDispatcher

DIAL = "/webhooks/twilio/voice/dial-status"
VOICE = "/webhooks/twilio/voice"
STATUS = "/webhooks/twilio/voice/status"
SMS_STATUS = "/webhooks/twilio/sms/status"
GENERIC = "/webhooks/calls/missed"


def post_twilio(client: FlaskClient, path: str, form: dict[str, str], signature: str | None = None):
    headers = {"X-Twilio-Signature": signature or twilio_signature(PUBLIC_BASE_URL + path, form)}
    return client.post(path, data=form, headers=headers)


def status_form(**overrides: str) -> dict[str, str]:
    """A forwarded leg's call-progress callback, stamped now (a live event)."""
    form = load_form("twilio/voice-status-no-answer.form")
    form["Timestamp"] = format_datetime(datetime.now(UTC).replace(microsecond=0))
    form.update(overrides)
    return form


def dial_form(**overrides: str) -> dict[str, str]:
    form = load_form("twilio/voice-dial-action-no-answer.form")
    form.update(overrides)
    return form


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def messages(sessions: sessionmaker[Session]) -> list[Message]:
    with sessions() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def test_missed_dial_records_call_and_queues_one_text_from_the_called_line(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    response = post_twilio(client, DIAL, dial_form())

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert b"text message in a moment" in response.data
    [message] = messages(sessions)
    assert message.status is MessageStatus.PENDING
    assert (message.from_number, message.to_number) == ("+15125550100", "+15125550199")
    assert message.body.startswith("Valley Family Clinic:")
    assert dispatcher.sent == [message.id]
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert call.disposition is CallDisposition.MISSED
        assert call.reason == "no-answer"
        assert call.raw_payload["DialCallSid"] == "CA9e8d7c6b5a49382716f5e4d3c2b1a0f9"
        assert call.episode_id == message.episode_id


def test_duplicate_dial_webhook_is_acknowledged_and_ignored(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    first = post_twilio(client, DIAL, dial_form())
    second = post_twilio(client, DIAL, dial_form())

    assert first.status_code == second.status_code == 200
    assert count(sessions, CallEvent) == 1
    assert len(messages(sessions)) == 1
    assert len(dispatcher.sent) == 1


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "wrong"])
def test_bad_or_missing_twilio_signature_is_refused_and_changes_nothing(
    client: FlaskClient, sessions: sessionmaker[Session], signature: str
) -> None:
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = client.post(DIAL, data=dial_form(), headers=headers)

    assert response.status_code == 403
    assert response.json is not None and response.json["error"] == "forbidden"
    assert count(sessions, CallEvent) == 0
    assert messages(sessions) == []


def test_signature_made_with_another_token_is_refused(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = dial_form()
    signature = twilio_signature(PUBLIC_BASE_URL + DIAL, form, token="someone-elses-token")
    assert post_twilio(client, DIAL, form, signature).status_code == 403
    assert count(sessions, CallEvent) == 0


def test_signature_over_a_tampered_field_is_refused(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = dial_form()
    signature = twilio_signature(PUBLIC_BASE_URL + DIAL, form)
    form["From"] = "+15125550123"
    assert post_twilio(client, DIAL, form, signature).status_code == 403


def test_answered_call_is_recorded_and_gets_no_text(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    response = post_twilio(client, DIAL, dial_form(DialCallStatus="completed"))

    assert response.status_code == 200
    assert b"<Say>" not in response.data
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert call.disposition is CallDisposition.ANSWERED
    assert messages(sessions) == []
    assert dispatcher.sent == []


@pytest.mark.parametrize("status", ["busy", "failed", "canceled"])
def test_other_unanswered_dial_statuses_are_missed_calls(
    client: FlaskClient, sessions: sessionmaker[Session], status: str
) -> None:
    post_twilio(client, DIAL, dial_form(DialCallStatus=status))
    with sessions() as session:
        assert session.scalars(select(CallEvent)).one().reason == status
    assert len(messages(sessions)) == 1


def test_second_missed_call_in_the_window_joins_the_episode_without_a_text(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    post_twilio(client, DIAL, dial_form())
    post_twilio(client, DIAL, dial_form(CallSid=unique_sid("CA", "second call")))

    assert count(sessions, CallEvent) == 2
    assert len(messages(sessions)) == 1
    with sessions() as session:
        episode = session.scalars(select(Episode)).one()
        assert episode.call_count == 2
        second = session.scalars(select(CallEvent).order_by(CallEvent.id.desc())).first()
        assert second is not None and second.skip_reason == "joined_episode"


def test_same_caller_to_another_practice_gets_its_own_episode_and_text(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    post_twilio(client, DIAL, dial_form())
    post_twilio(client, DIAL, dial_form(CallSid=unique_sid("CA", "other"), To="+13035550100"))
    assert [m.from_number for m in messages(sessions)] == ["+15125550100", "+13035550100"]


def test_call_to_the_second_line_is_answered_from_that_line(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    post_twilio(client, DIAL, dial_form(To="+15125550101", Called="+15125550101"))
    assert messages(sessions)[0].from_number == "+15125550101"


def test_after_hours_call_gets_twiml_and_a_text(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    form = {
        "CallSid": unique_sid("CA", "night"),
        "From": "+15125550199",
        "To": "+13035550100",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    response = post_twilio(client, VOICE, form)

    assert response.status_code == 200
    assert b"Night Owl Dental" in response.data and b"<Hangup" in response.data
    assert b"<Dial" not in response.data
    [message] = messages(sessions)
    assert message.to_number == "+15125550199" and message.from_number == "+13035550100"
    assert dispatcher.sent == [message.id]
    with sessions() as session:
        assert session.scalars(select(CallEvent)).one().reason == "after_hours"


def test_call_in_hours_rings_the_front_desk_with_a_dial_action(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = {
        "CallSid": unique_sid("CA", "day"),
        "From": "+15125550199",
        "To": "+16175550100",
        "CallStatus": "ringing",
    }
    response = post_twilio(client, VOICE, form)

    body = response.data.decode()
    assert response.status_code == 200
    assert '<Dial action="https://recovery.example.com/webhooks/twilio/voice/dial-status"' in body
    assert 'timeout="20"' in body and "+16175550140</Dial>" in body
    assert count(sessions, CallEvent) == 0  # nothing is missed yet
    assert messages(sessions) == []


def test_call_to_a_number_no_practice_owns_is_404(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    response = post_twilio(client, DIAL, dial_form(To="+14155550100"))
    assert response.status_code == 404
    assert response.json is not None and "no practice owns" in response.json["reason"]
    assert count(sessions, CallEvent) == 0


def test_malformed_twilio_payload_is_400_with_a_json_reason(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = dial_form()
    del form["DialCallStatus"]
    response = post_twilio(client, DIAL, form)

    assert response.status_code == 400
    assert response.json is not None
    assert "DialCallStatus" in response.json["reason"]
    assert count(sessions, CallEvent) == 0


def test_unknown_dial_status_is_400(client: FlaskClient) -> None:
    response = post_twilio(client, DIAL, dial_form(DialCallStatus="exploded"))
    assert response.status_code == 400
    assert response.json is not None and "must be one of" in response.json["reason"]


@pytest.mark.parametrize("caller", ["anonymous", "+266696687", "Restricted", "12345"])
def test_withheld_or_invalid_caller_is_recorded_as_missed_but_not_texted(
    client: FlaskClient, sessions: sessionmaker[Session], caller: str
) -> None:
    response = post_twilio(client, DIAL, dial_form(From=caller, Caller=caller))

    assert response.status_code == 200
    assert b"call us back" in response.data
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert call.disposition is CallDisposition.MISSED
        assert call.caller is None
        assert call.skip_reason in {"withheld", "invalid"}
    assert messages(sessions) == []


@pytest.mark.parametrize(
    ("caller", "reason"),
    [("+15125550101", "own_number"), ("+15125550142", "own_number"), ("+15125550666", "blocked")],
)
def test_own_and_blocked_numbers_are_ignored_with_a_reason(
    client: FlaskClient, sessions: sessionmaker[Session], caller: str, reason: str
) -> None:
    post_twilio(client, DIAL, dial_form(From=caller))
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert call.disposition is CallDisposition.IGNORED
        assert call.reason == reason
    assert messages(sessions) == []


def test_opted_out_caller_gets_no_text_and_the_reason_is_recorded(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    with sessions.begin() as session:
        practice = session.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        session.add(OptOut(practice_id=practice.id, phone="+15125550199"))

    post_twilio(client, DIAL, dial_form())

    assert messages(sessions) == []
    assert dispatcher.sent == []
    with sessions() as session:
        assert session.scalars(select(CallEvent)).one().skip_reason == "opted_out"


def test_broker_down_still_answers_and_leaves_the_text_pending_for_the_sweeper(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    dispatcher.fail_with = ConnectionError("Redis is down")
    response = post_twilio(client, DIAL, dial_form())

    assert response.status_code == 200
    [message] = messages(sessions)
    assert message.status is MessageStatus.PENDING


def test_forwarded_leg_status_callback_finds_the_practice_by_its_desk_phone(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = status_form()
    response = post_twilio(client, STATUS, form)

    assert response.status_code == 204
    [message] = messages(sessions)
    # The callback names the desk phone; the text comes from the practice's main line.
    assert (message.from_number, message.to_number) == ("+15125550100", "+15125550199")
    with sessions() as session:
        call = session.scalars(select(CallEvent)).one()
        assert call.provider_call_id == form["ParentCallSid"]
        assert call.occurred_at == parsedate_to_datetime(form["Timestamp"])


def test_status_callback_and_dial_action_of_one_call_are_one_event(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    post_twilio(client, DIAL, dial_form())
    post_twilio(client, STATUS, status_form())
    assert count(sessions, CallEvent) == 1
    assert len(messages(sessions)) == 1


@pytest.mark.parametrize("status", ["ringing", "in-progress", "queued", "initiated"])
def test_progress_callbacks_record_nothing(
    client: FlaskClient, sessions: sessionmaker[Session], status: str
) -> None:
    form = status_form(CallStatus=status)
    assert post_twilio(client, STATUS, form).status_code == 204
    assert count(sessions, CallEvent) == 0


def _send_first_text(client: FlaskClient, sessions: sessionmaker[Session], sid: str) -> int:
    post_twilio(client, DIAL, dial_form())
    with sessions.begin() as session:
        message = session.scalars(select(Message)).one()
        message.status = MessageStatus.ACCEPTED
        message.provider_sid = sid
        return message.id


def test_sms_status_callbacks_move_forward_only(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/sms-status-delivered.form")
    message_id = _send_first_text(client, sessions, form["MessageSid"])

    assert post_twilio(client, SMS_STATUS, form).status_code == 204
    late_sent = {**form, "MessageStatus": "sent", "SmsStatus": "sent"}
    assert post_twilio(client, SMS_STATUS, late_sent).status_code == 204

    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert message.status is MessageStatus.DELIVERED
        assert message.delivered_at is not None


def test_undelivered_status_records_the_carrier_error_code(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/sms-status-undelivered-30007.form")
    message_id = _send_first_text(client, sessions, form["MessageSid"])

    post_twilio(client, SMS_STATUS, form)

    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert message.status is MessageStatus.UNDELIVERED
        assert message.error_code == 30007


def test_a_status_report_names_our_message_so_a_lost_answer_is_recovered(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/sms-status-delivered.form")
    message_id = _send_first_text(client, sessions, form["MessageSid"])
    with sessions.begin() as session:
        message = session.get(Message, message_id)
        assert message is not None
        # The provider took it, but its answer was never written (the worker died).
        message.status, message.provider_sid = MessageStatus.SENDING, None

    path = f"{SMS_STATUS}?message_id={message_id}"
    assert post_twilio(client, path, form).status_code == 204
    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert (message.provider_sid, message.status) == (
            form["MessageSid"],
            MessageStatus.DELIVERED,
        )


def test_a_second_provider_id_for_our_message_is_reported_not_counted(
    client: FlaskClient, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    form = load_form("twilio/sms-status-delivered.form")
    first_sid = "SM" + "1" * 32
    message_id = _send_first_text(client, sessions, first_sid)

    path = f"{SMS_STATUS}?message_id={message_id}"
    assert post_twilio(client, path, form).status_code == 204
    with sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        assert (message.provider_sid, message.status) == (first_sid, MessageStatus.ACCEPTED)
    assert f"message {message_id} went out twice" in caplog.text


def test_status_for_an_unknown_message_is_acknowledged(client: FlaskClient) -> None:
    form = load_form("twilio/sms-status-delivered.form")
    assert post_twilio(client, SMS_STATUS, form).status_code == 204


def test_sms_status_with_a_bad_signature_is_refused(client: FlaskClient) -> None:
    form = load_form("twilio/sms-status-delivered.form")
    assert post_twilio(client, SMS_STATUS, form, signature="nope").status_code == 403


# --- the generic webhook -----------------------------------------------------------------


def generic_payload(**overrides: str) -> dict[str, str]:
    payload = {
        "call_id": "pbx-1762171272.101",
        "from": "5125550199",
        "to": "+15125550100",
        "occurred_at": datetime.now(UTC).isoformat(),
        "reason": "no-answer",
    }
    payload.update(overrides)
    return payload


def test_generic_webhook_records_a_missed_call_and_queues_a_text(
    client: FlaskClient, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    body, headers = generic_request(generic_payload())
    response = client.post(GENERIC, data=body, headers=headers)

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["status"] == "recorded" and response.json["texting"] is True
    [message] = messages(sessions)
    assert message.to_number == "+15125550199"
    assert dispatcher.sent == [message.id]


def test_generic_duplicate_is_acknowledged(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    for _ in range(2):
        body, headers = generic_request(generic_payload())
        response = client.post(GENERIC, data=body, headers=headers)
    assert response.json == {"status": "duplicate"}
    assert len(messages(sessions)) == 1


def test_generic_webhook_older_than_five_minutes_is_refused(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    body, headers = generic_request(generic_payload(), at=time.time() - 301)
    response = client.post(GENERIC, data=body, headers=headers)
    assert response.status_code == 403
    assert response.json is not None and "5 minutes" in response.json["reason"]
    assert count(sessions, CallEvent) == 0


def test_generic_webhook_with_a_wrong_secret_is_refused(client: FlaskClient) -> None:
    body, headers = generic_request(generic_payload(), secret="guess")
    assert client.post(GENERIC, data=body, headers=headers).status_code == 403


def test_generic_webhook_body_changed_after_signing_is_refused(client: FlaskClient) -> None:
    body, headers = generic_request(generic_payload())
    tampered = body.replace(b"5125550199", b"5125550198")
    assert client.post(GENERIC, data=tampered, headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"from": "+15125550199", "to": "+15125550100"}, "call_id"),
        (generic_payload(occurred_at="yesterday"), "occurred_at"),
        (generic_payload(occurred_at="2026-11-03T14:05:12"), "time zone"),
        (generic_payload(reason="exploded"), "reason must be one of"),
    ],
)
def test_generic_webhook_malformed_payload_is_400_with_the_field_named(
    client: FlaskClient, payload: dict[str, str], fragment: str
) -> None:
    body, headers = generic_request(payload)
    response = client.post(GENERIC, data=body, headers=headers)
    assert response.status_code == 400
    assert response.json is not None and fragment in response.json["reason"]


def test_generic_webhook_that_is_not_json_is_400(client: FlaskClient) -> None:
    from recovery.web.security import sign_generic

    body = b"call_id=1&from=2"
    timestamp = str(int(time.time()))
    headers = {
        "X-Recovery-Timestamp": timestamp,
        "X-Recovery-Signature": sign_generic("test-webhook-secret-valley-family", timestamp, body),
    }
    response = client.post(GENERIC, data=body, headers=headers)
    assert response.status_code == 400
    assert response.json is not None and "not JSON" in response.json["reason"]


def test_generic_answered_call_is_the_answer_rate_denominator(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    body, headers = generic_request(generic_payload(reason="answered"))
    response = client.post(GENERIC, data=body, headers=headers)
    assert response.json is not None and response.json["texting"] is False
    with sessions() as session:
        assert session.scalars(select(CallEvent)).one().disposition is CallDisposition.ANSWERED


def test_health_endpoint_checks_the_database_and_the_broker(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_is_503_and_says_which_when_the_broker_is_down(
    client: FlaskClient, dispatcher: RecordingDispatcher
) -> None:
    dispatcher.fail_with = ConnectionError("redis down")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "ok", "broker": "unavailable"}


def test_unknown_webhook_or_api_route_answers_json_404(client: FlaskClient) -> None:
    for path in ("/webhooks/nope", "/api/nope"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json is not None and response.json["error"] == "not found"


def test_unknown_page_for_a_person_is_the_styled_html_404(client: FlaskClient) -> None:
    response = client.get("/nope/deeper?x=1")
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")
    page = response.get_data(as_text=True)
    assert "Not found" in page and "staff.css" in page and "Sign in" in page
    assert response.headers["Cache-Control"] == "no-store"


def test_wrong_method_on_a_webhook_is_json_405(client: FlaskClient) -> None:
    response = client.get("/webhooks/twilio/sms")
    assert response.status_code == 405 and response.json is not None
