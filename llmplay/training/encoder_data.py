"""Rows for encoder jobs: labelled sentences (classification), tagged tokens (NER), raw text (masked LM).

Sources (``DataConfig.source``): a saved evaluation dataset (or ``builtin:<sample>``), an uploaded file
(CSV / JSONL / ... through the evaluation reader, a CoNLL file, or plain text for masked LM) and inline rows.
NER tags are normalised to BIO (IOB2): CoNLL-2003 ships IOB1, where an entity starts with ``I-``. Rows that
carry a document id (CoNLL ``-DOCSTART-``, a ``doc`` column) are split by document, so sentences of one news
story never sit on both sides of the split.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from llmplay.settings import Settings
from llmplay.training.config import DataConfig, TrainConfig
from llmplay.training.data_sources import check_data_file, check_row_count, dataset_table
from llmplay.training.encoder_rows import EncoderDataError
from llmplay.training.tasks import get_task


@dataclass
class EncoderData:
    task: str
    train: list[dict]  # classification {"text", "label"}, ner {"tokens", "tags"}, mlm {"text"}; each has "id"
    validation: list[dict]
    labels: list[str]  # class names, or the BIO tag set (O first); empty for mlm
    source: str  # what the rows came from, for the job's log
    notes: list[str] = field(default_factory=list)  # things the user should know (rows dropped, ...)

    @property
    def row_ids(self) -> list:
        return [r["id"] for r in self.train]

    @property
    def data_hash(self) -> str:
        """sha256 of the training and validation rows and the label set: identical data, identical hash."""
        payload = {"train": self.train, "validation": self.validation, "labels": self.labels, "task": self.task}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def load_encoder_data(config: TrainConfig, settings: Settings) -> EncoderData:
    """The job's rows, labels and seeded split; EncoderDataError for anything a user must fix first."""
    d = config.data
    raw, source = _raw_rows(d, settings, config.task)
    rows, notes = _normalise(config.task, raw, d, source)
    if not rows:
        raise EncoderDataError(f"{source} has no usable rows for task {config.task!r}.")
    if d.max_rows and len(rows) > d.max_rows:
        rows = sorted(random.Random(config.seed).sample(rows, d.max_rows), key=lambda r: r["id"])
    if d.validation_dataset:
        val_config = DataConfig(**{**vars(d), "source": "dataset", "dataset": d.validation_dataset})
        val_raw, val_source = _raw_rows(val_config, settings, config.task)
        validation, more = _normalise(config.task, val_raw, d, val_source)
        train, notes = rows, notes + more
    else:
        train, validation = split_rows(rows, d.validation_fraction, config.seed)
    if not train:
        raise EncoderDataError(f"{source}: no rows are left for training after the validation split.")
    labels = get_task(config.task).label_set(train + validation, d.labels, source)
    return EncoderData(config.task, train, validation, labels, source, notes)


def split_rows(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded train/validation split; by document when rows carry one (``doc``), else by row."""
    if fraction <= 0 or len(rows) < 2:
        return list(rows), []
    docs = list(dict.fromkeys(r.get("doc") for r in rows))
    if len(docs) > 1 and None not in docs:
        random.Random(seed).shuffle(docs)
        held = set(docs[: max(1, round(len(docs) * fraction))])
        return [r for r in rows if r["doc"] not in held], [r for r in rows if r["doc"] in held]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, round(len(rows) * fraction))])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


# ---- reading sources ------------------------------------------------------------------------------------


def _raw_rows(d: DataConfig, settings: Settings, task: str) -> tuple[list[dict], str]:
    """(rows as dicts, a name for messages). Dataset rows also get the mapping's text/label columns."""
    if d.source == "rows":
        return [dict(r) for r in d.rows or []], "the inline rows"
    if d.source == "dataset":
        return _dataset_rows(d, settings)
    if d.source == "file":
        return _file_rows(d, settings, task)
    raise EncoderDataError(
        f"Encoder jobs read a dataset, a file or inline rows; data.source {d.source!r} is for causal-LM jobs."
    )


def _dataset_rows(d: DataConfig, settings: Settings) -> tuple[list[dict], str]:
    name = d.dataset or ""
    df, mapping = dataset_table(settings, name)
    rows = [dict(zip(df.columns, r)) for r in df.itertuples(index=False, name=None)]
    # The mapping says which column is the input ("text" variable first) and which the reference.
    variables = mapping.variables
    text = variables.get("text") or next(iter(variables.values()), None)
    hints = {"_text_column": text, "_label_column": mapping.reference}
    return [{**r, **hints} for r in rows], f"dataset {name!r}"


def _file_rows(d: DataConfig, settings: Settings, task: str) -> tuple[list[dict], str]:
    from llmplay.datasets import FORMATS, DatasetError, read_table

    path = Path(d.file or "").expanduser()
    source = f"file {path.name!r}"
    if not path.is_file():
        raise EncoderDataError(f"Training file {str(path)!r} does not exist.")
    check_data_file(settings, path, EncoderDataError)
    fmt = d.format
    if fmt == "auto":  # a table by its suffix, else what the task reads plain files as (ner: CoNLL; mlm: text)
        fmt = "table" if path.suffix.lower() in FORMATS else get_task(task).plain_file_format
    if fmt in ("conll", "text"):
        rows = read_conll(path) if fmt == "conll" else _text_file(path)
        check_row_count(len(rows), f"Training file {path.name!r}", EncoderDataError)
        return rows, source
    try:
        table = read_table(path, settings)
    except DatasetError as exc:
        raise EncoderDataError(str(exc)) from None
    return [dict(zip(table.df.columns, r)) for r in table.df.itertuples(index=False, name=None)], source


def read_conll(path: Path) -> list[dict]:
    """Sentences of a CoNLL file: first column the token, last column the NER tag; blank lines end a
    sentence, ``-DOCSTART-`` lines start a document (its number is each sentence's ``doc``)."""
    rows: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    has_docs = False
    doc = 0

    def flush() -> None:
        if tokens:
            rows.append({"tokens": list(tokens), "tags": list(tags), "doc": doc})
            tokens.clear()
            tags.clear()

    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            flush()
        elif parts[0] == "-DOCSTART-":
            flush()
            if has_docs or rows:
                doc += 1
            has_docs = True
        elif len(parts) < 2:
            raise EncoderDataError(
                f"{path.name} line {number}: expected 'token ... tag' (CoNLL columns); got {line[:60]!r}."
            )
        else:
            tokens.append(parts[0])
            tags.append(parts[-1])
    flush()
    if not has_docs:
        for row in rows:
            row.pop("doc")
    # Empty documents (two -DOCSTART- in a row, or one at the very end) leave gaps: renumber densely.
    numbers = {n: i for i, n in enumerate(dict.fromkeys(r["doc"] for r in rows if "doc" in r))}
    for row in rows:
        if "doc" in row:
            row["doc"] = numbers[row["doc"]]
    return rows


def _text_file(path: Path) -> list[dict]:
    """Plain text for masked LM: one row per non-empty line."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [{"text": line.strip()} for line in lines if line.strip()]


# ---- normalising rows ------------------------------------------------------------------------------------


def _normalise(task: str, raw: list[dict], d: DataConfig, source: str) -> tuple[list[dict], list[str]]:
    if not raw:
        raise EncoderDataError(f"{source} is empty: give at least a few labelled rows.")
    return get_task(task).rows(raw, d, source)
