"""The feedback store: queues, items, responses, claims, adjudications and the audit trail (tables in
store.py's m007). Every write takes the user who makes it and leaves an audit row; nothing is deleted:
items and responses are discarded (a status), edits keep the row before them in the audit.

Concurrency: every write runs in ``store.immediate`` (BEGIN IMMEDIATE), so many labelers' writers queue on
the write lock under the busy timeout instead of failing. Handing out items (``next_item``) claims a slot
in the same transaction that counts the slots, so two labelers never get an item's last slot at once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict
from typing import Any

from sqlite_utils import Database

from llmplay.errors import short
from llmplay.feedback.queues import (  # noqa: F401  (re-exported: callers use store.<name>)
    create_queue,
    ensure_queue,
    get_queue,
    list_queues,
    update_queue,
)
from llmplay.feedback.records import (  # noqa: F401  (re-exported: callers use store.<name>)
    ACCEPT_RULES,
    ADJUDICATIONS,
    ANONYMOUS,
    AUDIT,
    CLAIM_SECONDS,
    CLAIMS,
    CONSUMPTION,
    ITEMS,
    MAX_GUIDELINES,
    MAX_K,
    MAX_LABELS,
    MAX_TAGS,
    MAX_TEXT,
    PREFERENCES,
    QUEUES,
    RESPONSE_STATUSES,
    RESPONSES,
    TASKS,
    Adjudication,
    ClientTokenConflict,
    FeedbackError,
    Item,
    Progress,
    Prompt,
    Queue,
    Response,
    _later,
    _text,
    audit,
    audit_log,
    check_name,
    labeler_name,
    now,
    prompt_text,
)
from llmplay.store import immediate

# ---- items -------------------------------------------------------------------------------------------------


def dedupe_key(source: str, prompt: Prompt, output: str | None, output_b: str | None = None) -> str:
    blob = json.dumps([source, prompt, output, output_b], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _item_row(queue: Queue, item: dict, user: str) -> dict:
    unknown = set(item) - {
        "source",
        "input",
        "prompt",
        "template",
        "template_version_id",
        "model",
        "adapter",
        "output",
        "model_b",
        "adapter_b",
        "output_b",
        "reference",
        "meta",
        "origin",
    }
    if unknown:
        raise FeedbackError(f"Unknown item field(s): {', '.join(sorted(unknown))}.")
    source = _text(item.get("source"), "The item's source", 200, required=True)
    prompt = item.get("prompt")
    if isinstance(prompt, str):
        _text(prompt, "The prompt", 100_000, required=True)
    elif isinstance(prompt, list) and prompt and all(isinstance(m, dict) and "content" in m for m in prompt):
        if len(json.dumps(prompt)) > 200_000:
            raise FeedbackError("The chat prompt is over 200,000 characters; shorten it.")
    else:
        raise FeedbackError("An item needs a prompt: a text, or chat messages with 'role' and 'content'.")
    output = _text(item.get("output"), "The reply", MAX_TEXT)
    output_b = _text(item.get("output_b"), "Reply B", MAX_TEXT)
    if queue.task == "preference" and not ((output or "").strip() and (output_b or "").strip()):
        raise FeedbackError("A preference item needs two replies (output and output_b); one is empty.")
    if queue.task in ("correction", "rating") and output is None:
        raise FeedbackError(f"A {queue.task} item needs the reply to review (output).")
    reference = item.get("reference")
    reference = _text(None if reference is None else str(reference), "The reference", MAX_TEXT)
    inputs = item.get("input") or {}
    if not isinstance(inputs, dict):
        raise FeedbackError("An item's input must be a mapping of variable names to values.")
    meta = item.get("meta") or {}
    if not isinstance(meta, dict):
        raise FeedbackError("An item's meta must be a mapping.")
    origin = item.get("origin") or {}
    if not isinstance(origin, dict):
        raise FeedbackError("An item's origin must be a mapping (the stored outputs it refers to).")
    tv = item.get("template_version_id")
    return {
        "queue_id": queue.id,
        "source": source,
        "input": json.dumps(inputs, ensure_ascii=False, default=str),
        "prompt": json.dumps(prompt, ensure_ascii=False),
        "template": item.get("template"),
        "template_version_id": int(tv) if tv not in (None, "") else None,
        "model": item.get("model"),
        "adapter": item.get("adapter"),
        "output": output,
        "model_b": item.get("model_b"),
        "adapter_b": item.get("adapter_b"),
        "output_b": output_b,
        "reference": reference,
        "meta": json.dumps(meta, ensure_ascii=False, default=str),
        "origin": json.dumps(origin, ensure_ascii=False) if origin else None,
        "dedupe_key": dedupe_key(source, prompt, output, output_b),
        "status": "open",
        "created_by": user,
        "created_at": now(),
    }


def add_items(
    db: Database, queue: str | int | Queue, items: list[dict], *, user: str | None = None
) -> list[tuple[Item, bool]]:
    """Add items to a queue in one transaction: all are checked first, none is stored if one is bad. An item
    already in the queue (same source, prompt and replies) is returned instead of added twice: (item, created)."""
    user = labeler_name(user)
    queue = get_queue(db, queue)
    rows = []
    for n, item in enumerate(items, 1):
        try:
            rows.append(_item_row(queue, item, user))
        except FeedbackError as exc:
            raise FeedbackError(f"Item {n}: {exc}" if len(items) > 1 else str(exc)) from None
    out = []
    with immediate(db):
        for row in rows:
            found = list(
                db[ITEMS].rows_where("queue_id = ? and dedupe_key = ?", [queue.id, row["dedupe_key"]], limit=1)
            )
            if found:
                out.append((Item.from_row(found[0]), False))
                continue
            item_id = db[ITEMS].insert(row).last_pk
            audit(db, user, "add", ITEMS, item_id, after={"queue": queue.name, "source": row["source"]})
            out.append((Item.from_row(db[ITEMS].get(item_id)), True))
    return out


def add_item(db: Database, queue: str | int | Queue, *, user: str | None = None, **item) -> tuple[Item, bool]:
    return add_items(db, queue, [item], user=user)[0]


def get_item(db: Database, item_id: int) -> Item:
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        try:
            item_id = int(str(item_id).strip())
        except ValueError:
            raise FeedbackError(f"Item id {short(item_id)} is not a number.") from None
    rows = list(db[ITEMS].rows_where("id = ?", [item_id], limit=1)) if db[ITEMS].exists() else []
    if not rows:
        raise FeedbackError(f"There is no feedback item {item_id}.")
    return Item.from_row(rows[0])


def list_items(db: Database, queue: str | int | Queue, *, status: str | None = "open") -> list[Item]:
    queue = get_queue(db, queue)
    where, args = "queue_id = ?", [queue.id]
    if status:
        where += " and status = ?"
        args.append(status)
    return [Item.from_row(r) for r in db[ITEMS].rows_where(where, args, order_by="id")]


def discard_item(db: Database, item_id: int, *, user: str | None = None, reason: str = "") -> Item:
    """Take an item out of its queue for everyone (kept, with status 'discarded', and audited)."""
    user = labeler_name(user)
    with immediate(db):
        item = get_item(db, item_id)
        if item.status != "discarded":
            db[ITEMS].update(item.id, {"status": "discarded"})
            db.execute(f"delete from {CLAIMS} where item_id = ?", [item.id])
            audit(
                db,
                user,
                "discard",
                ITEMS,
                item.id,
                before={"status": item.status},
                after={"status": "discarded", "reason": reason},
            )
    return get_item(db, item.id)


# ---- handing out items -------------------------------------------------------------------------------------


def _submitted_counts(db: Database, queue_id: int) -> dict[int, int]:
    rows = db.execute(
        f"select item_id, count(*) from {RESPONSES} where queue_id = ? and status = 'submitted' group by item_id",
        [queue_id],
    ).fetchall()
    return dict(rows)


def next_item(
    db: Database,
    queue: str | int | Queue,
    labeler: str | None,
    *,
    skip: list[int] | tuple[int, ...] = (),
    claim_seconds: float = CLAIM_SECONDS,
) -> Item | None:
    """The next item for ``labeler``, claimed for them, or None when they have answered everything they may.

    First an item they hold a draft for; else the oldest open item they have not answered (submitted or
    discarded) whose submitted responses plus other labelers' live claims leave a free slot of ``k``.
    ``skip``: items the labeler skipped this session (offered again only when nothing else is left)."""
    labeler = labeler_name(labeler)
    with immediate(db):
        queue = get_queue(db, queue)
        stamp = now()
        db.execute(f"delete from {CLAIMS} where expires_at < ?", [stamp])
        draft = db.execute(
            f"""select i.id from {ITEMS} i join {RESPONSES} r on r.item_id = i.id
                where i.queue_id = ? and i.status = 'open' and r.labeler = ? and r.status = 'draft'
                order by i.id limit 1""",
            [queue.id, labeler],
        ).fetchone()
        candidates = db.execute(
            f"""select i.id from {ITEMS} i
                where i.queue_id = ? and i.status = 'open'
                  and not exists (select 1 from {RESPONSES} r where r.item_id = i.id and r.labeler = ?)
                  and (select count(*) from {RESPONSES} r where r.item_id = i.id and r.status = 'submitted')
                    + (select count(*) from {CLAIMS} c where c.item_id = i.id and c.labeler != ?) < ?
                order by i.id""",
            [queue.id, labeler, labeler, queue.k],
        ).fetchall()
        ids = [r[0] for r in candidates]
        skipped = set(skip)
        chosen = draft[0] if draft else next((i for i in ids if i not in skipped), ids[0] if ids else None)
        if chosen is None:
            return None
        db.execute(f"delete from {CLAIMS} where labeler = ? and item_id != ?", [labeler, chosen])  # one at a time
        db.execute(
            f"insert or replace into {CLAIMS} (item_id, labeler, claimed_at, expires_at) values (?, ?, ?, ?)",
            [chosen, labeler, stamp, _later(claim_seconds)],
        )
    return get_item(db, chosen)


def release(db: Database, item_id: int, labeler: str | None) -> None:
    """Give an item's slot back (the labeler skipped it or left)."""
    with immediate(db):
        db.execute(f"delete from {CLAIMS} where item_id = ? and labeler = ?", [item_id, labeler_name(labeler)])


