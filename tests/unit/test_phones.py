"""Phone numbers: parsing what phone systems send, and masking them for logs."""

from __future__ import annotations

import pytest

from recovery.domain.phones import mask, mask_all, national_format, parse_number, to_e164


@pytest.mark.parametrize(
    "raw",
    [
        "+15125550199",
        "(512) 555-0199",
        "512-555-0199",
        "512.555.0199",
        "5125550199",
        "15125550199",  # 11 digits without the plus (Vonage, some PBXs)
        "1 512 555 0199",
        " +1 512 555 0199 ",
    ],
)
def test_us_numbers_in_any_common_form_parse_to_e164(raw: str) -> None:
    parsed = parse_number(raw)

    assert parsed.e164 == "+15125550199"
    assert parsed.problem is None


def test_international_e164_keeps_its_country() -> None:
    assert parse_number("+442079460958").e164 == "+442079460958"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "anonymous",
        "Anonymous",
        "RESTRICTED",
        "private",
        "blocked",
        "unknown",
        "unavailable",
        "withheld",
        "+266696687",  # ANONYMOUS on a keypad, as Twilio sends it
        "+7378742833",  # RESTRICTED
        "+2562533",  # BLOCKED
        "+86282452253",  # UNAVAILABLE
    ],
)
def test_withheld_caller_ids_are_recognised(raw: str | None) -> None:
    parsed = parse_number(raw)

    assert parsed.e164 is None
    assert parsed.problem == "withheld"


@pytest.mark.parametrize(
    "raw", ["12345", "+1512555019", "+15555550199", "not a number", "555-0199", "+999123"]
)
def test_invalid_numbers_are_reported_as_invalid(raw: str) -> None:
    parsed = parse_number(raw)

    assert parsed.e164 is None
    assert parsed.problem == "invalid"


def test_to_e164_normalises_a_valid_number() -> None:
    assert to_e164("(512) 555-0100") == "+15125550100"


@pytest.mark.parametrize("raw", ["12345", "anonymous", ""])
def test_to_e164_raises_for_anything_it_cannot_text(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a valid phone number"):
        to_e164(raw)


def test_national_format_is_how_a_patient_reads_the_number() -> None:
    assert national_format("+15125550100") == "(512) 555-0100"


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+15125550199", "+1********99"),
        ("5125550199", "********99"),
        ("(512) 555-0199", "********99"),
        (None, "<none>"),
        ("", "<none>"),
        ("1234", "****"),
    ],
)
def test_mask_keeps_only_the_country_code_and_the_last_two_digits(
    number: str | None, masked: str
) -> None:
    assert mask(number) == masked


def test_mask_hides_every_digit_of_an_international_number_but_the_last_two() -> None:
    masked = mask("+442079460958")

    assert masked.startswith("+")
    assert masked.endswith("58")
    assert sum(c.isdigit() for c in masked) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call from +15125550199 failed", "call from +1********99 failed"),
        ("to 5125550199.", "to ********99."),
        ("to 15125550199", "to *********99"),
        ("desk (512) 555-0142 rang", "desk ********42 rang"),
        ("desk 512.555.0142 rang", "desk ********42 rang"),
        ("desk 512-555-0142 rang", "desk ********42 rang"),
        ("a +15125550199 and b +15125550198", "a +1********99 and b +1********98"),
    ],
)
def test_mask_all_masks_numbers_inside_text(text: str, expected: str) -> None:
    assert mask_all(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "at 2026-11-03 14:05:11",
        "at 2026-11-03T14:05:11.123456+00:00",
        "message 42, attempt 3 of 10, 850 ms",
        "twilio 400 21211: invalid",
        "SM0123abcd",
    ],
)
def test_mask_all_leaves_dates_times_and_small_numbers_alone(text: str) -> None:
    assert mask_all(text) == text
