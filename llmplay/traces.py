"""Traces: every request the OpenAI-compatible API answered, as the server produced it (table ``api_traces``).

A trace keeps who asked (the key's user), the model as asked and what answered it (a line's active version),
the request after redaction, the parameters, the reply, why it ended, token counts and timings. Its id is the
response's ``id`` (and the ``X-Llmplay-Trace-Id`` header), so an application can send feedback on it
(``POST /v1/feedback``): the reply the feedback is about is read from here, never taken from the client.

Settings: ``trace_sample`` (the share stored, drawn per request; 0 = off), ``trace_redact`` (regular expressions
whose matches are stored as ``[redacted]``), ``trace_keep`` (the newest N are kept; older ones are pruned as new
ones arrive). ``llmplay traces list|export`` reads them.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.store import connect, immediate, now

TRACES = "api_traces"
EVALS = "trace_evals"  # online evaluation scores of traces (llmplay/loop/online.py)
REDACTED = "[redacted]"
PRUNE_EVERY = 100  # prune once per this many stored traces (a count per process), not on every write


@dataclass(frozen=True)
class Trace:
    id: str
    at: str
    user: str | None
    endpoint: str
    model: str
    served: str
    line: str | None
    request: Any  # messages (a list of {role, content}) or a prompt
    params: dict
    reply: str
    finish_reason: str
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float | None
    ttft_s: float | None
    backend: str | None
    stream: bool

    def to_dict(self) -> dict:
        return asdict(self)


def sampled(settings: Settings, rng: random.Random | None = None, line: str | None = None) -> bool:
    """Whether this request is stored: its line's ``trace_sample`` setting when it names a line that has one, else
    the server's ``trace_sample``."""
    rate = settings.trace_sample if line is None else line_sample(settings, line)
    return rate >= 1 or (rate > 0 and (rng or random).random() < rate)


def line_sample(settings: Settings, line: str) -> float:
    """A line's own capture share (``llmplay loop set NAME trace_sample=0.1``), or the server's."""
    from llmplay.models.lines import find_line

    with connect(settings.db_path) as db:
        row = find_line(db, line)
    value = json.loads(row["settings"] or "{}").get("trace_sample") if row else None
    return settings.trace_sample if value is None else float(value)


def redact(settings: Settings, value):
    """``value`` (text, or messages / params nested in lists and dicts) with every match of the configured
    patterns replaced."""
    if not settings.trace_redact:
        return value
    if isinstance(value, str):
        for pattern in settings.trace_redact:
            value = re.sub(pattern, REDACTED, value)
        return value
    if isinstance(value, list):
        return [redact(settings, v) for v in value]
    if isinstance(value, dict):
        return {k: redact(settings, v) for k, v in value.items()}
    return value


_stored = 0


def record(settings: Settings, **fields) -> None:
    """Store one trace (the caller checked ``sampled``); request and reply are redacted here."""
    global _stored
    row = {
        "at": now(),
        **fields,
        "request": json.dumps(redact(settings, fields["request"]), ensure_ascii=False),
        "params": json.dumps(fields.get("params") or {}, ensure_ascii=False),
        "reply": redact(settings, fields.get("reply") or ""),
        "stream": int(bool(fields.get("stream"))),
    }
    with connect(settings.db_path) as db, immediate(db):
        db[TRACES].insert(row)
    _stored += 1
    if _stored % PRUNE_EVERY == 0:
        prune(settings)


def prune(settings: Settings) -> int:
    """Delete all but the newest ``trace_keep`` traces; returns how many went."""
    with connect(settings.db_path) as db, immediate(db):
        cursor = db.execute(
            f"delete from {TRACES} where rowid not in (select rowid from {TRACES} order by at desc, rowid desc "
            "limit ?)",
            [settings.trace_keep],
        )
        if cursor.rowcount and db[EVALS].exists():  # their online scores go with them (loop/online.py)
            db.execute(f"delete from {EVALS} where trace_id not in (select id from {TRACES})")
        return cursor.rowcount


def _trace(row: dict) -> Trace:
    return Trace(
        **{
            **{k: row.get(k) for k in Trace.__dataclass_fields__},
            "request": json.loads(row["request"]),
            "params": json.loads(row["params"] or "{}"),
            "stream": bool(row["stream"]),
        }
    )


def get_trace(settings: Settings, trace_id: str) -> Trace | None:
    if not isinstance(trace_id, str) or len(trace_id) > 100:
        return None
    with connect(settings.db_path) as db:
        rows = list(db[TRACES].rows_where("id = ?", [trace_id], limit=1))
    return _trace(rows[0]) if rows else None