# ---- responses ---------------------------------------------------------------------------------------------


def check_value(queue: Queue, value: Any, item: Item | None = None) -> Any:
    """The response value for ``queue``'s task, normalised, or a FeedbackError that says what is expected."""
    if queue.task == "correction":
        text = _text(value if isinstance(value, str) or value is None else str(value), "The correction", MAX_TEXT)
        if not (text or "").strip():
            raise FeedbackError("The correction is empty: write the answer the model should have given.")
        return text
    if queue.task == "rating":
        try:
            rating = int(str(value).strip()) if not isinstance(value, int) or isinstance(value, bool) else value
        except ValueError:
            rating = None
        if rating is None or str(rating) != str(value).strip() or not queue.rating_min <= rating <= queue.rating_max:
            raise FeedbackError(
                f"A rating is a whole number from {queue.rating_min} to {queue.rating_max}, not {short(value)}."
            )
        return rating
    if queue.task == "label":
        label = str(value).strip() if value is not None else ""
        if label not in queue.labels:
            raise FeedbackError(f"Label {short(label)} is not in this queue's label set: {', '.join(queue.labels)}.")
        return label
    choice = str(value).strip().lower() if value is not None else ""
    if choice not in PREFERENCES:
        raise FeedbackError(f"A preference is 'a', 'b' or 'tie', not {short(value)}.")
    return choice


