"""Where feedback comes from: the Playground, Compare and the Arena send replies here, each as an item of a
built-in queue plus (usually) the sender's own submitted response. Evaluation runs queue rows for review
through ``llmplay.feedback.eval_rows`` (re-exported here).

Built-in queues (made on first use):
- ``inbox`` (correction, k 1): "correct this reply" from the Playground, Compare and the Arena; a Playground 👎
  puts the reply here without a response, for a labeler to correct.
- ``preferences`` (preference, k 1): chosen / rejected pairs from Compare and the Arena (output = chosen,
  output_b = rejected, the sender's response 'a').
- ``playground-ratings`` (rating 0-1, k 1): Playground 👍 (1) / 👎 (0).

The sender's answer is checked before anything is stored, so a bad one leaves no item behind. The same
reply sent twice is one item (the store dedupes on source, prompt and replies) and the sender's second answer
edits their first (audited). When someone else already answered that item (k = 1 is full), the new sender's
answer gets an item of its own (source ``<source>:<name>``): two people's corrections are two opinions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from llmplay.feedback.provenance import Sender, check_owner, not_yours
from llmplay.feedback.store import (
    ITEMS,
    FeedbackError,
    Item,
    Prompt,
    Queue,
    Response,
    add_item,
    check_value,
    dedupe_key,
    discard_item,
    ensure_queue,
    get_response,
    labeler_name,
    list_responses,
    respond,
)
from llmplay.migrations.feedback_inbox import BUILT_IN

INBOX = BUILT_IN["correction"][0]
PREFERENCES = BUILT_IN["preference"][0]
RATINGS = "playground-ratings"
RATINGS_GUIDELINES = "Playground 👍 (1) and 👎 (0) on a reply; a 👎 reply also waits in 'inbox' for a correction."


@dataclass(frozen=True)
class Sent:
    """What a send stored: the item, the sender's response (None for a 👎 flag), and whether the item is new."""

    queue: Queue
    item: Item
    response: Response | None
    created: bool

    @property
    def kind(self) -> str:
        return self.queue.task


def inbox_queue(db: Database, user: str | None = None) -> Queue:
    return ensure_queue(db, INBOX, "correction", user=user, guidelines=BUILT_IN["correction"][1])


def preferences_queue(db: Database, user: str | None = None) -> Queue:
    return ensure_queue(db, PREFERENCES, "preference", user=user, guidelines=BUILT_IN["preference"][1])


def ratings_queue(db: Database, user: str | None = None) -> Queue:
    return ensure_queue(db, RATINGS, "rating", user=user, guidelines=RATINGS_GUIDELINES, rating_min=0, rating_max=1)


def _find(db: Database, queue: Queue, fields: dict) -> Item | None:
    """The item these fields make in ``queue``, if it is there (without adding it)."""
    key = dedupe_key(fields["source"], fields["prompt"], fields.get("output"), fields.get("output_b"))
    rows = list(db[ITEMS].rows_where("queue_id = ? and dedupe_key = ?", [queue.id, key], limit=1))
    return Item.from_row(rows[0]) if rows else None


def _usable(db: Database, queue: Queue, item: Item, labeler: str, answering: bool) -> bool:
    if item.status == "discarded":
        return False
    others = [r for r in list_responses(db, item_id=item.id) if r.labeler != labeler]
    return not answering or len(others) < queue.k


def _variants(fields: dict, labeler: str, n: int = 20):
    yield fields
    for i in range(1, n):
        yield fields | {"source": f"{fields['source']}:{labeler}" + (f":{i}" if i > 1 else "")}


def _send(db: Database, queue: Queue, fields: dict, value: Any, user: str | None, role: str | None = None) -> Sent:
    """Add the item (or find it) and submit ``user``'s ``value`` for it (None: the item alone); ``role``: the
    sender's, recorded with the answer so the queue's accept_from can hold it for review (provenance.py)."""
    labeler = labeler_name(user)
    if value is not None:
        value = check_value(queue, value)  # a bad answer stores nothing, not even the item
    for variant in _variants(fields, labeler):  # the shared item, else one of the sender's own (module docstring)
        item, created = add_item(db, queue, user=labeler, **variant)
        if _usable(db, queue, item, labeler, value is not None):
            break
    else:
        raise FeedbackError("This reply was sent and taken back too often; send it from a new reply.")
    response = None if value is None else respond(db, item.id, labeler, value, role=role)
    return Sent(queue, item, response, created)