def list_traces(
    settings: Settings,
    *,
    model: str | None = None,
    user: str | None = None,
    since: str | None = None,
    until: str | None = None,
    finish_reason: str | None = None,
    search: str | None = None,
    rating: str | None = None,
    limit: int = 100,
) -> list[Trace]:
    """The newest traces first, filtered: ``model`` matches the model as asked or what answered; ``search`` is
    a case-insensitive substring of the request or the reply; ``rating`` is "up", "down" (someone rated the
    reply so through /v1/feedback) or "none" (nobody rated it)."""
    where, args = [], []
    if model:
        where.append("(model = ? or served = ?)")
        args += [model, model]
    for column, value in (("user", user), ("finish_reason", finish_reason)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if since:
        where.append("at >= ?")
        args.append(since)
    if until:
        where.append("at < ?")
        args.append(until)
    if search:
        where.append("(instr(lower(request), ?) > 0 or instr(lower(reply), ?) > 0)")
        args += [search.lower(), search.lower()]
    if rating:
        if rating not in RATINGS:
            raise LlmplayError(f"rating is one of {', '.join(RATINGS)}, not {rating!r}.")
        where.append(_RATED[rating])
    with connect(settings.db_path) as db:
        rows = db[TRACES].rows_where(
            " and ".join(where) or None, args, order_by="at desc, rowid desc", limit=max(1, int(limit))
        )
        return [_trace(r) for r in rows]


RATINGS = ("up", "down", "none")
_RATING = (
    "exists (select 1 from feedback_items i join feedback_responses r on r.item_id = i.id "
    "where json_extract(i.origin, '$.api_trace') = api_traces.id and r.kind = 'rating' and r.status = 'submitted'{})"
)
_RATED = {
    "up": _RATING.format(" and r.value = '1'"),
    "down": _RATING.format(" and r.value = '0'"),
    "none": "not " + _RATING.format(""),
}


# ---- feedback on a trace ------------------------------------------------------------------------------------


def send_feedback(
    settings: Settings,
    trace_id: str,
    sender,
    *,
    rating=None,
    correction: str | None = None,
    preferred: str | None = None,
    comment: str | None = None,
) -> list:
    """An application user's feedback on trace ``trace_id`` into the feedback queues, as the in-app kind is:
    ``rating`` (True / False, "up" / "down", or a score 0-1: 1 liked, 0 disliked) into the ratings queue (a
    dislike also waits in 'inbox' for a correction); ``correction`` (the reply it should have been) into
    'inbox'; ``preferred`` (a better reply) as a preference over the stored one. The prompt, reply and model
    are the trace's, read here: a client names a trace, never the reply. A trace of a model line is tagged
    with the line's template, so the line's updates learn from it. Refused like a missing trace when it is
    someone else's (an admin may send feedback on any). Returns what was stored (``feedback.sources.Sent``)."""
    from llmplay.feedback.provenance import check_owner, not_yours
    from llmplay.feedback.sources import rate_reply, send_correction, send_preference
    from llmplay.models.lines import find_line

    what = f"trace {trace_id!r}"
    trace = get_trace(settings, trace_id)
    if trace is None:
        raise not_yours(what)
    check_owner(sender, trace.user, what)
    liked = _liked(rating)
    if liked is None and not (correction or "").strip() and not (preferred or "").strip():
        raise LlmplayError("Send a rating, a correction or a preferred reply.")
    with connect(settings.db_path) as db:
        line = find_line(db, trace.line) if trace.line else None
        known = {
            "source": "api",
            "user": sender.name,
            "role": sender.role,
            "model": trace.served,
            "template": line["template"] if line else None,
            "origin": {"api_trace": trace.id},
            "meta": {"comment": comment.strip()} if (comment or "").strip() else None,
        }
        sent = []
        if liked is not None:
            sent.append(rate_reply(db, trace.request, trace.reply, liked, **known))
        if (correction or "").strip():
            sent.append(send_correction(db, trace.request, trace.reply, correction, **known))
        if (preferred or "").strip():
            sent.append(send_preference(db, trace.request, preferred, trace.reply, **known))
    return sent


def _liked(rating) -> bool | None:
    if rating is None:
        return None
    if isinstance(rating, bool):
        return rating
    if rating in ("up", "down"):
        return rating == "up"
    if isinstance(rating, int | float) and 0 <= rating <= 1:
        return rating >= 0.5
    raise LlmplayError(f"'rating' is true / false, 'up' / 'down' or a score between 0 and 1; got {rating!r}.")


def to_queue(settings: Settings, trace_ids: list[str], queue: str, *, user: str) -> tuple[int, int]:
    """Add the traces as items of a labeling ``queue`` (an admin picking traces to review): each item is the
    trace's request and stored reply, with the trace as its origin. Returns (added, already there)."""
    from llmplay.feedback.store import add_item, get_queue

    added = existing = 0
    with connect(settings.db_path) as db:
        target = get_queue(db, queue)  # FeedbackError names the known queues
        for trace_id in trace_ids:
            trace = get_trace(settings, trace_id)
            if trace is None:
                raise LlmplayError(f"There is no trace {trace_id!r}.")
            line = {"line": trace.line} if trace.line else {}
            _, created = add_item(
                db, target, user=user, source="api", prompt=trace.request, output=trace.reply, model=trace.served,
                origin={"api_trace": trace.id}, meta={"user": trace.user, **line},
            )  # fmt: skip
            added, existing = added + created, existing + (not created)
    return added, existing
