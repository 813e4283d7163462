"""Accepted feedback as training data, in the column layouts TRL's trainers read.

- ``sft``: ``{"messages": [...prompt turns..., {"role": "assistant", "content": answer}]}`` (SFTTrainer's
  conversational language-modeling layout; a string prompt becomes one user turn). The answer: the
  correction (correction queues), the label (label queues), the item's reply when its rating is in the top
  half of the scale (rating queues), the chosen reply (preference queues; ties skipped).
- ``dpo``: ``{"prompt", "chosen", "rejected"}`` (DPOTrainer's preference layout): preference queues by the
  accepted choice (ties skipped); correction queues with chosen = the correction and rejected = the
  original reply, where the two differ.
- ``kto``: ``{"prompt", "completion", "label"}`` (KTOTrainer's unpaired layout): a rating's reply, True in
  the top half of the scale and False in the bottom half (the exact middle of an odd scale says neither and
  is skipped); a correction True, and the original reply False where the two differ; a preference's
  chosen reply True and rejected False (ties skipped).
- ``csv``: one row per open item (accepted or not) for review in a spreadsheet: the item's fields, one
  ``response:<labeler>`` column each, the accepted value and how it was decided; text a spreadsheet would run
  as a formula is written with a leading ``'`` (``llmplay/csvsafe.py``).

Every row's prompt is the item's training prompt (``training_prompt.py``): an evaluation row's template turns,
never the text after a model's chat template; an item without one is left out (``skipped`` says why).

DPO and KTO pick one layout per export: ``conversational`` (the prompt as chat turns, replies as one
assistant turn each) unless every exported prompt is a plain string, then ``standard`` (plain strings, as a
base model's completion prompt is). TRL takes exactly these columns, so provenance is not a column:
``export_rows`` returns the item id behind each row, and ``export_file`` can write it beside the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from llmplay.atomicfile import atomic_write
from llmplay.csvsafe import csv_text
from llmplay.errors import short
from llmplay.feedback.accepted import Accepted, accepted_items, agree_key
from llmplay.feedback.store import FeedbackError, Item, Queue, get_queue, list_items, list_responses
from llmplay.feedback.training_prompt import training_prompt

FORMATS = ("sft", "dpo", "kto", "csv")
LAYOUTS = ("auto", "conversational", "standard")
COLUMNS = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion", "label")}
TASKS_FOR = {
    "sft": ("correction", "label", "rating", "preference"),
    "dpo": ("preference", "correction"),
    "kto": ("rating", "correction", "preference"),
    "csv": ("correction", "label", "rating", "preference"),
}


@dataclass(frozen=True)
class Export:
    format: str
    layout: str  # conversational | standard (csv: table)
    rows: list[dict]
    item_ids: list[int]  # the item behind each row, same order (a KTO item can give two rows)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> accepted items left out

    @property
    def columns(self) -> tuple[str, ...]:
        return COLUMNS.get(self.format, tuple(self.rows[0]) if self.rows else ())


def rating_side(queue: Queue, rating: int) -> bool | None:
    """True in the top half of the queue's scale, False in the bottom half, None at the exact middle."""
    middle = (queue.rating_min + queue.rating_max) / 2
    return None if rating == middle else rating > middle


def _turns(prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m.get("role", "user"), "content": m.get("content", "")} for m in prompt]


def _differs(queue: Queue, a: str | None, b: str | None) -> bool:
    return bool((a or "").strip()) and bool((b or "").strip()) and agree_key(queue, a) != agree_key(queue, b)


def _pairs(a: Accepted) -> tuple[str | None, str | None, str | None]:
    """(chosen, rejected, reason skipped) of an accepted item, for DPO and KTO."""
    item, value = a.item, a.value
    if a.queue.task == "preference":
        if value == "tie":
            return None, None, "tie"
        return (item.output, item.output_b, None) if value == "a" else (item.output_b, item.output, None)
    if _differs(a.queue, value, item.output):
        return value, item.output, None
    return None, None, "correction same as the reply"


def _sft_answer(a: Accepted) -> tuple[str | None, str | None]:
    task, item, value = a.queue.task, a.item, a.value
    if task in ("correction", "label"):
        return str(value), None
    if task == "rating":
        if rating_side(a.queue, value) and (item.output or "").strip():
            return item.output, None
        return None, "rating not in the top half"
    chosen, _, reason = _pairs(a)
    return chosen, reason


def _reply(layout: str, text: str):
    return text if layout == "standard" else [{"role": "assistant", "content": text}]


def _wrap(layout: str, prompt, reply: str):
    """(prompt, reply) in the export's layout."""
    return (prompt if layout == "standard" else _turns(prompt)), _reply(layout, reply)


