"""Reading training rows from each data source (saved dataset, file, accepted feedback, inline rows).

Every source becomes a list of ``TrainRow``: one normalised shape (a template's values, a prompt, or chat
messages; the target; or raw text for continued pre-training) so ``data.build_examples`` formats all of
them the same way. ``llmplay.training.data`` is the public entry point; this module is its reader.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmplay.datasets import MAX_ROWS, DatasetError, load_builtin, load_dataset, read_table, sample
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.templates.model import Template
from llmplay.training.checks import TrainDataError
from llmplay.training.data_files import check_kind
from llmplay.training.tasks import PROMPT_ROWS, TEXT_ROWS, get_task

BUILTIN_PREFIX = "builtin:"
ROLES = ("system", "user", "assistant")
# The columns each file format is recognised by ("auto" tries them in this order).
FORMAT_COLUMNS = {
    "messages": ("messages",),
    "alpaca": ("instruction", "output"),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
}
_SHOWN = 5  # row ids named in a message before "and N more"


MAX_FILE_ROWS = MAX_ROWS  # the evaluation reader's row limit, for every training file


@dataclass
class TrainRow:
    """One training row, normalised. Exactly one of ``values`` (a template's variables), ``prompt``,
    ``messages`` (the turns before the target) or ``text`` (continued pre-training) says what is rendered."""

    id: int | str
    target: str = ""
    values: dict[str, Any] | None = None
    prompt: str | None = None
    system: str | None = None  # prompt/completion and Alpaca rows may bring their own system message
    messages: list[dict] | None = None
    text: str | None = None
    record: dict[str, Any] | None = None  # the source row as read (encoder tasks read their own columns)
    template: Template | None = field(default=None, repr=False, compare=False)

    def content(self) -> dict[str, Any]:
        """What the data hash covers: the row's training content (not its id, not the template object)."""
        keys = ("target", "values", "prompt", "system", "messages", "text")
        out = {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, "")}
        if not out and self.record is not None:
            out["record"] = self.record
        return out


# ---- sources ----------------------------------------------------------------------------------------------


def dataset_table(settings: Settings, name: str):
    """A saved dataset (or ``builtin:<sample>``): its DataFrame and column mapping."""
    try:
        if name.startswith(BUILTIN_PREFIX):
            df, mapping, _ = load_builtin(name[len(BUILTIN_PREFIX) :])
            return df, mapping
        dataset = load_dataset(settings, name)
        return dataset.df, dataset.mapping
    except DatasetError as exc:
        raise TrainDataError(str(exc)) from None


def rows_from_dataset(df, mapping, task: str, data, template: Template | None, max_rows: int | None, seed: int):
    """Rows of a dataset and their format: a template's variables from its mapping (or same-named columns) and
    the reference column as the target; without a template, the table read as a file would be."""
    if df.empty:
        raise TrainDataError("The dataset has no rows.")
    if max_rows:
        df = sample(df, max_rows, seed)
    columns = [str(c) for c in df.columns]
    records = [(int(i), dict(zip(columns, r))) for i, r in zip(df.index, df.itertuples(index=False, name=None))]
    return rows_from_table(records, columns, mapping, task, data, template)


