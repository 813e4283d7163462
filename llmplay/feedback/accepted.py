"""Accepted feedback: which answer of an item counts as final, and so becomes training data.

One rule per queue (``Queue.accept_rule``):
- ``auto`` (default): the adjudicated answer; else, when ``k`` submitted responses all agree, that answer;
  else, when ``k`` = 1, the single submitted response. Items whose labelers disagree wait for adjudication.
- ``adjudicated``: only adjudicated answers (a reviewer signs off every row).
- ``majority``: the adjudicated answer; else the answer of a strict majority once ``k`` responses are in.
Under every rule, an answer sent with a reply by a role below the queue's ``accept_from`` (default: labeler, so
a viewer's Compare or Arena pair) does not count until someone adjudicates the item (provenance.py).
Two corrections agree when they are equal after collapsing whitespace; ratings, labels and preferences when
they are equal. A preference 'tie' is accepted like any answer but yields no DPO pair.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from llmplay.feedback.provenance import accepts_alone
from llmplay.feedback.store import (
    ADJUDICATIONS,
    CONSUMPTION,
    ITEMS,
    RESPONSES,
    Item,
    Queue,
    Response,
    get_queue,
    list_queues,
)


@dataclass(frozen=True)
class Accepted:
    item: Item
    queue: Queue
    value: Any  # the final answer: correction text, rating, label or 'a' / 'b' / 'tie'
    how: str  # adjudicated | agreement | single | majority
    labelers: tuple[str, ...]  # who answered it (the adjudicator for adjudicated rows)
    consumed_by: tuple[str, ...]  # training jobs / loop updates that used it already


def agree_key(queue: Queue, value: Any) -> Any:
    """What two answers must share to agree."""
    if queue.task == "correction" and isinstance(value, str):
        return " ".join(value.split())
    return value


def decide(queue: Queue, responses: list[Response], adjudicated: Any = None, *, has_adjudication: bool = False):
    """(value, how) for an item under the queue's rule, or None when it is not accepted (yet)."""
    if has_adjudication:
        return adjudicated, "adjudicated"
    if queue.accept_rule == "adjudicated":
        return None
    # Answers sent by a role below the queue's accept_from (a viewer's pair) wait for a reviewer's adjudication.
    submitted = [r for r in responses if r.status == "submitted" and accepts_alone(queue.accept_from, r.role)]
    if len(submitted) < queue.k or not submitted:
        return None
    if queue.k == 1 and len(submitted) == 1:
        return submitted[0].value, "single"
    counts = Counter(agree_key(queue, r.value) for r in submitted)
    top, n = counts.most_common(1)[0]
    first = next(r.value for r in submitted if agree_key(queue, r.value) == top)
    if n == len(submitted):
        return first, "agreement"
    if queue.accept_rule == "majority" and n * 2 > len(submitted):
        return first, "majority"
    return None


def accepted_items(
    db: Database,
    queue: str | int | Queue | None = None,
    *,
    unconsumed_by: str | None = None,
    task: str | None = None,
) -> list[Accepted]:
    """Every accepted item (of one queue, or of all queues of ``task``), oldest first. ``unconsumed_by``:
    leave out items that consumer (or, with a prefix ending in ':', any consumer of that kind) used."""
    queues = [get_queue(db, queue)] if queue is not None else [q for q in list_queues(db, include_archived=True)]
    if task:
        queues = [q for q in queues if q.task == task]
    out: list[Accepted] = []
    for q in queues:
        items = [
            Item.from_row(r) for r in db[ITEMS].rows_where("queue_id = ? and status = 'open'", [q.id], order_by="id")
        ]
        if not items:
            continue
        responses: dict[int, list[Response]] = {}
        for row in db[RESPONSES].rows_where("queue_id = ? and status = 'submitted'", [q.id], order_by="id"):
            r = Response.from_row(row)
            responses.setdefault(r.item_id, []).append(r)
        adjudications = {
            r["item_id"]: r
            for r in db.query(
                f"select a.* from {ADJUDICATIONS} a join {ITEMS} i on i.id = a.item_id where i.queue_id = ?", [q.id]
            )
        }
        consumed: dict[int, list[str]] = {}
        for r in db.query(
            f"select c.item_id, c.consumer from {CONSUMPTION} c join {ITEMS} i on i.id = c.item_id "
            "where i.queue_id = ? order by c.id",
            [q.id],
        ):
            consumed.setdefault(r["item_id"], []).append(r["consumer"])
        for item in items:
            adj = adjudications.get(item.id)
            decision = decide(
                q,
                responses.get(item.id, []),
                json.loads(adj["value"]) if adj else None,
                has_adjudication=adj is not None,
            )
            if decision is None:
                continue
            users = consumed.get(item.id, [])
            if unconsumed_by and any(
                c == unconsumed_by or (unconsumed_by.endswith(":") and c.startswith(unconsumed_by)) for c in users
            ):
                continue
            labelers = (adj["adjudicator"],) if adj else tuple(r.labeler for r in responses.get(item.id, []))
            out.append(Accepted(item, q, decision[0], decision[1], labelers, tuple(users)))
    return out
