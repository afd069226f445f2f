"""Factories for what many tests need first: a missed call, through the real intake."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from recovery.crypto import PhiCipher
from recovery.domain.calls import CallReport
from recovery.domain.templates import SmsTemplates
from recovery.services.intake import IntakeResult, record_call
from tests.conftest import PHI_KEY, unique_sid

CALLER = "+15125550199"  # Austin: Chicago time, like the practice
MAIN_LINE = "+15125550100"  # Valley Family Clinic's main number (tests/fixtures/practices.yaml)


def missed_call_report(
    *,
    at: datetime,
    caller: str = CALLER,
    called: str = MAIN_LINE,
    call_id: str | None = None,
    raw_payload: dict[str, Any] | None = None,
    forward_leg: bool = False,
) -> CallReport:
    """A Twilio call that rang out unanswered; its id is unique per caller and time unless
    given."""
    return CallReport(
        provider="twilio",
        provider_call_id=call_id or unique_sid("CA", f"{caller}{at.isoformat()}"),
        caller_raw=caller,
        called_raw=called,
        answered=False,
        reason="no-answer",
        occurred_at=at,
        raw_payload=raw_payload if raw_payload is not None else {},
        called_is_forward_target=forward_leg,
    )


def missed_call(
    session: Session,
    templates: SmsTemplates,
    *,
    at: datetime,
    caller: str = CALLER,
    called: str = MAIN_LINE,
    call_id: str | None = None,
) -> IntakeResult:
    """A missed call through intake at `at` (the call, its episode, its pending first
    text), in the caller's transaction."""
    report = missed_call_report(at=at, caller=caller, called=called, call_id=call_id)
    return record_call(session, report, templates, at, cipher=PhiCipher([PHI_KEY]))
