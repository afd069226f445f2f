"""Behaviour of recovery.domain.intents: routing a patient's reply to our missed-call text.

tests/unit/intent_cases.tsv holds real-sounding replies with the expected intent and
language (tab-separated; lines without a tab are section comments). The focused tests
below pin the evidence strings, ACK codes, the precedence and the ambiguous cases.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recovery.domain.intents import Classification, Intent, classify

CASES_FILE = Path(__file__).with_name("intent_cases.tsv")
HEADER = ("text", "intent", "language")


def _load_cases() -> list[tuple[str, Intent, str]]:
    rows = []
    for line in CASES_FILE.read_text(encoding="utf-8").splitlines():
        if "\t" not in line:  # a "# section" comment or a blank line
            continue
        text, intent, language = line.split("\t")
        if (text, intent, language) != HEADER:
            rows.append((text, Intent(intent), language))
    return rows


CASES = _load_cases()


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------
def test_table_is_large_and_covers_every_intent_and_both_languages() -> None:
    assert len(CASES) >= 230
    assert {intent for _, intent, _ in CASES} == set(Intent)
    assert {language for _, _, language in CASES} == {"en", "es"}
    texts = [text for text, _, _ in CASES]
    assert len(texts) == len(set(texts)), "each reply appears once (it is the test id)"


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [pytest.param(*case, id=case[0]) for case in CASES],
)
def test_table_case(text: str, intent: Intent, language: str) -> None:
    result = classify(text)
    assert (result.intent, result.language) == (intent, language), result.evidence


def test_only_ack_replies_carry_an_ack_code() -> None:
    for text, intent, _ in CASES:
        result = classify(text)
        if intent is not Intent.ACK:
            assert result.ack_code is None, text


# --------------------------------------------------------------------------------------
# API shape
# --------------------------------------------------------------------------------------
def test_intent_values_are_the_wire_strings() -> None:
    assert [i.value for i in Intent] == [
        "book",
        "billing",
        "refill",
        "urgent",
        "clinical",
        "stop",
        "start",
        "help",
        "ack",
        "unknown",
    ]
    assert Intent.BOOK == "book"
    assert Intent("urgent") is Intent.URGENT


def test_classification_is_frozen() -> None:
    result = classify("BOOK")
    assert result == Classification(Intent.BOOK, "en", "keyword:BOOK", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.intent = Intent.URGENT  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# Evidence strings (what matched, for the audit log)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("BOOK please 🙏", "keyword:BOOK"),
        ("yes billing", "keyword:BILLING"),
        ("necesito una cita", "keyword:CITA"),
        ("2", "digit:2"),
        ("#2", "digit:2"),
        ("3)", "digit:3"),
        ("dos", "digit:2"),
        ("4️⃣", "digit:4"),
        ("I need to reschedule", "synonym:reschedule"),
        ("cancel my appointment", "synonym:appointment"),
        ("my meds ran out", "synonym:medication"),
        ("se me acabó la medicina", "synonym:se me acabo"),
        ("BILLNG", "typo:BILLNG->BILLING"),
        ("refil", "typo:REFIL->REFILL"),
        ("urgnet", "typo:URGNET->URGENT"),
        ("need my refill urgnet", "typo:URGNET->URGENT"),
        ("sita", "typo:SITA->CITA"),
        ("I have chest pain", "red_flag:chest"),
        ("no chest pain", "red_flag:chest"),
        ("billing question, also I can't breathe", "red_flag:airway"),
        ("me duele el pecho", "red_flag:chest"),
        ("should I call 911?", "red_flag:emergency"),
        ("🆘", "red_flag:sos emoji"),
        ("STOP", "carrier:STOP"),
        ("Stop. Thank you", "carrier:STOP"),
        ("stop all", "carrier:STOPALL"),
        ("Opt-out please", "carrier:OPTOUT"),
        ("Sí", "carrier:SI"),
        ("INFO", "carrier:INFO"),
        ("stop calling me", "opt_out_phrase:stop calling"),
        ("No me manden más mensajes", "opt_out_phrase:no me manden"),
        ("ACK", "ack"),
        ("ack 4821", "ack:4821"),
        ("who is this?", "none"),
    ],
)
def test_evidence(text: str, evidence: str) -> None:
    assert classify(text).evidence == evidence


# --------------------------------------------------------------------------------------
# ACK from on-call clinicians
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("ACK", None),
        ("ack", None),
        ("Ack!", None),
        ("ack thanks", None),
        ("ACK 4821", "4821"),
        ("ack 4821", "4821"),
        ("Ack #4821", "4821"),
        ("ACK-4821", "4821"),
        ("ack: a7k2", "A7K2"),  # letters are upper-cased
        ("ACK 4821 on it", "4821"),
        ("acknowledged 4821", "4821"),
        ("ack 123", "123"),
        ("ack 12345678", "12345678"),
    ],
)
def test_ack_code(text: str, code: str | None) -> None:
    result = classify(text)
    assert result.intent is Intent.ACK
    assert result.ack_code == code


@pytest.mark.parametrize("text", ["ack 12", "ack 123456789", "ack I forgot my pills", "back"])
def test_not_an_ack(text: str) -> None:
    """A code outside 3-8 letters/digits is not guessed at: the reply is not an ACK."""
    result = classify(text)
    assert result.intent is not Intent.ACK
    assert result.ack_code is None


def test_red_flag_in_an_ack_pages_again() -> None:
    assert classify("ack 4821 patient says chest pain is worse").intent is Intent.URGENT


# --------------------------------------------------------------------------------------
# Red flags: anywhere, whatever else, negated or not
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "other",
    ["BOOK", "2", "billing question", "refill please", "ACK 4821", "stop texting me", "cita"],
)
@pytest.mark.parametrize("flag", ["chest pain", "I can't breathe", "me duele el pecho"])
def test_red_flag_beats_every_other_rule(other: str, flag: str) -> None:
    assert classify(f"{other} {flag}").intent is Intent.URGENT
    assert classify(f"{flag}, {other}").intent is Intent.URGENT


@pytest.mark.parametrize(
    "text",
    [
        "no chest pain",
        "No chest pain, just need a refill",
        "I don't have chest pain but need an appt",
        "not having any trouble breathing",
        "I'm not suicidal, just need to reschedule",
        "no tengo dolor de pecho",
        "no es un derrame",
    ],
)
def test_negation_does_not_cancel_a_red_flag(text: str) -> None:
    """Safety before convenience: a human reads a false alarm; nobody reads a miss."""
    result = classify(text)
    assert result.intent is Intent.URGENT
    assert result.evidence.startswith("red_flag:")


def test_not_urgent_is_still_urgent() -> None:
    assert classify("not urgent, just need a refill").intent is Intent.URGENT


@pytest.mark.parametrize(
    "text",
    [
        "Need a refill of my seizure medication",
        "I had a stroke last year and need my refill",
        "I went to the emergency room last week and got a bill",
    ],
)
def test_red_flags_are_not_read_in_context(text: str) -> None:
    """Accepted over-triage: a mention is enough."""
    assert classify(text).intent is Intent.URGENT


@pytest.mark.parametrize(
    "text",
    [
        "My blood pressure is high, can I get an appt",
        "I need my blood work results",
        "I'm dying to know my balance",
        "I'm covered in hives",  # not an insurance question either
    ],
)
def test_near_misses_are_not_red_flags(text: str) -> None:
    assert classify(text).intent is not Intent.URGENT


# --------------------------------------------------------------------------------------
# Carrier keywords
# --------------------------------------------------------------------------------------
CARRIER_KEYWORDS = {
    "STOP": Intent.STOP,
    "STOPALL": Intent.STOP,
    "UNSUBSCRIBE": Intent.STOP,
    "CANCEL": Intent.STOP,
    "END": Intent.STOP,
    "QUIT": Intent.STOP,
    "REVOKE": Intent.STOP,
    "OPTOUT": Intent.STOP,
    "opt out": Intent.STOP,
    "PARAR": Intent.STOP,
    "ALTO": Intent.STOP,
    "BAJA": Intent.STOP,
    "START": Intent.START,
    "UNSTOP": Intent.START,
    "YES": Intent.START,
    "SI": Intent.START,
    "SÍ": Intent.START,
    "HELP": Intent.HELP,
    "INFO": Intent.HELP,
    "AYUDA": Intent.HELP,
}


@pytest.mark.parametrize("keyword", list(CARRIER_KEYWORDS))
@pytest.mark.parametrize("shape", ["{}", "{}!!", " {}. ", "{} please", "{}. Thank you"])
def test_bare_carrier_keyword_in_any_case_is_never_urgent(keyword: str, shape: str) -> None:
    for variant in (keyword, keyword.lower(), keyword.title()):
        result = classify(shape.format(variant))
        assert result.intent is CARRIER_KEYWORDS[keyword], shape.format(variant)
        assert result.evidence.startswith("carrier:")


@pytest.mark.parametrize(
    "text", ["stpo", "sotp", "STOPP", "stop1", "strat", "sart", "hlep", "halp", "unsubscibe"]
)
def test_carrier_keywords_are_never_typo_matched(text: str) -> None:
    assert classify(text).intent is Intent.UNKNOWN


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Cancel", Intent.STOP),
        ("cancel please", Intent.STOP),
        ("cancel my texts", Intent.STOP),
        ("cancel my appointment", Intent.BOOK),
        ("Cancel appt", Intent.BOOK),
        ("cancel my prescription at CVS", Intent.REFILL),
    ],
)
def test_cancel_is_an_opt_out_only_alone_or_about_our_messages(text: str, intent: Intent) -> None:
    assert classify(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("stop calling me", Intent.STOP),
        ("Please stop texting me", Intent.STOP),
        ("stop calling me about my bill", Intent.STOP),
        ("I can't stop coughing", Intent.CLINICAL),
        ("should I stop taking my meds?", Intent.REFILL),
        ("Stop my refill, the doctor changed it", Intent.REFILL),
        ("STOP texting me I want to die", Intent.URGENT),
    ],
)
def test_stop_sentences(text: str, intent: Intent) -> None:
    """A message that starts with stop and is about our texts/calls is an opt-out."""
    assert classify(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [("yes", Intent.START), ("yes billing", Intent.BILLING), ("yes 2", Intent.BILLING)],
)
def test_yes_is_start_only_as_the_whole_message(text: str, intent: Intent) -> None:
    assert classify(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [("Sí", Intent.START), ("Sí, necesito una cita", Intent.BOOK), ("si 2", Intent.BILLING)],
)
def test_si_is_start_only_as_the_whole_message(text: str, intent: Intent) -> None:
    assert classify(text).intent is intent


def test_ambulance_emoji_makes_help_urgent() -> None:
    assert classify("HELP 🚑").intent is Intent.URGENT
    assert classify("HELP").intent is Intent.HELP


# --------------------------------------------------------------------------------------
# Menu digits
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("1", Intent.BOOK),
        ("1.", Intent.BOOK),
        ("#2", Intent.BILLING),
        ("3)", Intent.REFILL),
        ("4", Intent.URGENT),
        ("4️⃣", Intent.URGENT),
        (" 2 ", Intent.BILLING),
        ("option 3", Intent.REFILL),
        ("1 please 🙏", Intent.BOOK),
    ],
)
def test_menu_digit(text: str, intent: Intent) -> None:
    result = classify(text)
    assert result.intent is intent
    assert result.evidence.startswith("digit:")


@pytest.mark.parametrize(
    "text",
    [
        "at 3pm",
        "3 pm",
        "3:30",
        "$4",
        "4.00",
        "1/2",
        "3/14",
        "call me at 555-123-4567",
        "Tuesday at 2",
        "the 2nd works",
        "I have 2 kids that need checkups",
        "1 or 2",
        "12",
        "5",
        "0",
    ],
)
def test_numbers_that_are_not_menu_choices(text: str) -> None:
    assert not classify(text).evidence.startswith("digit:")


# --------------------------------------------------------------------------------------
# Keywords, typos and the ambiguous short words
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("BILLNG", Intent.BILLING),
        ("billling", Intent.BILLING),
        ("refil", Intent.REFILL),
        ("REFLIL", Intent.REFILL),  # adjacent swap
        ("urgnet", Intent.URGENT),  # adjacent swap
        ("boook", Intent.BOOK),
        ("Boko", Intent.BOOK),
        ("sita", Intent.BOOK),
        ("factra", Intent.BILLING),
        ("reseta", Intent.REFILL),
        ("urjente", Intent.URGENT),
        ("biling please", Intent.BILLING),
        ("necesito una sita", Intent.BOOK),
    ],
)
def test_typo_of_the_whole_reply(text: str, intent: Intent) -> None:
    result = classify(text)
    assert result.intent is intent
    assert result.evidence.startswith("typo:")


@pytest.mark.parametrize(
    "text",
    [
        # one edit from BOOK, but words people write
        "look",
        "took",
        "hook",
        "boom",
        "boot",
        "cook",
        "nook",
        # one edit from BILLING
        "filling",
        "killing",
        "willing",
        # one edit from CITA, RECETA, FACTURA
        "city",
        "cite",
        "recta",
        # three letters: too short to guess ("bok" is one edit from BOOK)
        "bok",
        "Bok",
        "boo",
    ],
)
def test_ambiguous_short_words_are_not_keywords(text: str) -> None:
    assert classify(text).intent is Intent.UNKNOWN


def test_fractura_is_a_fracture_not_an_invoice() -> None:
    """One edit from FACTURA, but an injury: a nurse's callback, not a billing task."""
    result = classify("fractura")
    assert (result.intent, result.evidence) == (Intent.CLINICAL, "concern:injury")


