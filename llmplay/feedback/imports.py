"""Items (and optionally their responses) from an uploaded JSONL or CSV file into a queue.

Columns / keys: ``prompt`` (text) or ``messages`` (chat turns; JSON text in a CSV cell), ``output`` (the reply
to review; preference queues: ``output`` + ``output_b``, or ``chosen`` + ``rejected``), optional ``input``
(a mapping of template variables; JSON text in CSV), ``reference``, ``model``, ``model_b``, ``adapter``,
``template``, ``source`` (default ``import:<file name>``). Other columns are kept in the item's meta.

Existing responses: ``labeler`` + ``value`` (+ ``comment``) on a row, or in JSONL a ``responses`` list of
``{"labeler", "value", "comment"}``; a CSV repeats an item's row once per labeler (same prompt and reply
are one item). A ``chosen`` / ``rejected`` pair without responses is itself a judgment: it is stored as the
importing user's submitted choice 'a' (chosen is reply A).

The whole file is read and checked before anything is stored, and stored in one transaction: a bad line
(bad JSON, a missing column, a value the queue does not take) is a FeedbackError naming it, and nothing
of the file is kept.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from llmplay import jsonsafe
from llmplay.errors import short, short_list
from llmplay.feedback.store import (
    FeedbackError,
    Queue,
    add_items,
    check_value,
    dedupe_key,
    get_queue,
    labeler_name,
    respond,
)
from llmplay.store import immediate

MAX_IMPORT_ROWS = 10_000
MAX_IMPORT_BYTES = 20 * 1024 * 1024
ITEM_KEYS = ("prompt", "messages", "output", "output_b", "chosen", "rejected", "input", "reference")
ITEM_KEYS += ("model", "model_b", "adapter", "adapter_b", "template", "source")
RESPONSE_KEYS = ("labeler", "value", "comment", "responses")


@dataclass(frozen=True)
class ImportResult:
    queue: str
    rows: int  # rows read from the file
    added: int  # new items
    existing: int  # rows whose item was in the queue already (same source, prompt and replies)
    responses: int  # responses stored

    @property
    def text(self) -> str:
        return (
            f"Imported {self.rows} row(s) into {self.queue!r}: {self.added} new item(s), {self.existing} already "
            f"there, {self.responses} response(s)."
        )


def _read(path: Path, filename: str) -> list[tuple[int, dict]]:
    """(line number, row) for every row of the file; bad structure raises naming the line."""
    suffix = Path(filename).suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv"):  # before reading a byte of it
        raise FeedbackError(f"{filename}: import takes .jsonl, .json or .csv files, not {short(suffix or 'none')}.")
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise FeedbackError(f"{filename} is {size / 2**20:.1f} MB; the import limit is 20 MB. Split the file.")
    data = path.read_bytes()
    if data.startswith((b"\x1f\x8b", b"PK\x03\x04")):  # gzip, zip: never decompressed here
        raise FeedbackError(f"{filename} is a compressed archive; import the plain .jsonl, .json or .csv file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedbackError(f"{filename} is not UTF-8 text (byte {exc.start}); save it as UTF-8.") from None
    if suffix in (".jsonl", ".ndjson"):
        rows = _jsonl(text, filename)
    elif suffix == ".json":
        rows = _json_array(text, filename)
    else:
        rows = _csv(text, filename)
    if not rows:
        raise FeedbackError(f"{filename} has no rows.")
    return rows


def _too_many(filename: str) -> FeedbackError:
    return FeedbackError(f"{filename} has more than {MAX_IMPORT_ROWS:,} rows; the limit is {MAX_IMPORT_ROWS:,}.")


def _jsonl(text: str, filename: str) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = jsonsafe.loads(line)
        except json.JSONDecodeError as exc:
            raise FeedbackError(f"{filename} line {n}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
        except jsonsafe.JsonDepthError as exc:
            raise FeedbackError(f"{filename} line {n}: the JSON is {exc}.") from None
        if not isinstance(row, dict):
            raise FeedbackError(f"{filename} line {n}: each line must be a JSON object, not {type(row).__name__}.")
        rows.append((n, row))
        if len(rows) > MAX_IMPORT_ROWS:
            raise _too_many(filename)
    return rows


def _json_array(text: str, filename: str) -> list[tuple[int, dict]]:
    try:
        data = jsonsafe.loads(text, max_depth=jsonsafe.MAX_DEPTH + 1)  # the list around the rows is one more level
    except json.JSONDecodeError as exc:
        raise FeedbackError(f"{filename} line {exc.lineno}: not valid JSON ({exc.msg}).") from None
    except jsonsafe.JsonDepthError as exc:
        raise FeedbackError(f"{filename}: the JSON is {exc}.") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise FeedbackError(f"{filename}: a .json import is a list of objects (or use JSONL, one object a line).")
    if len(data) > MAX_IMPORT_ROWS:
        raise _too_many(filename)
    return [(n, row) for n, row in enumerate(data, 1)]  # "line" = position in the list


def _csv(text: str, filename: str) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        header = next(reader, None)
        if not header:
            return []
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            twice = [h for h, c in Counter(header).items() if c > 1]
            raise FeedbackError(f"{filename}: the header names column(s) {short_list(twice)} twice.")
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise FeedbackError(
                    f"{filename} line {reader.line_num}: {len(cells)} cells, but the header has {len(header)} columns."
                )
            rows.append((reader.line_num, {h: c for h, c in zip(header, cells) if c != ""}))
            if len(rows) > MAX_IMPORT_ROWS:
                raise _too_many(filename)
    except csv.Error as exc:
        raise FeedbackError(f"{filename} line {reader.line_num}: not valid CSV ({exc}).") from None
    return rows


def _json_cell(value: Any, what: str, kind: type) -> Any:
    """A CSV cell holding JSON (messages, input), or the JSONL value as is."""
    if isinstance(value, str) and kind is not str:
        try:
            value = jsonsafe.loads(value)
        except json.JSONDecodeError:
            raise FeedbackError(f"{what} must be JSON here ({kind.__name__}), e.g. copied from an export.") from None
        except jsonsafe.JsonDepthError as exc:
            raise FeedbackError(f"{what}: the JSON is {exc}.") from None
    if not isinstance(value, kind):
        raise FeedbackError(f"{what} must be a {'list' if kind is list else 'mapping'}, not {type(value).__name__}.")
    return value


def _item(queue: Queue, row: dict, filename: str) -> tuple[dict, list[dict]]:
    """(item fields for add_items, responses) from one row."""
    if "prompt" in row and "messages" in row:
        raise FeedbackError("give 'prompt' or 'messages', not both.")
    if "messages" in row:
        prompt = _json_cell(row["messages"], "'messages'", list)
    elif "prompt" in row:
        prompt = row["prompt"]
    else:
        raise FeedbackError("the 'prompt' (or 'messages') column is missing or empty.")
    paired = "chosen" in row or "rejected" in row
    if paired and ("output" in row or "output_b" in row):
        raise FeedbackError("give 'output' + 'output_b' or 'chosen' + 'rejected', not both.")
    output, output_b = (row.get("chosen"), row.get("rejected")) if paired else (row.get("output"), row.get("output_b"))
    if queue.task in ("correction", "rating") and output is None:
        raise FeedbackError("the 'output' column (the reply to review) is missing or empty.")
    if queue.task == "preference" and (output is None or output_b is None):
        raise FeedbackError("a preference row needs 'output' and 'output_b' (or 'chosen' and 'rejected').")
    item = {"source": row.get("source") or f"import:{Path(filename).name}"[:200], "prompt": prompt}
    item |= {"output": output, "output_b": output_b}
    for key in ("reference", "model", "model_b", "adapter", "adapter_b", "template"):
        if row.get(key) is not None:
            item[key] = row[key] if isinstance(row[key], str) else json.dumps(row[key])
    if "input" in row:
        item["input"] = _json_cell(row["input"], "'input'", dict)
    extra = {k: v for k, v in row.items() if k not in ITEM_KEYS + RESPONSE_KEYS}
    if extra:
        item["meta"] = {"import_columns": extra}
    responses = []
    if "responses" in row:
        listed = _json_cell(row["responses"], "'responses'", list)
        for r in listed:
            if not isinstance(r, dict) or "value" not in r:
                raise FeedbackError("each of 'responses' needs a 'value' (and a 'labeler').")
            responses.append(r)
    if "labeler" in row or "value" in row:
        if "value" not in row:
            raise FeedbackError("'labeler' is given but 'value' is missing or empty.")
        responses.append({"labeler": row.get("labeler"), "value": row["value"], "comment": row.get("comment")})
    if paired and not responses and queue.task == "preference":
        responses.append({"labeler": None, "value": "a"})  # the file's chosen reply is reply A
    for r in responses:
        r["value"] = check_value(queue, r["value"])
        r["labeler"] = r.get("labeler")
        if not isinstance(r["labeler"], str | None):
            raise FeedbackError(f"a labeler is a name (text), not {short(r['labeler'])}.")
        labeler_name(r["labeler"])
        if r.get("comment") is not None and not isinstance(r["comment"], str):
            raise FeedbackError("a response's 'comment' must be text.")
    return item, responses


def import_file(
    db: Database, path: Path | str, queue: str | int | Queue, user: str | None = None, *, filename: str = ""
) -> ImportResult:
    """Import ``path`` into ``queue`` (which must exist). ``filename``: the name to report and to read the
    format from (an upload's original name; default the path's). Responses without a labeler are ``user``'s."""
    path = Path(path)
    filename = filename or path.name
    queue = get_queue(db, queue)
    user = labeler_name(user)
    rows = _read(path, filename)
    parsed = []
    per_item: dict[str, Counter] = {}
    for n, row in rows:
        try:
            item, responses = _item(queue, row, filename)
        except FeedbackError as exc:
            raise FeedbackError(f"{filename} line {n}: {exc}") from None
        key = dedupe_key(item["source"], item["prompt"], item["output"], item.get("output_b"))
        names = per_item.setdefault(key, Counter())
        for r in responses:
            name = labeler_name(r["labeler"] or user)
            names[name] += 1
            if names[name] > 1:
                raise FeedbackError(f"{filename} line {n}: {name} answers this item twice in the file.")
        if len(names) > queue.k:
            raise FeedbackError(
                f"{filename} line {n}: this item has {len(names)} labelers' responses; queue {queue.name!r} takes "
                f"k = {queue.k} per item."
            )
        parsed.append((n, item, responses))
    added = existing = stored = 0
    with immediate(db):  # one transaction: an error below rolls back every row of the file
        for n, item, responses in parsed:
            try:
                found, created = add_items(db, queue, [item], user=user)[0]
                added += created
                existing += not created
                for r in responses:
                    respond(db, found.id, r["labeler"] or user, r["value"], comment=r.get("comment"))
                    stored += 1
            except FeedbackError as exc:
                raise FeedbackError(f"{filename} line {n}: {exc} Nothing from the file was stored.") from None
    return ImportResult(queue.name, len(rows), added, existing, stored)
