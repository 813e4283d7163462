"""Migration m007's data step: the m005 ``feedback_inbox`` (filled by Compare and the Arena) becomes items
and responses of the feedback store, rows intact, and the old table goes.

- a correction -> an item in queue ``inbox`` (task correction, k = 1): output = the corrected reply, and a
  submitted response from the row's user whose value is the correction;
- a preference -> an item in queue ``preferences`` (task preference, k = 1): output = chosen, output_b =
  rejected, and a submitted response 'a';
- ``consumed_at`` -> a consumption row (consumer ``inbox``). Each item's meta keeps ``inbox_id``.
Runs inside the migration's transaction with plain inserts (the store's helpers take their own locks).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlite_utils import Database

BUILT_IN = {
    "correction": ("inbox", "Corrected replies sent from the Playground, Compare and the Arena."),
    "preference": ("preferences", "Preferred / rejected reply pairs sent from Compare and the Arena."),
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _key(source: str, prompt, output, output_b) -> str:
    blob = json.dumps([source, prompt, output, output_b], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _same_item(db: Database, queue_id: int, key: str, user: str) -> int | None:
    """The item an earlier inbox row made for the same reply, if this user has not answered it yet (two
    people correcting one reply are two responses to one item, as the store would record them now)."""
    found = list(db["feedback_items"].rows_where("queue_id = ? and dedupe_key = ?", [queue_id, key], limit=1))
    if not found:
        return None
    answered = list(db["feedback_responses"].rows_where("item_id = ? and labeler = ?", [found[0]["id"], user], limit=1))
    return None if answered else found[0]["id"]


def move_inbox(db: Database) -> int:
    """Copy every inbox row into the store, then drop ``feedback_inbox``; returns the number of rows moved."""
    if not db["feedback_inbox"].exists():
        return 0
    rows = list(db["feedback_inbox"].rows_where(order_by="id"))
    queues: dict[str, int] = {}
    for row in rows:
        kind = row["kind"] if row["kind"] in BUILT_IN else "correction"
        if kind not in queues:
            name, guidelines = BUILT_IN[kind]
            queues[kind] = (
                db["feedback_queues"]
                .insert(
                    {
                        "name": name,
                        "task": kind,
                        "guidelines": guidelines,
                        "labels": "[]",
                        "rating_min": 1,
                        "rating_max": 5,
                        "k": 1,
                        "show_reference": 0,
                        "accept_rule": "auto",
                        "created_by": "migration",
                        "created_at": _now(),
                    }
                )
                .last_pk
            )
        prompt = json.loads(row["prompt"])
        if kind == "preference":
            output, output_b, value = row["chosen"], row["rejected"], "a"
        else:
            output, output_b, value = row["rejected"], None, row["correction"]
        user = (row["user"] or "").strip() or "anonymous"
        key = _key(row["source"], prompt, output, output_b)
        item_id = _same_item(db, queues[kind], key, user)
        if item_id is None:
            taken = list(db["feedback_items"].rows_where("queue_id = ? and dedupe_key = ?", [queues[kind], key]))
            item_id = (
                db["feedback_items"]
                .insert(
                    {
                        "queue_id": queues[kind],
                        "source": row["source"],
                        "input": "{}",
                        "prompt": row["prompt"],
                        "template_version_id": row["template_version_id"],
                        "model": row["model"],
                        "adapter": row["adapter"],
                        "output": output,
                        "model_b": row["rejected_model"] if kind == "preference" else None,
                        "adapter_b": row["rejected_adapter"] if kind == "preference" else None,
                        "output_b": output_b,
                        "meta": json.dumps({"inbox_id": row["id"]}),
                        # The same user sending the same reply twice with different answers: two items.
                        "dedupe_key": f"{key}:inbox{row['id']}" if taken else key,
                        "status": "open",
                        "created_by": user,
                        "created_at": row["created_at"],
                    }
                )
                .last_pk
            )
        db["feedback_responses"].insert(
            {
                "item_id": item_id,
                "queue_id": queues[kind],
                "labeler": user,
                "kind": kind,
                "value": json.dumps(value, ensure_ascii=False),
                "tags": "[]",
                "status": "submitted",
                "created_at": row["created_at"],
                "submitted_at": row["created_at"],
            }
        )
        if row["consumed_at"]:
            db["feedback_consumption"].insert(
                {"item_id": item_id, "consumer": "inbox", "consumed_at": row["consumed_at"]}, ignore=True
            )
    db["feedback_audit"].insert(
        {
            "at": _now(),
            "user": "migration",
            "action": "move-inbox",
            "entity": "feedback_items",
            "after": json.dumps({"rows": len(rows)}),
        }
    )
    db["feedback_inbox"].drop()
    return len(rows)
