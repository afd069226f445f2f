"""Paging: an urgent reply pages on-call staff, escalates on time, and stops only on ACK."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.messages import MessageKind
from recovery.domain.phones import mask
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, EpisodeOutcome, EpisodeStatus, Message, Page, PageStatus
from recovery.models import Practice as PracticeModel
from recovery.services import paging
from recovery.services.paging import (
    AckResult,
    acknowledge,
    acknowledge_by_link,
    escalate_due,
    on_call_numbers,
    start_page,
)

T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
REPLY_AT = T0 - timedelta(seconds=2)  # the patient's URGENT reply; the page starts after
TIMEOUT = timedelta(seconds=300)  # valley-family's ack_timeout_s (the default)
BASE_URL = "https://recovery.example.com"
MAIN_LINE = "+15125550100"
RIVERA = "+15125550111"  # first on call at valley-family
LEE = "+15125550112"  # second
MANAGER = "+15125550130"
STRANGER = "+15125550177"
CALLER = "+15125550199"
MANAGER_ENTRY = {"name": "Pat Okafor", "phone": MANAGER}


def practice(session: Session, slug: str = "valley-family") -> PracticeModel:
    return session.scalars(select(PracticeModel).where(PracticeModel.slug == slug)).one()


def set_manager(
    sessions: sessionmaker[Session], manager: dict[str, str] | None, slug: str = "valley-family"
) -> None:
    with session_scope(sessions) as session:
        practice(session, slug).manager = manager


def start(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    *,
    caller: str = CALLER,
    slug: str = "valley-family",
    now: datetime = T0,
) -> tuple[Page, list[int]]:
    """An urgent episode (inserted directly) and its page, committed."""
    with session_scope(sessions) as session:
        clinic = practice(session, slug)
        episode = Episode(
            practice_id=clinic.id, caller=caller, opened_at=REPLY_AT, last_call_at=REPLY_AT
        )
        session.add(episode)
        session.flush()
        result = start_page(
            session,
            templates,
            clinic,
            episode,
            reply_received_at=REPLY_AT,
            now=now,
            public_base_url=BASE_URL,
        )
        return result.page, result.message_ids


def sweep(
    sessions: sessionmaker[Session], templates: SmsTemplates, now: datetime, limit: int = 100
) -> list[int]:
    with session_scope(sessions) as session:
        return escalate_due(session, templates, now=now, public_base_url=BASE_URL, limit=limit)


def ack(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    from_number: str,
    code: str | None,
    now: datetime,
) -> AckResult:
    with session_scope(sessions) as session:
        return acknowledge(
            session,
            templates,
            practice(session),
            from_number=from_number,
            code=code,
            now=now,
            public_base_url=BASE_URL,
        )


def texts(sessions: sessionmaker[Session], ids: list[int]) -> list[Message]:
    with sessions() as session:
        found = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
    return [found[i] for i in ids]


def recipients(sessions: sessionmaker[Session], ids: list[int]) -> list[str]:
    """Who was texted (a page's calls are counted by `callees`)."""
    return [m.to_number for m in texts(sessions, ids) if m.kind is not MessageKind.PAGE_CALL]


def callees(sessions: sessionmaker[Session], ids: list[int]) -> list[str]:
    return [m.to_number for m in texts(sessions, ids) if m.kind is MessageKind.PAGE_CALL]


def load_page(sessions: sessionmaker[Session], page_id: int) -> Page:
    with sessions() as session:
        page = session.get(Page, page_id)
        assert page is not None
        return page


def load_episode(sessions: sessionmaker[Session], episode_id: int) -> Episode:
    with sessions() as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        return episode


def count_pages(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Page)) or 0


def draws(*values: int) -> Iterator[int]:
    yield from values


# --- starting a page -------------------------------------------------------------------