def rows_from_table(
    records: list[tuple], columns: list[str], mapping, task: str, data, template: Template | None
) -> tuple[list[TrainRow], str]:
    """(id, record) pairs of a table: text for cpt; a template's values and the target for sft."""
    shape = get_task(task).row_shape
    if shape == TEXT_ROWS:
        column = _text_column(data.text_column, columns)
        return [TrainRow(id=i, text=_str(r[column]), record=r) for i, r in records], "text"
    if shape != PROMPT_ROWS:
        return [TrainRow(id=i, record=r) for i, r in records], "records"
    if template is None:  # a table already in a training format (e.g. a validation dataset of prompt/completion)
        return rows_from_records([r for _, r in records], [i for i, _ in records], task, data)
    variables = {}
    for var in template.variables:
        if var.name in mapping.variables:
            variables[var.name] = mapping.variables[var.name]
        elif var.name in columns:
            variables[var.name] = var.name
    missing = [v.name for v in template.variables if v.required and v.name not in variables]
    if missing:
        raise TrainDataError(
            f"Template {template.name!r} needs variable(s) {', '.join(missing)}, and the dataset has no column "
            f"mapped to them (columns: {', '.join(columns)}). Map them in the dataset or rename the columns."
        )
    absent = sorted({c for c in variables.values() if c not in columns})
    target = data.label_column or mapping.reference
    if not target:
        raise TrainDataError(
            f"The dataset has no reference column to train towards (columns: {', '.join(columns)}); "
            "set data.label_column or map a reference column."
        )
    if target not in columns:
        absent.append(target)
    if absent:
        raise TrainDataError(
            f"Column(s) {', '.join(map(repr, absent))} are not in the dataset (columns: {', '.join(columns)})."
        )
    rows = [
        TrainRow(
            id=i,
            values={var: r[col] for var, col in variables.items()},
            target=_str(r[target]),
            record=r,
            template=template,
        )
        for i, r in records
    ]
    return rows, "template"


def check_data_file(settings: Settings, path, error: type[TrainDataError] = TrainDataError) -> None:
    """Before a training file is read (by any reader): the size limit of uploads (upload_max_bytes), and that it
    is not a database or other binary file, which is never read as text (data_files.check_kind)."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        raise error(f"Training file {str(path)!r} does not exist.") from None
    if size > settings.upload_max_bytes:
        raise error(
            f"Training file {Path(path).name!r} is {_size(size)}; the upload limit is "
            f"{_size(settings.upload_max_bytes)} (setting upload_max_bytes, env LLMPLAY_UPLOAD_MAX_BYTES)."
        )
    check_kind(path, error)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} KB"


def check_row_count(n: int, what: str, error: type[TrainDataError] = TrainDataError) -> None:
    if n > MAX_FILE_ROWS:
        raise error(f"{what} has {n:,} rows; the limit is {MAX_FILE_ROWS:,}. Use a sample of the rows.")


def records_from_file(settings: Settings, path: str) -> list[dict[str, Any]]:
    """An uploaded table through the evaluation reader (same limits, same messages); JSON cells decoded."""
    check_data_file(settings, path)
    try:
        table = read_table(path, settings)
    except (DatasetError, OSError) as exc:
        raise TrainDataError(f"Cannot read data.file: {exc}") from None
    records = table.df.to_dict(orient="records")
    if "messages" in table.columns:  # every cell is text: the turns come back as JSON
        for i, record in enumerate(records):
            record["messages"] = _json_cell(record["messages"], i, "messages")
    return records


def pair_records(settings: Settings, path: str | None) -> list[dict]:
    """DPO pairs from a file: JSONL / JSON read as JSON (chat prompts stay lists), other tables through the
    evaluation reader."""
    file = Path(path or "")
    if file.suffix.lower() not in (".jsonl", ".json"):
        return [{k: _maybe_turns(v) for k, v in r.items()} for r in records_from_file(settings, str(file))]
    check_data_file(settings, file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainDataError(f"Cannot read data.file {path!r}: {exc}") from None
    if file.suffix.lower() == ".json":
        try:
            records = json.loads(text)
        except ValueError as exc:
            raise TrainDataError(f"data.file {path!r} is not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise TrainDataError(f"data.file {path!r} must hold a JSON list of pairs.")
        check_row_count(len(records), f"data.file {path!r}")
        return records
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise TrainDataError(f"data.file {path!r} line {n} is not valid JSON: {exc}") from None
    check_row_count(len(records), f"data.file {path!r}")
    return records


def _maybe_turns(value):
    """A table cell that holds chat turns as JSON text (CSV has only text)."""
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


CONSUMER_PREFIX = "training-job:"  # what a job records on the feedback items it trained on (entry.py)
LEGACY_CONSUMER = "inbox"  # the m005 inbox's consumed_at, moved by migration m007


def feedback_records(settings: Settings) -> list[dict[str, Any]]:
    """Accepted corrections of the feedback store (every correction queue, see feedback/accepted.py) that no
    training job used yet: the prompt as chat turns and the corrected answer; ``id`` is the feedback item's."""
    from llmplay.feedback.accepted import accepted_items  # the feedback store's own rule for what is final
    from llmplay.feedback.training_prompt import training_prompt  # and its rule for the prompt to train on

    with connect(settings.db_path) as db:
        accepted = accepted_items(db, task="correction", unconsumed_by=CONSUMER_PREFIX)
        accepted = [a for a in accepted if LEGACY_CONSUMER not in a.consumed_by]
        # An evaluation row's stored prompt holds the model's chat template already: train on its template
        # turns; a row without them is left out (and stays unconsumed), never trained on with special tokens.
        prompts = [(a, training_prompt(db, a.item)) for a in accepted]
    if not accepted:
        raise TrainDataError(
            "The feedback store has no accepted corrections that a training job has not used yet. Correct some "
            "replies in the Playground, Compare or the Arena, or answer the items of a correction queue first."
        )
    records, refused = [], []
    for a, (prompt, reason) in prompts:
        if prompt is None:
            refused.append(f"item {a.item.id}: {reason}")
            continue
        # One shape for both kinds of prompt: the chat turns, then the corrected answer as the assistant's
        # (a base model gets a lone user turn as raw text, as Compare sends it).
        turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
        answer = {"role": "assistant", "content": a.value or ""}
        records.append({"id": a.item.id, "messages": [*turns, answer]})
    if not records:
        raise TrainDataError(f"No accepted correction can be trained on: {'; '.join(refused[:_SHOWN])}.")
    return records


