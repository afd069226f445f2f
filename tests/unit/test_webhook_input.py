"""Signed but malformed webhooks: 400 (or 413) with a JSON reason, never a 500, never a row.

Each case here answered 500, or stored what it should not, before the payloads were
bounded (issue 14): the signature is right, so only validation stands in the way.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.crypto import PhiCipher, open_payload
from recovery.models import CallEvent, Episode, Message
from recovery.web.security import sign_generic
from tests.conftest import PHI_KEY, VALLEY_SECRET, load_form, twilio_signature
from tests.unit.conftest import PUBLIC_BASE_URL

SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/voice/status"
DIAL = "/webhooks/twilio/voice/dial-status"
GENERIC = "/webhooks/calls/missed"
BOOKINGS = "/webhooks/bookings"


def rows(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (CallEvent, Message, Episode)
        )


def post_twilio(client: FlaskClient, path: str, form: dict[str, str]) -> Any:
    signature = twilio_signature(PUBLIC_BASE_URL + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def post_signed(client: FlaskClient, path: str, body: bytes) -> Any:
    timestamp = str(int(time.time()))
    return client.post(
        path,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Recovery-Timestamp": timestamp,
            "X-Recovery-Signature": sign_generic(VALLEY_SECRET, timestamp, body),
        },
    )


def status_form(**overrides: str) -> dict[str, str]:
    form = load_form("twilio/voice-status-no-answer.form")
    form["Timestamp"] = format_datetime(datetime.now(UTC).replace(microsecond=0))
    form.update(overrides)
    return form


def generic_call(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "call_id": "pbx-input-1",
        "from": "+15125550177",
        "to": "+15125550100",
        "occurred_at": datetime.now(UTC).isoformat(),
        "reason": "no-answer",
    }
    payload.update(overrides)
    return payload


def assert_refused(response: Any, status: int = 400) -> None:
    assert response.status_code == status, response.data[:300]
    assert response.is_json, response.data[:300]
    assert response.json["reason"]


@pytest.mark.parametrize("sender", ["anonymous", "+", "Restricted", "not a number", "+1"])
def test_an_inbound_text_without_a_number_to_answer_is_400_and_stores_nothing(
    client: FlaskClient, sessions: sessionmaker[Session], sender: str
) -> None:
    form = load_form("twilio/sms-inbound.form")
    form["From"] = sender
    response = post_twilio(client, SMS, form)

    assert_refused(response)
    assert "From" in response.json["reason"]
    assert rows(sessions) == (0, 0, 0)


@pytest.mark.parametrize(
    "stamp",
    [
        "{rfc} -0000",  # RFC 2822's "UTC, local zone unknown": parsed naive, stored as UTC
        "{rfc}",  # no zone at all
        "{rfc} +0000",
        "{rfc} GMT",
    ],
)
def test_call_status_timestamps_in_rfc_2822_forms_are_recorded_in_utc(
    client: FlaskClient, sessions: sessionmaker[Session], stamp: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rfc = now.strftime("%a, %d %b %Y %H:%M:%S")
    response = post_twilio(client, STATUS, status_form(Timestamp=stamp.format(rfc=rfc)))

    assert response.status_code == 204, response.data
    with sessions() as session:
        assert session.scalars(select(CallEvent)).one().occurred_at == now


def test_call_status_timestamp_in_iso_8601_is_recorded(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    response = post_twilio(client, STATUS, status_form(Timestamp=now.isoformat()))
    assert response.status_code == 204, response.data
    with sessions() as session:
        assert session.scalars(select(CallEvent)).one().occurred_at == now


@pytest.mark.parametrize(
    "stamp",
    [
        "Mon, 01 Jan 0001 00:00:00 +0000",
        "Fri, 31 Dec 9999 23:59:59 +0000",
        "yesterday-ish",
        "Tue, 03 Nov 2026 14:05:11 +2400",
    ],
)
def test_a_call_status_timestamp_that_is_not_now_or_not_a_date_is_400(
    client: FlaskClient, sessions: sessionmaker[Session], stamp: str
) -> None:
    assert_refused(post_twilio(client, STATUS, status_form(Timestamp=stamp)))
    assert rows(sessions) == (0, 0, 0)


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        (datetime.now(UTC) - timedelta(days=2)).isoformat(),
        (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        "2026-11-03T14:05:12",  # no time zone
    ],
)
def test_a_generic_call_outside_a_day_of_now_is_400_and_not_texted(
    client: FlaskClient, sessions: sessionmaker[Session], occurred_at: str
) -> None:
    body = json.dumps(generic_call(occurred_at=occurred_at)).encode()
    response = post_signed(client, GENERIC, body)
    assert_refused(response)
    assert "occurred_at" in response.json["reason"]
    assert rows(sessions) == (0, 0, 0)


def test_a_generic_call_a_few_hours_late_is_still_texted(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    late = (datetime.now(UTC) - timedelta(hours=20)).isoformat()
    response = post_signed(client, GENERIC, json.dumps(generic_call(occurred_at=late)).encode())
    assert response.status_code == 200, response.data
    assert rows(sessions)[:2] == (1, 1)


@pytest.mark.parametrize("path", [GENERIC, BOOKINGS])
@pytest.mark.parametrize("depth", [5, 100, 10_000])
def test_deeply_nested_json_is_400(
    client: FlaskClient, sessions: sessionmaker[Session], path: str, depth: int
) -> None:
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    payload = json.dumps(generic_call(ref="tok")).encode()[:-1] + b',"extra":' + nested + b"}"
    response = post_signed(client, path, payload)
    assert_refused(response)
    assert "nested" in response.json["reason"]
    assert rows(sessions) == (0, 0, 0)


def test_a_little_nesting_from_a_phone_system_is_accepted(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    extra = {"pbx": {"queue": "front desk [main]", "tags": ["a", "{b}"]}}
    response = post_signed(client, GENERIC, json.dumps(generic_call(extra=extra)).encode())
    assert response.status_code == 200, response.data
    with sessions() as session:
        stored = session.scalars(select(CallEvent)).one().raw_payload
        assert open_payload(PhiCipher([PHI_KEY]), stored)["extra"] == extra  # sealed at rest


@pytest.mark.parametrize("path", [DIAL, STATUS, SMS])
def test_a_5_mb_form_field_is_413_before_anything_is_stored(
    client: FlaskClient, sessions: sessionmaker[Session], path: str
) -> None:
    form = {DIAL: load_form("twilio/voice-dial-action-no-answer.form"), STATUS: status_form()}.get(
        path
    ) or load_form("twilio/sms-inbound.form")
    form["Junk"] = "x" * (5 * 1024 * 1024)
    response = post_twilio(client, path, form)
    assert_refused(response, 413)
    assert "64 KB" in response.json["reason"]
    assert rows(sessions) == (0, 0, 0)


@pytest.mark.parametrize("path", [GENERIC, BOOKINGS])
def test_a_json_body_over_64_kb_is_413(
    client: FlaskClient, sessions: sessionmaker[Session], path: str
) -> None:
    body = json.dumps(generic_call(ref="tok", junk="x" * 70_000)).encode()
    assert_refused(post_signed(client, path, body), 413)
    assert rows(sessions) == (0, 0, 0)


def test_a_junk_field_under_the_body_cap_is_400_not_stored(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/voice-dial-action-no-answer.form")
    form["Junk"] = "x" * 30_000
    response = post_twilio(client, DIAL, form)
    assert_refused(response)
    assert "Junk" in response.json["reason"]
    assert rows(sessions) == (0, 0, 0)


def test_a_text_over_1600_characters_is_400(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/sms-inbound.form")
    form["Body"] = "a" * 1601
    assert_refused(post_twilio(client, SMS, form))
    assert rows(sessions) == (0, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        b'{"call_id":"x","from":"+15125550177","to":"+15125550100","occurred_at":"%s","n":NaN}',
        b'{"call_id":"x","from":"+15125550177","to":"+15125550100","occurred_at":"%s","n":1e999}',
        b'{"call_id":"x","from":"+15125550177","to":"+15125550100","occurred_at":"%s","n":'
        + b"9" * 5000
        + b"}",
        b'{"call_id":"x\\u0000","from":"+15125550177","to":"+15125550100","occurred_at":"%s"}',
        b'{"call_id":"\\ud800","from":"+15125550177","to":"+15125550100","occurred_at":"%s"}',
        b'{"call_id":"x","from":"+15125550177","to":"not a number","occurred_at":"%s"}',
        b'{"call_id":"x","from":"+15125550177","to":"+15125550100","occurred_at":"%s",'
        b'"reason":"' + b"r" * 100 + b'"}',
        b'{"call_id":"' + b"i" * 200 + b'","from":"+1","to":"+15125550100","occurred_at":"%s"}',
    ],
    ids=["nan", "infinity", "5000-digits", "nul", "lone-surrogate", "to", "reason", "long-id"],
)
def test_json_the_database_cannot_store_is_400(
    client: FlaskClient, sessions: sessionmaker[Session], body: bytes
) -> None:
    now = datetime.now(UTC).isoformat().encode()
    assert_refused(post_signed(client, GENERIC, body.replace(b"%s", now)))
    assert rows(sessions) == (0, 0, 0)


def test_a_nul_in_a_twilio_field_is_400(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    form = load_form("twilio/voice-dial-action-no-answer.form")
    form["CallerName"] = "x\x00y"
    assert_refused(post_twilio(client, DIAL, form))
    assert rows(sessions) == (0, 0, 0)


def test_an_oversized_body_is_413_before_its_signature_is_checked(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    # Reading 5 MB to check a signature is the attack; the announced length is enough.
    response = client.post(GENERIC, data=b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert_refused(response, 413)
