"""One shape for a call event, whatever phone system reported it, and what to make of it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recovery.domain.phones import ParsedNumber

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
    disposition: str  # missed, answered, ignored
    reason: str
    # Why this call gets no text, or None when it should get one (subject to episode and
    # opt-out, decided against the database).
    skip_reason: str | None


def screen_call(
    report: CallReport,
    caller: ParsedNumber,
    own_numbers: Collection[str],
    blocked_numbers: Collection[str],
) -> Screening:
    if caller.e164 is not None and caller.e164 in own_numbers:
        # Staff calling in from another practice line (or a test call) is not a patient.
        return Screening("ignored", "own_number", "own_number")
    if caller.e164 is not None and caller.e164 in blocked_numbers:
        return Screening("ignored", "blocked", "blocked")
    if report.answered:
        return Screening("answered", report.reason, "answered")
    if caller.e164 is None:
        return Screening("missed", report.reason, caller.problem or "invalid")
    return Screening("missed", report.reason, None)
