"""The vocabulary of texts: what kind a message is, and what became of a send.

StrEnums, stored by value (`enum_column`): a kind reads as itself in psql and in a log
line, and a kind is also the name of its template in `templates/sms/`.
"""

from __future__ import annotations

import enum

from recovery.domain.states import MessageStatus


class MessageKind(enum.StrEnum):
    # Texts we start.
    FIRST_TEXT = "first_text"  # the answer to a missed call
    NUDGE = "nudge"  # one follow-up when the patient has not replied
    PAGE = "page"  # to an on-call clinician: a patient wrote URGENT
    # Not a text: a voice call to an on-call clinician, from the second round of a page on
    # (nobody took it by text). Its body is what the call says, PHI-free like a page text;
    # it goes through the same outbox, claim and retries as a text (outreach.deliver).
    PAGE_CALL = "page_call"
    # A fire drill's TEST page to everyone on call (no patient, no page, no episode).
    PAGE_DRILL = "page_drill"
    INVITE = "invite"  # to a new staff member: their one-time set-password link
    SLA_BREACH = "sla_breach"  # to the practice's manager: a task is past its due time
    DEAD_LETTER = "dead_letter"  # to the practice's manager: texts that could not be sent
    # Written by a person on the conversation page: no template, and its words may hold
    # PHI, so they are kept only encrypted (body_ciphertext) like a patient's.
    STAFF_REPLY = "staff_reply"
    # Answers to a patient's reply, one per thing they can ask for.
    BOOK = "book"  # the tracked booking link
    BILLING = "billing"  # a billing task was opened: when to expect the call
    REFILL = "refill"  # a care-team task was opened: when to expect the call
    URGENT = "urgent"  # the 911 guidance, before the page goes out
    STOP = "stop"  # the opt-out confirmation
    START = "start"  # opted back in
    HELP = "help"  # who we are and how to stop
    REPROMPT = "reprompt"  # the first reply we did not understand: the menu again
    HANDOFF = "handoff"  # a person will call: a front-desk task was opened
    CLINICAL = "clinical"  # a symptom, no red flag: the 911 sentence, a nurse will call
    # Answers to a clinician's ACK.
    PAGE_ACK = "page_ack"  # you have the page
    ACK_PROBLEM = "ack_problem"  # your ACK did not take a page (AckProblem says why)
    PAGE_DRILL_ACK = "page_drill_ack"  # your answer to the drill is recorded
    # Inbound.
    REPLY = "reply"  # a text someone sent to a practice line

    @property
    def template(self) -> str:
        return self.value

    @property
    def is_call(self) -> bool:
        """Placed as a phone call, not sent as a text: SMS consent (STOP) does not apply,
        and the provider is asked for its calls, not its texts, before a re-send."""
        return self is MessageKind.PAGE_CALL


# Answers that still go to a number that opted out, each one a reply to the patient's own
# text, never a text we start: the opt-out confirmation (carriers require it), HELP
# (carriers require an answer to it), and the 911 guidance to a patient who just wrote
# that it is urgent or describes a symptom (safety before convenience: both carry the 911
# sentence).
OPT_OUT_EXEMPT_KINDS = frozenset(
    {MessageKind.STOP, MessageKind.HELP, MessageKind.URGENT, MessageKind.CLINICAL}
)


# Automated texts: the ones we start to a patient, capped per number (services/caps.py).
# Not the answers to their own texts, not the 911 guidance, not texts to staff.
CAPPED_KINDS = frozenset({MessageKind.FIRST_TEXT, MessageKind.NUDGE})

# Texts that jump the send queue (they reserve their send-rate tokens even into debt, ahead
# of every text waiting, and go when those fall due: services/send_rate.py) and
# expire if the carrier cannot deliver them soon: the 911 guidance to a patient who wrote
# URGENT, and a page to a clinician.
URGENT_KINDS = frozenset({MessageKind.URGENT, MessageKind.PAGE})
# How long the provider may keep trying an urgent text (Twilio's ValidityPeriod, seconds):
# ten minutes on, a page has moved on to the next clinician and the guidance is stale.
URGENT_VALIDITY_S = 600

