"""The feedback store's records and rules (no writes but the audit row): names of its tables, limits, the
dataclasses of queues, items, responses and adjudications, the checks of names and texts, and the audit trail.
``llmplay.feedback.store`` re-exports all of it, so callers import one module."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from llmplay import names
from llmplay.errors import InvalidRequestError
from llmplay.store import now

Prompt = str | list[dict[str, Any]]  # a prompt string, or chat messages [{"role": ..., "content": ...}]

TASKS = ("correction", "rating", "label", "preference")
RESPONSE_STATUSES = ("draft", "submitted", "discarded")
ACCEPT_RULES = ("auto", "adjudicated", "majority")  # see feedback/accepted.py
PREFERENCES = ("a", "b", "tie")
MAX_K = 20
MAX_TEXT = 20_000  # characters of a correction, comment, guideline or stored reply
MAX_GUIDELINES = 50_000
MAX_LABELS = 50
MAX_TAGS = 20
CLAIM_SECONDS = 15 * 60  # an item handed to a labeler is theirs this long, then its slot is free again
ANONYMOUS = "anonymous"

QUEUES, ITEMS, RESPONSES = "feedback_queues", "feedback_items", "feedback_responses"
CLAIMS, ADJUDICATIONS, CONSUMPTION, AUDIT = (
    "feedback_claims",
    "feedback_adjudications",
    "feedback_consumption",
    "feedback_audit",
)


class FeedbackError(InvalidRequestError):
    """A feedback request that cannot be done as asked; the message says why and what to do."""


class ClientTokenConflict(FeedbackError):
    """A response's client token was already used for another labeler's or another item's answer (HTTP 409)."""


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def labeler_name(user: str | None) -> str:
    """The name a write is recorded under (no logins yet: labelers name themselves, blank is anonymous)."""
    name = (user or "").strip()
    if len(name) > 100:
        raise FeedbackError("A labeler name has at most 100 characters.")
    return name or ANONYMOUS


def check_name(name: str, what: str = "queue") -> str:
    """Queue names (llmplay/names.py's rule)."""
    return names.check_name(name, what, FeedbackError)


def _text(value: Any, what: str, limit: int = MAX_TEXT, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise FeedbackError(f"{what} is missing.")
        return None
    if not isinstance(value, str):
        raise FeedbackError(f"{what} must be text, not {type(value).__name__}.")
    if len(value) > limit:
        raise FeedbackError(f"{what} is {len(value):,} characters; the limit is {limit:,}. Shorten it.")
    if "\x00" in value:  # kept out of the store: exports and training files would carry it on
        raise FeedbackError(f"{what} contains a NUL character (\\x00); remove it.")
    if required and not value.strip():
        raise FeedbackError(f"{what} is empty.")
    return value


# ---- records -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    id: int
    name: str
    task: str
    guidelines: str
    labels: list[str]
    rating_min: int
    rating_max: int
    k: int
    show_reference: bool
    accept_rule: str
    template: str | None
    created_by: str | None
    created_at: str
    updated_at: str | None
    archived_at: str | None
    accept_from: str | None = None  # lowest role whose lone answer needs no review (None: labeler; provenance.py)

    @classmethod
    def from_row(cls, row: dict) -> Queue:
        return cls(
            **(
                row
                | {
                    "labels": json.loads(row["labels"] or "[]"),
                    "show_reference": bool(row["show_reference"]),
                    "guidelines": row["guidelines"] or "",
                }
            )
        )


@dataclass(frozen=True)
class Item:
    id: int
    queue_id: int
    source: str
    input: dict
    prompt: Prompt
    template: str | None
    template_version_id: int | None
    model: str | None
    adapter: str | None
    output: str | None
    model_b: str | None
    adapter_b: str | None
    output_b: str | None
    reference: str | None
    meta: dict
    dedupe_key: str
    status: str
    created_by: str | None
    created_at: str
    origin: dict = field(default_factory=dict)  # the stored outputs it refers to, e.g. {"comparison": 3}

    @classmethod
    def from_row(cls, row: dict) -> Item:
        return cls(
            **(
                row
                | {
                    "input": json.loads(row["input"] or "{}"),
                    "prompt": json.loads(row["prompt"]),
                    "meta": json.loads(row["meta"] or "{}"),
                    "origin": json.loads(row.get("origin") or "{}"),
                }
            )
        )

    @property
    def prompt_text(self) -> str:
        """The prompt as one text (chat turns as 'role: content' lines), for display and CSV."""
        return prompt_text(self.prompt)


def prompt_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt)


@dataclass(frozen=True)
class Response:
    id: int
    item_id: int
    queue_id: int
    labeler: str
    kind: str
    value: Any
    comment: str | None
    tags: list[str]
    status: str
    client_token: str | None
    created_at: str
    updated_at: str | None
    submitted_at: str | None
    role: str | None = None  # the sender's role when sent from a reply; None: given in a labeling queue

    @classmethod
    def from_row(cls, row: dict) -> Response:
        return cls(**(row | {"value": json.loads(row["value"]), "tags": json.loads(row["tags"] or "[]")}))


@dataclass(frozen=True)
class Adjudication:
    item_id: int
    value: Any
    adjudicator: str
    comment: str | None
    created_at: str
    updated_at: str | None

    @classmethod
    def from_row(cls, row: dict) -> Adjudication:
        return cls(**(row | {"value": json.loads(row["value"])}))


@dataclass(frozen=True)
class Progress:
    total: int  # open items in the queue
    complete: int  # items with k submitted responses
    mine: int  # items this labeler submitted or discarded
    available: int  # items this labeler could still be handed (not counting claims)
    drafts: int = 0
    k: int = 1
    by_labeler: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.mine} of {self.mine + self.available} done" if self.total else "The queue is empty."


# ---- audit -------------------------------------------------------------------------------------------------


def audit(db: Database, user: str, action: str, entity: str, entity_id: int | None, before=None, after=None) -> None:
    db[AUDIT].insert(
        {
            "at": now(),
            "user": user,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "before": None if before is None else json.dumps(before, default=str),
            "after": None if after is None else json.dumps(after, default=str),
        }
    )


def audit_log(db: Database, *, entity: str | None = None, entity_id: int | None = None, limit: int = 500) -> list:
    where, args = [], []
    if entity:
        where.append("entity = ?")
        args.append(entity)
    if entity_id is not None:
        where.append("entity_id = ?")
        args.append(entity_id)
    rows = db[AUDIT].rows_where(" and ".join(where) or None, args, order_by="id desc", limit=limit)
    return [r | {"before": json.loads(r["before"] or "null"), "after": json.loads(r["after"] or "null")} for r in rows]
