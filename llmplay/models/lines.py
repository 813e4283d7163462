"""Model lines in storage: a name over a base model and a template, with two aliases over its trained versions.

``active`` is the version every picker serves when a user picks the line (``line:<name>``; the base model when
no version is active); ``candidate`` is the last update's result. Moving an alias is one row change plus one
``loop_events`` row saying who moved it, from what, to what and why.

Rows here are plain dicts. The loop (``llmplay.loop.lines``) reads a row's settings JSON as its LineSettings and
decides when an alias moves; nothing here knows that policy, so the catalog can serve lines without the loop.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlite_utils import Database

LINES, EVENTS = "loop_lines", "loop_events"
LINE_PREFIX = "line:"  # a picker name: "line:fpb" serves that line's active version


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def event(db: Database, user: str, line_id: int, action: str, *, frm=None, to=None, update_id=None, **detail) -> None:
    db[EVENTS].insert(
        {
            "at": now(),
            "user": user,
            "line_id": line_id,
            "action": action,
            "from_version_id": frm,
            "to_version_id": to,
            "update_id": update_id,
            "detail": json.dumps(detail, default=str) if detail else None,
        }
    )


def find_line(db: Database, line: str | int) -> dict | None:
    """The row of the line with this id, name or picker name (``line:<name>``), or None."""
    if isinstance(line, str) and line.startswith(LINE_PREFIX):
        line = line[len(LINE_PREFIX) :]
    column = "id" if isinstance(line, int) else "name"
    rows = list(db[LINES].rows_where(f"{column} = ?", [line], limit=1)) if db[LINES].exists() else []
    return rows[0] if rows else None


def line_rows(db: Database) -> list[dict]:
    """Every line's row, by name."""
    if not db[LINES].exists():
        return []
    return list(db[LINES].rows_where(order_by="name"))


def move_active(db: Database, line_id: int, version_id: int | None) -> None:
    """Point the ``active`` alias at a version (None = the base model); the caller records the event."""
    db[LINES].update(line_id, {"active_version_id": version_id, "updated_at": now()})


def active_label(db: Database, base_model: str, active_version_id: int | None) -> str:
    """The catalog name a line serves now: its active version's label, or the base model."""
    if active_version_id is None:
        return base_model
    row = db.execute("select name, version, base_model from model_versions where id = ?", [active_version_id])
    name, version, base = row.fetchone()
    return f"{base} + {name} v{version}"
