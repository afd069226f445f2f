"""Percentiles and summaries for the benchmark: small, pure, unit-tested.

Percentiles use the **nearest-rank** method: the p-th percentile of n values is the value at
rank ceil(p/100 * n) in ascending order (rank 1 is the smallest), and p0 is the minimum.
It always returns a value that was actually observed, so a p99 of 120 ms means one real
request took 120 ms; with 100 samples p99 is the second largest, with fewer than 100 it is
the maximum. Interpolating between samples would invent latencies nobody saw.

The rank is computed exactly (with fractions): 0.95 * 20 is 19.000000000000004 in binary
floating point, and a float ceil() would then pick the 20th value instead of the 19th.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction


def nearest_rank(n: int, p: float) -> int:
    """The 1-based rank of the p-th percentile among n sorted values."""
    if n <= 0:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {p}")
    exact = Fraction(str(p)) * n / 100
    return max(1, math.ceil(exact))


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0 <= p <= 100) of values, nearest-rank; ValueError if empty."""
    ordered = sorted(values)
    return ordered[nearest_rank(len(ordered), p) - 1]


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float
    min: float
    mean: float


def summarize(values: Iterable[float]) -> Summary | None:
    """p50/p95/p99/max (and min, mean) of values; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    n = len(ordered)

    def at(p: float) -> float:
        return ordered[nearest_rank(n, p) - 1]

    return Summary(
        count=n,
        p50=at(50),
        p95=at(95),
        p99=at(99),
        max=ordered[-1],
        min=ordered[0],
        mean=math.fsum(ordered) / n,
    )


def median(values: Sequence[float]) -> float:
    """The nearest-rank median (the lower middle value for an even count)."""
    return percentile(values, 50)


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline
