"""Migrations of the blind arena's tables (llmplay/arena/)."""

from __future__ import annotations

from sqlite_utils import Database


def _arena_sides() -> dict[str, type]:
    """The columns that say who sat in position a and b of a blind battle, and what each wrote.

    Part of m004: changing it would change an applied migration; add columns in a new migration instead.
    """
    columns: dict[str, type] = {}
    for side in ("a", "b"):
        columns |= {
            f"model_{side}": str,
            f"adapter_{side}": str,  # NULL: the base model
            f"template_version_{side}": int,  # the contestant's own template version (template-vs-template battles)
            f"model_version_{side}": str,  # weights fingerprint, when the caller knows it
            f"output_{side}": str,
        }
    return columns


def m004_arena_votes(db: Database) -> None:
    # A blind battle, kept so that a vote can be matched to its hidden identities even after a restart.
    db["arena_battles"].create(
        {
            "id": str,  # random hex: the only handle the browser gets
            "created_at": str,
            "user": str,
            "template": str,  # template name the input was rendered from (NULL: free prompt)
            "template_version_id": int,  # the version shared by both sides
            "input": str,  # JSON: the prompt string or the chat messages
            "params": str,  # JSON decoding parameters
            **_arena_sides(),
            "revealed_at": str,  # set by the first vote or reveal; votes after it are not counted
        },
        pk="id",
        not_null={"created_at", "input", "model_a", "model_b"},
    )
    # One vote. It repeats the battle's content so the leaderboard and exports need this table only.
    db["arena_votes"].create(
        {
            "id": int,
            "battle_id": str,
            "created_at": str,
            "user": str,
            "template": str,
            "template_version_id": int,
            "input": str,
            "params": str,
            **_arena_sides(),
            "winner": str,  # a | b | tie | both_bad
            "counted": int,  # 1: cast blind; 0: cast after the identities were shown (kept, not rated)
        },
        pk="id",
        not_null={"battle_id", "created_at", "input", "model_a", "model_b", "winner", "counted"},
        foreign_keys=[("battle_id", "arena_battles", "id")],
    )
    db["arena_votes"].create_index(["created_at"])
    db["arena_votes"].create_index(["template"])
