"""Finished Playground replies as the server produced them (table ``chat_replies``, migration m012).

Every reply the Playground streams to the end is kept with the name of the caller it was made for, the model
and the prompt exactly as sent. A 👍 / 👎 or a correction on a reply names a stored one (the page keeps its id
per session; an API caller names it by the chat it came in, which must match one made for them); the
reply, its prompt and its model are read from here, never from what a client sends back
(llmplay/feedback/provenance.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlite_utils import Database

from llmplay.feedback.provenance import Sender, check_owner, not_yours
from llmplay.feedback.records import now
from llmplay.store import immediate

REPLIES = "chat_replies"


@dataclass(frozen=True)
class StoredReply:
    id: int
    user: str | None  # who it was made for (the login name; "local" in single-user mode)
    model: str
    prompt: str | list[dict]  # what the model was sent: raw text (a base model) or messages
    output: str
    created_at: str


def _prompt_key(prompt) -> str:
    return json.dumps(prompt, ensure_ascii=False, sort_keys=True, default=str)


def save_reply(db: Database, user: str | None, model: str, prompt, output: str) -> int:
    """Keep a finished reply made for ``user``; returns its id."""
    row = {"user": user, "model": model, "prompt": _prompt_key(prompt), "output": output, "created_at": now()}
    with immediate(db):
        return db[REPLIES].insert(row).last_pk


def _reply(row: dict) -> StoredReply:
    return StoredReply(
        row["id"], row["user"], row["model"], json.loads(row["prompt"]), row["output"], row["created_at"]
    )


def load_reply(db: Database, reply_id, sender: Sender) -> StoredReply:
    """Reply ``reply_id`` if ``sender`` may use it (theirs, or any for an admin); else the same refusal as for
    an id that does not exist."""
    what = f"Playground reply {reply_id}"
    if isinstance(reply_id, bool) or not isinstance(reply_id, int) or not 0 < reply_id < 2**63:
        raise not_yours(what)
    rows = list(db[REPLIES].rows_where("id = ?", [reply_id], limit=1))
    if not rows:
        raise not_yours(what)
    check_owner(sender, rows[0]["user"], what)
    return _reply(rows[0])


def find_reply(db: Database, sender: Sender, prompt, output: str) -> StoredReply:
    """The newest reply with this prompt and text that ``sender`` may use (made for them; any for an admin) (an
    API caller names a reply by its chat); refused when the server made none: a client cannot file a reply of
    its own making as the model's."""
    rows = db[REPLIES].rows_where(
        "prompt = ? and output = ?", [_prompt_key(prompt), output], order_by="id desc", select="id, user"
    )
    for row in rows:
        if sender.may_use(row["user"]):
            return _reply(next(db[REPLIES].rows_where("id = ?", [row["id"]])))
    raise not_yours("Playground reply like this one")