def _fields(prompt: Prompt, output: str | None, source: str, **known) -> dict:
    fields = {"source": source, "prompt": prompt, "output": output}
    return fields | {k: v for k, v in known.items() if v not in (None, "", {})}


def send_correction(
    db: Database,
    prompt: Prompt,
    output: str,
    correction: str,
    *,
    source: str,
    user: str | None = None,
    role: str | None = None,
    **known: Any,
) -> Sent:
    """'``output`` should have been ``correction``' into ``inbox``. ``known``: model, adapter, template,
    template_version_id, input (the template's values), meta, origin (the stored outputs it refers to).
    ``output`` must be what the server produced: callers read it from a stored output (provenance.py)."""
    if not (correction or "").strip():
        raise FeedbackError("Write the correct answer first; it is empty.")
    fields = _fields(prompt, output or "", source, **known)
    return _send(db, inbox_queue(db, user), fields, correction, user, role)


def send_preference(
    db: Database,
    prompt: Prompt,
    chosen: str,
    rejected: str,
    *,
    source: str,
    user: str | None = None,
    role: str | None = None,
    **known: Any,
) -> Sent:
    """A chosen / rejected pair for one prompt into ``preferences``; ``known`` and ``role`` as for
    ``send_correction`` plus model_b / adapter_b (the rejected reply's)."""
    if not (chosen or "").strip() or not (rejected or "").strip():
        raise FeedbackError("A preference needs both replies; one of them is empty.")
    if chosen == rejected:
        raise FeedbackError("The two replies are identical, so neither is preferred; write a correction instead.")
    fields = _fields(prompt, chosen, source, **known) | {"output_b": rejected}
    return _send(db, preferences_queue(db, user), fields, "a", user, role)


def flag_for_correction(db: Database, prompt: Prompt, output: str, *, source: str, user: str | None = None, **known):
    """A reply someone found wrong, into ``inbox`` without an answer: a labeler corrects it there."""
    return _send(db, inbox_queue(db, user), _fields(prompt, output or "", source, **known), None, user)


def rate_reply(
    db: Database,
    prompt: Prompt,
    output: str,
    liked: bool | str | None,
    *,
    source: str,
    user: str | None = None,
    role: str | None = None,
    **known,
) -> Sent | None:
    """A 👍 (1) / 👎 (0) into ``playground-ratings``; a 👎 also flags the reply in ``inbox``. ``liked`` None or
    '' (the thumb clicked again) takes the rating back: the response is discarded, and so is the inbox item
    the 👎 made, unless someone has answered it. Returns the rating's Sent (None when one was taken back)."""
    queue = ratings_queue(db, user)
    fields = _fields(prompt, output or "", source, **known)
    if liked is None or liked == "":
        return _take_back(db, queue, fields, user)
    if not isinstance(liked, bool):
        raise FeedbackError(f"A reply is liked (True) or disliked (False), not {liked!r}.")
    sent = _send(db, queue, fields, 1 if liked else 0, user, role)
    if liked:
        _unflag(db, fields, user)
    else:
        flag_for_correction(db, prompt, output, source=source, user=user, **known)
    return sent


def _take_back(db: Database, queue: Queue, fields: dict, user: str | None) -> None:
    item = _find(db, queue, fields)
    mine = get_response(db, item.id, user) if item is not None else None
    if mine is not None and mine.status != "discarded":
        respond(db, item.id, user, status="discarded", comment="The sender took the rating back.")
    _unflag(db, fields, user)
    return None


def _unflag(db: Database, fields: dict, user: str | None) -> None:
    """Take back the inbox item a 👎 made, while nobody has answered it."""
    queue = inbox_queue(db, user)
    for variant in _variants(fields, labeler_name(user)):
        item = _find(db, queue, variant)
        if item is None:
            return
        if item.status == "open" and not list_responses(db, item_id=item.id, status=None):
            discard_item(db, item.id, user=user, reason="The 👎 was taken back.")


# ---- Arena votes -------------------------------------------------------------------------------------------


