"""The Twilio double answers the real twilio client the way api.twilio.com would."""

from __future__ import annotations

import email.utils
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.support.twilio_double import TwilioDouble, sms_segments

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "double-auth-token"
OTHER_ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
FROM = "+15005550006"
TO = "+15558675310"
REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = Path(os.environ.get("TWILIO_API_SPEC", "/work/shared/specs/twilio_api_v2010.json"))


# ---------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def double() -> Iterator[TwilioDouble]:
    with TwilioDouble(ACCOUNT_SID, AUTH_TOKEN) as d:
        yield d
    assert d.server_errors == [], "the double raised while serving"


def make_client(
    double: TwilioDouble,
    username: str = ACCOUNT_SID,
    password: str = AUTH_TOKEN,
    account_sid: str | None = None,
) -> Client:
    # A timeout so that a double that stops answering fails the test instead of hanging it.
    http_client = TwilioHttpClient(timeout=10)
    client = Client(username, password, account_sid=account_sid, http_client=http_client)
    client.api.base_url = double.base_url
    client.edge = None
    client.region = None
    return client


def close_client(client: Client) -> None:
    session = getattr(client.http_client, "session", None)
    if session is not None:
        session.close()


@pytest.fixture
def client(double: TwilioDouble) -> Iterator[Client]:
    c = make_client(double)
    yield c
    close_client(c)


def post_message(
    double: TwilioDouble,
    form: dict[str, Any] | list[tuple[str, str]],
    auth: tuple[str, str] = (ACCOUNT_SID, AUTH_TOKEN),
    account_sid: str = ACCOUNT_SID,
) -> requests.Response:
    url = f"{double.base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"
    return requests.post(url, data=form, auth=auth, timeout=10)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"Twilio OpenAPI spec not found at {SPEC_PATH} (set TWILIO_API_SPEC)")
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def assert_matches_schema(spec: dict[str, Any], schema_name: str, payload: dict[str, Any]):
    """Every property of the schema is present, with the schema's type/pattern/enum/format."""
    properties = spec["components"]["schemas"][schema_name]["properties"]
    assert set(payload) == set(properties), (
        f"missing {sorted(set(properties) - set(payload))}, "
        f"extra {sorted(set(payload) - set(properties))}"
    )
    python_types: dict[str, Any] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "object": dict,
        "array": list,
    }
    for name, raw_schema in properties.items():
        prop = resolve(spec, raw_schema)
        value = payload[name]
        if value is None:
            assert prop.get("nullable") or raw_schema.get("nullable"), f"{name} is not nullable"
            continue
        assert isinstance(value, python_types[prop["type"]]), f"{name}={value!r}"
        if "enum" in prop:
            assert value in prop["enum"], f"{name}={value!r} not in {prop['enum']}"
        if "pattern" in prop:
            assert re.search(prop["pattern"], value), f"{name}={value!r} !~ {prop['pattern']}"
        if "minLength" in prop:
            assert prop["minLength"] <= len(value) <= prop["maxLength"], name
        if prop.get("format") == "date-time-rfc-2822":
            assert email.utils.parsedate_to_datetime(value).utcoffset() is not None, name
        if prop.get("format") == "uri-map":
            assert all(v.startswith("/2010-04-01/Accounts/") for v in value.values()), value


# ---------------------------------------------------------------------- messages: happy path


