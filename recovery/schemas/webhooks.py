"""What crosses the edge: provider payloads, validated before anything is stored.

Providers add fields without notice, so every model ignores what it does not name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recovery.domain.calls import MISSED_REASONS
from recovery.domain.phones import to_e164

_twilio = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)
_SID = r"^[A-Z]{2}[0-9a-fA-F]{32}$"
DIAL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})


class TwilioIncomingCall(BaseModel):
    model_config = _twilio

    call_sid: str = Field(alias="CallSid", pattern=_SID)
    from_: str = Field(alias="From", default="")
    to: str = Field(alias="To", min_length=1)


class TwilioDialAction(TwilioIncomingCall):
    dial_call_status: str = Field(alias="DialCallStatus", min_length=1)

    @field_validator("dial_call_status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        value = value.lower()
        if value not in DIAL_STATUSES:
            raise ValueError(f"must be one of {', '.join(sorted(DIAL_STATUSES))}")
        return value


class TwilioCallStatus(TwilioIncomingCall):
    call_status: str = Field(alias="CallStatus", min_length=1)
    parent_call_sid: str | None = Field(alias="ParentCallSid", default=None)
    timestamp: datetime | None = Field(alias="Timestamp", default=None)

    @field_validator("parent_call_sid", mode="before")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _rfc2822(cls, value: object) -> object:
        # Twilio sends "Tue, 03 Nov 2026 14:05:11 +0000".
        if isinstance(value, str) and value:
            try:
                return parsedate_to_datetime(value)
            except (TypeError, ValueError):
                raise ValueError("Timestamp is not an RFC 2822 date") from None
        return value or None


class TwilioMessageStatus(BaseModel):
    model_config = _twilio

    message_sid: str = Field(alias="MessageSid", pattern=_SID)
    message_status: str = Field(alias="MessageStatus", min_length=1)
    error_code: int | None = Field(alias="ErrorCode", default=None)

    @field_validator("error_code", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None


class TwilioInboundSms(BaseModel):
    model_config = _twilio

    message_sid: str = Field(alias="MessageSid", pattern=_SID)
    from_: str = Field(alias="From", min_length=1)
    to: str = Field(alias="To", min_length=1)
    body: str = Field(alias="Body", default="", max_length=1600)


class BookingConfirmation(BaseModel):
    """POST /webhooks/bookings: the booking system says a patient booked.

    Either `ref` (the token our tracked link added to the booking URL), or the practice's
    slug and the patient's phone when the booking did not come through our link.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    ref: str | None = Field(default=None, max_length=64)
    practice: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=64)

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return to_e164(value) if value else None

    @model_validator(mode="after")
    def _identifies_an_episode(self) -> BookingConfirmation:
        if not self.ref and not (self.practice and self.phone):
            raise ValueError("give ref, or practice and phone")
        return self


GENERIC_REASONS = MISSED_REASONS | {"answered"}


class GenericMissedCall(BaseModel):
    """POST /webhooks/calls/missed, for any phone system that is not Twilio."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    call_id: str = Field(min_length=1, max_length=128)
    from_: str = Field(alias="from", max_length=64)
    to: str = Field(min_length=1, max_length=64)
    occurred_at: datetime
    reason: str = "no-answer"

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, value: str) -> str:
        value = value.lower().replace("_", "-").replace("after-hours", "after_hours")
        if value not in GENERIC_REASONS:
            raise ValueError(f"reason must be one of {', '.join(sorted(GENERIC_REASONS))}")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (e.g. 2026-11-03T14:05:12Z)")
        return value.astimezone(UTC)
