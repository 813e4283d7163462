import numpy as np
import pytest

from llmplay.errors import InvalidRequestError
from llmplay.evaluation.stats import bootstrap_mean, bootstrap_metric, paired_bootstrap

SCORES = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 5


def test_bootstrap_is_deterministic_with_a_seed():
    assert bootstrap_mean(SCORES, seed=7) == bootstrap_mean(SCORES, seed=7)
    continuous = np.random.default_rng(0).random(40)
    assert bootstrap_mean(continuous, seed=7) != bootstrap_mean(continuous, seed=8)


def test_interval_contains_the_estimate():
    ci = bootstrap_mean(SCORES)
    assert ci.estimate == pytest.approx(0.7)
    assert ci.n == 50
    assert 0.5 < ci.low < ci.estimate < ci.high < 0.9


def test_n1_and_constant_scores_give_a_zero_width_interval():
    ci = bootstrap_mean([0.25])
    assert (ci.estimate, ci.low, ci.high, ci.n) == (0.25, 0.25, 0.25, 1)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")]])
def test_no_scores_is_a_clear_error(bad):
    with pytest.raises(InvalidRequestError, match="confidence interval"):
        bootstrap_mean(bad)


def test_paired_difference_with_itself_is_exactly_zero():
    diff = paired_bootstrap(SCORES, SCORES)
    assert (diff.estimate, diff.interval.low, diff.interval.high) == (0.0, 0.0, 0.0)
    assert diff.better == [] and diff.worse == []


def test_clearly_better_column_has_an_interval_above_zero_and_lists_moved_rows():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 100).astype(float)
    b = a.copy()
    b[:30] = 1.0  # b fixes some rows...
    b[95] = 1.0 - a[95]  # ...and changes one more
    diff = paired_bootstrap(a, b)
    fixed = [i for i in range(30) if a[i] == 0]
    assert diff.interval.low > 0
    assert diff.better == sorted(fixed + ([95] if a[95] == 0 else []))
    assert diff.worse == ([95] if a[95] == 1 else [])


def test_paired_needs_the_same_rows():
    with pytest.raises(InvalidRequestError, match="same rows"):
        paired_bootstrap([1, 0], [1, 0, 1])


def test_bootstrap_of_a_non_mean_metric_recomputes_it_on_resamples():
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    calls = []

    def median(idx):
        calls.append(len(idx))
        return float(np.median(values[idx]))

    ci = bootstrap_metric(median, len(values), resamples=200, seed=1)
    assert ci.estimate == 3.5
    assert ci.low <= 3.5 <= ci.high
    assert len(calls) == 201 and set(calls) == {8}
    assert ci == bootstrap_metric(lambda idx: float(np.median(values[idx])), len(values), resamples=200, seed=1)
    with pytest.raises(InvalidRequestError, match="n=0"):
        bootstrap_metric(median, 0)