def test_create_message_returns_instance_and_records_the_request(
    double: TwilioDouble, client: Client
) -> None:
    before = time.time()
    message = client.messages.create(
        to=TO,
        from_=FROM,
        body="Sorry we missed your call - reply here and we'll get back to you.",
        status_callback="https://clinic.example.com/twilio/status",
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.account_sid == ACCOUNT_SID
    assert message.num_segments == "1"
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"
    (recorded,) = double.messages()
    assert recorded.accepted and recorded.auth_ok and recorded.status == 201
    assert recorded.sid == message.sid
    assert recorded.account_sid == ACCOUNT_SID
    assert recorded.form["To"] == TO
    assert recorded.form["From"] == FROM
    assert recorded.form["Body"].startswith("Sorry we missed your call")
    assert recorded.form["StatusCallback"] == "https://clinic.example.com/twilio/status"
    assert before <= recorded.received_at <= time.time()
    assert double.accepted_messages() == [recorded]


def test_long_body_reports_its_segments(client: Client) -> None:
    message = client.messages.create(to=TO, from_=FROM, body="a" * 161)

    assert message.num_segments == "2"


def test_parameters_it_does_not_model_are_accepted_and_recorded(double: TwilioDouble) -> None:
    response = post_message(double, {"To": TO, "From": FROM, "Body": "x", "Colour": "blue"})

    assert response.status_code == 201
    (recorded,) = double.messages()
    assert recorded.form["Colour"] == "blue"


# ---------------------------------------------------------------------- messages: refusals


def test_missing_body_is_21602(double: TwilioDouble, client: Client) -> None:
    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=TO, from_=FROM)

    assert excinfo.value.status == 400
    assert excinfo.value.code == 21602
    (recorded,) = double.messages()
    assert not recorded.accepted and recorded.error_code == 21602
    assert double.accepted_messages() == []


@pytest.mark.parametrize(
    ("form", "code"),
    [
        pytest.param({"From": FROM, "Body": "x"}, 21604, id="no To"),
        pytest.param({"To": "", "From": FROM, "Body": "x"}, 21604, id="empty To"),
        pytest.param({"To": TO, "Body": "x"}, 21603, id="no From"),
        pytest.param({"To": TO, "From": FROM, "Body": ""}, 21602, id="empty Body"),
        pytest.param({"To": TO, "From": FROM, "Body": "a" * 1601}, 21617, id="Body > 1600"),
        pytest.param({"To": "hello", "From": FROM, "Body": "x"}, 21211, id="To not a number"),
        pytest.param({"To": "12345", "From": FROM, "Body": "x"}, 21211, id="To a short code"),
        pytest.param({"To": TO, "From": "+1 555-867-5310", "Body": "x"}, 21266, id="To == From"),
        pytest.param({"To": TO, "From": "not valid!", "Body": "x"}, 21212, id="bad From"),
        pytest.param(
            {"To": TO, "From": FROM, "Body": "x", "StatusCallback": "not a url"},
            21609,
            id="StatusCallback not a URL",
        ),
    ],
)
def test_requests_the_real_api_refuses_are_refused(
    double: TwilioDouble, form: dict[str, Any], code: int
) -> None:
    response = post_message(double, form)

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == code
    assert error["status"] == 400
    assert error["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert error["message"]
    assert double.messages()[0].error_code == code
    assert double.accepted_messages() == []


def test_json_bodies_are_not_read_as_parameters(double: TwilioDouble) -> None:
    url = f"{double.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    response = requests.post(
        url, json={"To": TO, "From": FROM, "Body": "x"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10
    )

    assert response.status_code == 400
    assert response.json()["code"] == 21604


def test_bad_token_is_401(double: TwilioDouble) -> None:
    bad = make_client(double, password="wrong-token")
    try:
        with pytest.raises(TwilioRestException) as excinfo:
            bad.messages.create(to=TO, from_=FROM, body="hi")
    finally:
        close_client(bad)

    assert excinfo.value.status == 401
    assert excinfo.value.code == 20003
    (recorded,) = double.messages()
    assert recorded.auth_ok is False and recorded.status == 401


def test_missing_credentials_are_401_with_a_challenge(double: TwilioDouble) -> None:
    url = f"{double.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    response = requests.post(url, data={"To": TO, "From": FROM, "Body": "x"}, timeout=10)

    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_another_accounts_path_is_20404(double: TwilioDouble) -> None:
    other = make_client(double, account_sid=OTHER_ACCOUNT_SID)
    try:
        with pytest.raises(TwilioRestException) as excinfo:
            other.messages.create(to=TO, from_=FROM, body="hi")
    finally:
        close_client(other)

    assert excinfo.value.status == 404
    assert excinfo.value.code == 20404
    assert double.messages()[0].account_sid == OTHER_ACCOUNT_SID


def test_unknown_paths_are_twilio_404s(double: TwilioDouble) -> None:
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    for url in (
        f"{double.base_url}/",
        f"{double.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Nope.json",
        f"{double.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/SMnope.json",
    ):
        response = requests.get(url, auth=auth, timeout=10)
        assert response.status_code == 404, url
        assert response.json()["code"] == 20404, url


# ---------------------------------------------------------------------- fault injection


def test_fail_next_then_success(double: TwilioDouble, client: Client) -> None:
    double.fail_next(1, 503)

    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=TO, from_=FROM, body="first try")
    message = client.messages.create(to=TO, from_=FROM, body="second try")

    assert excinfo.value.status == 503
    assert excinfo.value.code == 20503
    assert message.sid.startswith("SM")
    assert [r.status for r in double.messages()] == [503, 201]
    assert [r.form["Body"] for r in double.accepted_messages()] == ["second try"]


