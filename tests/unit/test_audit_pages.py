"""/audit through Flask's test client: a manager uploads a call log and sees its figures,
edits the assumptions, gets clear errors; the file is not kept; who may use it."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from recovery.config import Settings
from recovery.crypto import PhiCipher
from recovery.db import utcnow
from recovery.domain.templates import SmsTemplates
from tests.e2e import scenario
from tests.e2e.scenario import Scenario
from tests.unit.test_staff_pages import audit, sign_in, text_of

MANAGER = "boss@valley.example"
LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "call_logs"


@pytest.fixture
def world(settings: Settings, sessions: sessionmaker[Session], templates: SmsTemplates) -> Scenario:
    built = scenario.build(sessions, templates, PhiCipher.from_settings(settings), utcnow())
    scenario.add_manager(sessions, built.users, MANAGER)
    return built


def _headline(body: str, label: str) -> str:
    found = re.search(
        rf'headline-label">{re.escape(label)}</span>\s*<span class="headline-value">([^<]+)<', body
    )
    assert found is not None, label
    return found.group(1).strip()


def _upload(client: FlaskClient, token: str, name: str, data: bytes, **fields: str) -> object:
    return client.post(
        "/audit",
        data={"csrf_token": token, "log": (io.BytesIO(data), name), **fields},
        content_type="multipart/form-data",
    )


def test_manager_uploads_master_csv_and_sees_the_figures(
    client: FlaskClient,
    world: Scenario,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = sign_in(client, MANAGER)
    page = client.get("/audit")
    assert page.status_code == 200
    nav = text_of(page).split("</nav>")[0]
    assert ">Leak audit<" in nav
    assert 'value="180"' in text_of(page)  # valley-family's visit_value is the default

    caplog.set_level(logging.DEBUG)
    response = _upload(client, token, "Master.csv", LOGS.joinpath("Master.csv").read_bytes())
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = text_of(response)
    # Valley Family (Mon 08-12, 13-17; Fri closed): 4 missed over 1 operating day x 30% x
    # 25% x $180 x 250.
    assert _headline(body, "Annual leak estimate") == "$13,500"
    assert _headline(body, "Missed calls") == "4"
    assert "80% of 5 calls" in body
    assert _headline(body, "Callers never reached") == "2"
    assert _headline(body, "After hours") == "60%"
    assert "line 7: no start time" in body
    assert 'id="chart-heat-title">Missed calls by weekday and hour<' in body
    assert "5125550199" not in body and "0199" not in body  # figures, not callers
    # Nothing of the file in a log line, nor its name.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "5125550199" not in logged and "Master.csv" not in logged
    events = audit(sessions, "audit_calls")
    assert len(events) == 1 and "asterisk; 8 rows; 5 calls" in events[0].detail


def test_the_assumptions_are_editable_without_uploading_again(
    client: FlaskClient, world: Scenario
) -> None:
    token = sign_in(client, MANAGER)
    first = text_of(_upload(client, token, "calls.csv", LOGS.joinpath("Master.csv").read_bytes()))
    signed = re.search(r'name="figures" value="([^"]+)"', first)
    assert signed is not None
    again = client.post(
        "/audit/estimate",
        data={
            "csrf_token": token,
            "figures": signed.group(1),
            "practice": "valley-family",
            "visit_value": "$300",
            "new_patient_share": "50",
            "live_booking_rate": "80%",
            "callback_booking_rate": "40",
            "operating_days": "200",
        },
    )
    assert again.status_code == 200
    # 4 missed / 1 day x 50% x 40 pts x $300 x 200
    assert _headline(text_of(again), "Annual leak estimate") == "$48,000"
    assert 'name="new_patient_share" value="50"' in text_of(again)

    tampered = signed.group(1).replace("a", "b", 1)
    refused = client.post(
        "/audit/estimate",
        data={"csrf_token": token, "figures": tampered, "practice": "valley-family"},
    )
    assert refused.status_code == 400


def test_impossible_assumption_is_named(client: FlaskClient, world: Scenario) -> None:
    token = sign_in(client, MANAGER)
    response = _upload(
        client,
        token,
        "calls.csv",
        LOGS.joinpath("simple.csv").read_bytes(),
        callback_booking_rate="90",
    )
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "Booked when called back is above Booked when answered live" in text_of(response)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"name,email\nJane,jane@example.com\n", "not a call log we can read"),
        (b"%PDF-1.7\n\x00\x01\xff binary", "not a call log we can read"),
        (b"", "The file is empty"),
    ],
)
def test_a_file_that_is_not_a_call_log_gets_a_clear_message(
    client: FlaskClient, world: Scenario, data: bytes, expected: str
) -> None:
    token = sign_in(client, MANAGER)
    response = _upload(client, token, "export.csv", data)
    assert response.status_code == 400  # type: ignore[attr-defined]
    body = text_of(response)
    assert expected in body and "time,from,to,status,duration" in body
    assert 'role="alert"' in body


def test_no_file_chosen(client: FlaskClient, world: Scenario) -> None:
    token = sign_in(client, MANAGER)
    response = client.post("/audit", data={"csrf_token": token})
    assert response.status_code == 400
    assert "Choose your phone system's call-log file" in text_of(response)


def test_an_upload_over_the_cap_is_refused_before_it_is_read(
    client: FlaskClient, world: Scenario, settings: Settings
) -> None:
    token = sign_in(client, MANAGER)
    settings.audit_max_mb = 1
    big = b"time,from,to,status,duration\n" + b"2026-11-02 08:05:00,5125550199,1,busy,0\n" * 30_000
    assert len(big) > 1024 * 1024
    # Encoded here, in memory: the test client would spool a body this big to a temporary
    # file, which a request refused before reading it never closes.
    boundary, body = encode_multipart(
        {"csrf_token": token, "log": FileStorage(io.BytesIO(big), "big.csv")}
    )
    response = client.post(
        "/audit", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    assert "over 1 MB" in text_of(response)


def test_front_desk_may_not_audit(client: FlaskClient, world: Scenario) -> None:
    token = sign_in(client, world.users.desk)
    assert client.get("/audit").status_code == 403
    response = _upload(client, token, "calls.csv", LOGS.joinpath("simple.csv").read_bytes())
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert ">Leak audit<" not in text_of(client.get("/tasks")).split("</nav>")[0]


def test_signed_out_goes_to_sign_in(client: FlaskClient, world: Scenario) -> None:
    response = client.get("/audit")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_admin_audits_for_a_practice_they_choose(client: FlaskClient, world: Scenario) -> None:
    token = sign_in(client, world.users.admin)
    page = text_of(client.get("/audit"))
    assert 'name="practice"' in page
    response = _upload(
        client,
        token,
        "twilio.csv",
        LOGS.joinpath("twilio-call-log.csv").read_bytes(),
        practice="always-open",
        visit_value="100",
    )
    body = text_of(response)
    assert response.status_code == 200, body  # type: ignore[attr-defined]
    assert "America/New_York" in body
    assert _headline(body, "After hours") == "0%"  # open around the clock
    assert _headline(body, "Missed calls") == "2"


def test_the_operating_days_hint_counts_the_practices_own_week(
    client: FlaskClient, world: Scenario
) -> None:
    sign_in(client, MANAGER)
    # Valley Family opens Mondays and Tuesdays: the default of 250 days is then a guess to
    # check, and the page says so beside it.
    assert "Valley Family Clinic opens 2 days a week: about 104 a year." in text_of(
        client.get("/audit")
    )
