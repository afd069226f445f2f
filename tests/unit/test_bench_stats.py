"""The benchmark's percentiles: nearest-rank, exact, on observed values only."""

from __future__ import annotations

import random

import pytest

from bench.stats import median, nearest_rank, percentile, ratio, summarize


def test_nearest_rank_of_one_to_hundred_is_the_value_itself() -> None:
    values = list(range(1, 101))
    random.Random(4).shuffle(values)

    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100


def test_p0_is_the_minimum_and_p100_the_maximum() -> None:
    assert percentile([7.0, 3.0, 9.0], 0) == 3.0
    assert percentile([7.0, 3.0, 9.0], 100) == 9.0


def test_a_percentile_is_always_an_observed_value() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 20.0  # rank ceil(2.0) = 2, not an interpolated 25
    assert percentile(values, 60) == 30.0  # rank ceil(2.4) = 3


def test_rank_is_exact_where_floating_point_would_round_up() -> None:
    # 0.95 * 20 == 19.000000000000004 in floats; the 95th percentile of 20 values is rank 19.
    assert nearest_rank(20, 95) == 19
    assert percentile(range(1, 21), 95) == 19
    assert nearest_rank(1000, 99.9) == 999


def test_few_samples_make_p99_the_maximum() -> None:
    assert percentile([1.0, 2.0, 3.0], 99) == 3.0
    assert percentile([5.0], 50) == 5.0


def test_empty_input_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    assert summarize([]) is None


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percentile_outside_zero_to_hundred_is_refused(p: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], p)


def test_summary_of_a_known_sample() -> None:
    summary = summarize([float(v) for v in range(200, 0, -1)])

    assert summary is not None
    assert summary.count == 200
    assert (summary.p50, summary.p95, summary.p99, summary.max) == (100.0, 190.0, 198.0, 200.0)
    assert summary.min == 1.0
    assert summary.mean == pytest.approx(100.5)


def test_median_takes_the_lower_middle_of_an_even_count() -> None:
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.0


def test_ratio_is_none_without_a_usable_baseline() -> None:
    assert ratio(30.0, 10.0) == 3.0
    assert ratio(30.0, 0.0) is None
    assert ratio(None, 10.0) is None
    assert ratio(30.0, None) is None


def test_reply_targets_page_at_most_once_per_practice_and_keep_every_caller() -> None:
    from bench.phases import _reply_targets
    from bench.scenarios import ReplyTarget

    # 60 callers of 3 practices: one in ten replies wants URGENT, only 3 practices can page.
    seeds = [
        ReplyTarget(f"+1212200{i:04d}", "+15125550100", f"+1214555{p:04d}", f"p{p}", "")
        for i, p in enumerate([i % 3 for i in range(60)])
    ]

    targets = _reply_targets(seeds, urgent_every=10)

    urgent = [t for t in targets if t.urgent]
    assert len(urgent) == 3
    assert len({t.practice for t in urgent}) == 3
    assert sorted(t.caller for t in targets) == sorted(s.caller for s in seeds)
    assert {t.body for t in targets} == {"BOOK", "URGENT"}