def _vote_side(vote, side: str) -> dict:
    if side not in ("a", "b"):
        raise FeedbackError(f"side must be 'a' or 'b', not {side!r}")
    return {
        "output": getattr(vote, f"output_{side}") or "",
        "model": getattr(vote, f"model_{side}"),
        "adapter": getattr(vote, f"adapter_{side}"),
        "template_version_id": getattr(vote, f"template_version_{side}") or vote.template_version_id,
        "version": getattr(vote, f"model_version_{side}"),
    }


def _own_vote(db: Database, vote_id, sender: Sender):
    """The stored vote ``vote_id`` if ``sender`` cast it (or may see everyone's); else the refusal."""
    from llmplay.arena.votes import get_vote
    from llmplay.errors import InvalidRequestError

    what = f"arena vote {vote_id}"
    try:
        vote = get_vote(db, int(vote_id))
    except (InvalidRequestError, TypeError, ValueError, OverflowError):
        raise not_yours(what) from None
    check_owner(sender, vote.user, what)
    return vote


def preference_from_vote(db: Database, vote_id: int, sender: Sender) -> Sent:
    """``sender``'s decisive vote (A or B better) as a preference pair, source 'arena-vote:<id>'. Votes cast
    after the reveal are accepted too: they are not rated, but the judgement still teaches."""
    vote = _own_vote(db, vote_id, sender)
    if vote.winner not in ("a", "b"):
        raise FeedbackError(
            "This vote has no preferred reply (tie or both bad); write the correct answer for a reply instead."
        )
    win, lose = _vote_side(vote, vote.winner), _vote_side(vote, "b" if vote.winner == "a" else "a")
    return send_preference(
        db,
        vote.input,
        win["output"],
        lose["output"],
        source=f"arena-vote:{vote.id}",
        user=sender.name,
        role=sender.role,
        origin={"vote": vote.id, "battle": vote.battle_id},
        model=win["model"],
        adapter=win["adapter"],
        model_b=lose["model"],
        adapter_b=lose["adapter"],
        template=vote.template,
        template_version_id=win["template_version_id"],
        meta=_vote_meta(vote, win, lose),
    )


def correction_from_vote(db: Database, vote_id: int, side: str, correction: str, sender: Sender) -> Sent:
    """'Reply A (or B) of ``sender``'s vote should have been ``correction``', source 'arena-vote:<id>'."""
    vote = _own_vote(db, vote_id, sender)
    s = _vote_side(vote, side)
    return send_correction(
        db,
        vote.input,
        s["output"],
        correction,
        source=f"arena-vote:{vote.id}",
        user=sender.name,
        role=sender.role,
        origin={"vote": vote.id, "battle": vote.battle_id, "side": side},
        model=s["model"],
        adapter=s["adapter"],
        template=vote.template,
        template_version_id=s["template_version_id"],
        meta=_vote_meta(vote, s),
    )


def _vote_meta(vote, side: dict, other: dict | None = None) -> dict:
    meta = {"vote_id": vote.id, "battle_id": vote.battle_id, "winner": vote.winner, "model_version": side["version"]}
    if other is not None:
        meta["model_version_b"] = other["version"]
    return {k: v for k, v in meta.items() if v is not None}


def sent_message(sent: Sent) -> str:
    """The line a UI shows after a send."""
    where = f"queue '{sent.queue.name}'"
    again = "" if sent.created else " (it was there already)"
    if sent.kind == "preference":
        return f"✅ Sent to {where} as a preference pair (item {sent.item.id}{again}): {sent.item.model} preferred."
    if sent.kind == "rating":
        return f"✅ Rated {sent.response.value if sent.response else '—'} in {where} (item {sent.item.id})."
    model = f" for {sent.item.model}" if sent.item.model else ""
    return f"✅ Sent to {where} as a corrected answer{model} (item {sent.item.id}{again})."


from llmplay.feedback.eval_rows import QueuedRows, create_eval_queue, queue_eval_rows  # noqa: E402

__all__ = [
    "INBOX",
    "PREFERENCES",
    "RATINGS",
    "QueuedRows",
    "Sent",
    "correction_from_vote",
    "create_eval_queue",
    "flag_for_correction",
    "inbox_queue",
    "preference_from_vote",
    "preferences_queue",
    "queue_eval_rows",
    "rate_reply",
    "ratings_queue",
    "send_correction",
    "send_preference",
    "sent_message",
]
