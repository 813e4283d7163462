"""Bradley-Terry ratings from pairwise votes, on the Elo scale, with bootstrap intervals.

Model: P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400)), i.e. a logistic regression on rating
differences. A tie scores half a win for each side. A "both bad" vote says nothing about which reply
was better, so by default it counts as a tie (as Chatbot Arena does); ``both_bad="exclude"`` drops it.

The fit maximises the log-likelihood plus a Gaussian prior on each rating (sd ``PRIOR_SD`` Elo points
around the mean). Without it a model that never won (or never lost) would drift to minus (plus)
infinity and Newton's method would never stop; with it the fit is always finite and unique, and
with a few hundred votes the prior moves ratings by well under a point. Ratings are shifted so
their mean is 1000 (or so that ``anchor`` sits at 1000).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmplay.errors import InvalidRequestError

WINNERS = ("a", "b", "tie", "both_bad")
BASE = 1000.0
SCALE = 400.0 / math.log(10)  # Elo points per natural-log unit of strength
PRIOR_SD = 400.0
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
BothBad = Literal["tie", "exclude"]


@dataclass(frozen=True)
class Comparison:
    """One rated vote: contestant keys in positions a and b, and the verdict."""

    a: str
    b: str
    winner: str  # a | b | tie | both_bad


@dataclass(frozen=True)
class Fit:
    """A point estimate: ratings and their approximate covariance (Elo points), in ``keys`` order."""

    keys: list[str]
    ratings: np.ndarray
    # Inverse of the penalised Fisher information. Only differences are meaningful: the common shift of
    # all ratings is pinned by the prior alone, which inflates each diagonal entry.
    covariance: np.ndarray

    def rating(self, key: str) -> float:
        return float(self.ratings[self.keys.index(key)])

    def order_uncertainty(self, a: str, b: str) -> float:
        """Probability (normal approximation) that the fitted order of a and b is wrong: 0.5 = no idea.

        A key the fit has never seen is as uncertain as can be.
        """
        if a not in self.keys or b not in self.keys or a == b:
            return 0.5
        i, j = self.keys.index(a), self.keys.index(b)
        var = self.covariance[i, i] + self.covariance[j, j] - 2 * self.covariance[i, j]
        if var <= 0:
            return 0.0
        z = abs(self.ratings[i] - self.ratings[j]) / math.sqrt(var)
        return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class ModelRating:
    key: str
    rating: float
    low: float  # bootstrap interval
    high: float
    rank: int  # 1 + number of models whose interval lies wholly above this one
    battles: int
    wins: int
    losses: int
    ties: int  # including both-bad votes when they count as ties


@dataclass(frozen=True)
class Leaderboard:
    rows: list[ModelRating]  # best first
    keys: list[str]  # matrix order (= rows order)
    win_rate: list[list[float | None]]  # [i][j]: share of i's battles against j that i won, ties half
    battles: list[list[int]]  # [i][j]: battles between i and j
    votes: int  # comparisons used
    fit: Fit | None  # the point fit, for pair selection; None when there were no votes
    confidence: float = 0.95
    both_bad: str = "tie"
    resamples: int = DEFAULT_RESAMPLES

    def table(self) -> list[dict]:
        """One dict per model, best first (for a dataframe)."""
        return [
            {
                "rank": r.rank,
                "model": r.key,
                "rating": round(r.rating),
                "95% interval": f"{r.low:.0f} – {r.high:.0f}",
                "battles": r.battles,
                "wins": r.wins,
                "losses": r.losses,
                "ties": r.ties,
            }
            for r in self.rows
        ]

    def win_rate_table(self) -> list[dict]:
        """Rows are the model, columns its opponents; empty where they never met."""
        return [
            {"model": key} | {other: _percent(self.win_rate[i][j]) for j, other in enumerate(self.keys)}
            for i, key in enumerate(self.keys)
        ]


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


@dataclass
class _Encoded:
    """Comparisons as index arrays: i, j and i's score (1, 0.5, 0)."""

    keys: list[str]
    i: np.ndarray
    j: np.ndarray
    score: np.ndarray
    ties: np.ndarray


