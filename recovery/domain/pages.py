"""The vocabulary of urgent pages: why a page started, why a clinician's ACK did not take
one."""

from __future__ import annotations

import enum


class PageReason(enum.StrEnum):
    """Why on-call staff are paged; each reason has its own page text (same name)."""

    URGENT = "page"  # a patient wrote URGENT or named a red flag
    # A clinical concern's care-team task nobody claimed by its due time.
    CLINICAL_OVERDUE = "page_clinical"

    @property
    def template(self) -> str:
        return self.value


class AckProblem(enum.StrEnum):
    NOT_ON_CALL = "not_on_call"  # the sender is nobody a page of this practice went to
    NO_OPEN_PAGE = "no_open_page"  # no active page has that code (or went to the sender)
    AMBIGUOUS = "ambiguous"  # a bare ACK, and the sender holds more than one active page
    ALREADY_ACKNOWLEDGED = "already_acknowledged"  # someone took that page first

    @property
    def needs_answer(self) -> bool:
        """A clinician must never think they took a page they did not; a page already
        taken was answered by whoever took it."""
        return self is not AckProblem.ALREADY_ACKNOWLEDGED