def test_fail_next_with_code_and_retry_after(double: TwilioDouble) -> None:
    double.fail_next(2, 429, 20429, retry_after=1.5)

    first = post_message(double, {"To": TO, "From": FROM, "Body": "x"})
    second = post_message(double, {"To": TO, "From": FROM, "Body": "x"})
    third = post_message(double, {"To": TO, "From": FROM, "Body": "x"})

    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 201)
    assert first.json()["code"] == 20429
    assert first.json()["more_info"] == "https://www.twilio.com/docs/errors/20429"
    assert first.headers["Retry-After"] == "1.5"


def test_refuse_number(double: TwilioDouble, client: Client) -> None:
    unsubscribed = "+15558675399"
    double.refuse_number(TO)
    double.refuse_number(unsubscribed, code=21610)

    with pytest.raises(TwilioRestException) as invalid:
        client.messages.create(to=TO, from_=FROM, body="hi")
    with pytest.raises(TwilioRestException) as stopped:
        client.messages.create(to=unsubscribed, from_=FROM, body="hi")
    fine = client.messages.create(to="+15558675311", from_=FROM, body="hi")

    assert (invalid.value.status, invalid.value.code) == (400, 21211)
    assert TO in invalid.value.msg
    assert (stopped.value.status, stopped.value.code) == (400, 21610)
    assert "unsubscribed" in stopped.value.msg
    assert fine.sid.startswith("SM")


def test_refuse_number_matches_formatting_variants(double: TwilioDouble) -> None:
    double.refuse_number("+1 (555) 867-5310", code=21614)

    response = post_message(double, {"To": TO, "From": FROM, "Body": "x"})

    assert response.json()["code"] == 21614


def test_reset_clears_recordings_and_injected_failures(
    double: TwilioDouble, client: Client
) -> None:
    client.messages.create(to=TO, from_=FROM, body="before reset")
    double.fail_next(5, 500)
    double.refuse_number(TO)

    double.reset()
    message = client.messages.create(to=TO, from_=FROM, body="after reset")

    assert message.sid.startswith("SM")
    assert [r.form["Body"] for r in double.messages()] == ["after reset"]


# ---------------------------------------------------------------------- timing


def test_delay_is_honoured_for_posts_only(double: TwilioDouble, client: Client) -> None:
    client.messages.create(to=TO, from_=FROM, body="warm up the connection")
    double.set_delay(0.3)

    started = time.monotonic()
    client.messages.create(to=TO, from_=FROM, body="slow")
    post_elapsed = time.monotonic() - started
    started = time.monotonic()
    client.messages.list(to=TO)
    get_elapsed = time.monotonic() - started

    assert post_elapsed >= 0.28
    assert get_elapsed < 0.3


