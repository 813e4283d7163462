"""Rows of an evaluation run queued for review: one item per (row, column), read from what the run stored.

An item carries the row's template values (``input``), the exact prompt the model saw (``eval_outputs.prompt``:
the rendered text for a local model, the messages as JSON for an endpoint), the reply, the row's reference,
the column's model / adapter / template version, and ``meta`` {run_id, row, column, title, answer, scores,
messages}: ``messages`` are the template's chat turns for the row, model-independent, which training reads
instead of a prompt that already holds a chat template. Source ``eval-run:<id>``, so queueing the same rows
again adds nothing. Cells that failed to generate stored no prompt or reply and are left out (counted).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from sqlite_utils import Database

from llmplay.errors import LlmplayError, short
from llmplay.feedback.store import FeedbackError, Queue, add_items, create_queue, get_queue, update_queue
from llmplay.templates.model import parse_template
from llmplay.templates.render import build_messages
from llmplay.templates.versions import version_by_id

WHICH = ("wrong", "all", "failed")
EVAL_TASKS = ("correction", "label", "rating")


@dataclass(frozen=True)
class QueuedRows:
    queue: Queue
    added: int  # new items
    existing: int  # items that were in the queue already
    skipped: int  # cells without a stored reply (failed to generate)
    rows: tuple[int, ...]  # the run rows that were chosen

    @property
    def message(self) -> str:
        total = self.added + self.existing
        text = f"Queued {total} row{'s' if total != 1 else ''} in '{self.queue.name}'"
        notes = []
        if self.existing:
            notes.append(f"{self.existing} {'was' if self.existing == 1 else 'were'} already there")
        if self.skipped:
            notes.append(f"{self.skipped} failed to generate and have no reply to review")
        return text + (f" ({'; '.join(notes)})" if notes else "") + "."


@dataclass(frozen=True)
class _Run:
    id: int
    config: dict
    summary: dict
    rows: list[dict]

    @property
    def columns(self) -> list[dict]:
        return self.config.get("columns") or []

    @property
    def resolved(self) -> list[dict]:
        return (self.config.get("resolved") or {}).get("columns") or []

    @property
    def metric(self) -> str | None:
        return next(iter(self.summary.get("metrics") or []), None)


def _run(db: Database, run_id) -> _Run:
    try:
        run_id = int(run_id)
    except (TypeError, ValueError):
        raise FeedbackError(f"Choose an evaluation run; {short(run_id)} is not a run id.") from None
    row = next(db.query("select * from eval_runs where id = ?", [run_id]), None) if db["eval_runs"].exists() else None
    if row is None:
        raise FeedbackError(f"There is no evaluation run #{run_id}.")
    if row["status"] in ("queued", "running"):
        raise FeedbackError(f"Run #{run_id} is still {row['status']}; queue its rows once it has finished.")
    stored = db.query("select data from eval_rows where run_id = ? order by row_index", [run_id])
    return _Run(
        run_id, json.loads(row["config"]), json.loads(row["summary"] or "{}"), [json.loads(r["data"]) for r in stored]
    )


def _column_indexes(run: _Run, column) -> list[int]:
    titles = [c.get("title") for c in run.resolved]
    if not titles:
        raise FeedbackError(f"Run #{run.id} records no columns.")
    if column is None or column == "":
        return list(range(len(titles)))
    if isinstance(column, str) and column in titles:
        return [titles.index(column)]
    try:
        index = int(column)
    except (TypeError, ValueError):
        raise FeedbackError(f"Run #{run.id} has no column {short(column)} (columns: {', '.join(titles)}).") from None
    if not 0 <= index < len(titles):
        raise FeedbackError(f"Run #{run.id} has columns 0 to {len(titles) - 1}; there is no column {index}.")
    return [index]


def _cells(db: Database, run_id: int) -> dict[tuple[int, int], dict]:
    rows = db.query(
        "select c.row_index, c.column_index, c.answer, c.scores, c.error, o.prompt, o.text from eval_cells c "
        "left join eval_outputs o on o.id = c.output_id where c.run_id = ?",
        [run_id],
    )
    return {(r["row_index"], r["column_index"]): r | {"scores": json.loads(r["scores"] or "{}")} for r in rows}


def _chosen(run: _Run, cells: dict, columns: list[int], which) -> list[tuple[int, int]]:
    if isinstance(which, list | tuple):
        rows = []
        for r in which:
            if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < len(run.rows):
                raise FeedbackError(f"Run #{run.id} has rows 0 to {len(run.rows) - 1}; there is no row {short(r)}.")
            rows.append(r)
        return [(r, c) for r in dict.fromkeys(rows) for c in columns if (r, c) in cells]
    if which not in WHICH:
        raise FeedbackError(f"Which rows: {', '.join(WHICH)} or a list of row numbers, not {short(which)}.")
    out = []
    for (r, c), cell in sorted(cells.items()):
        if c not in columns:
            continue
        failed = cell["error"] is not None or cell["answer"] is None
        if which == "all" or (which == "failed" and failed):
            out.append((r, c))
        elif which == "wrong":
            metric = run.metric
            if metric is None:
                raise FeedbackError(
                    f"Run #{run.id} has no metric scores (no reference?), so no row is wrong; queue 'all' rows."
                )
            score = cell["scores"].get(metric)
            # Lower-is-better metrics (attack_success: 1 = the attack worked) are wrong above 0, the others below 1.
            lower = metric in (run.summary.get("lower_is_better") or [])
            if score is not None and (score > 0 if lower else score < 1):
                out.append((r, c))
    return out


def _template(db: Database, run: _Run, column: int):
    version_id = run.resolved[column].get("template_version_id")
    try:
        return parse_template(version_by_id(db, version_id).content, run.columns[column]["template"])
    except (LlmplayError, KeyError, TypeError):
        return None  # the version is gone: items still carry the exact prompt, only not the messages


def _item(run: _Run, r: int, c: int, cell: dict, template) -> dict:
    resolved, config = run.resolved[c], run.columns[c]
    values = {var: run.rows[r].get(col) for var, col in (resolved.get("variables") or {}).items()}
    reference_column = (run.config.get("resolved") or {}).get("reference")
    meta = {
        "run_id": run.id,
        "row": r,
        "column": c,
        "title": resolved.get("title"),
        "answer": cell["answer"],
        "scores": cell["scores"],
    }
    if template is not None:
        with contextlib.suppress(LlmplayError):  # a row the template refuses still has its exact prompt
            meta["messages"] = build_messages(template, values)
    prompt = cell["prompt"]
    return {
        "source": f"eval-run:{run.id}",
        "input": values,
        "prompt": prompt,
        "output": cell["text"] or "",
        "reference": None if not reference_column else run.rows[r].get(reference_column),
        "model": config.get("model"),
        "adapter": config.get("adapter"),
        "template": config.get("template"),
        "template_version_id": resolved.get("template_version_id"),
        "meta": meta,
    }


def queue_eval_rows(
    db: Database,
    run_id: int,
    queue: str | int | Queue,
    *,
    column: int | str | None = None,
    which: str | list[int] = "wrong",
    show_reference: bool | None = None,
    user: str | None = None,
) -> QueuedRows:
    """Queue run rows for review in an existing ``queue``. ``column``: a column index (0-based, as stored) or
    title; None = every column. ``which``: 'wrong' (score < 1 on the run's first metric; above 0 on a
    lower-is-better one, e.g. attack_success: the attacks that worked), 'failed' (no parsable answer or a generation
    error), 'all', or a list of row numbers (0-based, as in the results grid).
    ``show_reference`` True / False changes the queue's setting (audited); None leaves it."""
    target = get_queue(db, queue)
    run = _run(db, run_id)
    columns = _column_indexes(run, column)
    cells = _cells(db, run.id)
    chosen = _chosen(run, cells, columns, which)
    ready = [(r, c) for r, c in chosen if cells[(r, c)]["prompt"] is not None]
    templates = {c: _template(db, run, c) for c in columns}
    items = [_item(run, r, c, cells[(r, c)], templates[c]) for r, c in ready]
    if show_reference is not None and bool(show_reference) != target.show_reference:
        target = update_queue(db, target, user=user, show_reference=bool(show_reference))
    stored = add_items(db, target, items, user=user) if items else []
    added = sum(1 for _, created in stored if created)
    rows = tuple(dict.fromkeys(r for r, _ in chosen))
    return QueuedRows(target, added, len(stored) - added, len(chosen) - len(ready), rows)


