"""Paging: an urgent reply texts on-call clinical staff until one of them acknowledges.

A missed urgent page is the worst failure this product can have, so the chain never ends
on its own: only an acknowledgement stops it.

The escalation rule, per page (all state on the `pages` row, so a worker restart loses no
timer; the beat job calls `escalate_due`):

* Round 0 walks the roster snapshot one person at a time: the first person is paged when
  the page starts, and each time `ack_timeout_s` passes without an ACK the next one is.
* When round 0 has paged everyone, the next escalation is round 1: the whole roster and
  the practice's manager, all at once. Every further `ack_timeout_s` repeats that as
  round 2, 3, ... until someone acknowledges.
* From round 1 on, everyone paged by text is also called (a Twilio call whose voice says
  the practice has a page and "press 1 to take it"): a text nobody answered in a whole
  round may be on a phone face down, and a ringing phone is harder to miss. Pressing 1
  is an ACK (`voice_pages.press`). Round 0 texts only: most pages are taken there, and
  a call in the middle of a clinic visit is the costlier interruption.
* An empty roster skips straight to round 1 (the manager alone). With nobody at all to
  page the page still exists, stays ACTIVE, and every escalation logs an ERROR: a roster
  or manager added to the practice later is picked up by the next sweep.

Texts go out from the practice's main number and carry only the practice's name, the
page's short code and a link behind the staff login: the patient's number and words never
leave the database.

When one person acknowledges, the others who were paged get no "stand down" text: a
further ACK from them gets `already_acknowledged` (and the caller can tell them who has
it), the link shows the page as taken, and every extra text is one more message a busy
clinician must read and one more that can arrive out of order (a stand-down delivered
before the page it cancels).

Everything runs in the caller's transaction; the returned message ids are dispatched by
the caller after commit.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.db import insert_unique
from recovery.domain.change import Changed
from recovery.domain.messages import MessageKind
from recovery.domain.pages import AckProblem, PageReason
from recovery.domain.phones import mask, parse_number
from recovery.domain.states import move
from recovery.domain.tasks import TaskReason
from recovery.domain.templates import SmsTemplates
from recovery.models import (
    Episode,
    EpisodeOutcome,
    Message,
    MessageStatus,
    Page,
    PageStatus,
    Practice,
    Task,
    TaskStatus,
)
from recovery.models.user import fit_name
from recovery.services.outcomes import close_episode
from recovery.services.texts import queue_text

log = logging.getLogger(__name__)

# A page reaches a clinician as a text and, from round 1 on, as a call too.
PAGE_KINDS = (MessageKind.PAGE, MessageKind.PAGE_CALL)

PAGE_LINK_PATH = "/p/{code}"  # the staff link in a page text: public_base_url + "/p/<code>"

# Short enough to type on a phone in a hurry. The code is unique among all pages ever
# (a unique column), so the four-digit space fills up over time: when random four-digit
# codes keep colliding we fall back to longer codes (the column holds 8) rather than fail
# to page. Staff quote whatever the text says, so a longer code needs no other change.
CODE_LENGTHS = (4, 6, 8)
CODE_TRIES_PER_LENGTH = 25
# A race between two transactions that both found the same code free; the unique
# constraint catches it and we draw again.
MAX_INSERT_ATTEMPTS = 5


@dataclass(frozen=True)
class PageResult:
    page: Page
    message_ids: list[int]  # texts queued (pending) that the caller dispatches after commit


@dataclass(frozen=True)
class AckResult:
    page: Page | None
    problem: AckProblem | None  # None: the page is taken
    message_ids: list[int]


def on_call_numbers(practice: Practice) -> set[str]:
    """Who may acknowledge a page of this practice: its roster phones and its manager."""
    numbers = {entry["phone"] for entry in practice.on_call if entry.get("phone")}
    if practice.manager and practice.manager.get("phone"):
        numbers.add(practice.manager["phone"])
    return numbers


def may_acknowledge(session: Session, practice: Practice, number: str) -> bool:
    """Whether a text from `number` is a clinician's, to be read as an ACK: the practice's
    roster and manager today, or anyone a page of this practice went to (someone taken
    off the roster mid-page can still take the page they were sent)."""
    if number in on_call_numbers(practice):
        return True
    paged = session.scalar(
        select(Message.id)
        .where(
            Message.practice_id == practice.id,
            Message.kind.in_(PAGE_KINDS),
            Message.to_number == number,
        )
        .limit(1)
    )
    return paged is not None


def page_link(public_base_url: str, code: str) -> str:
    return public_base_url.rstrip("/") + PAGE_LINK_PATH.format(code=code)


# --- starting and escalating -----------------------------------------------------------


def start_page(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    episode: Episode,
    *,
    reply_received_at: datetime,
    now: datetime,
    public_base_url: str,
    reason: PageReason = PageReason.URGENT,
) -> PageResult:
    """Open a page for an urgent episode and text the first person on call.

    An episode that already has an ACTIVE page keeps it: a patient who writes "URGENT"
    and then "please hurry" must not start a second chain paging the same people twice.
    """
    existing = session.scalars(
        select(Page)
        .where(Page.episode_id == episode.id, Page.status == PageStatus.ACTIVE)
        .order_by(Page.id)
    ).first()
    if existing is not None:
        log.info("episode %s already has active page %s: not paging again", episode.id, existing.id)
        return PageResult(existing, [])

    roster = [{"name": str(e["name"]), "phone": str(e["phone"])} for e in practice.on_call]
    page = _insert_page(
        session,
        practice_id=practice.id,
        episode_id=episode.id,
        status=PageStatus.ACTIVE,
        reason=reason,
        roster=roster,
        next_index=0,
        round=0,
        reply_received_at=reply_received_at,
        created_at=now,
    )
    message_ids = _page_next(session, templates, practice, page, now, public_base_url)
    return PageResult(page, message_ids)


def escalate_due(
    session: Session,
    templates: SmsTemplates,
    *,
    now: datetime,
    public_base_url: str,
    limit: int = 100,
) -> list[int]:
    """The beat job's sweep: page the next people on every page whose ACK is overdue.

    SKIP LOCKED: two overlapping sweeps each take different pages, never the same one
    twice, and a page being acknowledged right now is left to the acknowledgement.
    """
    pages = session.scalars(
        select(Page)
        .where(Page.status == PageStatus.ACTIVE, Page.next_escalation_at <= now)
        .order_by(Page.next_escalation_at, Page.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    message_ids: list[int] = []
    for page in pages:
        practice = session.get(Practice, page.practice_id)
        assert practice is not None  # a foreign key
        try:
            # One page that cannot be escalated (a broken template, a bad number) must not
            # hold up every other page in the sweep; it stays due and is tried again.
            with session.begin_nested():
                message_ids += _page_next(session, templates, practice, page, now, public_base_url)
        except Exception:
            log.exception("page %s: escalation failed; it stays due for the next sweep", page.id)
    return message_ids


def _page_next(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    page: Page,
    now: datetime,
    public_base_url: str,
) -> list[int]:
    """One step of the chain: choose who to page now, text them, set the next deadline."""
    if page.round == 0 and page.next_index < len(page.roster):
        targets = [page.roster[page.next_index]]
        page.next_index += 1
    else:
        page.round += 1
        page.next_index = len(page.roster)
        targets = _everyone(page.roster, practice.manager)
    page.next_escalation_at = now + timedelta(seconds=practice.ack_timeout_s)

    if not targets:
        log.error(
            "page %s (practice %s, episode %s): nobody to page, no on-call roster and no "
            "manager; retrying in %ss",
            page.id,
            practice.slug,
            page.episode_id,
            practice.ack_timeout_s,
        )
        return []

    link = page_link(public_base_url, page.code)
    message_ids = []
    for person in targets:
        message = queue_text(
            session,
            templates,
            practice,
            to=person["phone"],
            kind=MessageKind.PAGE,
            template=page.reason.template,
            now=now,
            episode_id=page.episode_id,
            page_id=page.id,
            link=link,
            reference=page.code,
        )
        message_ids.append(message.id)
    if page.round >= 1:
        for person in targets:
            call = queue_text(
                session,
                templates,
                practice,
                to=person["phone"],
                kind=MessageKind.PAGE_CALL,
                template=page.reason.call_template,
                now=now,
                episode_id=page.episode_id,
                page_id=page.id,
                reference=page.code,
            )
            message_ids.append(call.id)
    first = page.first_page_at is None
    if first:
        page.first_page_at = now
    # Every page after the first means nobody acknowledged in time: worth a warning.
    log.log(
        logging.INFO if first else logging.WARNING,
        "page %s (%s) round %s: paging %s",
        page.id,
        page.code,
        page.round,
        ", ".join(mask(person["phone"]) for person in targets),
    )
    return message_ids


def _everyone(roster: list[dict[str, Any]], manager: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The whole roster and the manager, each number once."""
    people = [*roster, manager] if manager and manager.get("phone") else list(roster)
    seen: set[str] = set()
    unique = []
    for person in people:
        if person["phone"] not in seen:
            seen.add(person["phone"])
            unique.append(person)
    return unique


