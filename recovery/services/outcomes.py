"""Outcomes: every missed-call episode ends in exactly one outcome, and this is where.

The manager's recovery rate is booked-or-resolved over all episodes, so an episode that
never ends, or ends twice, makes the number wrong. The rules:

* `close_episode` is the one way to end an episode; a second close changes nothing.
* The only outcome that is ever replaced is UNRECOVERED, and only by BOOKED: a patient
  who ignored our texts and booked anyway a day later was recovered (see
  `confirm_booking` for how late still counts).
* Sweeps (`sweep_unrecovered`, `due_nudges`) lock the rows they act on with
  SKIP LOCKED, so two beat ticks that overlap cannot both close or both nudge one episode.

Plain functions on a Session: the caller owns the transaction, and dispatches any queued
message ids only after it commits.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from recovery.domain.change import Changed
from recovery.domain.messages import MessageKind
from recovery.domain.phones import mask
from recovery.domain.quiet_hours import in_quiet_hours, patient_timezone
from recovery.domain.states import may_move, move, sources
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    Episode,
    EpisodeOutcome,
    EpisodeStatus,
    Page,
    PageStatus,
    Practice,
    Task,
    TaskStatus,
)
from recovery.models.user import fit_name
from recovery.services.consent import is_opted_out
from recovery.services.errors import NotFound
from recovery.services.texts import line_called, queue_text

log = logging.getLogger(__name__)

# How long after its reply deadline an unrecovered episode can still be turned into a
# booking by a confirmation that names only the patient's phone. Booking systems report
# every booking, including a regular patient's routine visit months later; without a
# bound that visit would be credited to an old missed call. A week covers the patient who
# books "tomorrow" or after the weekend. A confirmation carrying our link's token needs no
# bound: the token proves the booking came through our text.
LATE_BOOKING_WINDOW = timedelta(days=7)

_OPEN_TASK_STATUSES = sources(TaskStatus.DONE)  # someone must still do it


def close_episode(episode: Episode, outcome: EpisodeOutcome, now: datetime) -> bool:
    """End an open episode with `outcome`. False, and nothing changed, if it had ended."""
    if not may_move(episode.status, EpisodeStatus.CLOSED):
        return False
    episode.status = move(episode.status, EpisodeStatus.CLOSED)
    episode.outcome = outcome
    episode.outcome_at = now
    # A call after the outcome is a new reason to call: it must start a new episode,
    # not join one whose story is over.
    episode.joinable = False
    return True


def _open_work(episode_id: int | InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """SQL: the episode has a task someone must still do, or a live page. Either way a
    person owns it, and that person's action (complete, acknowledge) will end it."""
    open_task = exists().where(Task.episode_id == episode_id, Task.status.in_(_OPEN_TASK_STATUSES))
    active_page = exists().where(Page.episode_id == episode_id, Page.status == PageStatus.ACTIVE)
    return or_(open_task, active_page)