def _check_tags(tags) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [t for t in (s.strip() for s in tags.split(",")) if t]
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or any(not isinstance(t, str) or len(t) > 50 for t in tags):
        raise FeedbackError(f"Tags: at most {MAX_TAGS}, each a text of at most 50 characters.")
    return [t.strip() for t in tags if t.strip()]


def get_response(db: Database, item_id: int, labeler: str | None) -> Response | None:
    rows = list(db[RESPONSES].rows_where("item_id = ? and labeler = ?", [item_id, labeler_name(labeler)], limit=1))
    return Response.from_row(rows[0]) if rows else None


def respond(
    db: Database,
    item_id: int,
    labeler: str | None,
    value: Any = None,
    *,
    status: str = "submitted",
    comment: str | None = None,
    tags: list[str] | str | None = None,
    client_token: str | None = None,
    role: str | None = None,
) -> Response:
    """Store ``labeler``'s response to an item: a draft, a submitted answer, or 'discarded' (the labeler
    will not answer this item; it does not fill a slot). One response per labeler and item: a second call
    edits it (audited). The same ``client_token`` twice from the same labeler for the same item is one
    response (a double click or a retried request returns the stored one); the token already used for another
    item or by another labeler is a ``ClientTokenConflict`` and stores nothing. A submit to an item whose ``k``
    slots are taken by others is refused. ``role``: the sender's role when the answer comes with a reply sent
    from the Playground, Compare or the Arena (see provenance.py; None for answers given in a labeling queue)."""
    labeler = labeler_name(labeler)
    if status not in RESPONSE_STATUSES:
        raise FeedbackError(f"Status {short(status)} is not one of {', '.join(RESPONSE_STATUSES)}.")
    if client_token is not None and (not isinstance(client_token, str) or not 0 < len(client_token) <= 100):
        raise FeedbackError("A client token is a text of 1-100 characters.")
    comment = _text(comment, "The comment", 5_000)
    tags = _check_tags(tags)
    with immediate(db):
        if client_token:
            same = list(db[RESPONSES].rows_where("client_token = ?", [client_token], limit=1))
            if same:
                stored = Response.from_row(same[0])
                if stored.labeler != labeler or stored.item_id != item_id:  # never another answer's id or value
                    raise ClientTokenConflict(
                        f"Client token {short(client_token)} was already used for another answer (another item or "
                        f"labeler); this answer to item {item_id} was not stored. Send a fresh token per answer."
                    )
                return stored
        item = get_item(db, item_id)
        queue = get_queue(db, item.queue_id)
        if item.status == "discarded":
            raise FeedbackError(f"Item {item.id} was discarded from queue {queue.name!r}; it takes no responses.")
        if status == "discarded":
            stored_value = json.dumps(None)
        elif status == "draft" and (value is None or (isinstance(value, str) and not value.strip())):
            stored_value = json.dumps(value)
        else:
            stored_value = json.dumps(check_value(queue, value, item), ensure_ascii=False)
        old = get_response(db, item.id, labeler)
        if status == "submitted" and not (old and old.status == "submitted"):
            others = db.execute(
                f"select count(*) from {RESPONSES} where item_id = ? and status = 'submitted' and labeler != ?",
                [item.id, labeler],
            ).fetchone()[0]
            if others >= queue.k:
                raise FeedbackError(
                    f"Item {item.id} already has its {queue.k} response(s) from other labelers; take the next item."
                )
        stamp = now()
        row = {
            "value": stored_value,
            "comment": comment,
            "tags": json.dumps(tags),
            "status": status,
            "updated_at": stamp,
            "role": role,
        }
        if status == "submitted" and not (old and old.submitted_at):
            row["submitted_at"] = stamp
        if old is None:
            row |= {
                "item_id": item.id,
                "queue_id": queue.id,
                "labeler": labeler,
                "kind": queue.task,
                "client_token": client_token,
                "created_at": stamp,
            }
            response_id = db[RESPONSES].insert(row).last_pk
            audit(db, labeler, status if status != "submitted" else "submit", RESPONSES, response_id, after=row)
        else:
            response_id = old.id
            if client_token and not old.client_token:
                row["client_token"] = client_token
            db[RESPONSES].update(old.id, row)
            action = "edit" if old.status == "submitted" else ("submit" if status == "submitted" else status)
            audit(db, labeler, action, RESPONSES, old.id, before=asdict(old), after=row)
        if status != "draft":
            db.execute(f"delete from {CLAIMS} where item_id = ? and labeler = ?", [item.id, labeler])
    return Response.from_row(db[RESPONSES].get(response_id))


