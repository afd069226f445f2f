"""Voice pages: what a page's call says, and pressing 1 to take it.

A call is a message row of its page (MessageKind.PAGE_CALL, queued by the paging chain
from round 1 on). When the clinician answers, Twilio asks our signed webhook what to say,
with the row's id in the URL: the page's words, PHI-free like its text, and "press 1 to
take it". Pressing 1 is an ACK from the number called quoting the page's code, through the
very path a texted "ACK <code>" takes (`paging.acknowledge`): the page, its episode, its
care-team task and the confirmation text come out the same, and a second press, or a press
after someone's texted ACK, finds the page taken and changes nothing.

Runs in the caller's transaction; returned message ids are dispatched after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from recovery.domain.messages import MessageKind
from recovery.domain.pages import TAKE_DIGIT, AckProblem, CallStep
from recovery.domain.phones import mask
from recovery.domain.templates import SmsTemplates
from recovery.models import Message, Page, PageStatus, Practice
from recovery.services import paging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallAnswer:
    step: CallStep
    words: str = ""  # PROMPT: what the call says before "press 1"
    acknowledged_by: str | None = None  # TAKEN, ALREADY_TAKEN: who has the page
    message_ids: list[int] = field(default_factory=list)  # the confirmation text


def answer(
    session: Session,
    templates: SmsTemplates,
    message_id: int,
    *,
    digits: str | None,
    now: datetime,
    public_base_url: str,
) -> CallAnswer:
    """The answered call `message_id` asks what to say; `digits` is what was pressed."""
    call = session.get(Message, message_id)
    if call is None or call.kind is not MessageKind.PAGE_CALL or call.page_id is None:
        log.warning("voice page webhook for message %s: no page call of ours", message_id)
        return CallAnswer(CallStep.GONE)
    page = session.get(Page, call.page_id)
    assert page is not None  # a foreign key
    if digits != TAKE_DIGIT:
        if page.status is not PageStatus.ACTIVE:
            return CallAnswer(CallStep.ALREADY_TAKEN, acknowledged_by=page.acknowledged_by)
        return CallAnswer(CallStep.PROMPT, words=call.body)
    practice = session.get(Practice, call.practice_id)
    assert practice is not None
    result = paging.acknowledge(
        session,
        templates,
        practice,
        from_number=call.to_number,
        code=page.code,
        now=now,
        public_base_url=public_base_url,
    )
    if result.problem is None:
        log.info("page %s (%s) taken by pressing 1 on its call", page.id, page.code)
        return CallAnswer(
            CallStep.TAKEN, acknowledged_by=page.acknowledged_by, message_ids=result.message_ids
        )
    if result.problem is AckProblem.ALREADY_ACKNOWLEDGED:
        return CallAnswer(CallStep.ALREADY_TAKEN, acknowledged_by=page.acknowledged_by)
    # The number called was paged on this page, so acknowledge() knows it: not expected.
    log.error(
        "page %s: a press on its call to %s was refused (%s)",
        page.id,
        mask(call.to_number),
        result.problem,
    )
    return CallAnswer(CallStep.GONE)