def _encode(comparisons: Iterable[Comparison], both_bad: BothBad) -> _Encoded:
    if both_bad not in ("tie", "exclude"):
        raise InvalidRequestError(f"both_bad must be 'tie' or 'exclude', not {both_bad!r}")
    keys: dict[str, int] = {}
    rows: list[tuple[int, int, float, bool]] = []
    for c in comparisons:
        if c.winner not in WINNERS:
            raise InvalidRequestError(f"unknown vote {c.winner!r}: expected one of {', '.join(WINNERS)}")
        if c.a == c.b:
            continue  # a model against itself says nothing about ratings
        if c.winner == "both_bad" and both_bad == "exclude":
            continue
        score = {"a": 1.0, "b": 0.0}.get(c.winner, 0.5)
        i = keys.setdefault(c.a, len(keys))
        j = keys.setdefault(c.b, len(keys))
        rows.append((i, j, score, c.winner in ("tie", "both_bad")))
    array = np.array(rows, dtype=float).reshape(-1, 4)
    return _Encoded(
        list(keys),
        array[:, 0].astype(int),
        array[:, 1].astype(int),
        array[:, 2],
        array[:, 3].astype(bool),
    )


def _pair_basis(k: int, i: np.ndarray, j: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per comparison, its contribution to games[i, j] (symmetric) and points[i, j] (points i scored
    against j), flattened to k*k columns: weighted sums of rows give the totals for any resample."""
    n = len(score)
    games = np.zeros((n, k * k))
    points = np.zeros((n, k * k))
    rows = np.arange(n)
    games[rows, i * k + j] = 1
    games[rows, j * k + i] = 1
    points[rows, i * k + j] = score
    points[rows, j * k + i] = 1 - score
    return games, points


def _fit_strengths(games: np.ndarray, points: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Penalised maximum likelihood by Newton's method, for a batch of (games, points) matrices of
    shape (r, k, k); returns log-strengths (r, k) and the Hessians of the loss (r, k, k)."""
    r, k, _ = games.shape
    beta = np.zeros((r, k))
    wins = points.sum(axis=2)
    eye = np.eye(k)

    def loss(b: np.ndarray) -> np.ndarray:
        d = b[:, :, None] - b[:, None, :]
        return np.sum(points * np.logaddexp(0.0, -d), axis=(1, 2)) + 0.5 * penalty * np.sum(b * b, axis=1)

    def hessian(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-(b[:, :, None] - b[:, None, :])))
        w = games * p * (1 - p)
        return p, w.sum(axis=2)[:, :, None] * eye - w + penalty * eye

    current = loss(beta)
    for _ in range(100):
        p, h = hessian(beta)
        grad = (games * p).sum(axis=2) - wins + penalty * beta
        step = np.linalg.solve(h, grad[:, :, None])[:, :, 0]
        # The loss is strictly convex, so a short enough step always lowers it; halving guards the first,
        # large steps when a model won (or lost) everything.
        t = np.ones(r)
        for _ in range(30):
            candidate = beta - t[:, None] * step
            new = loss(candidate)
            worse = new > current + 1e-12
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
        beta, current = candidate, new
        if np.max(np.abs(t[:, None] * step)) < 1e-9:
            break
    return beta, hessian(beta)[1]


def _to_elo(beta: np.ndarray, keys: list[str], anchor: str | None) -> np.ndarray:
    shift = beta[keys.index(anchor)] if anchor is not None else beta.mean()
    return BASE + SCALE * (beta - shift)


def _penalty(prior_sd: float) -> float:
    if prior_sd <= 0:
        raise InvalidRequestError("prior_sd must be positive (Elo points)")
    return (SCALE / prior_sd) ** 2


def _check_anchor(anchor: str | None, keys: list[str]) -> None:
    if anchor is not None and anchor not in keys:
        raise InvalidRequestError(f"anchor {anchor!r} has no votes; choose one of: {', '.join(keys) or 'none'}")