def new_client_token() -> str:
    return uuid.uuid4().hex


def list_responses(
    db: Database,
    *,
    queue: str | int | Queue | None = None,
    item_id: int | None = None,
    labeler: str | None = None,
    status: str | None = "submitted",
) -> list[Response]:
    where, args = [], []
    if queue is not None:
        where.append("queue_id = ?")
        args.append(get_queue(db, queue).id)
    if item_id is not None:
        where.append("item_id = ?")
        args.append(item_id)
    if labeler is not None:
        where.append("labeler = ?")
        args.append(labeler_name(labeler))
    if status:
        where.append("status = ?")
        args.append(status)
    if not db[RESPONSES].exists():
        return []
    return [Response.from_row(r) for r in db[RESPONSES].rows_where(" and ".join(where) or None, args, order_by="id")]


def history(
    db: Database, queue: str | int | Queue, labeler: str | None, *, limit: int = 200
) -> list[tuple[Item, Response]]:
    """A labeler's own responses in a queue, newest first, with their items (for the history panel)."""
    queue = get_queue(db, queue)
    rows = db[RESPONSES].rows_where(
        "queue_id = ? and labeler = ?",
        [queue.id, labeler_name(labeler)],
        order_by="updated_at desc, id desc",
        limit=limit,
    )
    out = []
    for row in rows:
        response = Response.from_row(row)
        out.append((get_item(db, response.item_id), response))
    return out