def test_constructor_delay_applies() -> None:
    with TwilioDouble(ACCOUNT_SID, AUTH_TOKEN, delay_s=0.2) as slow:
        started = time.monotonic()
        response = post_message(slow, {"To": TO, "From": FROM, "Body": "x"})
        elapsed = time.monotonic() - started

    assert response.status_code == 201
    assert elapsed >= 0.18


def test_concurrent_requests_are_served_in_parallel(double: TwilioDouble) -> None:
    double.set_delay(0.3)
    clients = [make_client(double) for _ in range(10)]

    def send(i: int) -> str:
        return clients[i].messages.create(to=TO, from_=FROM, body=f"message {i}").sid

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            sids = list(pool.map(send, range(10)))
    finally:
        for c in clients:
            close_client(c)
    elapsed = time.monotonic() - started

    assert len(set(sids)) == 10
    assert elapsed < 1.5, f"10 requests with a 0.3s delay took {elapsed:.2f}s"
    assert len(double.wait_for_messages(10, timeout=1)) == 10


def test_wait_for_messages_times_out_with_what_it_saw(double: TwilioDouble) -> None:
    post_message(double, {"To": TO, "From": FROM})  # refused: no Body

    raised: list[BaseException] = []

    def wait() -> None:
        try:
            double.wait_for_messages(1, timeout=0.3)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            raised.append(exc)

    # In a daemon thread so that a wait that ignores its timeout fails the test, not hangs it.
    waiter = threading.Thread(target=wait, daemon=True)
    started = time.monotonic()
    waiter.start()
    waiter.join(timeout=5)
    elapsed = time.monotonic() - started

    assert not waiter.is_alive(), "wait_for_messages ignored its timeout"
    assert elapsed >= 0.28
    assert len(raised) == 1 and isinstance(raised[0], AssertionError)
    assert "got 0 accepted of 1 received" in str(raised[0])
    assert "21602" in str(raised[0])


def test_wait_for_messages_wakes_when_a_message_arrives(double: TwilioDouble) -> None:
    def send_later() -> None:
        time.sleep(0.2)
        post_message(double, {"To": TO, "From": FROM, "Body": "late"})

    sender = threading.Thread(target=send_later)
    started = time.monotonic()
    sender.start()
    try:
        received = double.wait_for_messages(1, timeout=5)
    finally:
        sender.join()
    elapsed = time.monotonic() - started

    assert [r.form["Body"] for r in received] == ["late"]
    assert elapsed < 2


def test_messages_are_listed_in_arrival_order(double: TwilioDouble) -> None:
    for i in range(5):
        post_message(double, {"To": TO, "From": FROM, "Body": f"m{i}"})

    assert [r.form["Body"] for r in double.messages()] == [f"m{i}" for i in range(5)]
    assert [r.seq for r in double.messages()] == sorted(r.seq for r in double.messages())


# ---------------------------------------------------------------------- list endpoint


def test_list_messages_filters_and_pages(client: Client) -> None:
    other = "+15558675311"
    for body in ("one", "two", "three"):
        client.messages.create(to=TO, from_=FROM, body=body)
    client.messages.create(to=other, from_=FROM, body="elsewhere")

    to_first = client.messages.list(to=TO, page_size=1)
    to_other = client.messages.list(to=other)

    assert [m.body for m in to_first] == ["three", "two", "one"]  # newest first, 3 pages
    assert [m.body for m in to_other] == ["elsewhere"]


def test_list_answers_did_this_text_already_go_out(client: Client) -> None:
    """Reconciliation asks by To, From and the day of the claim, then compares bodies."""
    other_sender = "+15005550007"
    client.messages.create(to=TO, from_=FROM, body="your first text")
    client.messages.create(to=TO, from_=other_sender, body="another clinic's text")
    today = datetime.now(UTC).date()

    ours = client.messages.list(to=TO, from_=FROM, date_sent_after=datetime.now(UTC))
    tomorrow = client.messages.list(to=TO, from_=FROM, date_sent_after=today + timedelta(days=1))

    assert [m.body for m in ours] == ["your first text"]
    assert tomorrow == []


