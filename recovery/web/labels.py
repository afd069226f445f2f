"""How the staff pages say things: the words for our enums and codes, and phone numbers.

The services return enums, intent codes and E.164 numbers; these are the words staff
read for them, in one place for every page (the queue, a conversation, the reports).
"""

from __future__ import annotations

import phonenumbers

from recovery.domain.messages import MAX_STAFF_REPLY, MessageKind, StaffReplyRefusal
from recovery.domain.states import MessageStatus
from recovery.domain.tasks import TaskReason
from recovery.models import EpisodeOutcome, TaskQueue

QUEUE_LABELS = {
    TaskQueue.BILLING: "Billing",
    TaskQueue.CARE_TEAM: "Care team",
    TaskQueue.FRONT_DESK: "Front desk",
}
REASON_LABELS = {
    TaskReason.BILLING: "Billing question",
    TaskReason.REFILL: "Prescription refill",
    TaskReason.UNCLEAR: "Reply not understood",
    TaskReason.BOOK: "Wants an appointment",
    TaskReason.CLINICAL: "Clinical question: nurse to call back",
    TaskReason.CALL_BACK: "Cannot be texted: call the patient",
}
OUTCOME_LABELS = {
    EpisodeOutcome.BOOKED: "Booked",
    EpisodeOutcome.RESOLVED: "Resolved",
    EpisodeOutcome.ESCALATED: "Escalated to on-call",
    EpisodeOutcome.OPTED_OUT: "Opted out",
    EpisodeOutcome.UNRECOVERED: "Unrecovered",
}
INTENT_LABELS = {
    "book": "Booking",
    "billing": "Billing",
    "refill": "Refill",
    "urgent": "Urgent",
    "clinical": "Clinical concern",
    "stop": "Stop",
    "start": "Start",
    "help": "Help",
    "ack": "Page acknowledgement",
    "unknown": "Not understood",
}
MESSAGE_KIND_LABELS = {
    MessageKind.FIRST_TEXT: "First text",
    MessageKind.NUDGE: "Follow-up",
    MessageKind.PAGE: "Page",
    MessageKind.PAGE_ACK: "Page confirmation",
    MessageKind.STAFF_REPLY: "Reply",
}
LANGUAGE_LABELS = {"en": "English", "es": "Spanish"}
REFUSAL_LABELS = {
    StaffReplyRefusal.EMPTY: "Write a reply first.",
    StaffReplyRefusal.TOO_LONG: f"Keep a reply under {MAX_STAFF_REPLY} characters (four texts).",
    StaffReplyRefusal.OPTED_OUT: "This patient texted STOP: no text can be sent to them "
    "until they text START.",
    StaffReplyRefusal.UNKNOWN_SAVED_REPLY: "That saved reply was removed.",
}
# How a text's delivery state reads to staff: "accepted" is provider talk for "sent".
DELIVERY_LABELS = {
    MessageStatus.PENDING: "queued",
    MessageStatus.RETRYING: "queued",
    MessageStatus.SENDING: "sending",
    MessageStatus.ACCEPTED: "sent",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.UNDELIVERED: "not delivered",
    MessageStatus.FAILED: "failed",
    MessageStatus.SUPPRESSED: "not sent (opted out)",
    MessageStatus.RECEIVED: "received",
    MessageStatus.ROUTED: "received",
}


def display_phone(e164: str | None) -> str:
    """(512) 555-0199 for North American numbers, +44 20 7946 0958 for the rest."""
    if not e164:
        return "unknown number"
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)
