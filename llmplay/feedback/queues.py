"""Feedback queues: create, read, list and change them (each write audited). Part of the feedback store;
callers use them as ``store.<name>`` (llmplay/feedback/store.py re-exports them)."""

from __future__ import annotations

import json
from dataclasses import asdict

from sqlite_utils import Database

from llmplay.auth.roles import ROLES, check_role
from llmplay.errors import LlmplayError, short
from llmplay.feedback.records import (
    ACCEPT_RULES,
    MAX_GUIDELINES,
    MAX_K,
    MAX_LABELS,
    QUEUES,
    TASKS,
    FeedbackError,
    Queue,
    _text,
    audit,
    check_name,
    labeler_name,
    now,
)
from llmplay.store import immediate


def _check_queue_fields(task: str, labels, k, rating_min, rating_max, accept_rule, guidelines) -> list[str]:
    if task not in TASKS:
        raise FeedbackError(f"Task {short(task)} is not one of {', '.join(TASKS)}.")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise FeedbackError(f"Responses per item (k) must be a whole number from 1 to {MAX_K}, not {short(k)}.")
    if accept_rule not in ACCEPT_RULES:
        raise FeedbackError(f"Accept rule {short(accept_rule)} is not one of {', '.join(ACCEPT_RULES)}.")
    _text(guidelines, "The guidelines", MAX_GUIDELINES)
    clean = [str(label).strip() for label in (labels or []) if str(label).strip()]
    if len(set(clean)) != len(clean):
        raise FeedbackError("The label set names a label twice.")
    if len(clean) > MAX_LABELS or any(len(label) > 100 for label in clean):
        raise FeedbackError(f"At most {MAX_LABELS} labels of at most 100 characters each.")
    if task == "label" and len(clean) < 2:
        raise FeedbackError("A label task needs at least two labels (e.g. positive, negative).")
    for value, what in ((rating_min, "rating_min"), (rating_max, "rating_max")):
        if isinstance(value, bool) or not isinstance(value, int) or not -100 <= value <= 100:
            raise FeedbackError(f"{what} must be a whole number from -100 to 100, not {short(value)}.")
    if task == "rating" and rating_max <= rating_min:
        raise FeedbackError(
            f"The rating scale {rating_min}-{rating_max} is empty: rating_max must be above rating_min."
        )
    return clean


def _check_accept_from(role: str | None) -> str | None:
    """The lowest role whose lone answer is accepted without review (provenance.py); None: the default."""
    if role in (None, ""):
        return None
    try:
        return check_role(role)
    except LlmplayError:
        raise FeedbackError(f"accept_from must be a role ({', '.join(ROLES)}), not {short(role)}.") from None


def create_queue(
    db: Database,
    name: str,
    task: str,
    *,
    user: str | None = None,
    guidelines: str = "",
    labels: list[str] | None = None,
    k: int = 1,
    rating_min: int = 1,
    rating_max: int = 5,
    show_reference: bool = False,
    accept_rule: str = "auto",
    template: str | None = None,
    accept_from: str | None = None,
) -> Queue:
    name = check_name(name)
    accept_from = _check_accept_from(accept_from)
    user = labeler_name(user)
    labels = _check_queue_fields(task, labels, k, rating_min, rating_max, accept_rule, guidelines)
    with immediate(db):
        if list(db[QUEUES].rows_where("name = ?", [name], limit=1)):
            raise FeedbackError(f"A queue named {name!r} exists already; pick another name or open that queue.")
        row = {
            "name": name,
            "task": task,
            "guidelines": guidelines or "",
            "labels": json.dumps(labels),
            "rating_min": rating_min,
            "rating_max": rating_max,
            "k": k,
            "show_reference": int(bool(show_reference)),
            "accept_rule": accept_rule,
            "template": template,
            "accept_from": accept_from,
            "created_by": user,
            "created_at": now(),
        }
        queue_id = db[QUEUES].insert(row).last_pk
        audit(db, user, "create", QUEUES, queue_id, after=row)
    return get_queue(db, queue_id)


def ensure_queue(db: Database, name: str, task: str, *, user: str | None = None, **settings) -> Queue:
    """The queue named ``name``, created with ``settings`` if it is not there (built-in queues: 'inbox',
    'preferences'). An existing queue of another task is an error, not silently reused."""
    found = list(db[QUEUES].rows_where("name = ?", [name], limit=1)) if db[QUEUES].exists() else []
    if found:
        queue = Queue.from_row(found[0])
    else:
        try:
            queue = create_queue(db, name, task, user=user, **settings)
        except FeedbackError:  # created by another writer in between
            queue = get_queue(db, name)
    if queue.task != task:
        raise FeedbackError(f"Queue {name!r} is a {queue.task} queue, not {task}; pick a {task} queue.")
    return queue


def get_queue(db: Database, queue: str | int | Queue) -> Queue:
    if isinstance(queue, Queue):
        return queue
    if isinstance(queue, int) and not isinstance(queue, bool):
        rows = list(db[QUEUES].rows_where("id = ?", [queue], limit=1))
    else:
        rows = list(db[QUEUES].rows_where("name = ?", [str(queue).strip()], limit=1))
    if not rows:
        raise FeedbackError(f"There is no feedback queue {short(queue)}. Create it first (or pick one from the list).")
    return Queue.from_row(rows[0])


def list_queues(db: Database, *, include_archived: bool = False) -> list[Queue]:
    if not db[QUEUES].exists():
        return []
    where = None if include_archived else "archived_at is null"
    return [Queue.from_row(r) for r in db[QUEUES].rows_where(where, order_by="name")]


def update_queue(db: Database, queue: str | int | Queue, *, user: str | None = None, **changes) -> Queue:
    """Change a queue's guidelines, labels, k, rating scale, show_reference, accept_rule or archive it
    (``archived=True``). The task cannot change: its responses would no longer fit."""
    user = labeler_name(user)
    allowed = {"guidelines", "labels", "k", "rating_min", "rating_max", "show_reference", "accept_rule", "archived"}
    allowed.add("accept_from")
    unknown = set(changes) - allowed
    if unknown:
        raise FeedbackError(
            f"Cannot change {', '.join(sorted(unknown))} of a queue (allowed: {', '.join(sorted(allowed))})."
        )
    with immediate(db):
        old = get_queue(db, queue)
        merged = asdict(old) | {k: v for k, v in changes.items() if k != "archived"}
        labels = _check_queue_fields(
            old.task,
            merged["labels"],
            merged["k"],
            merged["rating_min"],
            merged["rating_max"],
            merged["accept_rule"],
            merged["guidelines"],
        )
        update = {k: v for k, v in changes.items() if k not in ("archived", "labels")}
        if "labels" in changes:
            update["labels"] = json.dumps(labels)
        if "accept_from" in update:
            update["accept_from"] = _check_accept_from(update["accept_from"])
        if "show_reference" in update:
            update["show_reference"] = int(bool(update["show_reference"]))
        if "archived" in changes:
            update["archived_at"] = now() if changes["archived"] else None
        update["updated_at"] = now()
        db[QUEUES].update(old.id, update)
        audit(db, user, "update", QUEUES, old.id, before=asdict(old), after=update)
    return get_queue(db, old.id)
