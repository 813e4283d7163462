import math

import numpy as np
import pytest

from llmplay.arena.ratings import Comparison, fit_bradley_terry, leaderboard
from llmplay.errors import InvalidRequestError

TRUE = {"m0": 800.0, "m1": 900.0, "m2": 1000.0, "m3": 1100.0, "m4": 1200.0}  # mean 1000, as the fit is scaled


def simulate(n: int, seed: int, true: dict[str, float] = TRUE) -> list[Comparison]:
    """Battles between random pairs, each won with the Bradley-Terry probability of the true ratings."""
    rng = np.random.default_rng(seed)
    keys = list(true)
    votes = []
    for _ in range(n):
        a, b = rng.choice(len(keys), size=2, replace=False)
        p_a = 1 / (1 + 10 ** ((true[keys[b]] - true[keys[a]]) / 400))
        votes.append(Comparison(keys[a], keys[b], "a" if rng.random() < p_a else "b"))
    return votes


def test_fit_recovers_the_true_order_and_scale():
    fit = fit_bradley_terry(simulate(3000, seed=1))
    ranked = sorted(fit.keys, key=fit.rating, reverse=True)
    assert ranked == ["m4", "m3", "m2", "m1", "m0"]
    assert np.mean(fit.ratings) == pytest.approx(1000)
    for key, value in TRUE.items():
        assert fit.rating(key) == pytest.approx(value, abs=40)


def test_bootstrap_intervals_cover_the_true_ratings_in_most_trials():
    covered, total, widths = 0, 0, []
    for trial in range(30):
        board = leaderboard(simulate(600, seed=100 + trial), resamples=300, seed=trial)
        assert [r.key for r in board.rows] != []
        for row in board.rows:
            covered += row.low <= TRUE[row.key] <= row.high
            total += 1
            widths.append(row.high - row.low)
            assert row.low <= row.rating <= row.high
    assert covered / total >= 0.85  # nominal 95%
    assert np.mean(widths) < 200  # informative, not trivially wide


def test_ties_count_half_a_win_for_each_side():
    base = [Comparison("x", "y", "a")] * 3 + [Comparison("y", "z", "a")] * 2
    with_ties = fit_bradley_terry(base + [Comparison("x", "y", "tie")] * 4)
    split = fit_bradley_terry(base + [Comparison("x", "y", "a")] * 2 + [Comparison("y", "x", "a")] * 2)
    assert with_ties.keys == split.keys
    np.testing.assert_allclose(with_ties.ratings, split.ratings, atol=1e-6)
    # Ties only: nobody is better.
    np.testing.assert_allclose(fit_bradley_terry([Comparison("x", "y", "tie")] * 10).ratings, [1000, 1000], atol=1e-6)
    # Ties pull ratings together: x beat y 3 times; adding ties shrinks the gap.
    plain = fit_bradley_terry(base)
    assert with_ties.rating("x") - with_ties.rating("y") < plain.rating("x") - plain.rating("y")


def test_both_bad_is_a_tie_by_default_or_can_be_excluded():
    base = [Comparison("x", "y", "a")] * 5 + [Comparison("x", "y", "b")] * 2
    as_tie = fit_bradley_terry(base + [Comparison("x", "y", "tie")] * 3)
    both_bad = fit_bradley_terry(base + [Comparison("x", "y", "both_bad")] * 3)
    excluded = fit_bradley_terry(base + [Comparison("x", "y", "both_bad")] * 3, both_bad="exclude")
    np.testing.assert_allclose(both_bad.ratings, as_tie.ratings)
    np.testing.assert_allclose(excluded.ratings, fit_bradley_terry(base).ratings)
    board = leaderboard(base + [Comparison("x", "y", "both_bad")] * 3, resamples=50)
    counts = {r.key: (r.battles, r.wins, r.losses, r.ties) for r in board.rows}
    assert counts == {"x": (10, 5, 2, 3), "y": (10, 2, 5, 3)}
    assert leaderboard(base + [Comparison("x", "y", "both_bad")], both_bad="exclude", resamples=50).votes == 7