def test_start_page_texts_the_first_on_call_a_code_and_a_link_and_no_patient_data(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, ids = start(sessions, templates)

    [text] = texts(sessions, ids)
    assert (text.from_number, text.to_number) == (MAIN_LINE, RIVERA)
    assert (text.kind, text.page_id, text.episode_id) == ("page", page.id, page.episode_id)
    assert re.fullmatch(r"\d{4}", page.code)
    assert f"ACK {page.code}" in text.body
    assert f"{BASE_URL}/p/{page.code}" in text.body
    # Only the practice, the code and the link: the patient's number and words stay behind
    # the login.
    assert text.body == (
        "URGENT Valley Family Clinic: a patient's reply to a missed-call text is urgent. "
        f"Ref {page.code}. Reply ACK {page.code} to take it. "
        f"Details (login): {BASE_URL}/p/{page.code}"
    )
    assert CALLER not in text.body and "555-0199" not in text.body
    stored = load_page(sessions, page.id)
    assert stored.status is PageStatus.ACTIVE
    assert stored.roster == [
        {"name": "Dr. Rivera", "phone": RIVERA},
        {"name": "Nurse Lee", "phone": LEE},
    ]
    assert (stored.round, stored.next_index) == (0, 1)
    assert stored.reply_received_at == REPLY_AT
    assert stored.first_page_at == T0
    assert stored.next_escalation_at == T0 + TIMEOUT


def test_second_urgent_reply_on_the_same_episode_keeps_the_one_chain(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    with session_scope(sessions) as session:
        episode = session.get(Episode, page.episode_id)
        assert episode is not None
        again = start_page(
            session,
            templates,
            practice(session),
            episode,
            reply_received_at=T0 + timedelta(seconds=30),
            now=T0 + timedelta(seconds=31),
            public_base_url=BASE_URL,
        )

    assert again.page.id == page.id
    assert again.message_ids == []
    assert count_pages(sessions) == 1


def test_roster_is_frozen_when_the_page_starts(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    with session_scope(sessions) as session:
        practice(session).on_call = [{"name": "Dr. New", "phone": "+15125550150"}]

    ids = sweep(sessions, templates, T0 + TIMEOUT)

    assert recipients(sessions, ids) == [LEE]
    # Lee left the roster but was on this page's: her ACK still counts.
    result = ack(sessions, templates, LEE, page.code, T0 + TIMEOUT + timedelta(seconds=5))
    assert result.problem is None
    assert load_page(sessions, page.id).acknowledged_by == "Nurse Lee"


# --- codes -----------------------------------------------------------------------------


def test_page_codes_are_four_digits_and_unique_across_many_pages(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    codes = [
        start(sessions, templates, caller=f"+1512555{2000 + n:04d}")[0].code for n in range(150)
    ]

    assert len(set(codes)) == 150
    assert all(re.fullmatch(r"\d{4}", code) for code in codes)


def test_a_code_already_taken_is_drawn_again(
    sessions: sessionmaker[Session], templates: SmsTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = draws(42, 42, 7)
    monkeypatch.setattr(paging.secrets, "randbelow", lambda _n: next(values))

    first, _ = start(sessions, templates, caller="+15125550191")
    second, _ = start(sessions, templates, caller="+15125550192")

    assert (first.code, second.code) == ("0042", "0007")


def test_the_unique_constraint_settles_a_race_for_the_same_code(
    sessions: sessionmaker[Session], templates: SmsTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = start(sessions, templates, caller="+15125550191")
    # Another transaction checked the same code a moment before this one inserted it.
    monkeypatch.setattr(paging, "_code_is_free", lambda _session, _code: True)
    values = draws(int(first.code), 4321)
    monkeypatch.setattr(paging.secrets, "randbelow", lambda _n: next(values))

    second, ids = start(sessions, templates, caller="+15125550192")

    assert second.code == "4321"
    assert recipients(sessions, ids) == [RIVERA]
    assert count_pages(sessions) == 2


def test_longer_codes_are_used_when_four_digit_codes_keep_colliding(
    sessions: sessionmaker[Session], templates: SmsTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = start(sessions, templates, caller="+15125550191")
    taken = int(first.code)
    values = draws(*[taken] * paging.CODE_TRIES_PER_LENGTH, 123456)
    monkeypatch.setattr(paging.secrets, "randbelow", lambda _n: next(values))

    second, ids = start(sessions, templates, caller="+15125550192")

    assert second.code == "123456"
    assert "ACK 123456" in texts(sessions, ids)[0].body


# --- escalation ------------------------------------------------------------------------


def test_nothing_escalates_before_the_ack_timeout(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)

    assert sweep(sessions, templates, T0 + TIMEOUT - timedelta(milliseconds=1)) == []

    stored = load_page(sessions, page.id)
    assert (stored.round, stored.next_index) == (0, 1)
    assert stored.next_escalation_at == T0 + TIMEOUT


def test_unacknowledged_page_goes_to_the_next_on_call_after_the_timeout(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)

    ids = sweep(sessions, templates, T0 + TIMEOUT)

    [text] = texts(sessions, ids)
    assert (text.to_number, text.from_number, text.kind) == (LEE, MAIN_LINE, "page")
    assert text.page_id == page.id
    assert f"ACK {page.code}" in text.body
    stored = load_page(sessions, page.id)
    assert (stored.round, stored.next_index) == (0, 2)
    assert stored.next_escalation_at == T0 + 2 * TIMEOUT
    assert stored.first_page_at == T0  # the first page's time, not the escalation's
    # The same sweep run again (a beat that overlapped itself) pages nobody twice.
    assert sweep(sessions, templates, T0 + TIMEOUT) == []


def test_after_the_roster_everyone_and_the_manager_are_paged_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    set_manager(sessions, MANAGER_ENTRY)
    page, _ = start(sessions, templates)
    assert recipients(sessions, sweep(sessions, templates, T0 + TIMEOUT)) == [LEE]

    ids = sweep(sessions, templates, T0 + 2 * TIMEOUT)

    assert sorted(recipients(sessions, ids)) == sorted([RIVERA, LEE, MANAGER])
    # Round 1 rings them too: a call each, beside the text.
    assert sorted(callees(sessions, ids)) == sorted([RIVERA, LEE, MANAGER])
    assert {m.kind for m in texts(sessions, ids)} == {"page", "page_call"}
    assert all(m.page_id == page.id for m in texts(sessions, ids))
    stored = load_page(sessions, page.id)
    assert stored.round == 1
    assert stored.next_escalation_at == T0 + 3 * TIMEOUT


def test_the_chain_pages_everyone_again_every_timeout_until_someone_acks(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    set_manager(sessions, MANAGER_ENTRY)
    page, _ = start(sessions, templates)
    sweep(sessions, templates, T0 + TIMEOUT)

    for n in range(2, 8):
        due_at = T0 + n * TIMEOUT
        assert sweep(sessions, templates, due_at - timedelta(seconds=1)) == []
        ids = sweep(sessions, templates, due_at)
        assert sorted(recipients(sessions, ids)) == sorted([RIVERA, LEE, MANAGER])
        assert load_page(sessions, page.id).round == n - 1

    assert load_page(sessions, page.id).status is PageStatus.ACTIVE


def test_manager_who_is_also_on_the_roster_gets_one_text_per_round(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    set_manager(sessions, {"name": "Dr. Rivera", "phone": RIVERA})
    start(sessions, templates)
    sweep(sessions, templates, T0 + TIMEOUT)

    ids = sweep(sessions, templates, T0 + 2 * TIMEOUT)

    assert sorted(recipients(sessions, ids)) == sorted([RIVERA, LEE])


def test_a_late_sweep_escalates_one_step_and_times_the_next_from_now(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    late = T0 + 5 * TIMEOUT  # the beat was down for twenty minutes

    assert recipients(sessions, sweep(sessions, templates, late)) == [LEE]
    assert load_page(sessions, page.id).next_escalation_at == late + TIMEOUT


def test_sweep_takes_the_most_overdue_pages_first_up_to_its_limit(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    oldest, _ = start(sessions, templates, caller="+15125550191", now=T0)
    middle, _ = start(sessions, templates, caller="+15125550192", now=T0 + timedelta(seconds=1))
    newest, _ = start(sessions, templates, caller="+15125550193", now=T0 + timedelta(seconds=2))

    ids = sweep(sessions, templates, T0 + TIMEOUT + timedelta(seconds=2), limit=2)

    assert [m.page_id for m in texts(sessions, ids)] == [oldest.id, middle.id]
    assert load_page(sessions, newest.id).next_index == 1


def test_a_page_that_fails_to_escalate_does_not_hold_up_the_others(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, _ = start(sessions, templates, caller="+15125550191")
    healthy, _ = start(sessions, templates, caller="+15125550192")
    real_queue_text = paging.queue_text

    def queue_text(*args: Any, **kwargs: Any) -> Message:
        if kwargs["page_id"] == broken.id:
            raise RuntimeError("template blew up")
        return real_queue_text(*args, **kwargs)

    monkeypatch.setattr(paging, "queue_text", queue_text)

    with caplog.at_level(logging.ERROR, logger="recovery.services.paging"):
        ids = sweep(sessions, templates, T0 + TIMEOUT)

    assert [m.page_id for m in texts(sessions, ids)] == [healthy.id]
    assert any(r.levelno == logging.ERROR and str(broken.id) in r.message for r in caplog.records)
    stuck = load_page(sessions, broken.id)
    assert (stuck.next_index, stuck.next_escalation_at) == (1, T0 + TIMEOUT)  # still due
    monkeypatch.setattr(paging, "queue_text", real_queue_text)
    assert recipients(sessions, sweep(sessions, templates, T0 + TIMEOUT)) == [LEE]


def test_practice_without_roster_or_manager_still_opens_an_active_page_and_logs_an_error(
    sessions: sessionmaker[Session], templates: SmsTemplates, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="recovery.services.paging"):
        page, ids = start(sessions, templates, slug="never-open")

    assert ids == []
    stored = load_page(sessions, page.id)
    assert stored.status is PageStatus.ACTIVE
    assert stored.roster == []
    assert stored.first_page_at is None
    assert stored.next_escalation_at == T0 + TIMEOUT  # it keeps trying
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "nobody to page" in errors[0].message

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="recovery.services.paging"):
        assert sweep(sessions, templates, T0 + TIMEOUT) == []
    assert any("nobody to page" in r.message for r in caplog.records)

    # A manager added to the practice later is paged by the next sweep.
    set_manager(sessions, MANAGER_ENTRY, slug="never-open")
    ids = sweep(sessions, templates, T0 + 2 * TIMEOUT)
    assert recipients(sessions, ids) == [MANAGER]
    assert load_page(sessions, page.id).first_page_at == T0 + 2 * TIMEOUT


def test_practice_without_roster_pages_its_manager_at_once(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    set_manager(sessions, MANAGER_ENTRY, slug="never-open")

    page, ids = start(sessions, templates, slug="never-open")

    # Nobody on call: round 0 is skipped, and round 1 rings the manager as well.
    assert callees(sessions, ids) == [MANAGER]
    [text] = [m for m in texts(sessions, ids) if m.kind is MessageKind.PAGE]
    assert (text.to_number, text.from_number) == (MANAGER, "+13035550100")
    assert text.body.startswith("URGENT Night Owl Dental:")
    assert load_page(sessions, page.id).first_page_at == T0
    assert recipients(sessions, sweep(sessions, templates, T0 + TIMEOUT)) == [MANAGER]


def test_log_lines_mask_phone_numbers(
    sessions: sessionmaker[Session], templates: SmsTemplates, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="recovery.services.paging"):
        page, _ = start(sessions, templates)
        sweep(sessions, templates, T0 + TIMEOUT)
        ack(sessions, templates, LEE, page.code, T0 + TIMEOUT + timedelta(seconds=9))

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert len(caplog.records) >= 3
    assert mask(RIVERA) in logged and mask(LEE) in logged
    for number in (RIVERA, LEE, RIVERA[2:], LEE[2:]):
        assert number not in logged


# --- acknowledging ---------------------------------------------------------------------


def test_ack_with_the_code_stops_the_chain_and_closes_the_episode_escalated(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    set_manager(sessions, MANAGER_ENTRY)
    page, _ = start(sessions, templates)
    sweep(sessions, templates, T0 + TIMEOUT)
    acked_at = T0 + TIMEOUT + timedelta(seconds=40)

    result = ack(sessions, templates, LEE, page.code, acked_at)

    assert result.problem is None
    assert result.page is not None and result.page.id == page.id
    [confirmation] = texts(sessions, result.message_ids)
    assert (confirmation.to_number, confirmation.from_number) == (LEE, MAIN_LINE)
    assert (confirmation.kind, confirmation.page_id) == ("page_ack", page.id)
    assert f"page {page.code} is yours" in confirmation.body
    stored = load_page(sessions, page.id)
    assert stored.status is PageStatus.ACKNOWLEDGED
    assert (stored.acknowledged_at, stored.acknowledged_by) == (acked_at, "Nurse Lee")
    assert stored.next_escalation_at is None
    episode = load_episode(sessions, page.episode_id)
    assert (episode.status, episode.outcome) == (EpisodeStatus.CLOSED, EpisodeOutcome.ESCALATED)
    assert episode.outcome_at == acked_at
    assert episode.joinable is False
    for n in range(2, 6):
        assert sweep(sessions, templates, T0 + n * TIMEOUT) == []


def test_plain_ack_takes_the_only_open_page_paged_to_the_sender(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)

    result = ack(sessions, templates, RIVERA, None, T0 + timedelta(seconds=20))

    assert result.problem is None
    assert result.page is not None and result.page.id == page.id
    assert recipients(sessions, result.message_ids) == [RIVERA]
    stored = load_page(sessions, page.id)
    assert (stored.status, stored.acknowledged_by) == (PageStatus.ACKNOWLEDGED, "Dr. Rivera")


def test_ack_accepts_the_senders_number_as_the_provider_formats_it(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)

    result = ack(sessions, templates, "(512) 555-0111", page.code, T0 + timedelta(seconds=20))

    assert result.problem is None
    assert load_page(sessions, page.id).acknowledged_by == "Dr. Rivera"


def test_plain_ack_with_two_open_pages_for_the_sender_is_ambiguous(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    first, _ = start(sessions, templates, caller="+15125550191")
    second, _ = start(sessions, templates, caller="+15125550192")

    result = ack(sessions, templates, RIVERA, None, T0 + timedelta(seconds=20))

    assert (result.problem, result.page, result.message_ids) == ("ambiguous", None, [])
    assert load_page(sessions, first.id).status is PageStatus.ACTIVE
    assert load_page(sessions, second.id).status is PageStatus.ACTIVE
    # Quoting the code settles it; the other page stays open and keeps escalating.
    assert ack(sessions, templates, RIVERA, second.code, T0 + timedelta(seconds=30)).problem is None
    assert load_page(sessions, first.id).status is PageStatus.ACTIVE
    assert [m.page_id for m in texts(sessions, sweep(sessions, templates, T0 + TIMEOUT))] == [
        first.id
    ]


def test_plain_ack_only_counts_pages_the_sender_was_paged_on(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    start(sessions, templates)  # Rivera is paged, Lee not yet

    result = ack(sessions, templates, LEE, None, T0 + timedelta(seconds=20))

    assert (result.problem, result.page) == ("no_open_page", None)


def test_ack_from_a_stranger_is_not_on_call(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)

    with_code = ack(sessions, templates, STRANGER, page.code, T0 + timedelta(seconds=20))
    without = ack(sessions, templates, STRANGER, None, T0 + timedelta(seconds=20))

    assert (with_code.problem, with_code.page, with_code.message_ids) == ("not_on_call", None, [])
    assert (without.problem, without.page) == ("not_on_call", None)
    assert load_page(sessions, page.id).status is PageStatus.ACTIVE
    assert load_episode(sessions, page.episode_id).status is EpisodeStatus.OPEN


def test_second_ack_is_already_acknowledged_and_changes_nothing(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    sweep(sessions, templates, T0 + TIMEOUT)
    first_at = T0 + TIMEOUT + timedelta(seconds=10)
    assert ack(sessions, templates, RIVERA, page.code, first_at).problem is None

    again = ack(sessions, templates, LEE, page.code, first_at + timedelta(seconds=5))

    assert again.problem == "already_acknowledged"
    assert again.page is not None and again.page.id == page.id
    assert again.page.acknowledged_by == "Dr. Rivera"
    assert again.message_ids == []
    stored = load_page(sessions, page.id)
    assert (stored.acknowledged_by, stored.acknowledged_at) == ("Dr. Rivera", first_at)


def test_ack_with_an_unknown_code_or_no_open_page_is_no_open_page(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    assert ack(sessions, templates, RIVERA, None, T0).problem == "no_open_page"
    page, _ = start(sessions, templates)
    unknown = "0000" if page.code != "0000" else "0001"

    result = ack(sessions, templates, RIVERA, unknown, T0 + timedelta(seconds=5))

    assert (result.problem, result.page) == ("no_open_page", None)
    assert load_page(sessions, page.id).status is PageStatus.ACTIVE


def test_code_of_another_practices_page_is_not_this_practices(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    set_manager(sessions, MANAGER_ENTRY, slug="never-open")
    other, _ = start(sessions, templates, slug="never-open")

    result = ack(sessions, templates, RIVERA, other.code, T0 + timedelta(seconds=5))

    assert result.problem == "no_open_page"
    assert load_page(sessions, other.id).status is PageStatus.ACTIVE


def test_acknowledge_by_link_takes_the_page_without_a_text_and_is_idempotent(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    taken_at = T0 + timedelta(seconds=45)

    with session_scope(sessions) as session:
        taken = acknowledge_by_link(
            session, templates, code=page.code, staff_name="Dr. Rivera (web)", now=taken_at
        )
        assert taken is not None and taken.value.id == page.id
        assert taken.changed
    with session_scope(sessions) as session:
        again = acknowledge_by_link(
            session,
            templates,
            code=page.code,
            staff_name="Someone Else",
            now=taken_at + timedelta(seconds=60),
        )
        assert again is not None and not again.changed
        unknown = acknowledge_by_link(
            session, templates, code="99999999", staff_name="x", now=taken_at
        )
        assert unknown is None

    stored = load_page(sessions, page.id)
    assert stored.status is PageStatus.ACKNOWLEDGED
    assert (stored.acknowledged_by, stored.acknowledged_at) == ("Dr. Rivera (web)", taken_at)
    episode = load_episode(sessions, page.episode_id)
    assert episode.outcome is EpisodeOutcome.ESCALATED
    with sessions() as session:
        kinds = session.scalars(select(Message.kind).where(Message.page_id == page.id)).all()
    assert kinds == ["page"]  # no confirmation text
    assert sweep(sessions, templates, T0 + 3 * TIMEOUT) == []


# --- reporting -------------------------------------------------------------------------


def latency(page: Page) -> tuple[timedelta | None, timedelta | None]:
    """Reply -> first page queued, and reply -> acknowledged: what the page row records."""
    first, acked = page.first_page_at, page.acknowledged_at
    return (
        first - page.reply_received_at if first else None,
        acked - page.reply_received_at if acked else None,
    )


def test_a_page_records_reply_to_first_page_and_reply_to_ack(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates)
    assert latency(load_page(sessions, page.id)) == (timedelta(seconds=2), None)
    sweep(sessions, templates, T0 + TIMEOUT)

    ack(sessions, templates, LEE, page.code, T0 + TIMEOUT + timedelta(seconds=28))

    assert latency(load_page(sessions, page.id)) == (
        timedelta(seconds=2),
        timedelta(seconds=330),
    )


def test_a_page_nobody_could_be_sent_has_no_first_page_time(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    page, _ = start(sessions, templates, slug="never-open")

    assert latency(load_page(sessions, page.id)) == (None, None)


def test_on_call_numbers_are_the_roster_and_the_manager(
    sessions: sessionmaker[Session],
) -> None:
    set_manager(sessions, MANAGER_ENTRY)
    with sessions() as session:
        assert on_call_numbers(practice(session)) == {RIVERA, LEE, MANAGER}
        assert on_call_numbers(practice(session, "never-open")) == set()