def export_rows(
    db: Database,
    queue: str | int | Queue,
    fmt: str,
    *,
    layout: str = "auto",
    unconsumed_by: str | None = None,
) -> Export:
    """The rows of one queue's accepted feedback in format ``fmt`` (see the module docstring).
    ``unconsumed_by``: leave out items that consumer trained on already (accepted_items' filter)."""
    if fmt not in FORMATS:
        raise FeedbackError(f"Export format {short(fmt)} is not one of {', '.join(FORMATS)}.")
    if layout not in LAYOUTS:
        raise FeedbackError(f"Layout {short(layout)} is not one of {', '.join(LAYOUTS)}.")
    queue = get_queue(db, queue)
    if queue.task not in TASKS_FOR[fmt]:
        raise FeedbackError(
            f"Queue {queue.name!r} is a {queue.task} queue; {fmt.upper()} exports come from "
            f"{' or '.join(TASKS_FOR[fmt])} queues."
        )
    if fmt == "csv":
        return _csv_rows(db, queue)
    rows, ids, skipped = [], [], {}
    # Each item's training prompt (training_prompt.py: an evaluation row's template turns, never the text
    # after the model's chat template); an item without one is left out, with the reason.
    accepted, prompts = [], {}
    for a in accepted_items(db, queue, unconsumed_by=unconsumed_by):
        prompt, reason = training_prompt(db, a.item)
        if prompt is None:
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            accepted.append(a)
            prompts[a.item.id] = prompt
    if fmt == "sft":
        layout = "conversational"  # SFT's messages layout; a string prompt is one user turn
    elif layout == "auto":
        layout = "standard" if all(isinstance(p, str) for p in prompts.values()) else "conversational"
    elif layout == "standard" and any(not isinstance(p, str) for p in prompts.values()):
        raise FeedbackError(
            f"Queue {queue.name!r} has chat prompts; the standard layout needs plain-text prompts. "
            "Use the conversational layout."
        )

    def add(row: dict, item: Item) -> None:
        rows.append(row)
        ids.append(item.id)

    for a in accepted:
        prompt = prompts[a.item.id]
        if fmt == "sft":
            answer, reason = _sft_answer(a)
            if answer is not None:
                add({"messages": [*_turns(prompt), {"role": "assistant", "content": answer}]}, a.item)
        elif fmt == "dpo":
            chosen, rejected, reason = _pairs(a)
            if chosen is not None:
                shown, chosen_turns = _wrap(layout, prompt, chosen)
                add({"prompt": shown, "chosen": chosen_turns, "rejected": _reply(layout, rejected)}, a.item)
        elif a.queue.task == "rating":
            side = rating_side(a.queue, a.value)
            reason = "rating at the middle of the scale" if side is None else None
            if side is not None and (a.item.output or "").strip():
                shown, completion = _wrap(layout, prompt, a.item.output)
                add({"prompt": shown, "completion": completion, "label": side}, a.item)
        else:
            chosen, rejected, reason = _pairs(a)
            if a.queue.task == "correction" and chosen is None:
                chosen, reason = a.value, None  # the reply needed no change: still a desirable answer
            if chosen is not None:
                for reply, label in ((chosen, True), (rejected, False)):
                    if reply is not None:
                        shown, completion = _wrap(layout, prompt, reply)
                        add({"prompt": shown, "completion": completion, "label": label}, a.item)
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
    return Export(fmt, layout, rows, ids, skipped)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _csv_rows(db: Database, queue: Queue) -> Export:
    items = list_items(db, queue)
    responses: dict[int, dict[str, Any]] = {}
    for r in list_responses(db, queue=queue):
        responses.setdefault(r.item_id, {})[r.labeler] = r.value
    labelers = sorted({name for values in responses.values() for name in values})
    accepted = {a.item.id: a for a in accepted_items(db, queue)}
    rows = []
    for item in items:
        a = accepted.get(item.id)
        row = {
            "item_id": item.id,
            "queue": queue.name,
            "source": item.source,
            "prompt": item.prompt_text,
            "messages": "" if isinstance(item.prompt, str) else _cell(item.prompt),
            "input": _cell(item.input) if item.input else "",
            "template": _cell(item.template),
            "model": _cell(item.model),
            "adapter": _cell(item.adapter),
            "output": _cell(item.output),
            "model_b": _cell(item.model_b),
            "output_b": _cell(item.output_b),
            "reference": _cell(item.reference),
            "created_at": item.created_at,
        }
        row |= {f"response:{name}": _cell(responses.get(item.id, {}).get(name)) for name in labelers}
        row |= {"accepted": _cell(a.value) if a else "", "accepted_how": a.how if a else ""}
        rows.append(row)
    return Export("csv", "table", rows, [item.id for item in items])


def to_text(export: Export) -> str:
    """The export as file content: JSONL (one row a line) or CSV with a header."""
    if export.format != "csv":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in export.rows)
    if not export.rows:
        return ""
    return csv_text(export.rows, list(export.rows[0]))  # cells a spreadsheet would run as formulas become text


def provenance_path(path: Path | str) -> Path:
    """Where ``export_file(..., provenance=True)`` puts the item ids: ``<file>.items.json``."""
    path = Path(path)
    return path.with_name(path.name + ".items.json")


def export_file(
    db: Database,
    queue: str | int | Queue,
    fmt: str,
    path: Path | str,
    *,
    layout: str = "auto",
    unconsumed_by: str | None = None,
    provenance: bool = False,
) -> Export:
    """Write ``export_rows`` to ``path`` atomically (JSONL, or CSV for ``csv``). With ``provenance``, also
    ``<path>.items.json``: {"queue", "format", "layout", "item_ids"} (row n came from item_ids[n])."""
    export = export_rows(db, queue, fmt, layout=layout, unconsumed_by=unconsumed_by)
    path = Path(path)
    atomic_write(path, [to_text(export)])
    if provenance:
        meta = {
            "queue": get_queue(db, queue).name,
            "format": fmt,
            "layout": export.layout,
            "item_ids": export.item_ids,
        }
        atomic_write(provenance_path(path), [json.dumps(meta)])
    return export
