"""The labeling calls scripts make (no UI): the next item for a labeler, and a submitted answer. The Labeling
tab's API endpoints (``/labeling_next``, ``/labeling_submit`` through Gradio) and the plain HTTP routes
(``/api/labeling/...``, llmplay/api/rest.py) both call these, so both behave the same."""

from __future__ import annotations

from pathlib import Path

from llmplay.feedback import store as fb
from llmplay.store import connect


def require_name(name: str | None) -> str:
    """Labelers must name themselves: agreement between 'anonymous' and itself would mean nothing."""
    if not (name or "").strip():
        raise fb.FeedbackError("Type your name first: every answer is recorded under it.")
    return fb.labeler_name(name)


def next_payload(db_path: Path, queue: str, labeler: str | None) -> dict:
    """The next item for ``labeler`` in ``queue`` (claimed for them), as plain data; {} when none is left."""
    name = require_name(labeler)
    with connect(db_path) as db:
        q = fb.get_queue(db, queue)
        item = fb.next_item(db, q, name)
        if item is None:
            return {}
        return {
            "item_id": item.id,
            "prompt": item.prompt_text,
            "input": item.input,
            "output": item.output,
            "output_b": item.output_b,
            "reference": item.reference if q.show_reference else None,
            "task": q.task,
            "labels": q.labels,
            "rating_min": q.rating_min,
            "rating_max": q.rating_max,
            "progress": fb.progress(db, q, name).text,
            "client_token": fb.new_client_token(),
        }


def submit(db_path: Path, queue: str, labeler: str | None, item_id, value, client_token: str | None) -> fb.Response:
    """Store ``labeler``'s submitted answer to ``item_id`` of ``queue``; the same token twice stores once."""
    name = require_name(labeler)
    with connect(db_path) as db:
        q = fb.get_queue(db, queue)
        item = fb.get_item(db, item_id)
        if item.queue_id != q.id:
            raise fb.FeedbackError(f"Item {item.id} is not in queue {q.name!r}.")
        return fb.respond(db, item.id, name, value, client_token=(client_token or None))
