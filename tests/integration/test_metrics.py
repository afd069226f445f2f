"""GET /metrics on the real stack: gunicorn's processes and the Celery worker count in
their own processes, and one scrape adds them up (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import dial_form, post_twilio, settle
from tests.support.stack import Stack
from tests.support.twilio_double import TwilioDouble

pytestmark = pytest.mark.integration

DIAL = "/webhooks/twilio/voice/dial-status"


def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(stack.base_url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_one_scrape_counts_the_webhook_in_gunicorn_and_the_send_in_the_worker(
    stack: Stack, twilio: TwilioDouble
) -> None:
    before = scrape(stack)
    ttft = ("recovery_time_to_first_text_seconds_count", ())
    accepted = ("recovery_texts_total", (("status", "accepted"),))
    webhook = (
        "recovery_webhooks_total",
        (("endpoint", DIAL), ("status", "200")),
    )

    assert post_twilio(stack, DIAL, dial_form()).status_code == 200
    settle(twilio, 1)

    deadline = time.monotonic() + 10
    while True:
        after = scrape(stack)
        if after.get(ttft, 0) > before.get(ttft, 0) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after[ttft] == before.get(ttft, 0) + 1  # observed in the worker's process
    assert after[accepted] == before.get(accepted, 0) + 1
    assert after[webhook] == before.get(webhook, 0) + 1  # counted in a gunicorn worker
    assert after[("recovery_queue_depth", ())] == 0
    assert after[("recovery_active_pages", ())] == 0
