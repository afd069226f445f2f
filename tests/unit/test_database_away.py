"""A webhook while the database is away (restarting, failing over): it waits for it,
bounded, instead of failing, since Twilio does not retry a 5xx and a missed call lost is a
patient never texted; past the wait, a 503 that says so. The real restarts are in
tests/faults/test_postgres.py."""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.config import Settings
from recovery.models import CallEvent, Message
from recovery.web import create_app
from recovery.web.throttle import SignInThrottle
from tests.support.database_away import database_away
from tests.unit.conftest import RecordingDispatcher
from tests.unit.test_webhooks import DIAL, dial_form, post_twilio


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _engine(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    return sessions.kw["bind"]


def test_a_missed_call_while_the_database_restarts_waits_for_it_and_is_texted(
    app: Flask, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher
) -> None:
    with database_away(_engine(sessions), times=4) as refused:
        response = post_twilio(app.test_client(), DIAL, dial_form())

    assert refused == [4]
    assert response.status_code == 200, response.text
    assert "send you a text" in response.text
    assert _count(sessions, CallEvent) == 1
    assert len(dispatcher.sent) == 1


def test_past_the_wait_a_webhook_answers_503_with_retry_after_and_nothing_is_half_done(
    settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: RecordingDispatcher,
    throttle: SignInThrottle,
) -> None:
    short = settings.model_copy(update={"database_wait_s": 0.3})
    client = create_app(short, sessions=sessions, dispatcher=dispatcher, throttle=throttle)
    client = client.test_client()
    began = time.monotonic()
    with database_away(_engine(sessions)):
        response = post_twilio(client, DIAL, dial_form())
    waited = time.monotonic() - began

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json == {
        "error": "service unavailable",
        "reason": "the database is unavailable; try again in a moment",
    }
    # It waited its 0.3 s, not the default 8 (the bound is loose for a busy machine).
    assert 0.2 < waited < 6.0
    assert _count(sessions, CallEvent) == 0
    assert dispatcher.sent == []
    # The provider's retry, once it is back, is the call's one record and one text.
    assert post_twilio(client, DIAL, dial_form()).status_code == 200
    assert _count(sessions, CallEvent) == 1
    assert _count(sessions, Message) == 1
    assert len(dispatcher.sent) == 1


def test_a_page_while_the_database_is_away_is_a_503_page_not_a_500(
    settings: Settings,
    sessions: sessionmaker[Session],
    dispatcher: RecordingDispatcher,
    throttle: SignInThrottle,
) -> None:
    app = create_app(settings, sessions=sessions, dispatcher=dispatcher, throttle=throttle)
    with database_away(_engine(sessions)):
        # A patient tapping their booking link: an HTML page, and no waiting.
        response = app.test_client().get("/b/some-token")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "text/html" in response.content_type
    assert "try again in a moment" in response.text


def test_every_webhook_waits_for_the_database(app: Flask) -> None:
    webhooks = {
        rule.endpoint: app.view_functions[rule.endpoint]
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/webhooks/")
    }

    assert len(webhooks) >= 9
    assert [
        name for name, view in webhooks.items() if not getattr(view, "waits_for_the_database", 0)
    ] == []