def _totals(basis: tuple[np.ndarray, np.ndarray], weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    games, points = basis
    return (weights @ games).reshape(-1, k, k), (weights @ points).reshape(-1, k, k)


def fit_bradley_terry(
    comparisons: Iterable[Comparison],
    *,
    both_bad: BothBad = "tie",
    prior_sd: float = PRIOR_SD,
    anchor: str | None = None,
) -> Fit:
    """Ratings (Elo scale, mean 1000 or ``anchor`` = 1000) for every contestant that has a vote."""
    enc = _encode(comparisons, both_bad)
    k = len(enc.keys)
    _check_anchor(anchor, enc.keys)
    if k == 0:
        return Fit([], np.zeros(0), np.zeros((0, 0)))
    games, points = _totals(_pair_basis(k, enc.i, enc.j, enc.score), np.ones((1, len(enc.score))), k)
    beta, hessian = _fit_strengths(games, points, _penalty(prior_sd))
    return Fit(enc.keys, _to_elo(beta[0], enc.keys, anchor), np.linalg.inv(hessian[0]) * SCALE**2)


def leaderboard(
    comparisons: Sequence[Comparison],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
    both_bad: BothBad = "tie",
    prior_sd: float = PRIOR_SD,
    anchor: str | None = None,
) -> Leaderboard:
    """Ratings with percentile-bootstrap intervals (votes resampled with replacement, seeded),
    battle counts and the win-rate matrix."""
    if resamples < 1:
        raise InvalidRequestError("resamples must be at least 1")
    if not 0 < confidence < 1:
        raise InvalidRequestError("confidence must be between 0 and 1, e.g. 0.95")
    enc = _encode(comparisons, both_bad)
    keys, k, n = enc.keys, len(enc.keys), len(enc.score)
    _check_anchor(anchor, keys)
    if k == 0:
        return Leaderboard([], [], [], [], 0, None, confidence, both_bad, resamples)
    penalty = _penalty(prior_sd)
    fit = fit_bradley_terry(comparisons, both_bad=both_bad, prior_sd=prior_sd, anchor=anchor)

    # Resampling n votes with replacement only changes how often each distinct (i, j, score) outcome
    # occurs, so draw those counts from a multinomial and fit all resamples as one batch.
    cells, inverse = np.unique(np.stack([enc.i, enc.j, enc.score * 2]), axis=1, return_inverse=True)
    freq = np.bincount(inverse.ravel(), minlength=cells.shape[1]) / n
    basis = _pair_basis(k, cells[0].astype(int), cells[1].astype(int), cells[2] / 2)
    counts = np.random.default_rng(seed).multinomial(n, freq, size=resamples).astype(float)
    samples = np.empty((resamples, k))
    for start in range(0, resamples, 250):  # bounded memory for big k
        beta = _fit_strengths(*_totals(basis, counts[start : start + 250], k), penalty)[0]
        samples[start : start + 250] = [_to_elo(b, keys, anchor) for b in beta]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)

    games, points = (m[0] for m in _totals(basis, freq[None, :] * n, k))
    ties = np.bincount(enc.i, weights=enc.ties, minlength=k) + np.bincount(enc.j, weights=enc.ties, minlength=k)
    wins = np.bincount(enc.i, weights=enc.score == 1, minlength=k) + np.bincount(
        enc.j, weights=enc.score == 0, minlength=k
    )
    played = games.sum(axis=1)
    order = sorted(range(k), key=lambda x: -fit.ratings[x])
    rows = [
        ModelRating(
            key=keys[x],
            rating=float(fit.ratings[x]),
            low=float(low[x]),
            high=float(high[x]),
            rank=1 + int(np.sum(low > high[x])),
            battles=int(round(played[x])),
            wins=int(wins[x]),
            losses=int(round(played[x] - wins[x] - ties[x])),
            ties=int(ties[x]),
        )
        for x in order
    ]
    win_rate = [[float(points[a, b] / games[a, b]) if games[a, b] else None for b in order] for a in order]
    battles = [[int(round(games[a, b])) for b in order] for a in order]
    return Leaderboard(rows, [keys[x] for x in order], win_rate, battles, n, fit, confidence, both_bad, resamples)
