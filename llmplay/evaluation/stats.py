"""Bootstrap confidence intervals for evaluation scores.

Every aggregate in llmplay is shown with a 95% percentile-bootstrap interval. Resampling is seeded, so
the same scores always give the same interval (a report does not change when it is reopened).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llmplay.errors import InvalidRequestError

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval over n rows."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.n})"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (b - a) over the same rows, its interval, and which rows moved."""

    interval: Interval
    better: list[int]  # row indices where b scored higher than a
    worse: list[int]  # row indices where b scored lower than a

    @property
    def estimate(self) -> float:
        return self.interval.estimate


def _scores(values: Sequence[float], what: str = "scores") -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise InvalidRequestError(f"cannot compute a confidence interval: no {what} (0 rows)")
    if np.isnan(array).any():
        raise InvalidRequestError(f"cannot compute a confidence interval: {what} contain missing values (NaN)")
    return array


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    if resamples < 1:
        raise InvalidRequestError("resamples must be at least 1")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise InvalidRequestError("confidence must be between 0 and 1, e.g. 0.95")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def _clamped(estimate: float, low: float, high: float, n: int, confidence: float) -> Interval:
    # Percentile intervals can exclude the point estimate by a float hair (or for odd statistics);
    # the displayed interval must always contain the number shown beside it.
    return Interval(estimate, min(low, estimate), max(high, estimate), n, confidence)


def bootstrap_mean(
    scores: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, confidence: float = 0.95
) -> Interval:
    """Mean of per-row scores with a percentile-bootstrap interval (n=1 gives a zero-width interval)."""
    values = _scores(scores)
    means = values[_indices(values.size, resamples, seed)].mean(axis=1)
    return _clamped(float(values.mean()), *_percentiles(means, confidence), values.size, confidence)


def bootstrap_metric(
    metric: Callable[[np.ndarray], float],
    n: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Interval:
    """Interval for a metric that is not a row mean (macro-F1, corpus BLEU, entity F1).

    ``metric(indices)`` must compute the metric on the rows at those indices (repeats allowed); it is
    called once on all rows for the estimate and once per resample.
    """
    if n < 1:
        raise InvalidRequestError("cannot compute a confidence interval: no rows (n=0)")
    estimate = float(metric(np.arange(n)))
    samples = np.array([float(metric(idx)) for idx in _indices(n, resamples, seed)])
    return _clamped(estimate, *_percentiles(samples, confidence), n, confidence)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> PairedDifference:
    """Difference b - a of two score columns on the same rows, resampling rows (not columns) together.

    Pairing removes the row-difficulty variance both columns share, so the interval is much tighter than
    comparing two independent intervals.
    """
    first, second = _scores(a, "scores of the first column"), _scores(b, "scores of the second column")
    if first.size != second.size:
        raise InvalidRequestError(
            f"paired comparison needs the same rows in both columns: got {first.size} and {second.size} scores"
        )
    diff = second - first
    means = diff[_indices(diff.size, resamples, seed)].mean(axis=1)
    interval = _clamped(float(diff.mean()), *_percentiles(means, confidence), diff.size, confidence)
    return PairedDifference(interval, better=np.flatnonzero(diff > 0).tolist(), worse=np.flatnonzero(diff < 0).tolist())