def test_a_model_that_never_wins_gets_a_finite_lowest_rating():
    others = simulate(50, 3, {"a": 0, "b": 0})
    votes = [Comparison("loser", "a", "b")] * 30 + [Comparison("b", "loser", "a")] * 30 + others
    board = leaderboard(votes, resamples=200)
    assert board.rows[-1].key == "loser"
    assert all(math.isfinite(v) for r in board.rows for v in (r.rating, r.low, r.high))
    assert board.rows[-1].rating < 1000 - 300
    # A single decisive vote stays modest instead of running off to infinity.
    single = fit_bradley_terry([Comparison("x", "y", "a")])
    assert 0 < single.rating("x") - single.rating("y") < 400


def test_bootstrap_is_seeded():
    votes = simulate(200, seed=5)
    assert leaderboard(votes, seed=3, resamples=100).rows == leaderboard(votes, seed=3, resamples=100).rows
    assert leaderboard(votes, seed=3, resamples=100).rows != leaderboard(votes, seed=4, resamples=100).rows


def test_win_rate_matrix_and_battle_counts():
    votes = (
        [Comparison("A", "B", "a")] * 3
        + [Comparison("B", "A", "a")]
        + [Comparison("A", "B", "tie")]
        + [Comparison("C", "B", "a")] * 2
    )
    board = leaderboard(votes, resamples=50)
    idx = {k: i for i, k in enumerate(board.keys)}
    assert board.win_rate[idx["A"]][idx["B"]] == pytest.approx(3.5 / 5)
    assert board.win_rate[idx["B"]][idx["A"]] == pytest.approx(1.5 / 5)
    assert board.win_rate[idx["A"]][idx["C"]] is None  # never met
    assert board.battles[idx["A"]][idx["B"]] == 5 and board.battles[idx["B"]][idx["C"]] == 2
    assert {r.key: r.battles for r in board.rows} == {"A": 5, "B": 7, "C": 2}
    table = board.win_rate_table()
    assert table[idx["A"]]["model"] == "A" and table[idx["A"]]["B"] == "70%" and table[idx["A"]]["C"] == ""
    assert [row["model"] for row in board.table()] == board.keys
    assert board.keys[-1] == "B"  # lost most


def test_separated_ranks_share_a_rank_when_intervals_overlap():
    votes = simulate(3000, seed=9, true={"top": 1300, "mid1": 1000, "mid2": 1000, "low": 700})
    board = leaderboard(votes, resamples=300)
    ranks = {r.key: r.rank for r in board.rows}
    assert ranks["top"] == 1 and ranks["mid1"] == ranks["mid2"] == 2 and ranks["low"] == 4


def test_anchor_sits_at_1000_and_keeps_differences():
    votes = simulate(500, seed=2)
    free, anchored = fit_bradley_terry(votes), fit_bradley_terry(votes, anchor="m0")
    assert anchored.rating("m0") == pytest.approx(1000)
    assert anchored.rating("m4") - anchored.rating("m0") == pytest.approx(free.rating("m4") - free.rating("m0"))
    with pytest.raises(InvalidRequestError, match="anchor"):
        fit_bradley_terry(votes, anchor="nobody")


def test_order_uncertainty_shrinks_with_evidence():
    votes = [Comparison("x", "y", "a")] * 95 + [Comparison("x", "y", "b")] * 5 + [Comparison("y", "z", "tie")]
    fit = fit_bradley_terry(votes)
    assert fit.order_uncertainty("x", "y") < 0.01
    assert fit.order_uncertainty("y", "z") > 0.3
    assert fit.order_uncertainty("x", "never-voted") == 0.5


def test_empty_and_invalid_input():
    assert leaderboard([]).rows == [] and leaderboard([]).fit is None
    assert fit_bradley_terry([]).keys == []
    with pytest.raises(InvalidRequestError, match="unknown vote"):
        fit_bradley_terry([Comparison("x", "y", "A better")])
    with pytest.raises(InvalidRequestError, match="both_bad"):
        leaderboard([Comparison("x", "y", "a")], both_bad="loss")
