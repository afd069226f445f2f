"""The vocabulary of staff tasks: why a patient's reply became work for a person."""

from __future__ import annotations

import enum
from datetime import timedelta

# A front-desk task is due this long into the practice's next opening.
FRONT_DESK_SLA = timedelta(hours=1)


class TaskReason(enum.StrEnum):
    BILLING = "billing"  # a billing question
    REFILL = "refill"  # a prescription refill
    BOOK = "book"  # wants an appointment, and the practice has no booking link
    UNCLEAR = "unclear"  # two replies we did not understand
    CLINICAL = "clinical"  # a symptom, an illness or an injury: a nurse calls back
    # No text reaches the caller (an invalid number, a landline, a first text the carrier
    # could not deliver): the front desk phones them instead.
    CALL_BACK = "call_back"