def test_typos_count_only_when_they_are_nearly_the_whole_reply() -> None:
    assert classify("biling").intent is Intent.BILLING
    assert classify("there is something wrong with my biling i think").intent is Intent.UNKNOWN
    # ... except URGENT, which counts anywhere
    assert classify("please call me back it is urgnet").intent is Intent.URGENT


# --------------------------------------------------------------------------------------
# Two intents in one message
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("refill and a billing question", Intent.REFILL),
        ("billing question and a refill", Intent.BILLING),
        ("book and refill please", Intent.BOOK),
        ("refill and book please", Intent.REFILL),
        ("I need an appointment and have a question about my bill", Intent.BOOK),
        ("Question about my bill and my appointment", Intent.BILLING),
        ("factura y receta", Intent.BILLING),
        ("receta y factura", Intent.REFILL),
    ],
)
def test_first_non_urgent_intent_mentioned_wins(text: str, intent: Intent) -> None:
    assert classify(text).intent is intent


@pytest.mark.parametrize(
    "text", ["book urgent", "urgent book", "refill, billing, urgent", "cita urgente"]
)
def test_urgent_keyword_wins_wherever_it_is(text: str) -> None:
    assert classify(text).intent is Intent.URGENT


def test_keyword_beats_synonym_phrase() -> None:
    """Precedence 5 > 6: "bill" is a phrase, REFILL is a keyword."""
    assert classify("question about my bill and a refill").intent is Intent.REFILL