def sweep_unrecovered(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Close UNRECOVERED the open episodes whose reply window has passed with nothing left
    to do: no open or claimed task and no active page (staff or on-call still own those,
    and they close the episode themselves). Episodes without a deadline are left alone."""
    episodes = session.scalars(
        select(Episode)
        .where(
            Episode.status == EpisodeStatus.OPEN,
            Episode.reply_deadline_at.is_not(None),
            Episode.reply_deadline_at <= now,
            ~_open_work(Episode.id),
        )
        .order_by(Episode.reply_deadline_at, Episode.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    closed = [e.id for e in episodes if close_episode(e, EpisodeOutcome.UNRECOVERED, now)]
    if closed:
        log.info("%d episode(s) ended unrecovered: %s", len(closed), closed)
    return closed


def due_nudges(
    session: Session, templates: SmsTemplates, now: datetime, limit: int = 500
) -> list[int]:
    """Queue the one follow-up nudge of each episode whose patient has not replied.

    Due from `opened_at + nudge_after_h` until the reply deadline, once the first text was
    accepted (a nudge after a first text that never left would be the patient's first
    text, from nowhere). During the practice's quiet hours on the patient's clock it is
    not queued and not marked: a later sweep sends it when the quiet period ends, or never
    if the deadline comes first. Returns the queued message ids, to dispatch after commit.
    """
    queued: list[int] = []
    after_id = 0
    # Candidates are read in id order, batch after batch, so that episodes skipped for now
    # (quiet hours on the patient's clock, not due yet at a slow practice) cannot fill
    # `limit` and starve the rest. The open, unreplied, unnudged episodes inside their reply
    # window are about one window's worth of missed calls, so reading them all is cheap.
    while len(queued) < limit:
        batch = session.scalars(
            select(Episode)
            .where(
                Episode.id > after_id,
                Episode.status == EpisodeStatus.OPEN,
                Episode.last_reply_at.is_(None),
                Episode.nudged_at.is_(None),
                Episode.first_text_accepted_at.is_not(None),
                Episode.reply_deadline_at > now,
            )
            .order_by(Episode.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).all()
        if not batch:
            break
        after_id = batch[-1].id
        for episode in batch:
            if len(queued) >= limit:
                break
            message_id = _nudge(session, templates, episode, now)
            if message_id is not None:
                queued.append(message_id)
    if queued:
        log.info("%d nudge(s) queued", len(queued))
    return queued


def _nudge(
    session: Session, templates: SmsTemplates, episode: Episode, now: datetime
) -> int | None:
    practice = session.get(Practice, episode.practice_id)
    assert practice is not None
    if episode.opened_at + timedelta(hours=practice.nudge_after_h) > now:
        return None
    if is_opted_out(session, practice.id, episode.caller):
        return None
    zone = patient_timezone(episode.caller, practice.timezone)
    if in_quiet_hours(now, practice.quiet_hours, zone):
        return None
    message = queue_text(
        session,
        templates,
        practice,
        to=episode.caller,
        kind=MessageKind.NUDGE,
        now=now,
        language=episode.language,
        from_number=line_called(session, practice, episode),
        episode_id=episode.id,
    )
    episode.nudged_at = now
    log.info("episode %s: nudge %s queued to %s", episode.id, message.id, mask(episode.caller))
    return message.id


def confirm_booking(
    session: Session,
    *,
    now: datetime,
    token: str | None = None,
    practice_slug: str | None = None,
    phone: str | None = None,
    practice_id: int | None = None,
) -> Episode | None:
    """A booking system says the patient booked: the episode ends BOOKED.

    Which episode: the one whose tracked-link token is `token`; else (no token, or an
    unknown one) the most recent episode of `phone` (E.164) at the practice `practice_slug`.
    With `practice_id` (the practice whose secret signed the confirmation), a token or a
    slug of another practice is NotFound, and nothing changes.

    Which bookings count:
    * an OPEN episode with an active urgent page is left OPEN, the page too: the booking
      is recorded (`booking_confirmed_at`) and the episode returned, still open. A booking
      made while a clinician is being paged must not stop the paging nor hide the page;
      the acknowledgement ends the episode (ESCALATED);
    * an OPEN episode is closed BOOKED;
    * an UNRECOVERED one becomes BOOKED: the patient booked late, but booked. By token at
      any time; by phone only until LATE_BOOKING_WINDOW after its reply deadline;
    * an episode already BOOKED is returned unchanged (the booking system retried);
    * any other outcome (RESOLVED, ESCALATED, OPTED_OUT) is kept, and None is returned:
      the episode's story ended another way, and the booking is not credited to it.
    Returns the BOOKED episode (or the open one of the first rule), or None when no
    episode was (or already is) booked.
    """
    if practice_id is not None and practice_slug:
        slug_id = session.scalar(select(Practice.id).where(Practice.slug == practice_slug))
        if slug_id != practice_id:
            raise NotFound(f"no practice {practice_slug} for this secret")
    episode = _booking_episode(session, token, practice_slug, phone)
    if practice_id is not None and episode is not None and episode.practice_id != practice_id:
        raise NotFound("no such booking reference for this secret")
    if episode is None:
        log.info("booking confirmation matched no episode (phone %s)", mask(phone))
        return None
    if episode.booking_confirmed_at is None:
        episode.booking_confirmed_at = now
    if episode.outcome is EpisodeOutcome.BOOKED:
        return episode
    if episode.status is EpisodeStatus.OPEN and _has_active_page(session, episode.id):
        log.info("episode %s: booking recorded; its urgent page is still active", episode.id)
        return episode
    if episode.status is EpisodeStatus.OPEN:
        close_episode(episode, EpisodeOutcome.BOOKED, now)
    elif episode.outcome is EpisodeOutcome.UNRECOVERED and _late_booking_counts(
        episode, by_token=token is not None and episode.booking_token == token, now=now
    ):
        episode.outcome = EpisodeOutcome.BOOKED
        episode.outcome_at = now
        log.info("episode %s: late booking turns unrecovered into booked", episode.id)
    else:
        log.info(
            "episode %s already ended %s; booking not credited",
            episode.id,
            episode.outcome.value if episode.outcome else None,
        )
        return None
    log.info("episode %s booked (%s)", episode.id, mask(episode.caller))
    return episode


def _has_active_page(session: Session, episode_id: int) -> bool:
    active = exists().where(Page.episode_id == episode_id, Page.status == PageStatus.ACTIVE)
    return bool(session.scalar(select(active)))


def _booking_episode(
    session: Session, token: str | None, practice_slug: str | None, phone: str | None
) -> Episode | None:
    # FOR UPDATE: a confirmation racing the unrecovered sweep waits for it and then sees
    # UNRECOVERED (and books it), instead of both writing an outcome.
    if token:
        episode = session.scalars(
            select(Episode)
            .where(Episode.booking_token == token)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if episode is not None:
            return episode
    if not (practice_slug and phone):
        return None
    return session.scalars(
        select(Episode)
        .join(Practice, Practice.id == Episode.practice_id)
        .where(Practice.slug == practice_slug, Episode.caller == phone)
        .order_by(Episode.opened_at.desc(), Episode.id.desc())
        .limit(1)
        .with_for_update(of=Episode)
        .execution_options(populate_existing=True)
    ).first()


def _late_booking_counts(episode: Episode, *, by_token: bool, now: datetime) -> bool:
    if by_token:
        return True
    ended = episode.reply_deadline_at or episode.outcome_at or episode.opened_at
    return now <= ended + LATE_BOOKING_WINDOW


def record_booking_click(session: Session, token: str, now: datetime) -> str | None:
    """The patient tapped the tracked link: note the first tap, and where to send them.

    Returns the practice's booking URL with `ref=<token>` added to its query (the booking
    system echoes it back in its confirmation), or None for an unknown token or a practice
    that has no booking page any more.
    """
    episode = session.scalars(select(Episode).where(Episode.booking_token == token)).first()
    if episode is None:
        return None
    practice = session.get(Practice, episode.practice_id)
    if practice is None or not practice.booking_url:
        return None
    # The first tap is the conversion signal; later taps (a reload, a second look) are not.
    if episode.booking_clicked_at is None:
        episode.booking_clicked_at = now
    return _with_ref(practice.booking_url, token)


def _with_ref(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ref"]
    query.append(("ref", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def claim_task(session: Session, task_id: int, *, by: str, now: datetime) -> Changed[Task] | None:
    """OPEN -> CLAIMED by `by`. A task someone already claimed stays theirs, and a done
    task stays done: both are returned unchanged. None for an unknown id."""
    # FOR UPDATE: two people clicking "claim" together; the second sees the first's claim.
    task = session.get(Task, task_id, with_for_update=True, populate_existing=True)
    if task is None:
        return None
    # Only an open task is claimed: a done one may move back, but only through Undo.
    if task.status is not TaskStatus.OPEN:
        return Changed(task, False)
    task.status = move(task.status, TaskStatus.CLAIMED)
    task.claimed_by = fit_name(by)
    task.claimed_at = now
    return Changed(task, True)


def complete_task(
    session: Session,
    task_id: int,
    *,
    by: str,
    note: str | None,
    now: datetime,
    reached_patient: bool = True,
) -> Changed[Task] | None:
    """The task is done; when it was the episode's last open work, the episode is RESOLVED,
    if a person reached the patient (`reached_patient`). A task closed without anyone
    answering the patient leaves the episode open, to end unrecovered at its deadline:
    "resolved" would count as recovered a patient who never heard from us.

    Completing a done task changes nothing. None for an unknown id. `note` is stored as
    given: the caller encrypts it (queue.complete).
    """
    task = session.get(Task, task_id, with_for_update=True, populate_existing=True)
    if task is None:
        return None
    if not may_move(task.status, TaskStatus.DONE):
        return Changed(task, False)
    # Lock the episode before counting its open work: two tasks of one episode completed
    # at once would each see the other still open, and neither would resolve it.
    episode = session.get(Episode, task.episode_id, with_for_update=True, populate_existing=True)
    task.status = move(task.status, TaskStatus.DONE)
    task.completed_at = now
    if task.claimed_by is None:
        task.claimed_by = fit_name(by)
        task.claimed_at = now
    if note is not None:
        task.note = note
    session.flush()
    if episode is None or not reached_patient:
        return Changed(task, True)
    if not session.scalar(select(_open_work(episode.id))) and close_episode(
        episode, EpisodeOutcome.RESOLVED, now
    ):
        log.info("episode %s resolved by task %s", episode.id, task.id)
    return Changed(task, True)
