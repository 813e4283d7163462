"""Arena votes in SQLite (table ``arena_votes``, see store.py).

Every vote is kept, also the ones cast after the identities were shown; those have ``counted = 0`` and
are left out of ratings. Inputs (prompt string or chat messages) are stored as JSON text. A vote becomes
feedback (a preference pair, a correction) through ``llmplay.feedback.sources``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from typing import Any

from sqlite_utils import Database

from llmplay.arena.ratings import WINNERS, Comparison
from llmplay.errors import InvalidRequestError

VOTES = "arena_votes"
Prompt = str | list[dict[str, Any]]  # a prompt string, or chat messages [{"role": ..., "content": ...}]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def contestant_key(model: str, adapter: str | None = None, template_version_id: int | None = None) -> str:
    """The name a contestant is rated under: model, +adapter, @template version id (when it has its own)."""
    key = model
    if adapter:
        key += f"+{adapter}"
    if template_version_id is not None:
        key += f"@tv{template_version_id}"
    return key


@dataclass(frozen=True)
class Vote:
    id: int
    battle_id: str
    created_at: str
    user: str | None
    template: str | None
    template_version_id: int | None
    input: Prompt
    params: dict | None
    model_a: str
    adapter_a: str | None
    template_version_a: int | None
    model_version_a: str | None
    output_a: str | None
    model_b: str
    adapter_b: str | None
    template_version_b: int | None
    model_version_b: str | None
    output_b: str | None
    winner: str
    counted: bool

    @property
    def key_a(self) -> str:
        return contestant_key(self.model_a, self.adapter_a, self.template_version_a)

    @property
    def key_b(self) -> str:
        return contestant_key(self.model_b, self.adapter_b, self.template_version_b)

    def comparison(self) -> Comparison:
        return Comparison(self.key_a, self.key_b, self.winner)

    @classmethod
    def from_row(cls, row: dict) -> Vote:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in row.items() if k in names}
        values["input"] = json.loads(row["input"])
        values["params"] = json.loads(row["params"]) if row.get("params") else None
        values["counted"] = bool(row["counted"])
        return cls(**values)


def record_vote(db: Database, battle: dict, winner: str, *, counted: bool, user: str | None = None) -> Vote:
    """Store a vote on ``battle`` (a row of ``arena_battles``). Call inside the caller's transaction;
    deciding whether it counts is the battle's business (see battles.cast_vote)."""
    if winner not in WINNERS:
        raise InvalidRequestError(f"Unknown vote {winner!r}: choose one of {', '.join(WINNERS)}.")
    row = {k: v for k, v in battle.items() if k not in ("id", "created_at", "user", "revealed_at")}
    row |= {"battle_id": battle["id"], "created_at": now(), "user": user, "winner": winner, "counted": int(counted)}
    vote_id = db[VOTES].insert(row).last_pk
    return get_vote(db, vote_id)


def get_vote(db: Database, vote_id: int) -> Vote:
    rows = list(db[VOTES].rows_where("id = ?", [vote_id])) if db[VOTES].exists() else []
    if not rows:
        raise InvalidRequestError(f"No arena vote with id {vote_id}.")
    return Vote.from_row(rows[0])


def _bound(value: datetime | date | str | None, what: str) -> str | None:
    """An ISO 8601 UTC string comparable with created_at; a date means its midnight (UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            message = f"{what}: {value!r} is not a date or time like 2025-03-01 or 2025-03-01T14:00"
            raise InvalidRequestError(message) from None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def list_votes(
    db: Database,
    *,
    template: str | None = None,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    model: str | None = None,
    user: str | None = None,
    counted_only: bool = True,
) -> list[Vote]:
    """Votes oldest first. ``since`` is inclusive, ``until`` exclusive; ``model`` matches either side."""
    if not db[VOTES].exists():
        return []
    where, args = [], []
    if counted_only:
        where.append("counted = 1")
    if template:
        where.append("template = ?")
        args.append(template)
    if (start := _bound(since, "since")) is not None:
        where.append("created_at >= ?")
        args.append(start)
    if (end := _bound(until, "until")) is not None:
        where.append("created_at < ?")
        args.append(end)
    if model:
        where.append("(model_a = ? or model_b = ?)")
        args += [model, model]
    if user:
        where.append("user = ?")
        args.append(user)
    rows = db[VOTES].rows_where(" and ".join(where) or None, args, order_by="id")
    return [Vote.from_row(row) for row in rows]


def comparisons(votes: list[Vote]) -> list[Comparison]:
    """What the ratings need from votes: only the counted ones."""
    return [v.comparison() for v in votes if v.counted]


def vote_templates(db: Database) -> list[str]:
    """Template names that have votes (for the leaderboard's filter)."""
    if not db[VOTES].exists():
        return []
    return [r["template"] for r in db.query(f"select distinct template from {VOTES} where template is not null")]
