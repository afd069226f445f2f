"""Voice pages: from round 1 a page also rings; pressing 1 on the call takes the page the
way "ACK <code>" does, once; the call goes through the same outbox as a text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope, utcnow
from recovery.domain.messages import DeliveryOutcome, MessageKind
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    Episode,
    EpisodeOutcome,
    Message,
    MessageStatus,
    OptOut,
    Page,
    PageStatus,
)
from recovery.services.outreach import CallWebhooks, deliver
from recovery.sms.base import (
    OutboundCall,
    OutboundSms,
    PlacedCall,
    SendError,
    SendResult,
    SentText,
)
from tests.conftest import twilio_signature, unique_sid
from tests.unit.conftest import PUBLIC_BASE_URL, RecordingDispatcher
from tests.unit.test_outreach import POLICY, Clock
from tests.unit.test_paging import (
    CALLER,
    LEE,
    MAIN_LINE,
    RIVERA,
    T0,
    TIMEOUT,
    ack,
    callees,
    practice,
    recipients,
    start,
    sweep,
    texts,
)

VOICE_PAGE = "/webhooks/twilio/voice/page"
VOICE_STATUS = "/webhooks/twilio/voice/page/status"
HOOKS = CallWebhooks(twiml=PUBLIC_BASE_URL + VOICE_PAGE, status=PUBLIC_BASE_URL + VOICE_STATUS)


def round_one(sessions: sessionmaker[Session], templates: SmsTemplates) -> tuple[Page, list[int]]:
    """A page nobody took in round 0 (Rivera, then Lee): round 1 texts and calls both."""
    page, _ = start(sessions, templates)
    sweep(sessions, templates, T0 + TIMEOUT)
    return page, sweep(sessions, templates, T0 + 2 * TIMEOUT)


def call_to(sessions: sessionmaker[Session], ids: list[int], number: str) -> Message:
    [call] = [
        m for m in texts(sessions, ids) if m.kind is MessageKind.PAGE_CALL and m.to_number == number
    ]
    return call


def count_messages(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


# --- the chain rings from round 1 --------------------------------------------------------


def test_round_zero_texts_only_and_round_one_also_calls_everyone_from_the_main_line(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    _, first = start(sessions, templates)
    second = sweep(sessions, templates, T0 + TIMEOUT)
    assert callees(sessions, first) == callees(sessions, second) == []

    third = sweep(sessions, templates, T0 + 2 * TIMEOUT)
    assert sorted(callees(sessions, third)) == sorted([RIVERA, LEE])
    assert sorted(recipients(sessions, third)) == sorted([RIVERA, LEE])
    calls = [m for m in texts(sessions, third) if m.kind is MessageKind.PAGE_CALL]
    for call in calls:
        assert call.from_number == MAIN_LINE
        assert call.status is MessageStatus.PENDING  # into the outbox like a text
        # What the call says: the practice and "press 1", nothing about the patient.
        assert call.body == (
            "This is Valley Family Clinic with an urgent page: a patient needs a clinician "
            "now. Press 1 to take it."
        )
        assert CALLER not in call.body


def test_every_later_round_rings_again(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    round_one(sessions, templates)
    again = sweep(sessions, templates, T0 + 3 * TIMEOUT)
    assert sorted(callees(sessions, again)) == sorted([RIVERA, LEE])


# --- a call through deliver() ------------------------------------------------------------


class CallingProvider:
    """Places calls; `remote` is what the provider holds (its call list)."""

    name = "fake"

    def __init__(self, *errors: SendError) -> None:
        self.calls: list[OutboundCall] = []
        self.sent: list[OutboundSms] = []
        self.errors = list(errors)
        self.remote: list[PlacedCall] = []
        self.call_lookups = 0

    def send(self, sms: OutboundSms) -> SendResult:
        self.sent.append(sms)
        return SendResult(f"SM{len(self.sent):032d}")

    def find_sent(self, from_number: str, to_number: str, since: object) -> list[SentText]:
        raise AssertionError("a call is looked for among calls, not texts")

    def call(self, call: OutboundCall) -> SendResult:
        self.calls.append(call)
        sid = f"CA{len(self.calls):032d}"
        error = self.errors.pop(0) if self.errors else None
        if error is None or error.in_doubt:
            self.remote.append(PlacedCall(sid, T0))
        if error is not None:
            raise error
        return SendResult(sid)

    def find_calls(self, from_number: str, to_number: str, since: object) -> list[PlacedCall]:
        self.call_lookups += 1
        return list(reversed(self.remote))


def test_a_call_is_placed_once_with_our_webhook_and_its_message_id(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    _, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)
    provider = CallingProvider()
    clock = Clock(T0 + 2 * TIMEOUT)

    first = deliver(
        sessions,
        provider,
        call.id,
        status_callback=None,
        policy=POLICY,
        clock=clock,
        call_webhooks=HOOKS,
    )
    again = deliver(
        sessions,
        provider,
        call.id,
        status_callback=None,
        policy=POLICY,
        clock=clock,
        call_webhooks=HOOKS,
    )

    assert (first.status, again.status) == (DeliveryOutcome.ACCEPTED, DeliveryOutcome.NOT_CLAIMED)
    [placed] = provider.calls
    assert provider.sent == []
    assert (placed.from_number, placed.to_number) == (MAIN_LINE, RIVERA)
    assert placed.twiml_url == f"{PUBLIC_BASE_URL}{VOICE_PAGE}?message_id={call.id}"
    assert placed.status_callback == f"{PUBLIC_BASE_URL}{VOICE_STATUS}?message_id={call.id}"
    assert placed.words == call.body
    with sessions() as session:
        stored = session.get(Message, call.id)
        assert stored is not None
        assert stored.status is MessageStatus.ACCEPTED
        assert stored.provider_sid == "CA" + "1".zfill(32)


def test_a_clinician_who_texted_stop_is_still_called(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    _, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)
    with session_scope(sessions) as session:
        session.add(OptOut(practice_id=practice(session).id, phone=RIVERA, opted_out_at=T0))
    provider = CallingProvider()

    result = deliver(
        sessions,
        provider,
        call.id,
        status_callback=None,
        policy=POLICY,
        clock=Clock(T0 + 2 * TIMEOUT),
        call_webhooks=HOOKS,
    )

    assert result.status == DeliveryOutcome.ACCEPTED
    assert len(provider.calls) == 1


def test_a_call_in_doubt_is_looked_for_in_the_providers_calls_not_placed_again(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    _, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)
    provider = CallingProvider(SendError("read timeout", permanent=False, in_doubt=True))
    clock = Clock(T0 + 2 * TIMEOUT)

    first = deliver(
        sessions,
        provider,
        call.id,
        status_callback=None,
        policy=POLICY,
        clock=clock,
        call_webhooks=HOOKS,
    )
    clock.advance(60)
    second = deliver(
        sessions,
        provider,
        call.id,
        status_callback=None,
        policy=POLICY,
        clock=clock,
        call_webhooks=HOOKS,
    )

    assert (first.status, second.status) == (DeliveryOutcome.RETRY, DeliveryOutcome.RECONCILED)
    assert len(provider.calls) == 1 and provider.call_lookups == 1
    with sessions() as session:
        stored = session.get(Message, call.id)
        assert stored is not None and stored.provider_sid == provider.remote[0].provider_sid


# --- the call's webhook: say the page, take it on 1 --------------------------------------


def post_call(
    client: FlaskClient,
    message_id: int | str | None,
    digits: str | None = None,
    *,
    path: str = VOICE_PAGE,
    signature: str | None = None,
    **extra: str,
):  # type: ignore[no-untyped-def]
    form = {
        "CallSid": unique_sid("CA", f"{message_id}"),
        "From": MAIN_LINE,
        "To": RIVERA,
        "CallStatus": "in-progress",
        **extra,
    }
    if digits is not None:
        form["Digits"] = digits
    url = path if message_id is None else f"{path}?message_id={message_id}"
    headers = {"X-Twilio-Signature": signature or twilio_signature(PUBLIC_BASE_URL + url, form)}
    return client.post(url, data=form, headers=headers)


def load(sessions: sessionmaker[Session], page_id: int) -> Page:
    with sessions() as session:
        page = session.get(Page, page_id)
        assert page is not None
        return page


def test_an_answered_call_says_the_page_and_waits_for_one_digit(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)

    response = post_call(client, call.id)

    assert response.status_code == 200 and response.mimetype == "text/xml"
    xml = response.get_data(as_text=True)
    assert '<Gather action="' in xml and 'numDigits="1"' in xml
    assert f"{VOICE_PAGE}?message_id={call.id}" in xml
    assert "urgent page" in xml and "Press 1 to take it" in xml
    assert CALLER not in xml
    assert load(sessions, page.id).status is PageStatus.ACTIVE  # answering is not taking


def test_pressing_1_takes_the_page_as_an_ack_does_and_a_second_press_changes_nothing(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    dispatcher: RecordingDispatcher,
) -> None:
    page, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)

    taken = post_call(client, call.id, "1")

    assert taken.status_code == 200
    assert "You have the page" in taken.get_data(as_text=True)
    stored = load(sessions, page.id)
    assert stored.status is PageStatus.ACKNOWLEDGED
    assert stored.acknowledged_by == "Dr. Rivera"
    assert stored.next_escalation_at is None
    with sessions() as session:
        episode = session.get(Episode, page.episode_id)
        assert episode is not None and episode.outcome is EpisodeOutcome.ESCALATED
        [confirmation] = session.scalars(
            select(Message).where(Message.kind == MessageKind.PAGE_ACK)
        ).all()
    # The same confirmation text as "ACK <code>", to the clinician called, dispatched.
    assert confirmation.to_number == RIVERA and f"page {page.code} is yours" in confirmation.body
    assert dispatcher.sent == [confirmation.id]

    before = count_messages(sessions)
    again = post_call(client, call.id, "1")
    assert "already taken by Dr. Rivera" in again.get_data(as_text=True)
    assert count_messages(sessions) == before
    assert load(sessions, page.id).acknowledged_at == stored.acknowledged_at
    assert dispatcher.sent == [confirmation.id]
    assert sweep(sessions, templates, T0 + 10 * TIMEOUT) == []  # the chain stopped


def test_pressing_1_after_a_texted_ack_changes_nothing(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    dispatcher: RecordingDispatcher,
) -> None:
    page, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)
    ack(sessions, templates, LEE, page.code, T0 + 2 * TIMEOUT + timedelta(seconds=30))
    before = count_messages(sessions)

    response = post_call(client, call.id, "1")

    assert "already taken by Nurse Lee" in response.get_data(as_text=True)
    assert load(sessions, page.id).acknowledged_by == "Nurse Lee"
    assert count_messages(sessions) == before and dispatcher.sent == []
    # Answering the call after that says so at once, no prompt.
    assert "<Gather" not in post_call(client, call.id).get_data(as_text=True)


def test_another_key_says_the_page_again_and_takes_nothing(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)

    response = post_call(client, call.id, "9")

    assert "<Gather" in response.get_data(as_text=True)
    assert load(sessions, page.id).status is PageStatus.ACTIVE


def test_a_bad_signature_is_403_and_takes_nothing(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)
    before = count_messages(sessions)

    response = post_call(client, call.id, "1", signature="bm90IGEgc2lnbmF0dXJl")

    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    assert load(sessions, page.id).status is PageStatus.ACTIVE
    assert count_messages(sessions) == before


@pytest.mark.parametrize(
    ("message_id", "extra", "field"),
    [
        (None, {}, "message_id"),
        ("seven", {}, "message_id"),
        ("0", {}, "message_id"),
        ("1", {"CallSid": "not-a-sid"}, "CallSid"),
    ],
)
def test_a_malformed_request_is_400_with_a_reason_and_takes_nothing(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    message_id: str | None,
    extra: dict[str, str],
    field: str,
) -> None:
    page, _ = round_one(sessions, templates)

    response = post_call(client, message_id, "1", **extra)

    assert response.status_code == 400
    assert field in response.get_json()["reason"]
    assert load(sessions, page.id).status is PageStatus.ACTIVE


def test_a_call_id_that_is_no_page_call_of_ours_says_goodbye_and_takes_nothing(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, ids = round_one(sessions, templates)
    text = next(m for m in texts(sessions, ids) if m.kind is MessageKind.PAGE)

    for message_id in (text.id, 99999):
        response = post_call(client, message_id, "1")
        assert response.status_code == 200
        assert "no longer open" in response.get_data(as_text=True)
    assert load(sessions, page.id).status is PageStatus.ACTIVE


# --- how the call ended ------------------------------------------------------------------


def test_calls_nobody_answered_and_texts_that_failed_escalate_at_once(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, ids = round_one(sessions, templates)
    with session_scope(sessions) as session:
        for message in session.scalars(select(Message).where(Message.id.in_(ids))):
            message.status = MessageStatus.ACCEPTED
            message.provider_sid = unique_sid(
                "SM" if message.kind == "page" else "CA", str(message.id)
            )
            if message.kind is MessageKind.PAGE:
                message.status = MessageStatus.UNDELIVERED
        # The webhook runs on the wall clock: the next round is an hour from it.
        session.get(Page, page.id).next_escalation_at = utcnow() + timedelta(hours=1)  # type: ignore[union-attr]
    calls = [m for m in texts(sessions, ids) if m.kind is MessageKind.PAGE_CALL]

    first = post_call(
        client,
        calls[0].id,
        path=VOICE_STATUS,
        CallSid=calls[0].provider_sid or "",
        CallStatus="no-answer",
    )
    assert first.status_code == 204
    assert load(sessions, page.id).next_escalation_at > utcnow()  # type: ignore[operator]
    post_call(
        client,
        calls[1].id,
        path=VOICE_STATUS,
        CallSid=calls[1].provider_sid or "",
        CallStatus="busy",
    )

    with sessions() as session:
        statuses = {
            m.status
            for m in session.scalars(select(Message).where(Message.id.in_([c.id for c in calls])))
        }
    assert statuses == {MessageStatus.UNDELIVERED}
    # Nothing of round 1 got through: round 2 is due now, not in an hour.
    assert load(sessions, page.id).next_escalation_at <= utcnow()  # type: ignore[operator]


def test_a_call_answered_is_delivered_and_escalates_nothing(
    client: FlaskClient, sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, ids = round_one(sessions, templates)
    call = call_to(sessions, ids, RIVERA)
    sid = unique_sid("CA", "answered")
    with session_scope(sessions) as session:
        stored = session.get(Message, call.id)
        assert stored is not None
        stored.status, stored.provider_sid = MessageStatus.ACCEPTED, sid

    ringing = post_call(client, call.id, path=VOICE_STATUS, CallSid=sid, CallStatus="ringing")
    done = post_call(client, call.id, path=VOICE_STATUS, CallSid=sid, CallStatus="completed")

    assert ringing.status_code == done.status_code == 204
    with sessions() as session:
        stored = session.get(Message, call.id)
        assert stored is not None and stored.status is MessageStatus.DELIVERED
    assert load(sessions, page.id).next_escalation_at == T0 + 3 * TIMEOUT