def _insert_page(session: Session, **fields: Any) -> Page:
    """Insert a page with a fresh code: a query finds a free one, the unique constraint
    settles a race with another transaction that picked the same code at the same time."""
    for _ in range(MAX_INSERT_ATTEMPTS):
        page = Page(code=_free_code(session), **fields)
        if insert_unique(session, page):
            return page
        log.warning("page code %s was taken concurrently; drawing another", page.code)
    raise RuntimeError(f"no page code could be inserted in {MAX_INSERT_ATTEMPTS} tries")


def _free_code(session: Session) -> str:
    for code in _candidate_codes():
        if _code_is_free(session, code):
            return code
    raise RuntimeError("no free page code")  # pragma: no cover: 10**8 codes


def _candidate_codes() -> Iterator[str]:
    for length in CODE_LENGTHS:
        if length != CODE_LENGTHS[0]:
            log.warning("four-digit page codes are running out; using %s digits", length)
        for _ in range(CODE_TRIES_PER_LENGTH):
            yield f"{secrets.randbelow(10**length):0{length}d}"


def _code_is_free(session: Session, code: str) -> bool:
    return session.scalar(select(Page.id).where(Page.code == code)) is None


# Page texts that will never reach the clinician: the carrier's undelivered/failed, a
# provider's permanent refusal, or a suppression (the clinician's phone once texted STOP).
UNREACHED = frozenset(
    {
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.DEAD_LETTER,
        MessageStatus.SUPPRESSED,
    }
)