def test_specific_phrase_beats_generic_verb() -> None:
    assert classify("cancel my prescription").intent is Intent.REFILL
    assert classify("I need to cancel for tomorrow").intent is Intent.BOOK


# --------------------------------------------------------------------------------------
# Spanish and language
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("accented", "plain"),
    [
        ("se me acabó la medicina", "se me acabo la medicina"),
        ("Mi papá tuvo una convulsión", "Mi papa tuvo una convulsion"),
        ("¿Cuánto debo?", "Cuanto debo"),
        ("Sí", "Si"),
        ("¿Tienen citas disponibles mañana?", "Tienen citas disponibles manana"),
        ("No me manden más mensajes", "No me manden mas mensajes"),
    ],
)
def test_accents_are_optional(accented: str, plain: str) -> None:
    with_accents, without = classify(accented), classify(plain)
    assert with_accents.intent is without.intent
    assert with_accents.intent is not Intent.UNKNOWN
    assert with_accents.language == without.language == "es"


@pytest.mark.parametrize(
    ("text", "locale", "language"),
    [
        ("2", None, "en"),
        ("2", "es", "es"),
        ("2", "es-MX", "es"),
        ("2", "en-US", "en"),
        ("STOP", "es", "es"),
        ("ok", "es_US", "es"),
        ("BOOK", "es", "en"),  # the text says English
        ("necesito una cita", "en", "es"),  # the text says Spanish
        ("dos", "en", "es"),
    ],
)
def test_locale_decides_only_when_the_text_does_not(
    text: str, locale: str | None, language: str
) -> None:
    assert classify(text, locale).language == language


def test_locale_does_not_change_the_intent() -> None:
    for text, intent, _ in CASES:
        assert classify(text, "es").intent is intent, text


# --------------------------------------------------------------------------------------
# Odd input
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t", "?!?", "🙏🙏🙏", "\u200b", "...", "\x00", "👍"]
)
def test_empty_or_symbols_only_is_unknown(text: str) -> None:
    assert classify(text) == Classification(Intent.UNKNOWN, "en", "none")


def test_long_message_with_a_red_flag_at_the_end() -> None:
    text = "hi, I wanted to ask about my bill and my next appointment. " * 50 + "chest pain"
    assert classify(text).intent is Intent.URGENT


def test_curly_apostrophes_are_read_like_straight_ones() -> None:
    assert classify("I can\u2019t breathe").intent is Intent.URGENT
    assert classify("my friend OD\u2019d").intent is Intent.URGENT
