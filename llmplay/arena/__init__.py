"""Blind arena and leaderboard: battles between anonymous contestants, stored votes, Bradley-Terry ratings.

No UI here: ``llmplay.ui`` builds the Arena and Leaderboard tabs on these functions. Must not know the engine,
feedback, training or the UI: callers hand it contestants and outputs as plain values.
- ``battles``: contestants, pair selection, blind battles, voting and the reveal
- ``votes``: stored votes with filters (feedback from votes: ``llmplay.feedback.sources``)
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
    Vote,
    comparisons,
    contestant_key,
    get_vote,
    list_votes,
    vote_templates,
)

__all__ = [
    "Battle",
    "Comparison",
    "Contestant",
    "Fit",
    "Leaderboard",
    "ModelRating",
    "Vote",
    "VoteResult",
    "cast_vote",
    "comparisons",
    "contestant_key",
    "draw_battle",
    "fit_bradley_terry",
    "get_vote",
    "leaderboard",
    "list_votes",
    "load_battle",
    "pair_probabilities",
    "pick_pair",
    "reveal",
    "save_battle",
    "set_outputs",
    "vote_templates",
]