def rows_from_records(records: list[dict[str, Any]], ids: list, task: str, data) -> tuple[list[TrainRow], str]:
    """Rows of a file, the inbox or inline rows in the configured (or detected) format, and that format."""
    if not records:
        raise TrainDataError("The training data has no rows.")
    columns = list(dict.fromkeys(k for r in records for k in r))
    shape = get_task(task).row_shape
    if shape not in (PROMPT_ROWS, TEXT_ROWS):
        return [TrainRow(id=i, record=r) for i, r in zip(ids, records)], "records"
    fmt = detect_format(columns, data, task)
    if fmt == "text":
        column = _text_column(data.text_column, columns)
        return [TrainRow(id=i, text=_str(r.get(column)), record=r) for i, r in zip(ids, records)], fmt
    if shape == TEXT_ROWS:
        raise TrainDataError(f"Continued pre-training reads raw text; data.format {fmt!r} has prompts and targets.")
    return [_row(fmt, i, r, data) for i, r in zip(ids, records)], fmt


def record_ids(records: list[dict]) -> list:
    """A row's own ``id`` when every row has a distinct one, else its position."""
    own = [r.get("id") for r in records]
    if all(isinstance(i, int | str) and not isinstance(i, bool) for i in own) and len(set(own)) == len(own):
        return own
    return list(range(len(records)))


def detect_format(columns: list[str], data, task: str) -> str:
    fmt = data.format
    if fmt in ("classification", "conll"):
        raise TrainDataError(f"data.format {fmt!r} is for encoder tasks (classification, ner); this task is {task!r}.")
    if fmt == "auto":
        if get_task(task).row_shape == TEXT_ROWS:
            fmt = "text"
        elif data.text_column or data.label_column:
            fmt = "prompt_completion"  # named prompt / target columns
        else:
            fmt = next((f for f, need in FORMAT_COLUMNS.items() if f != "text" and set(need) <= set(columns)), None)
        if fmt is None:
            raise TrainDataError(
                f"Cannot tell the data's format from its columns ({', '.join(columns)}). Use prompt + completion "
                "columns, a messages column of chat turns, Alpaca instruction/input/output, or text (for continued "
                "pre-training); or name the columns with data.text_column / data.label_column, or set data.format."
            )
    need = list(FORMAT_COLUMNS[fmt])
    if fmt == "prompt_completion":
        need = [data.text_column or "prompt", data.label_column or "completion"]
    elif fmt == "text":
        return fmt  # the text column is chosen (or asked for) by _text_column
    missing = [c for c in need if c not in columns]
    if missing:
        raise TrainDataError(
            f"The {fmt} format needs column(s) {', '.join(missing)}; the data has {', '.join(columns)}."
        )
    return fmt


