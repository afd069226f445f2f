"""The practices file: what an admin writes, validated before anything is loaded."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recovery.domain.hours import BusinessHours, HoursError
from recovery.domain.phones import to_e164


class PracticesFileError(ValueError):
    """A practices file that cannot be loaded; the message names the practice and the key."""


class OnCallEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    phone: str

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        return to_e164(value)


class PracticeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    timezone: str
    numbers: list[str] = Field(min_length=1)
    forward_to: str | None = None
    ring_timeout_s: int = Field(default=20, ge=5, le=120)
    hours: dict[str, list[str]] = Field(default_factory=dict)
    holidays: list[str] = Field(default_factory=list)
    booking_url: str | None = Field(default=None, pattern=r"^https?://")
    visit_value: int = Field(default=0, ge=0)
    on_call: list[OnCallEntry] = Field(default_factory=list)
    blocked_numbers: list[str] = Field(default_factory=list)
    episode_window_h: int = Field(default=12, ge=1, le=168)
    # Routing and follow-up policy.
    billing_sla_h: int = Field(default=4, ge=0, le=72)  # business hours after next opening
    refill_sla_h: int = Field(default=2, ge=0, le=24)  # business hours, same day
    refill_cutoff: str = Field(default="15:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    ack_timeout_s: int = Field(default=300, ge=30, le=3600)
    clinical_callback_min: int = Field(default=30, ge=5, le=240)  # minutes, any hour
    # Segments a second per practice number: 1 for a long code; a toll-free or short code
    # may be registered for more.
    send_rate_per_s: float = Field(default=1.0, gt=0, le=100)
    manager: OnCallEntry | None = None  # paged with the whole roster when nobody acks
    reply_window_h: int = Field(default=24, ge=1, le=168)
    nudge_after_h: int = Field(default=4, ge=1, le=72)
    quiet_hours: str = Field(
        default="21:00-08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
    )

    @field_validator("numbers", "blocked_numbers")
    @classmethod
    def _numbers_e164(cls, values: list[str]) -> list[str]:
        return [to_e164(v) for v in values]

    @field_validator("forward_to")
    @classmethod
    def _forward_e164(cls, value: str | None) -> str | None:
        return to_e164(value) if value else None

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays_as_text(cls, values: Any) -> Any:
        # YAML reads an unquoted 2026-12-25 as a date; we keep ISO text.
        return [str(v) for v in values] if isinstance(values, list) else values

    @model_validator(mode="after")
    def _hours_make_sense(self) -> PracticeConfig:
        try:
            BusinessHours.parse(self.timezone, self.hours, self.holidays)
        except HoursError as exc:
            raise ValueError(str(exc)) from exc
        return self


class PracticesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practices: list[PracticeConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PracticesFile:
        seen_slugs: set[str] = set()
        owner: dict[str, str] = {}
        for practice in self.practices:
            if practice.slug in seen_slugs:
                raise ValueError(f"practice {practice.slug}: slug is used twice")
            seen_slugs.add(practice.slug)
            for number in practice.numbers:
                if number in owner:
                    raise ValueError(
                        f"practice {practice.slug}: numbers: {number} already belongs to "
                        f"{owner[number]}"
                    )
                owner[number] = practice.slug
        return self


def parse_practices(text: str, source: str = "practices file") -> PracticesFile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PracticesFileError(f"{source}: not valid YAML: {exc}") from exc
    try:
        return PracticesFile.model_validate(data)
    except ValidationError as exc:
        raise PracticesFileError(f"{source}: " + _describe(exc, data)) from exc


def read_practices(path: Path) -> PracticesFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PracticesFileError(f"{path}: {exc.strerror}") from exc
    return parse_practices(text, str(path))


def _describe(exc: ValidationError, data: Any) -> str:
    """Turn pydantic's locations into words an admin can act on: practice X: key: problem."""
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "practices" and isinstance(loc[1], int):
            index = loc[1]
            slug = None
            with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
                slug = data["practices"][index].get("slug")
            where = f"practice {slug or f'#{index + 1}'}: "
            loc = loc[2:]
        key = ".".join(str(part) for part in loc)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{where}{key + ': ' if key else ''}{message}")
    return "; ".join(lines)
