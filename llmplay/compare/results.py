"""Finished Compare results as the server produced them (table ``compare_results``, migration m011).

Every finished comparison is kept with the name of the caller who ran it, and its id goes back with the
result. Feedback about its replies (a preference pair, a correction) names that id and the columns; the
replies themselves are read from here, never from what a client sends back (llmplay/feedback/provenance.py).
A re-roll starts from the stored result too, and is stored as a new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlite_utils import Database

from llmplay.feedback.provenance import Sender, check_owner, not_yours
from llmplay.feedback.records import now
from llmplay.store import immediate

RESULTS = "compare_results"


@dataclass(frozen=True)
class StoredComparison:
    id: int
    user: str | None  # who ran it (the login name; "local" in single-user mode)
    input: dict
    columns: list[dict]
    created_at: str

    def snapshot(self) -> dict:
        """The comparison dict the feedback functions read (the shape ``Comparison.snapshot()`` has)."""
        return {"id": self.id, "input": self.input, "columns": self.columns, "done": True}


def comparison_id(given) -> int | str | None:
    """The stored comparison a client names: an id, or a ``/compare`` result of which only ``id`` is read."""
    value = given.get("id") if isinstance(given, dict) else given
    return None if value in (None, "") else value


def save_comparison(db: Database, snapshot: dict, user: str | None) -> int:
    """Store a finished comparison (``Comparison.snapshot()``) for ``user``; returns its id."""
    row = {
        "user": user,
        "input": json.dumps(snapshot.get("input") or {}, ensure_ascii=False, default=str),
        "columns": json.dumps(snapshot.get("columns") or [], ensure_ascii=False, default=str),
        "created_at": now(),
    }
    with immediate(db):
        return db[RESULTS].insert(row).last_pk


def load_comparison(db: Database, comparison_id, sender: Sender) -> StoredComparison:
    """Comparison ``comparison_id`` if ``sender`` may use it (theirs, or any for an admin); else the same
    refusal as for an id that does not exist."""
    what = f"comparison {comparison_id}"
    if isinstance(comparison_id, bool) or not isinstance(comparison_id, int | str):
        raise not_yours(what)
    try:
        number = int(str(comparison_id).strip())
    except ValueError:
        raise not_yours(what) from None
    rows = list(db[RESULTS].rows_where("id = ?", [number], limit=1)) if abs(number) < 2**63 else []
    if not rows:
        raise not_yours(what)
    row = rows[0]
    check_owner(sender, row["user"], what)
    return StoredComparison(
        row["id"], row["user"], json.loads(row["input"]), json.loads(row["columns"]), row["created_at"]
    )