def progress(db: Database, queue: str | int | Queue, labeler: str | None = None) -> Progress:
    queue = get_queue(db, queue)
    open_ids = [r[0] for r in db.execute(f"select id from {ITEMS} where queue_id = ? and status = 'open'", [queue.id])]
    counts = _submitted_counts(db, queue.id)
    complete = sum(1 for i in open_ids if counts.get(i, 0) >= queue.k)
    name = labeler_name(labeler)
    answered = {
        r[0]: r[1]
        for r in db.execute(
            f"select r.item_id, r.status from {RESPONSES} r join {ITEMS} i on i.id = r.item_id "
            "where r.queue_id = ? and r.labeler = ? and i.status = 'open'",
            [queue.id, name],
        )
    }
    mine = sum(1 for s in answered.values() if s in ("submitted", "discarded"))
    drafts = sum(1 for s in answered.values() if s == "draft")
    available = sum(1 for i in open_ids if i not in answered and counts.get(i, 0) < queue.k) + drafts
    by_labeler = dict(
        db.execute(
            f"select labeler, count(*) from {RESPONSES} where queue_id = ? and status = 'submitted' group by labeler",
            [queue.id],
        ).fetchall()
    )
    return Progress(len(open_ids), complete, mine, available, drafts, queue.k, by_labeler)


# ---- adjudication and consumption --------------------------------------------------------------------------


def adjudicate(
    db: Database, item_id: int, value: Any, *, adjudicator: str | None, comment: str | None = None
) -> Adjudication:
    """Record the final answer for an item (e.g. where labelers disagree); a second call replaces it, audited."""
    adjudicator = labeler_name(adjudicator)
    comment = _text(comment, "The comment", 5_000)
    with immediate(db):
        item = get_item(db, item_id)
        queue = get_queue(db, item.queue_id)
        if item.status == "discarded":
            raise FeedbackError(f"Item {item.id} was discarded; it cannot be adjudicated.")
        stored = json.dumps(check_value(queue, value, item), ensure_ascii=False)
        old = list(db[ADJUDICATIONS].rows_where("item_id = ?", [item.id], limit=1))
        stamp = now()
        if old:
            db[ADJUDICATIONS].update(
                item.id, {"value": stored, "adjudicator": adjudicator, "comment": comment, "updated_at": stamp}
            )
            audit(db, adjudicator, "readjudicate", ADJUDICATIONS, item.id, before=old[0], after={"value": stored})
        else:
            row = {
                "item_id": item.id,
                "value": stored,
                "adjudicator": adjudicator,
                "comment": comment,
                "created_at": stamp,
            }
            db[ADJUDICATIONS].insert(row)
            audit(db, adjudicator, "adjudicate", ADJUDICATIONS, item.id, after=row)
    return get_adjudication(db, item.id)


def get_adjudication(db: Database, item_id: int) -> Adjudication | None:
    rows = list(db[ADJUDICATIONS].rows_where("item_id = ?", [item_id], limit=1))
    return Adjudication.from_row(rows[0]) if rows else None


def mark_consumed(db: Database, item_ids: list[int], consumer: str, *, user: str | None = None) -> int:
    """Record that ``consumer`` (e.g. 'training-job:12', 'loop-update:3') trained on these items; returns how
    many were new. The same item can feed several consumers; each pair is recorded once."""
    user = labeler_name(user)
    stamp, added = now(), 0
    with immediate(db):
        for item_id in item_ids:
            cur = db.execute(
                f"insert or ignore into {CONSUMPTION} (item_id, consumer, consumed_at) values (?, ?, ?)",
                [item_id, consumer, stamp],
            )
            added += cur.rowcount
        if added:
            audit(db, user, "consume", CONSUMPTION, None, after={"consumer": consumer, "items": list(item_ids)})
    return added


def consumed_by(db: Database, item_id: int) -> list[str]:
    return [r[0] for r in db.execute(f"select consumer from {CONSUMPTION} where item_id = ? order by id", [item_id])]
