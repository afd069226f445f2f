"""What crosses the edge: provider payloads, validated before anything is stored.

Providers add fields without notice, so every model ignores what it does not name; but
what it ignores is still stored (call_events.raw_payload), so every payload is bounded as
a whole (MAX_BODY_BYTES, enforced by the web edge before the body is read), field by field
(MAX_FIELD_CHARS, MAX_FIELDS) and in depth (MAX_JSON_DEPTH).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recovery.domain.calls import MISSED_REASONS
from recovery.domain.phones import parse_number, to_e164

# A webhook is a handful of short fields: Twilio's are a few dozen, under a kilobyte in
# all. 64 KB leaves room for any phone system's extras and none for a junk upload.
MAX_BODY_BYTES = 64 * 1024
# One SMS is at most 1600 characters (Twilio's limit for a concatenated message); no other
# field of any provider comes near it.
MAX_BODY_CHARS = 1600
MAX_FIELD_CHARS = 2000
MAX_FIELDS = 200
# Our JSON webhooks are flat objects; a little nesting is allowed for a phone system's
# extras, not the thousands of levels that make a parser recurse until it dies.
MAX_JSON_DEPTH = 4
MAX_ID_CHARS = 128  # a provider's call id
MAX_NUMBER_CHARS = 64  # a phone number as a phone system writes it
# A live event happened just now: a clock off by hours is still a clock, a call in year 1
# or 9999 is a bug or an attack, and texting about it would be wrong either way.
LIVE_WINDOW = timedelta(days=1)

_twilio = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)
_SID = r"^[A-Z]{2}[0-9a-fA-F]{32}$"
DIAL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})


def bounded_fields(value: object) -> object:
    """Refuse a payload with too many fields, a field too long to be a real one, or text
    the database cannot store (a NUL, a lone surrogate): all of it lands in raw_payload."""
    if isinstance(value, Mapping):
        if len(value) > MAX_FIELDS:
            raise ValueError(f"more than {MAX_FIELDS} fields")
        for key, item in value.items():
            name = _storable(str(key), "a field name")[:40]
            if isinstance(item, str):
                if len(item) > MAX_FIELD_CHARS:
                    raise ValueError(f"{name} is longer than {MAX_FIELD_CHARS} characters")
                _storable(item, name)
            elif isinstance(item, Mapping):
                bounded_fields(item)
            elif isinstance(item, list):
                bounded_fields(dict(enumerate(item)))
    return value


def _storable(text: str, what: str) -> str:
    if len(text) > MAX_FIELD_CHARS:
        raise ValueError(f"{what} is longer than {MAX_FIELD_CHARS} characters")
    if "\x00" in text:
        raise ValueError(f"{what} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode") from None
    return text


def live_time(value: datetime, info: ValidationInfo, field: str) -> datetime:
    """An event's time as aware UTC, within LIVE_WINDOW of now (the validation context's
    `now`, for tests; else the clock)."""
    if value.tzinfo is None:
        raise ValueError(f"{field} needs a time zone (e.g. 2026-11-03T14:05:12Z)")
    value = value.astimezone(UTC)
    context = info.context if isinstance(info.context, Mapping) else {}
    now: datetime = context.get("now") or datetime.now(UTC)
    if abs(value - now) > LIVE_WINDOW:
        raise ValueError(f"{field} must be within a day of now ({now.isoformat()})")
    return value


def _a_number(value: str, field: str) -> str:
    if parse_number(value).e164 is None:
        raise ValueError(f"{field} is not a phone number")
    return value


class _TwilioForm(BaseModel):
    model_config = _twilio

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return bounded_fields(value)


class TwilioIncomingCall(_TwilioForm):
    call_sid: str = Field(alias="CallSid", pattern=_SID)
    # The caller may be withheld ("anonymous") or garbage: still a missed call to count.
    from_: str = Field(alias="From", default="", max_length=MAX_NUMBER_CHARS)
    to: str = Field(alias="To", min_length=1, max_length=MAX_NUMBER_CHARS)

    @field_validator("to")
    @classmethod
    def _to_a_number(cls, value: str) -> str:
        return _a_number(value, "To")


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
    call_status: str = Field(alias="CallStatus", min_length=1, max_length=32)
    parent_call_sid: str | None = Field(alias="ParentCallSid", default=None, pattern=_SID)
    timestamp: datetime | None = Field(alias="Timestamp", default=None)

    @field_validator("parent_call_sid", mode="before")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _rfc2822(cls, value: object) -> object:
        # Twilio's call-progress callbacks send RFC 2822, "Tue, 03 Nov 2026 14:05:11 +0000";
        # its newer event APIs send ISO 8601, which pydantic parses itself.
        if isinstance(value, str) and value and not value[:4].isdigit():
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                raise ValueError("Timestamp is not an RFC 2822 or ISO 8601 date") from None
            # "-0000" (and no zone at all) is RFC 2822 for "UTC, local zone unknown".
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        return value or None

    @field_validator("timestamp")
    @classmethod
    def _live(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # an ISO time without a zone, from Twilio: UTC
        return live_time(value, info, "Timestamp") if value is not None else None


class TwilioPageCall(_TwilioForm):
    """A voice page's call asking what to say, or posting the digit the clinician pressed.
    `message_id` is ours, from the (signed) URL we gave Twilio when placing the call."""

    message_id: int = Field(gt=0)
    call_sid: str = Field(alias="CallSid", pattern=_SID)
    digits: str | None = Field(alias="Digits", default=None, max_length=20)

    @field_validator("digits", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None


class TwilioPageCallStatus(_TwilioForm):
    """How a voice page's call ended (Twilio's StatusCallback, its "completed" event)."""

    message_id: int | None = Field(default=None, gt=0)
    call_sid: str = Field(alias="CallSid", pattern=_SID)
    call_status: str = Field(alias="CallStatus", min_length=1, max_length=32)

    @field_validator("call_status")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class TwilioMessageStatus(_TwilioForm):
    message_sid: str = Field(alias="MessageSid", pattern=_SID)
    message_status: str = Field(alias="MessageStatus", min_length=1, max_length=32)
    error_code: int | None = Field(alias="ErrorCode", default=None, ge=0, le=10**9)

    @field_validator("error_code", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None


class TwilioInboundSms(_TwilioForm):
    message_sid: str = Field(alias="MessageSid", pattern=_SID)
    # A text with no number to answer ("anonymous", "+") is nothing we can act on.
    from_: str = Field(alias="From", min_length=1, max_length=MAX_NUMBER_CHARS)
    to: str = Field(alias="To", min_length=1, max_length=MAX_NUMBER_CHARS)
    body: str = Field(alias="Body", default="", max_length=MAX_BODY_CHARS)

    @field_validator("from_")
    @classmethod
    def _from_a_number(cls, value: str) -> str:
        return _a_number(value, "From")

    @field_validator("to")
    @classmethod
    def _to_a_number(cls, value: str) -> str:
        return _a_number(value, "To")


class BookingConfirmation(BaseModel):
    """POST /webhooks/bookings: the booking system says a patient booked.

    Either `ref` (the token our tracked link added to the booking URL), or the practice's
    slug and the patient's phone when the booking did not come through our link.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    ref: str | None = Field(default=None, max_length=64)
    practice: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=MAX_NUMBER_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return bounded_fields(value)

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

    call_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    from_: str = Field(alias="from", max_length=MAX_NUMBER_CHARS)
    to: str = Field(min_length=1, max_length=MAX_NUMBER_CHARS)
    occurred_at: datetime
    reason: str = Field(default="no-answer", max_length=32)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return bounded_fields(value)

    @field_validator("to")
    @classmethod
    def _to_a_number(cls, value: str) -> str:
        return _a_number(value, "to")

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, value: str) -> str:
        value = value.lower().replace("_", "-").replace("after-hours", "after_hours")
        if value not in GENERIC_REASONS:
            raise ValueError(f"reason must be one of {', '.join(sorted(GENERIC_REASONS))}")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _live(cls, value: datetime, info: ValidationInfo) -> datetime:
        return live_time(value, info, "occurred_at")