def page_text_unreached(session: Session, message: Message, now: datetime) -> bool:
    """A page text that cannot reach its clinician escalates the page at once (the beat
    sweep's next pass, seconds), not after ack_timeout_s: nobody can acknowledge a text
    they never got. Only when every text (and call) of the page's latest step is unreached
    (one of three in a round that reached two is not a reason to page all three again;
    a call that rang out while its text was delivered is not either), and only
    for that step: a late report about an earlier step changes nothing. True if the page
    was made due now."""
    if message.kind not in PAGE_KINDS or message.page_id is None:
        return False
    if message.status not in UNREACHED:
        return False
    page = session.get(Page, message.page_id, with_for_update=True, populate_existing=True)
    if page is None or page.status is not PageStatus.ACTIVE:
        return False
    texts = session.scalars(
        select(Message).where(Message.page_id == page.id, Message.kind.in_(PAGE_KINDS))
    ).all()
    latest = max(t.created_at for t in texts)
    step = [t for t in texts if t.created_at == latest]
    if message not in step or any(t.status not in UNREACHED for t in step):
        return False
    if page.next_escalation_at is None or page.next_escalation_at > now:
        page.next_escalation_at = now
    log.warning(
        "page %s (%s): its %s to %s was not delivered (%s); escalating now",
        page.id,
        page.code,
        "call" if message.kind.is_call else "text",
        mask(message.to_number),
        message.status.value,
    )
    return True


# --- acknowledging ---------------------------------------------------------------------


