"""Phone numbers: E.164 normalisation, withheld caller ids, and masking for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

# What phone systems put in the caller id when the caller hid it. Twilio spells the words
# on a keypad: +266696687 is ANONYMOUS, +7378742833 RESTRICTED, +2562533 BLOCKED,
# +86282452253 UNAVAILABLE.
WITHHELD = frozenset(
    {
        "",
        "anonymous",
        "restricted",
        "private",
        "blocked",
        "unknown",
        "unavailable",
        "withheld",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+86282452253",
    }
)


@dataclass(frozen=True)
class ParsedNumber:
    e164: str | None
    # Why there is no number to text: "withheld" or "invalid"; None when e164 is set.
    problem: str | None = None


def parse_number(raw: str | None, default_region: str = "US") -> ParsedNumber:
    text = (raw or "").strip()
    if text.lower() in WITHHELD:
        return ParsedNumber(None, "withheld")
    digits = re.sub(r"\D", "", text)
    # Some PBXs send an 11-digit North American number without the plus (Vonage: 1512...).
    if not text.startswith("+") and len(digits) > 10:
        text = "+" + digits
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return ParsedNumber(None, "invalid")
    if not phonenumbers.is_valid_number(number):
        return ParsedNumber(None, "invalid")
    return ParsedNumber(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def to_e164(raw: str, default_region: str = "US") -> str:
    """Strict form for configuration: a number that does not parse is an error."""
    parsed = parse_number(raw, default_region)
    if parsed.e164 is None:
        raise ValueError(f"{raw!r} is not a valid phone number")
    return parsed.e164


def national_format(e164: str) -> str:
    """How a patient expects to read the practice's number in a text: (512) 555-0100."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def mask(number: str | None) -> str:
    """A phone number fit for a log line: country code and last two digits only."""
    if not number:
        return "<none>"
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    head = "+1" if number.startswith("+1") else ("+" if number.startswith("+") else "")
    kept = len(head.lstrip("+"))
    return f"{head}{'*' * (len(digits) - kept - 2)}{digits[-2:]}"


_PHONE_PATTERN = re.compile(
    r"\+\d{7,15}\b"  # E.164
    r"|\b\d{10,11}\b"  # bare national digits
    r"|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"  # (512) 555-0199, 512.555.0199
)


def last_four(number: str | None) -> str:
    return re.sub(r"\D", "", number or "")[-4:]


def mask_caller(number: str | None) -> str:
    """A caller as a report or a CSV shows them: enough to tell two apart on a call-back
    list (the last four digits), not enough to dial."""
    four = last_four(number)
    return f"***-***-{four}" if len(four) == 4 else "withheld"


def mask_all(text: str) -> str:
    """Mask anything that looks like a phone number inside free text (a log message)."""
    return _PHONE_PATTERN.sub(lambda m: mask(m.group(0)), text)
