"""The vocabulary of urgent pages: why a page started, why a clinician's ACK did not take
one, and where a voice page's call has got to."""

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

    @property
    def call_template(self) -> str:
        """What the voice call of this page says ("page_call.txt")."""
        return f"{self.value}_call"


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


# The key a clinician presses on a voice page's call to take the page.
TAKE_DIGIT = "1"


class CallStep(enum.StrEnum):
    """What a voice page's call says next (`voice_pages.answer`)."""

    PROMPT = "prompt"  # the page's words and "press 1 to take it", waiting for the digit
    TAKEN = "taken"  # that press took the page: it is yours
    ALREADY_TAKEN = "already_taken"  # someone took it first (by text, link or call)
    GONE = "gone"  # no call of ours by that id: goodbye
