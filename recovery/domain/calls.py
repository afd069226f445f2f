"""One shape for a call event, whatever phone system reported it, and what to make of it."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recovery.domain.phones import NumberProblem, ParsedNumber

# Ways an inbound call can end without a person on the line, in the words the providers
# use (Twilio's CallStatus/DialCallStatus, and our generic webhook's `reason`).
MISSED_REASONS = frozenset(
    {
        "no-answer",
        "busy",
        "failed",
        "canceled",
        "abandoned",
        "voicemail",
        "after_hours",
        "unstaffed",
    }
)


class CallDisposition(enum.Enum):
    MISSED = "missed"  # nobody answered: the caller should hear from us
    ANSWERED = "answered"  # a person picked up; kept as the denominator of the answer rate
    IGNORED = "ignored"  # our own number, or a blocked one; the reason says which


class SkipReason(enum.StrEnum):
    """Why a call got no text."""

    WITHHELD = NumberProblem.WITHHELD.value  # the caller hid their number
    INVALID = NumberProblem.INVALID.value  # the caller id is no number we can text
    OWN_NUMBER = "own_number"  # staff calling from a practice line, or a test call
    BLOCKED = "blocked"  # a number the practice asked us never to text
    ANSWERED = "answered"  # a person picked up
    JOINED_EPISODE = "joined_episode"  # a repeat call: the open episode's text answers it
    OPTED_OUT = "opted_out"  # the caller opted out of texts
    # The provider said no text reaches the number (invalid, a landline): a call-back task.
    NOT_TEXTABLE = "not_textable"

    @property
    def untextable(self) -> bool:
        """No text will reach this caller at all, now or for this episode: the voice
        answer asks them to call back instead of promising a text."""
        return self in _UNTEXTABLE


_UNTEXTABLE = frozenset(
    {
        SkipReason.WITHHELD,
        SkipReason.INVALID,
        SkipReason.OWN_NUMBER,
        SkipReason.BLOCKED,
        SkipReason.OPTED_OUT,
        SkipReason.NOT_TEXTABLE,
    }
)


@dataclass(frozen=True)
class CallReport:
    """A phone system's word that a call ended, normalised from its own payload."""

    provider: str  # twilio, generic
    provider_call_id: str  # the provider's id of the inbound call; the idempotency key
    caller_raw: str
    called_raw: str
    answered: bool
    reason: str  # no-answer, busy, after_hours, completed...
    occurred_at: datetime
    raw_payload: dict[str, Any] = field(default_factory=dict)
    # Twilio's status callback of a forwarded leg names the front-desk phone, not the line
    # the patient called; then the practice is found by its forward_to number.
    called_is_forward_target: bool = False


@dataclass(frozen=True)
class Screening:
    disposition: CallDisposition
    reason: str
    # Why this call gets no text, or None when it should get one (subject to episode and
    # opt-out, decided against the database).
    skip_reason: SkipReason | None


def screen_call(
    report: CallReport,
    caller: ParsedNumber,
    own_numbers: Collection[str],
    blocked_numbers: Collection[str],
) -> Screening:
    if caller.e164 is not None and caller.e164 in own_numbers:
        # Staff calling in from another practice line (or a test call) is not a patient.
        return Screening(CallDisposition.IGNORED, "own_number", SkipReason.OWN_NUMBER)
    if caller.e164 is not None and caller.e164 in blocked_numbers:
        return Screening(CallDisposition.IGNORED, "blocked", SkipReason.BLOCKED)
    if report.answered:
        return Screening(CallDisposition.ANSWERED, report.reason, SkipReason.ANSWERED)
    if caller.e164 is None:
        problem = caller.problem or NumberProblem.INVALID
        return Screening(CallDisposition.MISSED, report.reason, SkipReason(problem.value))
    return Screening(CallDisposition.MISSED, report.reason, None)