def acknowledge(
    session: Session,
    templates: SmsTemplates,
    practice: Practice,
    *,
    from_number: str,
    code: str | None,
    now: datetime,
    public_base_url: str,
) -> AckResult:
    """An on-call clinician texted "ACK" or "ACK <code>" to the practice.

    Anyone on the practice's roster or its manager may take any page of the practice by
    its code (a colleague who saw the page takes it before it reaches them); so may anyone
    on the page's own roster snapshot or anyone the page was texted to, even if the roster
    changed since. Without a code, the sender's only open page is meant.
    """
    sender = parse_number(from_number).e164 or from_number
    allowed = on_call_numbers(practice)

    if code:
        page = session.scalars(
            select(Page)
            .where(Page.practice_id == practice.id, Page.code == code.strip().upper())
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if sender not in allowed and (page is None or not _was_paged(session, page, sender)):
            # A stranger learns nothing about which codes exist.
            return AckResult(None, AckProblem.NOT_ON_CALL, [])
        if page is None:
            return AckResult(None, AckProblem.NO_OPEN_PAGE, [])
        if page.status is PageStatus.ACKNOWLEDGED:
            return AckResult(page, AckProblem.ALREADY_ACKNOWLEDGED, [])
    else:
        pages = session.scalars(
            select(Page)
            .where(
                Page.practice_id == practice.id,
                Page.status == PageStatus.ACTIVE,
                Page.id.in_(
                    select(Message.page_id).where(
                        Message.kind.in_(PAGE_KINDS), Message.to_number == sender
                    )
                ),
            )
            .order_by(Page.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        if not pages:
            return AckResult(
                None, AckProblem.NO_OPEN_PAGE if sender in allowed else AckProblem.NOT_ON_CALL, []
            )
        if len(pages) > 1:
            return AckResult(None, AckProblem.AMBIGUOUS, [])
        page = pages[0]

    _close(session, page, _name_for(page, practice, sender), now)
    confirmation = queue_text(
        session,
        templates,
        practice,
        to=sender,
        kind=MessageKind.PAGE_ACK,
        now=now,
        episode_id=page.episode_id,
        page_id=page.id,
        link=page_link(public_base_url, page.code),
        reference=page.code,
    )
    log.info(
        "page %s (%s) acknowledged by %s after %s",
        page.id,
        page.code,
        mask(sender),
        now - page.reply_received_at,
    )
    return AckResult(page, None, [confirmation.id])


def acknowledge_by_link(
    session: Session,
    templates: SmsTemplates,
    *,
    code: str,
    staff_name: str,
    now: datetime,
) -> Changed[Page] | None:
    """A logged-in staff member opened the page's link and took it. No confirmation text:
    they are looking at the page. Taking a page that is already taken changes nothing."""
    page = session.scalars(
        select(Page)
        .where(Page.code == code.strip().upper())
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if page is None:
        return None
    if page.status is not PageStatus.ACTIVE:
        return Changed(page, False)
    _close(session, page, staff_name, now)
    log.info("page %s (%s) acknowledged through its link", page.id, page.code)
    return Changed(page, True)


def _was_paged(session: Session, page: Page, sender: str) -> bool:
    if any(person["phone"] == sender for person in page.roster):
        return True
    return (
        session.scalar(
            select(Message.id)
            .where(
                Message.page_id == page.id,
                Message.kind.in_(PAGE_KINDS),
                Message.to_number == sender,
            )
            .limit(1)
        )
        is not None
    )


def _name_for(page: Page, practice: Practice, sender: str) -> str:
    people = [*page.roster, *practice.on_call]
    if practice.manager:
        people.append(practice.manager)
    for person in people:
        if person.get("phone") == sender and person.get("name"):
            return str(person["name"])
    return mask(sender)  # paged as a manager who has since been replaced


def _close(session: Session, page: Page, acknowledged_by: str, now: datetime) -> None:
    page.status = move(page.status, PageStatus.ACKNOWLEDGED)
    page.acknowledged_at = now
    page.acknowledged_by = fit_name(acknowledged_by)
    page.next_escalation_at = None  # the chain stops here
    # Whoever takes a page of the episode has its clinical question too (paged because
    # nobody claimed it, or asked before the patient wrote URGENT): the queue shows it
    # taken, and it is not paged again.
    for task in session.scalars(
        select(Task).where(
            Task.episode_id == page.episode_id,
            Task.reason == TaskReason.CLINICAL,
            Task.status == TaskStatus.OPEN,
        )
    ):
        task.status = move(task.status, TaskStatus.CLAIMED)
        task.claimed_by = page.acknowledged_by
        task.claimed_at = now
        task.page_id = task.page_id or page.id
    episode = session.get(Episode, page.episode_id)
    if episode is not None:
        # An episode that already ended (the patient said STOP) keeps its one outcome.
        close_episode(episode, EpisodeOutcome.ESCALATED, now)
