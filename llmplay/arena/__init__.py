"""Blind arena and leaderboard: battles between anonymous contestants, stored votes, Bradley-Terry ratings.

No UI here: ``llmplay.ui`` builds the Arena and Leaderboard tabs on these functions.
- ``battles``: contestants, pair selection, blind battles, voting and the reveal
- ``votes``: stored votes with filters, and the feedback inbox (preference pairs, corrections)
- ``ratings``: Bradley-Terry fit on the Elo scale, bootstrap intervals, win-rate matrix
"""

from llmplay.arena.battles import (
    Battle,
    Contestant,
    VoteResult,
    cast_vote,
    draw_battle,
    load_battle,
    pair_probabilities,
    pick_pair,
    reveal,
    save_battle,
    set_outputs,
)
from llmplay.arena.ratings import Comparison, Fit, Leaderboard, ModelRating, fit_bradley_terry, leaderboard
from llmplay.arena.votes import (
    FeedbackItem,
    Vote,
    add_correction,
    add_preference,
    comparisons,
    contestant_key,
    correction_from_vote,
    get_vote,
    list_feedback,
    list_votes,
    mark_consumed,
    preference_from_vote,
    vote_templates,
)

__all__ = [
    "Battle",
    "Comparison",
    "Contestant",
    "FeedbackItem",
    "Fit",
    "Leaderboard",
    "ModelRating",
    "Vote",
    "VoteResult",
    "add_correction",
    "add_preference",
    "cast_vote",
    "comparisons",
    "contestant_key",
    "correction_from_vote",
    "draw_battle",
    "fit_bradley_terry",
    "get_vote",
    "leaderboard",
    "list_feedback",
    "list_votes",
    "load_battle",
    "mark_consumed",
    "pair_probabilities",
    "pick_pair",
    "preference_from_vote",
    "reveal",
    "save_battle",
    "set_outputs",
    "vote_templates",
]
