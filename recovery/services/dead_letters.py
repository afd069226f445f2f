"""Dead letters: texts whose temporary errors (429, 5xx, timeouts) never cleared.

A text is retried with backoff a bounded number of times (`SendPolicy.max_attempts`), then
it is *dead-lettered* (`MessageStatus.DEAD_LETTER`): no worker tries it again. This sweep
takes each new one once (`dead_letter_alerted_at`, a conditional UPDATE, so two sweeps
cannot both take it), puts a call-back task on the front desk's queue when the text was
for a patient (they are waiting for an answer that never came), and texts the practice's
manager once per sweep, however many texts died: during an outage one text, not one per
patient. An alert that dies itself alerts nobody (it would only die again).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from recovery.domain.messages import MessageKind
from recovery.domain.phones import mask
from recovery.domain.states import EpisodeStatus
from recovery.domain.templates import SmsTemplates
from recovery.models import Episode, Message, MessageStatus, Practice
from recovery.services.breaches import QUEUE_PATH
from recovery.services.texts import queue_text
from recovery.services.unreachable import open_call_back

log = logging.getLogger(__name__)


def sweep(
    session: Session, templates: SmsTemplates, *, now: datetime, public_base_url: str
) -> list[int]:
    """Take every newly dead-lettered text; returns the ids of the manager texts queued."""
    taken = session.execute(
        update(Message)
        .where(
            Message.status == MessageStatus.DEAD_LETTER,
            Message.dead_letter_alerted_at.is_(None),
        )
        .values(dead_letter_alerted_at=now)
        .returning(
            Message.id, Message.practice_id, Message.episode_id, Message.kind, Message.to_number
        )
        .execution_options(synchronize_session=False)
    ).all()
    by_practice: dict[int, int] = defaultdict(int)
    for row in taken:
        if row.kind is MessageKind.DEAD_LETTER:
            log.error("the manager's dead-letter alert %s could not be sent either", row.id)
            continue
        by_practice[row.practice_id] += 1
        if row.episode_id is None or row.kind is MessageKind.PAGE:
            continue
        episode = session.get(Episode, row.episode_id)
        if (
            episode is not None
            and episode.caller == row.to_number
            and episode.status is EpisodeStatus.OPEN
        ):
            practice = session.get(Practice, row.practice_id)
            assert practice is not None
            open_call_back(session, practice, episode, now)
    queued: list[int] = []
    for practice_id, count in sorted(by_practice.items()):
        practice = session.get(Practice, practice_id)
        assert practice is not None
        phone = (practice.manager or {}).get("phone")
        log.error(
            "%d text(s) of %s dead-lettered after every retry; manager %s",
            count,
            practice.slug,
            mask(str(phone)) if phone else "(none to text)",
        )
        if not phone:
            continue
        alert = queue_text(
            session,
            templates,
            practice,
            to=str(phone),
            kind=MessageKind.DEAD_LETTER,
            now=now,
            link=public_base_url + QUEUE_PATH,
            reference=str(count),
        )
        queued.append(alert.id)
    return queued