def _row(fmt: str, row_id, record: dict, data) -> TrainRow:
    system = _str(record.get("system")) or None
    if fmt == "prompt_completion":
        prompt = _str(record.get(data.text_column or "prompt"))
        target = _str(record.get(data.label_column or "completion"))
        return TrainRow(id=row_id, prompt=prompt, system=system, target=target, record=record)
    if fmt == "alpaca":
        instruction, extra = _str(record.get("instruction")), _str(record.get("input"))
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return TrainRow(id=row_id, prompt=prompt, system=system, target=_str(record.get("output")), record=record)
    messages = _messages(record.get("messages"), row_id)
    return TrainRow(id=row_id, messages=messages[:-1], target=messages[-1]["content"], record=record)


def _messages(value, row_id) -> list[dict]:
    """Chat turns ending with the assistant's: that last turn is the target."""
    if isinstance(value, str):
        value = _json_cell(value, row_id, "messages")
    if not isinstance(value, list) or not value:
        raise TrainDataError(f"Row {row_id}: messages must be a non-empty list of {{role, content}} turns.")
    turns = []
    for k, turn in enumerate(value, 1):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise TrainDataError(
                f"Row {row_id}, turn {k}: each turn needs a role ({', '.join(ROLES)}) and a text content."
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    if turns[-1]["role"] != "assistant":
        raise TrainDataError(f"Row {row_id}: the last turn must be the assistant's (it is the training target).")
    if len(turns) < 2:
        raise TrainDataError(f"Row {row_id}: the assistant's turn needs a prompt before it.")
    return turns


# ---- checks and helpers -------------------------------------------------------------------------------------


def check_rows(rows: list[TrainRow], task: str) -> None:
    """Refuse empty data and rows with nothing to learn, naming the rows."""
    if not rows:
        raise TrainDataError("The training data has no rows.")
    shape = get_task(task).row_shape
    if shape == PROMPT_ROWS:
        empty = [r.id for r in rows if not r.target.strip()]
        what = "an empty target (completion)"
    elif shape == TEXT_ROWS:
        empty = [r.id for r in rows if not (r.text or "").strip()]
        what = "no text"
    else:
        return
    if empty:
        raise TrainDataError(
            f"{len(empty)} of {len(rows)} rows have {what}: rows {name_ids(empty)}. Fill or remove them."
        )


def name_ids(ids: list) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def seeded_subset(n: int, k: int | None, seed: int) -> list[int]:
    """Indices of ``k`` of ``n`` rows chosen with ``seed``, in their original order (all when k >= n)."""
    if not k or k >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), k))


def _text_column(configured: str | None, columns: list[str]) -> str:
    if configured:
        if configured not in columns:
            raise TrainDataError(f"data.text_column {configured!r} is not in the data (columns: {', '.join(columns)}).")
        return configured
    if "text" in columns:
        return "text"
    if len(columns) == 1:
        return columns[0]
    raise TrainDataError(f"Which column holds the text? Set data.text_column (columns: {', '.join(columns)}).")


def _json_cell(value, row_id, what: str):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if what == "prompt":
            return value  # a plain-text prompt stored without JSON quoting
        raise TrainDataError(
            f"Row {row_id}: {what} is not valid JSON (expected a list of {{role, content}})."
        ) from None


def _str(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
