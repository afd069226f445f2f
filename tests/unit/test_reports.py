"""The recovery report's figures over a hand-made week at Valley Family Clinic (Chicago).

Rows are written directly so every edge is placed on purpose: the last minute of Sunday in
Chicago, a text-opened episode, another practice, the week before. The same figures made
through the real webhooks are in tests/integration/test_reports.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.periods import custom
from recovery.models import (
    CallDisposition,
    CallEvent,
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Page,
    PageStatus,
    Practice,
    Task,
    TaskQueue,
    TaskStatus,
)
from recovery.services.reports import Report, build_report, csv_rows, percentile

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
LAST_WEEK = custom(date(2026, 11, 23), date(2026, 11, 29))


def at(local: str) -> datetime:
    """A Chicago wall-clock time in November 2026 (CST, UTC-6) as UTC."""
    return datetime.fromisoformat(local).replace(tzinfo=UTC) + timedelta(hours=6)


def practice_id(session: Session, slug: str) -> int:
    found = session.scalar(select(Practice.id).where(Practice.slug == slug))
    assert found is not None
    return found


def add_episode(
    session: Session,
    pid: int,
    opened: datetime,
    outcome: EpisodeOutcome | None,
    *,
    intent: str | None = None,
    ttft: int | None = None,
    calls: int = 1,
    caller: str = "+15125550199",
) -> Episode:
    episode = Episode(
        practice_id=pid,
        caller=caller,
        status=EpisodeStatus.OPEN if outcome is None else EpisodeStatus.CLOSED,
        joinable=False,
        opened_at=opened,
        last_call_at=opened,
        call_count=calls,
        time_to_first_text_ms=ttft,
        first_text_accepted_at=None if ttft is None else opened + timedelta(milliseconds=ttft),
        intent=intent,
        outcome=outcome,
        outcome_at=None if outcome is None else opened + timedelta(hours=1),
    )
    session.add(episode)
    session.flush()
    return episode


def add_call(session: Session, pid: int, when: datetime, disposition: CallDisposition) -> None:
    n = session.scalar(select(CallEvent.id).order_by(CallEvent.id.desc())) or 0
    session.add(
        CallEvent(
            practice_id=pid,
            provider="twilio",
            provider_call_id=f"CA{n + 1}",
            caller="+15125550199",
            caller_raw="+15125550199",
            called="+15125550100",
            disposition=disposition,
            reason="no-answer",
            occurred_at=when,
            received_at=when,
            raw_payload={},
        )
    )


@pytest.fixture
def week(sessions: sessionmaker[Session]) -> None:
    Out = EpisodeOutcome
    with sessions.begin() as s:
        valley, other = practice_id(s, "valley-family"), practice_id(s, "always-open")
        add_episode(s, valley, at("2026-11-23 09:15"), Out.BOOKED, intent="book", ttft=400)
        billing = add_episode(
            s, valley, at("2026-11-23 10:00"), Out.RESOLVED, intent="billing", ttft=600,
            caller="+15125550188",
        )  # fmt: skip
        refill = add_episode(s, valley, at("2026-11-24 23:30"), Out.UNRECOVERED, ttft=1500)
        add_episode(s, valley, at("2026-11-29 23:59"), Out.UNRECOVERED)  # never texted
        add_episode(s, valley, at("2026-11-25 12:00"), None, intent="book", ttft=3000)
        urgent = add_episode(
            s, valley, at("2026-11-26 12:00"), Out.ESCALATED, intent="urgent", ttft=800
        )
        # Not counted: opened by a text, not a call; Monday after; another practice.
        add_episode(s, valley, at("2026-11-24 12:00"), Out.BOOKED, intent="book", calls=0)
        add_episode(s, valley, at("2026-11-30 00:10"), Out.BOOKED, intent="book", ttft=100)
        add_episode(s, other, at("2026-11-24 12:00"), Out.BOOKED, intent="book", ttft=100)
        # The week before.
        add_episode(s, valley, at("2026-11-18 09:00"), Out.BOOKED, intent="book", ttft=500)
        add_episode(s, valley, at("2026-11-19 09:00"), Out.OPTED_OUT, ttft=700)

        for n in range(7):
            add_call(s, valley, at("2026-11-23 09:15") + timedelta(hours=n), CallDisposition.MISSED)
        for n in range(3):
            add_call(
                s, valley, at("2026-11-24 09:00") + timedelta(hours=n), CallDisposition.ANSWERED
            )
        add_call(s, valley, at("2026-11-22 09:00"), CallDisposition.ANSWERED)  # week before

        def task(
            episode: Episode, queue: TaskQueue, created: str, due: str, done: str | None
        ) -> None:
            s.add(
                Task(
                    practice_id=valley, episode_id=episode.id, queue=queue, reason="x",
                    status=TaskStatus.DONE if done else TaskStatus.OPEN, due_at=at(due),
                    created_at=at(created), completed_at=at(done) if done else None,
                )
            )  # fmt: skip

        task(billing, TaskQueue.BILLING, "2026-11-23 10:05", "2026-11-23 14:00", "2026-11-23 13:00")
        task(billing, TaskQueue.BILLING, "2026-11-23 10:06", "2026-11-23 14:00", "2026-11-24 09:00")
        task(refill, TaskQueue.CARE_TEAM, "2026-11-25 08:00", "2026-11-25 10:00", None)
        reply = at("2026-11-26 12:03")
        s.add(
            Page(
                practice_id=valley, episode_id=urgent.id, code="7777",
                status=PageStatus.ACKNOWLEDGED, roster=[], reply_received_at=reply,
                first_page_at=reply + timedelta(seconds=2),
                acknowledged_at=reply + timedelta(seconds=90), created_at=reply,
            )
        )  # fmt: skip


def report(sessions: sessionmaker[Session]) -> Report:
    with sessions() as s:
        valley = s.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        return build_report(s, [valley], LAST_WEEK, now=NOW)


def test_outcomes_recovery_rate_and_revenue_match_the_hand_count(
    sessions: sessionmaker[Session], week: None
) -> None:
    figures = report(sessions).current
    assert figures.missed_calls == 6
    assert figures.outcome_counts() == {
        "booked": 1,
        "resolved": 1,
        "escalated": 1,
        "opted_out": 0,
        "unrecovered": 2,
        "open": 1,
    }
    assert figures.recovered == 2
    assert figures.recovery_rate == round(2 / 6, 4)
    assert figures.revenue_recovered == 180  # one booking x visit_value 180
    assert figures.self_scheduling_conversion == 0.5  # 1 booked of 2 who asked to book


def test_time_to_first_text_percentiles_leave_out_the_never_texted(
    sessions: sessionmaker[Session], week: None
) -> None:
    figures = report(sessions).current
    assert (figures.texted, figures.never_texted) == (5, 1)
    assert figures.ttft_p50_ms == 800
    assert figures.ttft_p95_ms == pytest.approx(2700)  # 1500 + 0.8 x (3000 - 1500)
    assert figures.ttft_max_ms == 3000
    assert report(sessions).charts.ttft_buckets == (1, 2, 1, 1, 0, 0)


def test_answer_rate_pages_and_tasks(sessions: sessionmaker[Session], week: None) -> None:
    figures = report(sessions).current
    assert (figures.missed_call_events, figures.answered_calls) == (7, 3)
    assert figures.answer_rate == 0.3
    assert (figures.pages, figures.page_p50_ms, figures.ack_max_ms) == (1, 2000, 90_000)
    queues = {q.queue: q for q in figures.tasks}
    billing, care = queues[TaskQueue.BILLING], queues[TaskQueue.CARE_TEAM]
    assert (billing.created, billing.done, billing.done_within_sla, billing.breached) == (
        2,
        2,
        1,
        1,
    )
    assert billing.sla_share == 0.5
    assert (care.open, care.breached, care.sla_share) == (1, 1, None)


def test_the_previous_week_stands_beside_it(sessions: sessionmaker[Session], week: None) -> None:
    previous = report(sessions).previous
    assert (previous.missed_calls, previous.booked, previous.opted_out) == (2, 1, 1)
    assert previous.revenue_recovered == 180
    assert previous.answered_calls == 1
    assert previous.answer_rate == 1.0


def test_days_and_the_heat_map_are_on_chicago_clocks(
    sessions: sessionmaker[Session], week: None
) -> None:
    charts = report(sessions).charts
    assert [(d.day.day, d.missed, d.recovered) for d in charts.days] == [
        (23, 2, 2),
        (24, 1, 0),  # 23:30 Tuesday in Chicago is Wednesday in UTC
        (25, 1, 0),
        (26, 1, 0),
        (27, 0, 0),
        (28, 0, 0),
        (29, 1, 0),  # 23:59 Sunday
    ]
    unrecovered = {
        (day, hour): n for day, row in enumerate(charts.heat) for hour, n in enumerate(row) if n
    }
    assert unrecovered == {(1, 23): 1, (6, 23): 1}


def test_an_empty_range_has_no_rates_rather_than_zero(sessions: sessionmaker[Session]) -> None:
    figures = report(sessions).current
    assert figures.missed_calls == 0
    assert figures.recovery_rate is None
    assert figures.ttft_p50_ms is None
    assert figures.answer_rate is None


def test_the_csv_rows_are_local_masked_and_say_whether_tasks_met_their_sla(
    sessions: sessionmaker[Session], week: None
) -> None:
    with sessions() as s:
        valley = s.scalars(select(Practice).where(Practice.slug == "valley-family")).one()
        rows = list(csv_rows(s, [valley], LAST_WEEK.current))
    assert len(rows) == 6
    first, billing = rows[0], rows[1]
    assert first[2] == "2026-11-23T09:15:00-06:00"
    assert first[5] == "***-***-0199"
    assert "+1512" not in repr(rows)
    assert (first[7], first[10], first[11], first[12]) == ("booked", "yes", 0, "")
    assert (billing[7], billing[11], billing[12]) == ("resolved", 2, "no")  # one was late
    assert rows[-1][2] == "2026-11-29T23:59:00-06:00"
    assert rows[-1][9] == ""  # never texted


def test_percentile_interpolates_like_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10], 0.95) == 10
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
