"""Practices: loading them from their file into the database (an idempotent upsert), and
finding the one a number belongs to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from recovery.models import Practice, PracticeNumber
from recovery.schemas.practices import PracticeConfig, PracticesFile


@dataclass(frozen=True)
class LoadReport:
    created: list[str]
    updated: list[str]


def load_practices(session: Session, config: PracticesFile) -> LoadReport:
    # A number may move between practices in one edit. Release every number the file gives
    # to another practice first: if the gaining practice came first in the file, its new
    # row would be inserted while the losing practice still held the number (unique).
    owner = {number: p.slug for p in config.practices for number in p.numbers}
    moved = session.scalars(
        select(PracticeNumber).where(PracticeNumber.number.in_(list(owner)))
    ).all()
    for row in moved:
        if row.practice.slug != owner[row.number]:
            row.practice.numbers.remove(row)
    session.flush()

    created, updated = [], []
    for practice_config in config.practices:
        practice = session.scalar(select(Practice).where(Practice.slug == practice_config.slug))
        if practice is None:
            practice = Practice(slug=practice_config.slug)
            session.add(practice)
            created.append(practice_config.slug)
        else:
            updated.append(practice_config.slug)
        _apply(session, practice, practice_config)
    session.flush()
    return LoadReport(created=created, updated=updated)


def _apply(session: Session, practice: Practice, config: PracticeConfig) -> None:
    practice.name = config.name
    practice.timezone = config.timezone
    practice.forward_to = config.forward_to
    practice.ring_timeout_s = config.ring_timeout_s
    practice.hours = config.hours
    practice.holidays = config.holidays
    practice.booking_url = config.booking_url
    practice.visit_value = config.visit_value
    if practice.roster_edited_at is None:  # else the browser owns the roster (README)
        practice.on_call = [entry.model_dump() for entry in config.on_call]
        practice.manager = config.manager.model_dump() if config.manager else None
    practice.blocked_numbers = config.blocked_numbers
    practice.episode_window_h = config.episode_window_h
    practice.billing_sla_h = config.billing_sla_h
    practice.refill_sla_h = config.refill_sla_h
    practice.refill_cutoff = config.refill_cutoff
    practice.ack_timeout_s = config.ack_timeout_s
    practice.clinical_callback_min = config.clinical_callback_min
    practice.send_rate_per_s = config.send_rate_per_s
    practice.reply_window_h = config.reply_window_h
    practice.nudge_after_h = config.nudge_after_h
    practice.quiet_hours = config.quiet_hours

    # Numbers are the lookup key of every webhook; keep existing rows (and their order:
    # the first is the practice's main number) and only add or drop what changed.
    wanted = list(config.numbers)
    kept = [n for n in practice.numbers if n.number in wanted]
    for stale in [n for n in practice.numbers if n.number not in wanted]:
        practice.numbers.remove(stale)
    session.flush()  # drop before add, so a number moved between practices stays unique
    have = {n.number for n in kept}
    for number in wanted:
        if number not in have:
            practice.numbers.append(PracticeNumber(number=number))
    for number_row in practice.numbers:
        number_row.position = wanted.index(number_row.number)


def find_practice_by_number(session: Session, number: str) -> Practice | None:
    # Every webhook reads the practice's numbers next (which line was called, is the
    # caller one of ours): load them with the practice, not in a second round trip.
    return (
        session.scalars(
            select(Practice)
            .join(PracticeNumber)
            .where(PracticeNumber.number == number)
            .options(joinedload(Practice.numbers))
        )
        .unique()
        .first()
    )


def find_practice_by_forward_to(session: Session, number: str) -> Practice | None:
    return session.scalars(
        select(Practice).where(Practice.forward_to == number).order_by(Practice.id)
    ).first()


class PracticeDirectory:
    """The practice each number belongs to, remembered for `ttl_s` seconds per process.

    Every webhook starts by finding its practice; that query (the practice and its numbers)
    was a sixth of a webhook's CPU under load (bench/README.md, finding 11). Practices only
    change when their file is loaded, so a running web process sees an edit within `ttl_s`.

    The practices handed out are detached from any session, with their numbers loaded, and
    shared by the process's threads: read them, never add them to a session or change them.
    An unknown number is not remembered, so a number just added works at once.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._clock = clock
        self._known: dict[str, tuple[float, Practice]] = {}
        self._lock = threading.Lock()

    def by_number(self, number: str) -> Practice | None:
        now = self._clock()
        known = self._known.get(number)
        if known is not None and known[0] > now:
            return known[1]
        with self._sessions() as session:
            practice = find_practice_by_number(session, number)
            if practice is None:
                return None
            session.expunge(practice)  # its numbers go with it (cascade)
        with self._lock:
            self._known[number] = (now + self._ttl_s, practice)
        return practice
