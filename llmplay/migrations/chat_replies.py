"""Migrations of the stored Playground replies (llmplay/chat_replies.py)."""

from __future__ import annotations

from sqlite_utils import Database


def m012_chat_replies(db: Database) -> None:
    # Finished Playground replies with the caller they were made for (llmplay/chat_replies.py): ratings and
    # corrections name one of these, never a reply text the client sends.
    db["chat_replies"].create(
        {"id": int, "user": str, "model": str, "prompt": str, "output": str, "created_at": str},  # prompt: JSON
        pk="id",
        not_null={"model", "prompt", "output", "created_at"},
    )
    db["chat_replies"].create_index(["output"])