def template_labels(db: Database, run_id: int, column: int | str | None = None) -> list[str]:
    """The label set of the column's template (the first column's when None): a label queue's default."""
    run = _run(db, run_id)
    for c in _column_indexes(run, column):
        template = _template(db, run, c)
        if template is not None and template.output.labels:
            return list(template.output.labels)
    return []


def create_eval_queue(
    db: Database,
    run_id: int,
    name: str,
    task: str,
    *,
    column: int | str | None = None,
    labels: list[str] | None = None,
    show_reference: bool = False,
    user: str | None = None,
    guidelines: str = "",
) -> Queue:
    """A new queue for a run's rows: correction, label (labels default to the template's) or rating (1-5)."""
    if task not in EVAL_TASKS:
        raise FeedbackError(f"A queue for evaluation rows is a {', '.join(EVAL_TASKS)} task, not {short(task)}.")
    labels = [str(x).strip() for x in labels or [] if str(x).strip()]
    if task == "label" and not labels:
        labels = template_labels(db, run_id, column)
    run = _run(db, run_id)
    template = run.columns[_column_indexes(run, column)[0]].get("template")
    return create_queue(
        db,
        name,
        task,
        user=user,
        labels=labels if task == "label" else None,
        show_reference=show_reference,
        template=template,
        guidelines=guidelines or f"Rows of evaluation run #{run.id} ({template}).",
    )
