"""Provider limits: a token bucket per sending number (in Redis, here fakeredis; in memory
on the embedded default), urgent texts first, and a short validity period on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.messages import (
    URGENT_VALIDITY_S,
    DeliveryOutcome,
    MessageKind,
    WaitReason,
    segments,
    waiting_words,
)
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, MessageStatus, Practice
from recovery.services import texts
from recovery.services.outreach import SendPolicy, deliver
from recovery.services.send_rate import MemoryBuckets, RedisBuckets, TokenBuckets
from recovery.sms.twilio import TwilioProvider
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.twilio_double import TwilioDouble
from tests.unit.test_outreach import CALLBACK, FakeProvider

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
LINE = "+15125550100"


@pytest.fixture(params=["redis", "memory"])
def buckets(request: pytest.FixtureRequest) -> TokenBuckets:
    if request.param == "redis":
        return RedisBuckets(fakeredis.FakeRedis())
    return MemoryBuckets()


def test_a_burst_waits_one_segment_a_second(buckets: TokenBuckets) -> None:
    waits = [buckets.take(LINE, 1, 1.0, 100.0, urgent=False) for _ in range(3)]

    assert waits[0] == 0  # a full bucket: the first goes at once
    assert waits[1] == pytest.approx(1.0) and waits[2] == pytest.approx(1.0)  # nothing taken
    assert buckets.take(LINE, 1, 1.0, 100.5, urgent=False) == pytest.approx(0.5)
    assert buckets.take(LINE, 1, 1.0, 101.0, urgent=False) == 0
    assert buckets.take(LINE, 1, 1.0, 101.0, urgent=False) == pytest.approx(1.0)


def test_each_number_has_its_own_bucket_and_rate(buckets: TokenBuckets) -> None:
    assert buckets.take(LINE, 1, 1.0, 100.0, urgent=False) == 0
    assert buckets.take("+15125550101", 1, 1.0, 100.0, urgent=False) == 0
    # A number registered for 3 a second holds 3.
    assert [buckets.take("+18005550100", 1, 3.0, 100.0, urgent=False) for _ in range(4)] == [
        0,
        0,
        0,
        pytest.approx(1 / 3),
    ]


def test_urgent_texts_jump_the_queue_and_the_others_wait_longer(buckets: TokenBuckets) -> None:
    assert buckets.take(LINE, 1, 1.0, 100.0, urgent=False) == 0  # the bucket is empty now

    # A page: its token is reserved at once, due when it would have been there.
    assert buckets.take(LINE, 1, 1.0, 100.0, urgent=True) == pytest.approx(1.0)
    # A second page reserves the token after it, ahead of the text already waiting.
    assert buckets.take(LINE, 1, 1.0, 100.0, urgent=True) == pytest.approx(2.0)
    assert buckets.take(LINE, 1, 1.0, 100.0, urgent=False) == pytest.approx(3.0)
    assert buckets.take(LINE, 1, 1.0, 102.0, urgent=False) == pytest.approx(1.0)
    assert buckets.take(LINE, 1, 1.0, 103.0, urgent=False) == 0


def test_urgent_texts_in_debt_never_send_faster_than_the_rate(buckets: TokenBuckets) -> None:
    # Ten pages of two segments at once on a 2/s number: each is due one second after the
    # one before, the first when the full bucket has them.
    dues = [buckets.take(LINE, 2, 2.0, 100.0, urgent=True) for _ in range(10)]
    assert dues == [0, *(pytest.approx(float(i)) for i in range(1, 10))]


def test_a_long_text_waits_for_a_full_bucket_not_for_ever(buckets: TokenBuckets) -> None:
    assert buckets.take(LINE, 1, 1.0, 100.0, urgent=False) == 0
    # Three segments on a 1/s number: it goes once the bucket is full, and owes the rest.
    assert buckets.take(LINE, 3, 1.0, 100.0, urgent=False) == pytest.approx(1.0)
    assert buckets.take(LINE, 3, 1.0, 101.0, urgent=False) == 0
    assert buckets.take(LINE, 1, 1.0, 101.0, urgent=False) == pytest.approx(3.0)


def test_redis_away_sends_unthrottled() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    assert (
        RedisBuckets(fakeredis.FakeRedis(server=server)).take(LINE, 1, 1.0, 1.0, urgent=False) == 0
    )


@pytest.mark.parametrize(
    ("body", "count"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("[" * 80, 1),
        ("[" * 81, 2),
        ("é" * 160, 1),
        ("ł" * 70, 1),
        ("ł" * 71, 2),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
    ],
)
def test_segments_are_counted_as_the_carrier_counts_them(body: str, count: int) -> None:
    assert segments(body) == count


# --- through deliver ---------------------------------------------------------------------


def queue(
    sessions: sessionmaker[Session], templates: SmsTemplates, kind: MessageKind, to: str
) -> int:
    with session_scope(sessions) as session:
        practice = session.query(Practice).filter_by(slug="valley-family").one()
        message = texts.queue_text(session, templates, practice, to=to, kind=kind, now=T0)
        return message.id


def send(
    sessions: sessionmaker[Session],
    provider: FakeProvider,
    buckets: TokenBuckets,
    message_id: int,
    now: datetime = T0,
    slept: list[float] | None = None,
) -> DeliveryOutcome:
    result = deliver(
        sessions,
        provider,
        message_id,
        status_callback=CALLBACK,
        policy=SendPolicy(),
        clock=lambda: now,
        buckets=buckets,
        sleep=(slept if slept is not None else []).append,
    )
    return result.status


def test_a_text_past_its_numbers_rate_waits_for_its_turn_and_a_page_does_not(
    sessions: sessionmaker[Session], templates: SmsTemplates, buckets: TokenBuckets
) -> None:
    with session_scope(sessions) as session:  # a long code's rate (the fixture's is higher)
        session.scalars(
            select(Practice).where(Practice.slug == "valley-family")
        ).one().send_rate_per_s = 1.0
    first, second = (
        queue(sessions, templates, MessageKind.FIRST_TEXT, f"+1512555040{i}") for i in range(2)
    )
    page = queue(sessions, templates, MessageKind.PAGE, "+15125550111")
    provider = FakeProvider()

    slept: list[float] = []
    assert send(sessions, provider, buckets, first, slept=slept) is DeliveryOutcome.ACCEPTED
    assert send(sessions, provider, buckets, second, slept=slept) is DeliveryOutcome.THROTTLED
    assert slept == []
    # The page is not put back behind the waiting text: it waits for its reserved turn,
    # two seconds on (the first text's two segments), and goes.
    assert send(sessions, provider, buckets, page, slept=slept) is DeliveryOutcome.ACCEPTED
    assert slept == [pytest.approx(2.0)]
    with sessions() as session:
        paged = session.get(Message, page)
        assert paged is not None and paged.next_attempt_at == T0 + timedelta(seconds=2)

    with sessions() as session:
        waiting = session.get(Message, second)
        assert waiting is not None
        assert waiting.status is MessageStatus.RETRYING
        assert waiting.attempts == 0  # the provider never saw it: not an attempt
        # `recovery simulate` says it waits for the send rate, not that it is retrying.
        assert waiting_words(waiting.status, waiting.error_message) == "waiting for the send rate"
        # The first text is two segments: the bucket is in debt until two seconds on.
        assert waiting.next_attempt_at == T0 + timedelta(seconds=2)
    assert [sms.to_number for sms in provider.sent] == ["+15125550400", "+15125550111"]
    # The page went in between and took its tokens: the waiting text waits longer still.
    assert send(sessions, provider, buckets, second, T0 + timedelta(seconds=2)) is (
        DeliveryOutcome.THROTTLED
    )
    with sessions() as session:
        again = session.get(Message, second)
        assert again is not None and again.next_attempt_at is not None
        retry_at = again.next_attempt_at
    assert retry_at > T0 + timedelta(seconds=2)
    assert send(sessions, provider, buckets, second, retry_at) is DeliveryOutcome.ACCEPTED


def test_urgent_texts_carry_a_short_validity_period_to_twilio(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    page = queue(sessions, templates, MessageKind.URGENT, "+15125550199")
    first = queue(sessions, templates, MessageKind.FIRST_TEXT, "+15125550198")
    with TwilioDouble(ACCOUNT_SID, AUTH_TOKEN) as double:
        provider = TwilioProvider(
            ACCOUNT_SID, AUTH_TOKEN, api_base_url=double.base_url, timeout_s=5.0
        )
        for message_id in (page, first):
            deliver(sessions, provider, message_id, status_callback=CALLBACK, clock=lambda: T0)
        forms = {m.form["To"]: m.form for m in double.accepted_messages()}

    assert forms["+15125550199"]["ValidityPeriod"] == str(URGENT_VALIDITY_S)
    assert "ValidityPeriod" not in forms["+15125550198"]


def test_a_text_in_doubt_takes_its_tokens_before_it_may_go_again(
    sessions: sessionmaker[Session], templates: SmsTemplates, buckets: TokenBuckets
) -> None:
    # A worker died mid-send: the text is in doubt, and not at the provider. Sent again
    # without its tokens it would go on top of the texts that took them meanwhile.
    with session_scope(sessions) as session:
        session.scalars(
            select(Practice).where(Practice.slug == "valley-family")
        ).one().send_rate_per_s = 1.0
    first, doubtful = (
        queue(sessions, templates, MessageKind.FIRST_TEXT, f"+1512555041{i}") for i in range(2)
    )
    with session_scope(sessions) as session:
        message = session.get(Message, doubtful)
        assert message is not None
        message.status = MessageStatus.RETRYING
        message.next_attempt_at = T0
        message.in_doubt_since = T0 - timedelta(seconds=10)
    provider = FakeProvider()

    assert send(sessions, provider, buckets, first) is DeliveryOutcome.ACCEPTED
    assert send(sessions, provider, buckets, doubtful) is DeliveryOutcome.THROTTLED
    assert provider.lookups == 0 and len(provider.sent) == 1
    with sessions() as session:
        waiting = session.get(Message, doubtful)
        assert waiting is not None and waiting.in_doubt_since is not None  # still asked first
        retry_at = waiting.next_attempt_at
    assert retry_at == T0 + timedelta(seconds=2)
    assert send(sessions, provider, buckets, doubtful, retry_at) is DeliveryOutcome.ACCEPTED
    assert provider.lookups == 1 and len(provider.sent) == 2


def test_a_text_the_provider_refused_for_now_is_still_retrying() -> None:
    assert waiting_words(MessageStatus.RETRYING, "HTTP 503 from Twilio") == "retrying"
    assert waiting_words(MessageStatus.RETRYING, None) == "retrying"
    assert waiting_words(MessageStatus.SENT, WaitReason.SEND_RATE) == "sent"
