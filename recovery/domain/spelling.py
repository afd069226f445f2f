"""Typo distance shared by the menu-keyword matcher and the red-flag concepts.

Pure standard library, no I/O.
"""

from __future__ import annotations

__all__ = ["one_edit_apart"]


def one_edit_apart(a: str, b: str) -> bool:
    """True when a and b differ by exactly one insert, delete, substitution or swap of
    two adjacent letters (optimal string alignment distance 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        i, j = diffs[0], diffs[-1]
        return len(diffs) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
