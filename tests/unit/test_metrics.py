"""GET /metrics: who may read it, and what it counts (single-process here; the real
stack's multiprocess sum is tests/integration/test_metrics.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.db import session_scope, utcnow
from recovery.domain.templates import SmsTemplates
from recovery.web import create_app
from recovery.web.throttle import SignInThrottle
from tests.support.factories import missed_call
from tests.unit.conftest import RecordingDispatcher
from tests.unit.test_webhooks import DIAL, dial_form, post_twilio


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_metrics_list_every_figure(client: FlaskClient) -> None:
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    names = {name for name, _ in samples(response.data)}
    for name in (
        "recovery_time_to_first_text_seconds_count",
        "recovery_queue_depth",
        "recovery_active_pages",
        "recovery_oldest_active_page_age_seconds",
    ):
        assert name in names, name
    text = response.data.decode()
    for family in (
        "recovery_webhooks_total",
        "recovery_texts_total",
        "recovery_sends_retried_total",
        "recovery_sends_reconciled_total",
        "recovery_duplicate_sids_total",
        "recovery_sweeper_requeues_total",
    ):
        assert f"# TYPE {family} counter" in text, family


def test_webhooks_are_counted_by_route_and_status(client: FlaskClient) -> None:
    key = (
        "recovery_webhooks_total",
        (("endpoint", "/webhooks/twilio/voice/dial-status"), ("status", "200")),
    )
    before = samples(client.get("/metrics").data).get(key, 0.0)

    assert post_twilio(client, DIAL, dial_form()).status_code == 200
    assert post_twilio(client, DIAL, dial_form(), signature="bad").status_code == 403

    after = samples(client.get("/metrics").data)
    assert after[key] == before + 1
    forbidden = (key[0], (("endpoint", "/webhooks/twilio/voice/dial-status"), ("status", "403")))
    assert after[forbidden] >= 1


def test_the_queue_depth_is_read_from_the_database(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with session_scope(sessions) as session:
        for i in range(3):
            missed_call(
                session, templates, at=utcnow() - timedelta(seconds=i), caller=f"+1512555070{i}"
            )

    assert samples(client.get("/metrics").data)[("recovery_queue_depth", ())] == 3


def test_another_machine_is_refused_without_a_token(client: FlaskClient) -> None:
    away = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})

    assert away.status_code == 403 and proxied.status_code == 403
    assert "RECOVERY_METRICS_TOKEN" in away.get_json()["reason"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic c2VjcmV0"])
def test_with_a_token_only_the_token_reads_it(
    settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: RecordingDispatcher,
    throttle: SignInThrottle,
    header: str | None,
) -> None:
    app = create_app(
        settings.model_copy(update={"metrics_token": "s3cret-token"}),
        sessions=sessions,
        dispatcher=dispatcher,
        throttle=throttle,
    )
    client = app.test_client()
    headers = {"Authorization": header} if header else {}

    refused = client.get("/metrics", headers=headers)
    allowed = client.get(
        "/metrics",
        headers={"Authorization": "Bearer s3cret-token", "X-Forwarded-For": "203.0.113.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    )

    assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
    assert allowed.status_code == 200
