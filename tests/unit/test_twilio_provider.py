"""The Twilio provider against a faked HTTP API: what it sends, and how failures are sorted."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from recovery.models import MessageStatus
from recovery.sms.base import OutboundCall, OutboundSms, SendError
from recovery.sms.twilio import CALL_STATUSES, TWILIO_STATUSES, TwilioProvider
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.twilio_double import TwilioDouble

BASE = "http://127.0.0.1:9/x"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
ANY_URL = re.compile(".*")
SMS = OutboundSms(
    from_number="+15125550100",
    to_number="+15125550199",
    body="Valley Family Clinic: sorry we missed your call!",
    status_callback="https://recovery.example.com/webhooks/twilio/sms/status",
)


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> TwilioProvider:
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    return TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=BASE, timeout_s=5.0)


def created(sid: str = "SM" + "a" * 32) -> dict[str, Any]:
    return {"sid": sid, "status": "queued", "account_sid": ACCOUNT_SID}


def form_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


def test_send_returns_the_sid_and_posts_to_from_body_and_status_callback(
    http: responses.RequestsMock, provider: TwilioProvider
) -> None:
    http.add(responses.POST, BASE + MESSAGES_PATH, json=created("SM" + "1" * 32), status=201)

    result = provider.send(SMS)

    assert result.provider_sid == "SM" + "1" * 32
    [call] = http.calls
    assert form_of(call) == {
        "To": [SMS.to_number],
        "From": [SMS.from_number],
        "Body": [SMS.body],
        "StatusCallback": [SMS.status_callback],
    }


def test_send_without_a_status_callback_posts_none(
    http: responses.RequestsMock, provider: TwilioProvider
) -> None:
    http.add(responses.POST, BASE + MESSAGES_PATH, json=created(), status=201)

    provider.send(OutboundSms(SMS.from_number, SMS.to_number, SMS.body))

    assert "StatusCallback" not in form_of(http.calls[0])


def test_api_base_url_wins_over_edge_and_region_from_the_environment(
    http: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    provider = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=BASE, timeout_s=5.0)
    http.add(responses.POST, ANY_URL, json=created(), status=201)

    provider.send(SMS)

    url = urlsplit(http.calls[0].request.url)
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:9", "/x" + MESSAGES_PATH)


def test_without_a_base_url_edge_and_region_pick_the_twilio_host(
    http: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The contrast to the test above: this is the rewrite a base URL must switch off.
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    provider = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, timeout_s=5.0)
    http.add(responses.POST, ANY_URL, json=created(), status=201)

    provider.send(SMS)

    assert urlsplit(http.calls[0].request.url).netloc == "api.sydney.au1.twilio.com"


def twilio_error(code: int, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": f"error {code}",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 21211), (400, 21614), (400, 21610), (400, 21408)],
)
def test_errors_no_retry_can_fix_are_permanent(
    http: responses.RequestsMock, provider: TwilioProvider, status: int, code: int
) -> None:
    http.add(responses.POST, ANY_URL, json=twilio_error(code, status), status=status)

    with pytest.raises(SendError) as excinfo:
        provider.send(SMS)

    assert excinfo.value.permanent is True
    assert excinfo.value.code == code


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, 20429), (503, 20503), (500, 20500), (401, 20003), (403, 20003)],
)
def test_rate_limits_outages_and_credentials_are_retried(
    http: responses.RequestsMock, provider: TwilioProvider, status: int, code: int
) -> None:
    http.add(responses.POST, ANY_URL, json=twilio_error(code, status), status=status)

    with pytest.raises(SendError) as excinfo:
        provider.send(SMS)

    assert excinfo.value.permanent is False
    assert excinfo.value.code == code


def test_a_503_without_a_json_body_is_retried(
    http: responses.RequestsMock, provider: TwilioProvider
) -> None:
    http.add(responses.POST, ANY_URL, body="Service Unavailable", status=503)

    with pytest.raises(SendError) as excinfo:
        provider.send(SMS)

    assert excinfo.value.permanent is False


def test_other_client_errors_are_permanent(
    http: responses.RequestsMock, provider: TwilioProvider
) -> None:
    # A request Twilio refuses as malformed fails the same way every time.
    http.add(responses.POST, ANY_URL, json=twilio_error(21604, 400), status=400)

    with pytest.raises(SendError) as excinfo:
        provider.send(SMS)

    assert excinfo.value.permanent is True
    assert excinfo.value.code == 21604


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("connection refused"), requests.Timeout("read timeout")]
)
def test_unreachable_twilio_is_retried(
    http: responses.RequestsMock, provider: TwilioProvider, failure: Exception
) -> None:
    http.add(responses.POST, ANY_URL, body=failure)

    with pytest.raises(SendError) as excinfo:
        provider.send(SMS)

    assert excinfo.value.permanent is False
    assert excinfo.value.code is None


def test_every_twilio_message_status_maps_to_one_of_ours() -> None:
    twilio_values = {
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "accepted",
        "scheduled",
        "read",
        "canceled",
    }

    assert set(TWILIO_STATUSES) == twilio_values
    assert TWILIO_STATUSES["queued"] is MessageStatus.ACCEPTED
    assert TWILIO_STATUSES["sent"] is MessageStatus.SENT
    assert TWILIO_STATUSES["delivered"] is MessageStatus.DELIVERED
    assert TWILIO_STATUSES["read"] is MessageStatus.DELIVERED
    assert TWILIO_STATUSES["undelivered"] is MessageStatus.UNDELIVERED
    assert TWILIO_STATUSES["failed"] is MessageStatus.FAILED
    assert TWILIO_STATUSES["canceled"] is MessageStatus.FAILED


def test_each_thread_gets_its_own_client_because_twilios_is_not_thread_safe() -> None:
    import threading

    from recovery.sms.twilio import TwilioProvider

    provider = TwilioProvider(
        "AC" + "0" * 32, "token", api_base_url="http://127.0.0.1:9", timeout_s=5.0
    )
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(provider.client()))
    thread.start()
    thread.join()

    assert provider.client() is provider.client()  # reused within a thread
    assert seen[0] is not provider.client()
    assert seen[0].api.base_url == "http://127.0.0.1:9"  # type: ignore[attr-defined]


# --- in doubt, and asking Twilio what it sent (against the loopback double) -------------


@pytest.fixture
def double() -> Iterator[TwilioDouble]:
    with TwilioDouble(ACCOUNT_SID, AUTH_TOKEN) as running:
        yield running


def on(double: TwilioDouble, timeout_s: float = 5.0) -> TwilioProvider:
    return TwilioProvider(
        ACCOUNT_SID, AUTH_TOKEN, api_base_url=double.base_url, timeout_s=timeout_s
    )


def test_a_read_timeout_is_in_doubt_and_the_text_is_found_in_twilios_list(
    double: TwilioDouble,
) -> None:
    provider = on(double, timeout_s=0.3)
    since = datetime.now(UTC) - timedelta(seconds=1)
    double.set_delay(0.6)  # Twilio sends it, but after we stopped waiting
    with pytest.raises(SendError) as raised:
        provider.send(SMS)
    assert raised.value.in_doubt and not raised.value.permanent
    double.wait_for_messages(1)
    double.set_delay(0)

    [found] = provider.find_sent(SMS.from_number, SMS.to_number, since)
    assert found.body == SMS.body
    assert found.provider_sid == double.accepted_messages()[0].sid
    # Another pair of numbers, or a time after it, finds nothing.
    assert provider.find_sent(SMS.from_number, "+15125550177", since) == []
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert provider.find_sent(SMS.from_number, SMS.to_number, later) == []


def test_a_refused_connection_is_not_in_doubt() -> None:
    provider = TwilioProvider(
        ACCOUNT_SID, AUTH_TOKEN, api_base_url="http://127.0.0.1:9", timeout_s=1.0
    )
    with pytest.raises(SendError) as raised:
        provider.send(SMS)
    assert not raised.value.in_doubt


@pytest.mark.parametrize(("status", "in_doubt"), [(500, True), (503, True), (429, False)])
def test_a_5xx_may_have_sent_the_text_a_429_did_not(
    double: TwilioDouble, status: int, in_doubt: bool
) -> None:
    double.fail_next(1, status=status)
    with pytest.raises(SendError) as raised:
        on(double).send(SMS)
    assert raised.value.in_doubt is in_doubt


def test_twilio_unreachable_for_the_lookup_is_a_retry_not_an_answer() -> None:
    provider = TwilioProvider(
        ACCOUNT_SID, AUTH_TOKEN, api_base_url="http://127.0.0.1:9", timeout_s=1.0
    )
    with pytest.raises(SendError) as raised:
        provider.find_sent(SMS.from_number, SMS.to_number, datetime.now(UTC))
    assert not raised.value.permanent


# --- voice pages: a call placed, and found again in Twilio's call list -------------------

CALL = OutboundCall(
    from_number="+15125550100",
    to_number="+15125550111",
    twiml_url="https://recovery.example.com/webhooks/twilio/voice/page?message_id=7",
    words="This is Valley Family Clinic with an urgent page. Press 1 to take it.",
    status_callback="https://recovery.example.com/webhooks/twilio/voice/page/status?message_id=7",
)


def test_a_call_posts_to_from_the_twiml_url_and_its_status_callback(double: TwilioDouble) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    placed = on(double).call(CALL)

    [recorded] = double.accepted_calls()
    assert placed.provider_sid == recorded.sid
    assert recorded.form["To"] == CALL.to_number and recorded.form["From"] == CALL.from_number
    assert recorded.form["Url"] == CALL.twiml_url and recorded.form["Method"] == "POST"
    assert recorded.form["StatusCallback"] == CALL.status_callback
    assert double.messages() == []  # a call, not a text
    [found] = on(double).find_calls(CALL.from_number, CALL.to_number, since)
    assert found.provider_sid == placed.provider_sid
    assert on(double).find_calls(CALL.from_number, "+15125550112", since) == []
    assert on(double).find_sent(CALL.from_number, CALL.to_number, since) == []


def test_a_call_to_an_invalid_number_is_permanent(double: TwilioDouble) -> None:
    with pytest.raises(SendError) as raised:
        on(double).call(dataclasses.replace(CALL, to_number="12"))
    assert raised.value.permanent and raised.value.code == 21211


def test_a_call_twilio_never_answered_is_in_doubt_and_found_in_its_call_list(
    double: TwilioDouble,
) -> None:
    provider = on(double, timeout_s=0.3)
    since = datetime.now(UTC) - timedelta(seconds=1)
    double.set_delay(0.6)
    with pytest.raises(SendError) as raised:
        provider.call(CALL)
    assert raised.value.in_doubt and not raised.value.permanent
    double.wait_for_calls(1)
    double.set_delay(0)
    [found] = provider.find_calls(CALL.from_number, CALL.to_number, since)
    assert found.provider_sid == double.accepted_calls()[0].sid


def test_every_final_call_status_maps_to_a_message_state() -> None:
    assert CALL_STATUSES["completed"] is MessageStatus.DELIVERED
    assert {CALL_STATUSES[s] for s in ("busy", "no-answer")} == {MessageStatus.UNDELIVERED}
    assert {CALL_STATUSES[s] for s in ("failed", "canceled")} == {MessageStatus.FAILED}
