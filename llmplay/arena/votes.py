"""Arena votes and the feedback inbox in SQLite (tables ``arena_votes`` and ``feedback_inbox``, see store.py).

Every vote is kept, also the ones cast after the identities were shown; those have ``counted = 0`` and
are left out of ratings. Inputs (prompt string or chat messages) are stored as JSON text.

The feedback inbox holds training signal (preference pairs, corrected answers) until the feedback store
and continual-learning loop exist to consume it; they set ``consumed_at`` on what they take.
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
INBOX = "feedback_inbox"
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


# --- feedback inbox -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackItem:
    id: int
    kind: str  # preference | correction
    prompt: Prompt
    chosen: str | None
    rejected: str | None
    correction: str | None
    model: str | None
    adapter: str | None
    rejected_model: str | None
    rejected_adapter: str | None
    template_version_id: int | None
    source: str
    user: str | None
    created_at: str
    consumed_at: str | None

    @classmethod
    def from_row(cls, row: dict) -> FeedbackItem:
        return cls(**(row | {"prompt": json.loads(row["prompt"])}))


def _add(db: Database, item: dict) -> FeedbackItem:
    """Insert, unless the same item from the same source is already there (a double click sends once)."""
    same = ["kind", "source", "prompt", "chosen", "rejected", "correction"]
    where = " and ".join(f"{c} is ?" for c in same)
    if db[INBOX].exists():
        existing = list(db[INBOX].rows_where(where, [item.get(c) for c in same], limit=1))
        if existing:
            return FeedbackItem.from_row(existing[0])
    item_id = db[INBOX].insert(item | {"created_at": now()}).last_pk
    return FeedbackItem.from_row(db[INBOX].get(item_id))


def add_preference(
    db: Database,
    prompt: Prompt,
    chosen: str,
    rejected: str,
    *,
    source: str,
    model: str | None = None,
    adapter: str | None = None,
    rejected_model: str | None = None,
    rejected_adapter: str | None = None,
    template_version_id: int | None = None,
    user: str | None = None,
) -> FeedbackItem:
    """A preferred/rejected reply pair for the same prompt (e.g. from the Compare tab: source='compare')."""
    if not (chosen or "").strip() or not (rejected or "").strip():
        raise InvalidRequestError("A preference needs both replies; one of them is empty.")
    if chosen == rejected:
        raise InvalidRequestError("The two replies are identical, so neither is preferred; write a correction instead.")
    return _add(
        db,
        {
            "kind": "preference",
            "prompt": json.dumps(prompt),
            "chosen": chosen,
            "rejected": rejected,
            "model": model,
            "adapter": adapter,
            "rejected_model": rejected_model,
            "rejected_adapter": rejected_adapter,
            "template_version_id": template_version_id,
            "source": source,
            "user": user,
        },
    )


def add_correction(
    db: Database,
    prompt: Prompt,
    reply: str,
    correction: str,
    *,
    source: str,
    model: str | None = None,
    adapter: str | None = None,
    template_version_id: int | None = None,
    user: str | None = None,
) -> FeedbackItem:
    """The answer the user says ``model`` should have given instead of ``reply``."""
    if not (correction or "").strip():
        raise InvalidRequestError("Write the correct answer first; it is empty.")
    return _add(
        db,
        {
            "kind": "correction",
            "prompt": json.dumps(prompt),
            "rejected": reply,
            "correction": correction,
            "model": model,
            "adapter": adapter,
            "template_version_id": template_version_id,
            "source": source,
            "user": user,
        },
    )


def _side(vote: Vote, side: str) -> dict:
    if side not in ("a", "b"):
        raise InvalidRequestError(f"side must be 'a' or 'b', not {side!r}")
    return {
        "output": getattr(vote, f"output_{side}"),
        "model": getattr(vote, f"model_{side}"),
        "adapter": getattr(vote, f"adapter_{side}"),
        "template_version_id": getattr(vote, f"template_version_{side}") or vote.template_version_id,
    }


def preference_from_vote(db: Database, vote_id: int, user: str | None = None) -> FeedbackItem:
    """Send a decisive vote (A or B better) to the inbox as a preference pair, source 'arena-vote:<id>'.

    Votes cast after the reveal are accepted too: they are not rated, but the judgement still teaches.
    """
    vote = get_vote(db, vote_id)
    if vote.winner not in ("a", "b"):
        raise InvalidRequestError(
            "This vote has no preferred reply (tie or both bad); write the correct answer for a reply instead."
        )
    win, lose = _side(vote, vote.winner), _side(vote, "b" if vote.winner == "a" else "a")
    return add_preference(
        db,
        vote.input,
        win["output"] or "",
        lose["output"] or "",
        source=f"arena-vote:{vote.id}",
        model=win["model"],
        adapter=win["adapter"],
        rejected_model=lose["model"],
        rejected_adapter=lose["adapter"],
        template_version_id=win["template_version_id"],
        user=user if user is not None else vote.user,
    )


def correction_from_vote(
    db: Database, vote_id: int, side: str, correction: str, user: str | None = None
) -> FeedbackItem:
    """Send 'this is what reply A (or B) should have been' to the inbox, source 'arena-vote:<id>'."""
    vote = get_vote(db, vote_id)
    s = _side(vote, side)
    return add_correction(
        db,
        vote.input,
        s["output"] or "",
        correction,
        source=f"arena-vote:{vote.id}",
        model=s["model"],
        adapter=s["adapter"],
        template_version_id=s["template_version_id"],
        user=user if user is not None else vote.user,
    )


def list_feedback(
    db: Database, *, kind: str | None = None, source: str | None = None, unconsumed_only: bool = False
) -> list[FeedbackItem]:
    """Inbox items oldest first; ``source`` matches exactly or as a prefix ending in ':' ('arena-vote:')."""
    if not db[INBOX].exists():
        return []
    where, args = [], []
    if kind:
        where.append("kind = ?")
        args.append(kind)
    if source:
        where.append("source like ?" if source.endswith(":") else "source = ?")
        args.append(source + "%" if source.endswith(":") else source)
    if unconsumed_only:
        where.append("consumed_at is null")
    return [FeedbackItem.from_row(r) for r in db[INBOX].rows_where(" and ".join(where) or None, args, order_by="id")]


def mark_consumed(db: Database, item_ids: list[int]) -> None:
    """For the consumer of the inbox: these items became training data."""
    stamp = now()
    with db.atomic():
        for item_id in item_ids:
            db[INBOX].update(item_id, {"consumed_at": stamp})
