"""Outcomes: one per episode; unrecovered sweeps, the one nudge, bookings, staff tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery.db import session_scope
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Message,
    OptOut,
    Page,
    PageStatus,
    Practice,
    Task,
    TaskQueue,
    TaskStatus,
)
from recovery.services import outcomes
from tests.support.factories import missed_call

# Tuesday 2026-11-03 09:00 in Chicago (CST, UTC-6), where valley-family is.
T0 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
NUDGE_AFTER = timedelta(hours=4)  # valley-family's nudge_after_h (the default)
CALLER = "+15125550199"  # Austin: Chicago time, like the practice
NEW_YORKER = "+12125550199"
MAIN_LINE = "+15125550100"
SECOND_LINE = "+15125550101"
PRACTICE = "valley-family"


def open_episode(
    sessions: sessionmaker[Session],
    templates: SmsTemplates,
    *,
    at: datetime = T0,
    caller: str = CALLER,
    called: str = MAIN_LINE,
    call_id: str = "CA1",
    accepted: bool = True,
) -> int:
    """A missed call through intake, its window set explicitly, the first text accepted."""
    with session_scope(sessions) as session:
        result = missed_call(
            session, templates, at=at, caller=caller, called=called, call_id=call_id
        )
        assert result.episode_id is not None
        episode = session.get(Episode, result.episode_id)
        assert episode is not None
        episode.reply_deadline_at = episode.opened_at + WINDOW
        if accepted:
            episode.first_text_accepted_at = at + timedelta(seconds=1)
        return episode.id


def load(sessions: sessionmaker[Session], episode_id: int) -> Episode:
    with sessions() as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        return episode


def change(sessions: sessionmaker[Session], episode_id: int, **values: object) -> None:
    with session_scope(sessions) as session:
        session.execute(update(Episode).where(Episode.id == episode_id).values(**values))


def practice_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        found = session.scalar(select(Practice.id).where(Practice.slug == PRACTICE))
        assert found is not None
        return found


def add_task(
    sessions: sessionmaker[Session], episode_id: int, status: TaskStatus = TaskStatus.OPEN
) -> int:
    with session_scope(sessions) as session:
        task = Task(
            practice_id=practice_id(sessions),
            episode_id=episode_id,
            queue=TaskQueue.BILLING,
            reason="billing",
            status=status,
            due_at=T0 + timedelta(hours=4),
            created_at=T0,
        )
        session.add(task)
        session.flush()
        return task.id


def add_page(
    sessions: sessionmaker[Session], episode_id: int, status: PageStatus = PageStatus.ACTIVE
) -> int:
    with session_scope(sessions) as session:
        page = Page(
            practice_id=practice_id(sessions),
            episode_id=episode_id,
            code=f"P{episode_id:04d}",
            status=status,
            roster=[{"name": "Dr. Rivera", "phone": "+15125550111"}],
            reply_received_at=T0,
            created_at=T0,
        )
        session.add(page)
        session.flush()
        return page.id


def sweep(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    with session_scope(sessions) as session:
        return outcomes.sweep_unrecovered(session, now)


def nudges(
    sessions: sessionmaker[Session], templates: SmsTemplates, now: datetime, limit: int = 500
) -> list[int]:
    with session_scope(sessions) as session:
        return outcomes.due_nudges(session, templates, now, limit=limit)


def message(sessions: sessionmaker[Session], message_id: int) -> Message:
    with sessions() as session:
        found = session.get(Message, message_id)
        assert found is not None
        return found


def confirm(
    sessions: sessionmaker[Session],
    now: datetime,
    *,
    token: str | None = None,
    practice_slug: str | None = None,
    phone: str | None = None,
) -> int | None:
    with session_scope(sessions) as session:
        episode = outcomes.confirm_booking(
            session, now=now, token=token, practice_slug=practice_slug, phone=phone
        )
        return episode.id if episode is not None else None


def click(sessions: sessionmaker[Session], token: str, now: datetime) -> str | None:
    with session_scope(sessions) as session:
        return outcomes.record_booking_click(session, token, now)


def claim(sessions: sessionmaker[Session], task_id: int, by: str, now: datetime) -> Task | None:
    with session_scope(sessions) as session:
        result = outcomes.claim_task(session, task_id, by=by, now=now)
        return None if result is None else result.value


def complete(
    sessions: sessionmaker[Session],
    task_id: int,
    by: str = "alice",
    note: str | None = None,
    now: datetime = T0 + timedelta(hours=1),
) -> Task | None:
    with session_scope(sessions) as session:
        result = outcomes.complete_task(session, task_id, by=by, note=note, now=now)
        return None if result is None else result.value


# --- exactly one outcome ---------------------------------------------------------------


def test_an_episode_is_closed_once_and_keeps_its_first_outcome(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    first, second = T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)

    with session_scope(sessions) as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        assert outcomes.close_episode(episode, EpisodeOutcome.OPTED_OUT, first) is True
        assert outcomes.close_episode(episode, EpisodeOutcome.RESOLVED, second) is False

    stored = load(sessions, episode_id)
    assert stored.status is EpisodeStatus.CLOSED
    assert (stored.outcome, stored.outcome_at) == (EpisodeOutcome.OPTED_OUT, first)
    assert stored.joinable is False


def test_a_call_after_the_outcome_starts_a_new_episode(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    with session_scope(sessions) as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        outcomes.close_episode(episode, EpisodeOutcome.OPTED_OUT, T0 + timedelta(minutes=5))

    # Well inside the 12-hour joining window: still a new episode.
    later = open_episode(sessions, templates, at=T0 + timedelta(hours=1), call_id="CA2")

    assert later != episode_id
    assert load(sessions, later).status is EpisodeStatus.OPEN


# --- unrecovered ------------------------------------------------------------------------


def test_no_reply_within_the_window_ends_unrecovered_at_the_deadline_not_before(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    deadline = T0 + WINDOW

    assert sweep(sessions, deadline - timedelta(seconds=1)) == []
    assert load(sessions, episode_id).status is EpisodeStatus.OPEN

    assert sweep(sessions, deadline) == [episode_id]
    episode = load(sessions, episode_id)
    assert (episode.status, episode.outcome) == (EpisodeStatus.CLOSED, EpisodeOutcome.UNRECOVERED)
    assert episode.outcome_at == deadline
    assert episode.joinable is False


def test_a_second_sweep_closes_nothing_again(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    assert sweep(sessions, T0 + WINDOW) == [episode_id]

    assert sweep(sessions, T0 + WINDOW + timedelta(hours=1)) == []
    assert load(sessions, episode_id).outcome_at == T0 + WINDOW


@pytest.mark.parametrize("status", [TaskStatus.OPEN, TaskStatus.CLAIMED])
def test_an_episode_with_a_task_still_to_do_is_not_unrecovered(
    sessions: sessionmaker[Session], templates: SmsTemplates, status: TaskStatus
) -> None:
    episode_id = open_episode(sessions, templates)
    add_task(sessions, episode_id, status)

    assert sweep(sessions, T0 + WINDOW + timedelta(days=3)) == []
    assert load(sessions, episode_id).status is EpisodeStatus.OPEN


def test_a_done_task_does_not_keep_an_episode_open(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    add_task(sessions, episode_id, TaskStatus.DONE)

    assert sweep(sessions, T0 + WINDOW) == [episode_id]


def test_an_episode_with_an_active_page_is_not_unrecovered(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    paged = open_episode(sessions, templates)
    add_page(sessions, paged)
    quiet = open_episode(sessions, templates, caller=NEW_YORKER, call_id="CA2")

    assert sweep(sessions, T0 + WINDOW) == [quiet]
    assert load(sessions, paged).status is EpisodeStatus.OPEN


def test_a_replied_and_booked_episode_is_not_swept(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, last_reply_at=T0 + timedelta(minutes=2), booking_token="tok1")
    booked_at = T0 + timedelta(minutes=10)
    assert confirm(sessions, booked_at, token="tok1") == episode_id

    assert sweep(sessions, T0 + WINDOW) == []
    episode = load(sessions, episode_id)
    assert (episode.outcome, episode.outcome_at) == (EpisodeOutcome.BOOKED, booked_at)


def test_an_episode_without_a_deadline_is_left_alone(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, reply_deadline_at=None)

    assert sweep(sessions, T0 + timedelta(days=30)) == []
    assert load(sessions, episode_id).status is EpisodeStatus.OPEN


# --- the one nudge ----------------------------------------------------------------------


def test_one_nudge_goes_after_nudge_after_h_from_the_line_the_patient_called(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates, called=SECOND_LINE)
    due = T0 + NUDGE_AFTER  # 13:00 in Chicago

    assert nudges(sessions, templates, due - timedelta(seconds=1)) == []
    [message_id] = nudges(sessions, templates, due)

    nudge = message(sessions, message_id)
    assert nudge.kind == "nudge"
    assert (nudge.from_number, nudge.to_number) == (SECOND_LINE, CALLER)
    assert nudge.episode_id == episode_id
    assert nudge.body.startswith("Valley Family Clinic:")
    assert "(512) 555-0101" in nudge.body
    assert load(sessions, episode_id).nudged_at == due


def test_there_is_only_ever_one_nudge(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    assert len(nudges(sessions, templates, T0 + NUDGE_AFTER)) == 1

    assert nudges(sessions, templates, T0 + NUDGE_AFTER + timedelta(minutes=1)) == []
    assert nudges(sessions, templates, T0 + timedelta(hours=20)) == []
    with sessions() as session:
        sent = session.scalars(select(Message).where(Message.kind == "nudge")).all()
        assert [m.episode_id for m in sent] == [episode_id]


def test_a_nudge_comes_from_the_main_line_when_the_call_row_is_gone(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    # An episode opened by a text out of the blue has no call behind it.
    with session_scope(sessions) as session:
        episode = Episode(
            practice_id=practice_id(sessions),
            caller=CALLER,
            opened_at=T0,
            last_call_at=T0,
            call_count=0,
            first_text_accepted_at=T0,
            reply_deadline_at=T0 + WINDOW,
        )
        session.add(episode)

    [message_id] = nudges(sessions, templates, T0 + NUDGE_AFTER)
    assert message(sessions, message_id).from_number == MAIN_LINE


def test_a_patient_who_replied_is_not_nudged(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, last_reply_at=T0 + timedelta(minutes=3))

    assert nudges(sessions, templates, T0 + NUDGE_AFTER) == []
    assert load(sessions, episode_id).nudged_at is None


def test_no_nudge_before_the_first_text_was_accepted(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates, accepted=False)

    assert nudges(sessions, templates, T0 + NUDGE_AFTER) == []
    change(sessions, episode_id, first_text_accepted_at=T0 + timedelta(minutes=1))
    assert len(nudges(sessions, templates, T0 + NUDGE_AFTER)) == 1


def test_an_opted_out_caller_is_not_nudged(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    with session_scope(sessions) as session:
        session.add(OptOut(practice_id=practice_id(sessions), phone=CALLER, opted_out_at=T0))

    assert nudges(sessions, templates, T0 + NUDGE_AFTER) == []
    assert load(sessions, episode_id).nudged_at is None


def test_a_closed_episode_is_not_nudged(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, status=EpisodeStatus.CLOSED, outcome=EpisodeOutcome.OPTED_OUT)

    assert nudges(sessions, templates, T0 + NUDGE_AFTER) == []


def test_a_nudge_due_in_quiet_hours_waits_for_the_morning(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    opened = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # 19:00 in Chicago
    episode_id = open_episode(sessions, templates, at=opened)

    # Due at 23:00 local: quiet.
    assert nudges(sessions, templates, opened + NUDGE_AFTER) == []
    assert nudges(sessions, templates, datetime(2026, 11, 4, 13, 59, tzinfo=UTC)) == []  # 07:59
    assert load(sessions, episode_id).nudged_at is None

    morning = datetime(2026, 11, 4, 14, 0, tzinfo=UTC)  # 08:00 local
    assert len(nudges(sessions, templates, morning)) == 1
    assert load(sessions, episode_id).nudged_at == morning


def test_a_nudge_held_by_quiet_hours_is_dropped_when_the_deadline_comes_first(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    opened = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # 19:00 in Chicago
    episode_id = open_episode(sessions, templates, at=opened)
    morning = datetime(2026, 11, 4, 14, 0, tzinfo=UTC)  # 08:00 local
    change(sessions, episode_id, reply_deadline_at=morning)

    assert nudges(sessions, templates, opened + NUDGE_AFTER) == []
    assert nudges(sessions, templates, morning) == []
    assert nudges(sessions, templates, morning + timedelta(hours=1)) == []
    assert load(sessions, episode_id).nudged_at is None


def test_quiet_hours_follow_the_patients_clock_not_the_practices(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    opened = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)  # 16:00 in Chicago
    local = open_episode(sessions, templates, at=opened, caller=CALLER, call_id="CA1")
    remote = open_episode(sessions, templates, at=opened, caller=NEW_YORKER, call_id="CA2")

    # 20:30 in Chicago, 21:30 in New York.
    evening = datetime(2026, 11, 4, 2, 30, tzinfo=UTC)
    [sent] = nudges(sessions, templates, evening)
    assert message(sessions, sent).episode_id == local
    assert load(sessions, remote).nudged_at is None

    # 08:00 in New York is 07:00 in Chicago: the New Yorker's morning counts.
    ny_morning = datetime(2026, 11, 4, 13, 0, tzinfo=UTC)
    [sent] = nudges(sessions, templates, ny_morning)
    assert message(sessions, sent).episode_id == remote


def test_practice_quiet_hours_setting_is_used(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    with session_scope(sessions) as session:
        session.execute(
            update(Practice).where(Practice.slug == PRACTICE).values(quiet_hours="00:00-00:00")
        )
    opened = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # 19:00 in Chicago
    open_episode(sessions, templates, at=opened)

    assert len(nudges(sessions, templates, opened + NUDGE_AFTER)) == 1  # 23:00, no quiet hours


def test_episodes_held_by_quiet_hours_do_not_starve_the_others(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    opened = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)
    held = open_episode(sessions, templates, at=opened, caller=NEW_YORKER, call_id="CA1")
    due = open_episode(sessions, templates, at=opened, caller=CALLER, call_id="CA2")
    assert held < due  # the held one comes first in the sweep's order

    [sent] = nudges(sessions, templates, datetime(2026, 11, 4, 2, 30, tzinfo=UTC), limit=1)

    assert message(sessions, sent).episode_id == due


# --- bookings ---------------------------------------------------------------------------


def test_booking_by_token_closes_the_episode_booked(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, booking_token="tok1")
    at = T0 + timedelta(hours=2)

    assert confirm(sessions, at, token="tok1") == episode_id

    episode = load(sessions, episode_id)
    assert (episode.status, episode.outcome) == (EpisodeStatus.CLOSED, EpisodeOutcome.BOOKED)
    assert episode.outcome_at == at


def test_booking_by_phone_books_the_callers_most_recent_episode_at_that_practice(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    older = open_episode(sessions, templates)
    sweep(sessions, T0 + WINDOW)
    newer = open_episode(sessions, templates, at=T0 + timedelta(days=2), call_id="CA2")

    booked = confirm(
        sessions, T0 + timedelta(days=2, hours=1), practice_slug=PRACTICE, phone=CALLER
    )

    assert booked == newer
    assert load(sessions, newer).outcome is EpisodeOutcome.BOOKED
    assert load(sessions, older).outcome is EpisodeOutcome.UNRECOVERED


def test_a_booking_a_day_late_turns_unrecovered_into_booked(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    assert sweep(sessions, T0 + WINDOW) == [episode_id]
    late = T0 + WINDOW + timedelta(days=1)

    assert confirm(sessions, late, practice_slug=PRACTICE, phone=CALLER) == episode_id

    episode = load(sessions, episode_id)
    assert (episode.status, episode.outcome) == (EpisodeStatus.CLOSED, EpisodeOutcome.BOOKED)
    assert episode.outcome_at == late


def test_a_booking_by_phone_long_after_the_window_is_not_credited(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    sweep(sessions, T0 + WINDOW)
    too_late = T0 + WINDOW + outcomes.LATE_BOOKING_WINDOW + timedelta(seconds=1)

    assert confirm(sessions, too_late, practice_slug=PRACTICE, phone=CALLER) is None
    assert load(sessions, episode_id).outcome is EpisodeOutcome.UNRECOVERED


def test_a_booking_through_our_link_counts_however_late(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, booking_token="tok1")
    sweep(sessions, T0 + WINDOW)

    assert confirm(sessions, T0 + timedelta(days=30), token="tok1") == episode_id
    assert load(sessions, episode_id).outcome is EpisodeOutcome.BOOKED


@pytest.mark.parametrize(
    "outcome", [EpisodeOutcome.RESOLVED, EpisodeOutcome.ESCALATED, EpisodeOutcome.OPTED_OUT]
)
def test_a_booking_does_not_replace_another_outcome(
    sessions: sessionmaker[Session], templates: SmsTemplates, outcome: EpisodeOutcome
) -> None:
    episode_id = open_episode(sessions, templates)
    ended = T0 + timedelta(minutes=30)
    change(
        sessions,
        episode_id,
        status=EpisodeStatus.CLOSED,
        outcome=outcome,
        outcome_at=ended,
        booking_token="tok1",
    )

    assert confirm(sessions, T0 + timedelta(hours=1), token="tok1") is None
    assert confirm(sessions, T0 + timedelta(hours=1), practice_slug=PRACTICE, phone=CALLER) is None
    episode = load(sessions, episode_id)
    assert (episode.outcome, episode.outcome_at) == (outcome, ended)


def test_a_repeated_confirmation_returns_the_booked_episode_unchanged(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, booking_token="tok1")
    first = T0 + timedelta(hours=1)
    assert confirm(sessions, first, token="tok1") == episode_id

    assert confirm(sessions, T0 + timedelta(hours=2), token="tok1") == episode_id
    assert load(sessions, episode_id).outcome_at == first


def test_an_unknown_booking_matches_nothing(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, booking_token="tok1")
    at = T0 + timedelta(hours=1)

    assert confirm(sessions, at, token="nope") is None
    assert confirm(sessions, at, practice_slug=PRACTICE, phone="+15125550123") is None
    assert confirm(sessions, at, practice_slug="always-open", phone=CALLER) is None
    assert load(sessions, episode_id).status is EpisodeStatus.OPEN


def test_an_unknown_token_falls_back_to_practice_and_phone(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    at = T0 + timedelta(hours=1)

    assert confirm(sessions, at, token="stale", practice_slug=PRACTICE, phone=CALLER) == episode_id
    assert load(sessions, episode_id).outcome is EpisodeOutcome.BOOKED


# --- the tracked link -------------------------------------------------------------------


def test_a_click_is_recorded_once_and_redirects_with_the_ref(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, booking_token="tok1")
    first = T0 + timedelta(minutes=5)

    target = click(sessions, "tok1", first)
    again = click(sessions, "tok1", first + timedelta(minutes=10))

    assert target == again == "https://book.example.com/valley-family?ref=tok1"
    assert load(sessions, episode_id).booking_clicked_at == first


def test_the_ref_is_added_to_the_booking_urls_own_query(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, booking_token="tok1")
    with session_scope(sessions) as session:
        session.execute(
            update(Practice)
            .where(Practice.slug == PRACTICE)
            .values(booking_url="https://book.example.com/vf?src=sms&ref=old&empty=#slots")
        )

    target = click(sessions, "tok1", T0)

    assert target == "https://book.example.com/vf?src=sms&empty=&ref=tok1#slots"


def test_an_unknown_link_is_none(sessions: sessionmaker[Session], templates: SmsTemplates) -> None:
    episode_id = open_episode(sessions, templates)
    change(sessions, episode_id, booking_token="tok1")

    assert click(sessions, "nope", T0) is None
    assert load(sessions, episode_id).booking_clicked_at is None


# --- staff tasks ------------------------------------------------------------------------


def test_claiming_an_open_task_makes_it_yours_and_it_stays_yours(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    task_id = add_task(sessions, open_episode(sessions, templates))
    at = T0 + timedelta(minutes=20)

    claimed = claim(sessions, task_id, "alice", at)
    assert claimed is not None
    assert (claimed.status, claimed.claimed_by, claimed.claimed_at) == (
        TaskStatus.CLAIMED,
        "alice",
        at,
    )

    other = claim(sessions, task_id, "bob", at + timedelta(minutes=1))
    assert other is not None
    assert (other.claimed_by, other.claimed_at) == ("alice", at)


def test_claiming_a_done_task_leaves_it_done(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    task_id = add_task(sessions, open_episode(sessions, templates), TaskStatus.DONE)

    task = claim(sessions, task_id, "bob", T0)
    assert task is not None
    assert (task.status, task.claimed_by) == (TaskStatus.DONE, None)


def test_completing_the_last_task_resolves_the_episode(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    task_id = add_task(sessions, episode_id)
    done_at = T0 + timedelta(hours=1)

    task = complete(
        sessions, task_id, by="alice", note="called back, balance explained", now=done_at
    )

    assert task is not None
    assert (task.status, task.completed_at) == (TaskStatus.DONE, done_at)
    assert (task.claimed_by, task.claimed_at) == ("alice", done_at)
    assert task.note == "called back, balance explained"
    episode = load(sessions, episode_id)
    assert (episode.outcome, episode.outcome_at) == (EpisodeOutcome.RESOLVED, done_at)


def test_completing_keeps_the_claimer_of_a_claimed_task(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    task_id = add_task(sessions, open_episode(sessions, templates))
    claim(sessions, task_id, "alice", T0)

    task = complete(sessions, task_id, by="bob")

    assert task is not None
    assert (task.status, task.claimed_by, task.claimed_at) == (TaskStatus.DONE, "alice", T0)


def test_an_episode_resolves_only_when_its_other_task_is_done_too(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    billing = add_task(sessions, episode_id)
    refill = add_task(sessions, episode_id, TaskStatus.CLAIMED)

    complete(sessions, billing, now=T0 + timedelta(hours=1))
    assert load(sessions, episode_id).status is EpisodeStatus.OPEN

    complete(sessions, refill, now=T0 + timedelta(hours=2))
    episode = load(sessions, episode_id)
    assert (episode.outcome, episode.outcome_at) == (
        EpisodeOutcome.RESOLVED,
        T0 + timedelta(hours=2),
    )


def test_an_active_page_keeps_the_episode_open_after_its_task_is_done(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    task_id = add_task(sessions, episode_id)
    add_page(sessions, episode_id)

    complete(sessions, task_id)

    assert load(sessions, episode_id).status is EpisodeStatus.OPEN


def test_completing_a_done_task_again_changes_nothing(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    task_id = add_task(sessions, episode_id)
    first = T0 + timedelta(hours=1)
    complete(sessions, task_id, by="alice", note="done", now=first)

    again = complete(sessions, task_id, by="bob", note="again", now=first + timedelta(hours=1))

    assert again is not None
    assert (again.completed_at, again.claimed_by, again.note) == (first, "alice", "done")
    assert load(sessions, episode_id).outcome_at == first


def test_completing_a_task_of_an_episode_that_ended_otherwise_keeps_that_outcome(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    episode_id = open_episode(sessions, templates)
    task_id = add_task(sessions, episode_id)
    change(sessions, episode_id, status=EpisodeStatus.CLOSED, outcome=EpisodeOutcome.OPTED_OUT)

    task = complete(sessions, task_id)

    assert task is not None and task.status is TaskStatus.DONE
    assert load(sessions, episode_id).outcome is EpisodeOutcome.OPTED_OUT


def test_unknown_task_ids_are_none(sessions: sessionmaker[Session]) -> None:
    assert claim(sessions, 9999, "alice", T0) is None
    assert complete(sessions, 9999) is None


def test_a_repeated_claim_or_completion_says_it_changed_nothing(
    sessions: sessionmaker[Session], templates: SmsTemplates
) -> None:
    # The same person, the same second (a double-submitted form): only the first counts,
    # which a comparison of timestamps and names could not tell.
    task_id = add_task(sessions, open_episode(sessions, templates))
    with session_scope(sessions) as session:
        first = outcomes.claim_task(session, task_id, by="alice", now=T0)
        again = outcomes.claim_task(session, task_id, by="alice", now=T0)
        assert first is not None and again is not None
        assert (first.changed, again.changed) == (True, False)
        done = outcomes.complete_task(session, task_id, by="alice", note=None, now=T0)
        redone = outcomes.complete_task(session, task_id, by="alice", note=None, now=T0)
        assert done is not None and redone is not None
        assert (done.changed, redone.changed) == (True, False)
