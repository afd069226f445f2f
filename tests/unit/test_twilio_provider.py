"""The Twilio provider against a faked HTTP API: what it sends, and how failures are sorted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from recovery.models import MessageStatus
from recovery.sms.base import OutboundSms, SendError
from recovery.sms.twilio import TWILIO_STATUSES, TwilioProvider
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN

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
    return TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=BASE)


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
    provider = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=BASE)
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
    provider = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN)
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

    provider = TwilioProvider("AC" + "0" * 32, "token", api_base_url="http://127.0.0.1:9")
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(provider.client()))
    thread.start()
    thread.join()

    assert provider.client() is provider.client()  # reused within a thread
    assert seen[0] is not provider.client()
    assert seen[0].api.base_url == "http://127.0.0.1:9"  # type: ignore[attr-defined]