# ---------------------------------------------------------------------- calls


def test_create_call(double: TwilioDouble, client: Client) -> None:
    call = client.calls.create(to=TO, from_=FROM, url="https://clinic.example.com/twiml")

    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert call.status == "queued"
    assert call.to_formatted == "(555) 867-5310"
    (recorded,) = double.calls()
    assert recorded.accepted and recorded.form["Url"] == "https://clinic.example.com/twiml"
    assert double.messages() == []


def test_call_without_instructions_is_refused(double: TwilioDouble, client: Client) -> None:
    with pytest.raises(TwilioRestException) as excinfo:
        client.calls.create(to=TO, from_=FROM)

    assert excinfo.value.status == 400
    assert excinfo.value.code == 21205
    assert double.calls()[0].error_code == 21205


# ---------------------------------------------------------------------- the spec


def test_message_response_has_every_property_of_the_spec_schema(
    double: TwilioDouble, spec: dict[str, Any]
) -> None:
    created = post_message(
        double, {"To": TO, "From": FROM, "Body": "hi", "StatusCallback": "https://e.com/s"}
    )
    assert created.status_code == 201
    listed = requests.get(
        f"{double.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=10,
    )

    assert_matches_schema(spec, "api.v2010.account.message", created.json())
    assert listed.json()["messages"] == [created.json()]


def test_call_response_has_every_property_of_the_spec_schema(
    client: Client, double: TwilioDouble, spec: dict[str, Any]
) -> None:
    client.calls.create(to=TO, from_=FROM, twiml="<Response><Say>hi</Say></Response>")

    assert_matches_schema(spec, "api.v2010.account.call", double.calls()[0].response)


# ---------------------------------------------------------------------- segments, logging


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters cost two septets
        ("€" * 81, 2),
        ("a" * 152 + "€", 1),
        ("a" * 159 + "€", 2),
        ("ç" * 70, 1),  # not GSM-7 (only Ç is): UCS-2
        ("ç" * 71, 2),
        ("ç" * 134, 2),
        ("ç" * 135, 3),
        ("😀" * 35, 1),  # an emoji is two UCS-2 code units
        ("😀" * 36, 2),
    ],
)
def test_sms_segments(body: str, segments: int) -> None:
    assert sms_segments(body) == segments


def test_nothing_is_logged_per_request(
    double: TwilioDouble, client: Client, capfd: pytest.CaptureFixture[str]
) -> None:
    client.messages.create(to=TO, from_=FROM, body="hi")
    post_message(double, {"To": TO}, auth=(ACCOUNT_SID, "wrong"))
    requests.get(f"{double.base_url}/nowhere", timeout=10)

    captured = capfd.readouterr()

    assert captured.err == ""
    assert captured.out == ""


def test_a_bug_in_the_double_is_a_twilio_500_and_is_kept(
    double: TwilioDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(query: str) -> dict[str, Any]:
        raise KeyError("boom")

    monkeypatch.setattr(double, "_list_messages", broken)
    url = f"{double.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"

    response = requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10)

    assert response.status_code == 500
    assert response.json()["code"] == 20500
    (error,) = double.server_errors
    assert "KeyError: 'boom'" in error
    double.reset()  # the fixture asserts no server errors at teardown


def test_stop_closes_the_port() -> None:
    double = TwilioDouble(ACCOUNT_SID, AUTH_TOKEN).start()
    base_url = double.base_url
    double.stop()
    double.stop()  # idempotent

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/", timeout=2)


def test_constructor_rejects_a_malformed_account_sid() -> None:
    with pytest.raises(ValueError, match="account_sid"):
        TwilioDouble("AC123", AUTH_TOKEN)
