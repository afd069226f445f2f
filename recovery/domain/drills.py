"""The vocabulary of fire drills: why a drill did not start, and how a person answered."""

from __future__ import annotations

import enum
from datetime import timedelta

# A drill's code starts with this letter; a real page's code is digits only. So "ACK
# T1234" can only answer a drill and "ACK 1234" only a real page: a drill can never take
# (or be taken for) a patient's page.
DRILL_CODE_PREFIX = "T"
# How long a drill takes answers. Long enough for a clinician with a patient to step out
# and look; an answer later than the practice's ACK timeout is recorded, and shown late.
DRILL_WINDOW = timedelta(minutes=30)


def is_drill_code(code: str | None) -> bool:
    return bool(code) and str(code).strip().upper().startswith(DRILL_CODE_PREFIX)


class DrillRefusal(enum.StrEnum):
    """Why a drill was not started."""

    NO_ROSTER = "no_roster"  # nobody is on call: there is nobody to drill
    ALREADY_RUNNING = "already_running"  # one is still open: its answers would mix


class DrillAnswerOutcome(enum.StrEnum):
    """What a clinician's ACK did to a drill (`drills.answer`)."""

    RECORDED = "recorded"  # their first answer: recorded with its time, confirmed by text
    ALREADY_ANSWERED = "already_answered"  # they had answered: nothing changes
    CLOSED = "closed"  # the drill's window is over: nothing recorded
    NOT_IN_DRILL = "not_in_drill"  # not on the drill's roster, or no such drill