# GSM 03.38: a text in these characters is 160 to a segment (153 when split); any other
# character makes the whole text UCS-2, 70 to a segment (67 when split).
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # two septets each


def segments(body: str) -> int:
    """How many SMS segments the carrier counts (and a long code's rate limit counts)."""
    if all(c in _GSM7 or c in _GSM7_EXTENSION for c in body):
        septets = sum(2 if c in _GSM7_EXTENSION else 1 for c in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


class DeliveryOutcome(enum.StrEnum):
    """What one `outreach.deliver` call did with the text it was given."""

    NOT_CLAIMED = "not_claimed"  # another worker has it, it is done, or its retry is not due
    ACCEPTED = "accepted"  # the provider took it
    # It had gone out already (an attempt we could not record): its id recorded, not re-sent.
    RECONCILED = "reconciled"
    SUPPRESSED = "suppressed"  # not sent on purpose (SuppressionReason says why)
    RETRY = "retry"  # the provider refused it for now: it waits for its next attempt
    THROTTLED = "throttled"  # its number's send rate is used up: it waits for its turn
    FAILED = "failed"  # the provider refused it for good
    DEAD_LETTER = "dead_letter"  # temporary refusals that never cleared: a person takes over


class StatusOutcome(enum.StrEnum):
    """What a provider's delivery report did (`outreach.record_status`)."""

    APPLIED = "applied"  # a text we know by its provider id (moved forward, or not at all)
    UNKNOWN = "unknown"  # no text of ours: acknowledged and ignored
    ADOPTED = "adopted"  # our text whose provider id we never recorded: recorded now
    DUPLICATE = "duplicate"  # a second provider id for one text of ours: it went out twice


class WaitReason(enum.StrEnum):
    """Why a RETRYING text waits when no provider refused it; kept in its error_message
    (a provider's refusal writes its own words there)."""

    SEND_RATE = "waiting for the send rate"  # its number's bucket is empty: not an attempt


def waiting_words(status: MessageStatus, error_message: str | None) -> str:
    """A text's status as the command line says it: a RETRYING text that only waits for
    the send rate is not retrying anything (the provider never refused it)."""
    if status is MessageStatus.RETRYING and error_message == WaitReason.SEND_RATE:
        return WaitReason.SEND_RATE.value
    return status.value


class SuppressionReason(enum.StrEnum):
    """Why a text was not sent on purpose; kept in the message's error_message."""

    OPTED_OUT = "opted out"  # the number opted out after the text was queued
    CAPPED = "capped"  # the number had its automated texts for the day or the week


class Unreachable(enum.StrEnum):
    """What a provider's error code says about the number itself, not about one attempt
    (`recovery.services.unreachable` acts on it)."""

    OPTED_OUT = "opted_out"  # 21610: the number replied STOP to the carrier
    NOT_TEXTABLE = "not_textable"  # 21211 not a valid number, 21614 not a mobile (a landline)
    # 30003-30008: the carrier could not deliver it (handset off or gone, blocked, unknown
    # destination, landline or unreachable carrier, filtered, unknown error).
    UNDELIVERED = "undelivered"


_UNREACHABLE_CODES: dict[int, Unreachable] = {
    21610: Unreachable.OPTED_OUT,
    21211: Unreachable.NOT_TEXTABLE,
    21614: Unreachable.NOT_TEXTABLE,
    **{code: Unreachable.UNDELIVERED for code in range(30003, 30009)},
}


def unreachable_reason(code: int | None) -> Unreachable | None:
    """What Twilio's error `code` means for the number, or None if only the attempt failed."""
    return _UNREACHABLE_CODES.get(code) if code is not None else None


class StaffReplyRefusal(enum.StrEnum):
    """Why the conversation page did not send what a staff member wrote."""

    EMPTY = "empty"  # nothing to send
    TOO_LONG = "too_long"  # longer than MAX_STAFF_REPLY
    OPTED_OUT = "opted_out"  # the patient texted STOP: nothing we start reaches them
    UNKNOWN_SAVED_REPLY = "unknown_saved_reply"  # removed, or another practice's


# About four texts: a reply a person types, not a letter (Twilio joins up to ten).
MAX_STAFF_REPLY = 640
