"""The vocabulary of staff tasks: why a patient's reply became work for a person."""

from __future__ import annotations

import enum


class TaskReason(enum.StrEnum):
    BILLING = "billing"  # a billing question
    REFILL = "refill"  # a prescription refill
    BOOK = "book"  # wants an appointment, and the practice has no booking link
    UNCLEAR = "unclear"  # two replies we did not understand
    CLINICAL = "clinical"  # a symptom, an illness or an injury: a nurse calls back
