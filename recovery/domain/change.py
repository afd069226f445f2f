"""What a staff action did: the record as it is now, and whether this call changed it.

Two people click "claim" on one task; both get the task back, and only the service that
held the row lock knows which click moved it. It says so here, so a caller never guesses
from timestamps or names whether its own action was the one that counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Changed(Generic[T]):
    value: T
    changed: bool  # False: it was that way already (someone else's click, a repeat)
