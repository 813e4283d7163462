"""Training data: rows from a dataset, a file, accepted feedback or inline, formatted exactly as inference
renders them, tokenized with completion-only labels.

Public functions (the trainer, the Train tab and the loop use these):

- ``load_rows(config, settings) -> TrainData``: the rows (``TrainRow``) with stable ids (dataset row index, file
  row number, feedback item id, or an inline row's own ``id``), a sha256 data hash, the format and the resolved
  template (``name@vN``); ``data.validation_dataset``'s rows in ``validation_rows``. Raises TrainDataError.
  Formats: a template over a table's columns (target = the reference or ``data.label_column``), prompt/completion
  (optional ``system`` column), chat ``messages`` (the last assistant turn is the target), Alpaca
  instruction/input/output, raw ``text`` (task cpt). Encoder tasks get the rows' ``record`` only.
- ``split_rows(config, data) -> (train, validation)``: seeded, disjoint (or the validation dataset's rows).
- ``build_examples(config, loaded, rows) -> list[Example]``: tokenized examples for a loaded causal model
  (``llmplay.models.loader.LoadedModel``). ``Example(input_ids, labels, row_id, truncated, prompt_tokens)``:
  labels are -100 on the prompt (task sft: loss on the completion only) and equal input_ids for task cpt
  (raw text, documents joined by the end-of-sequence token and cut into max_length chunks).
- ``preview(config, settings, engine, n=3) -> DataPreview``: a few formatted examples with the masked part
  marked, token-length statistics, truncation count and split sizes, before a job starts.

The sft prompt goes through the same path as inference: a template through ``templates.render.build_request``,
other rows as the Playground / Compare would send them (``templates.request_from_messages``), then
``engine.prompt_text.render_prompt`` and ``encode_prompt``. The completion is the target plus the end of turn: for
chat models what the chat template writes after the prompt for an assistant turn holding the target (cut after
its end-of-turn token: ``<|im_end|>`` for SmolLM2), for base models the target and the eos token.

Truncation at ``max_length``: the completion is kept whole and the prompt's start is cut; when the completion
alone leaves less than a quarter of the window for the prompt, the prompt keeps that quarter and the
completion's end is cut. Every such row counts as truncated (shown in the preview).
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
from dataclasses import dataclass, field, replace

from llmplay.datasets import suggest_mapping
from llmplay.engine.types import GenerationParams, GenerationRequest
from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.templates import load_template, request_from_messages
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.render import build_request
from llmplay.training.config import TrainConfig
from llmplay.training.data_sources import (
    TrainDataError,
    TrainRow,
    check_rows,
    dataset_table,
    feedback_records,
    record_ids,
    records_from_file,
    rows_from_dataset,
    rows_from_records,
    rows_from_table,
    seeded_subset,
)
from llmplay.training.tasks import PROMPT_ROWS, TEXT_ROWS, get_task

__all__ = [
    "DataPreview",
    "Example",
    "PreviewExample",
    "TrainData",
    "TrainDataError",
    "TrainRow",
    "build_examples",
    "load_rows",
    "preview",
    "split_rows",
]

IGNORE_INDEX = -100  # label of tokens that carry no loss (the prompt)
TRAINED_MARKERS = ("⟦", "⟧")  # plain-text preview: the trained part between these


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on the prompt
    row_id: int | str | None  # cpt chunks: the row the chunk starts in
    truncated: bool = False
    prompt_tokens: int = 0  # the masked tokens at the start


@dataclass
class TrainData:
    rows: list[TrainRow]
    data_hash: str  # sha256 over the normalised rows (and the template version they render through)
    source: str  # a line for people: where the rows came from
    format: str  # template | prompt_completion | messages | alpaca | text | records
    template_ref: str | None = None  # name@vN the rows render through
    validation_rows: list[TrainRow] | None = None  # from data.validation_dataset

    @property
    def row_ids(self) -> list:
        return [r.id for r in self.rows]


@dataclass
class PreviewExample:
    row_id: int | str | None
    segments: list[dict]  # [{"text": ..., "trained": False}, {"text": ..., "trained": True}]
    text: str  # plain text, the trained part between TRAINED_MARKERS
    tokens: int
    truncated: bool


@dataclass
class DataPreview:
    examples: list[PreviewExample]
    rows: int
    train_rows: int
    validation_rows: int
    token_stats: dict[str, float]  # min, median, p95, max tokens per example (before truncation)
    truncated: int  # examples cut at max_length
    max_length: int
    format: str
    source: str
    data_hash: str
    warnings: list[str] = field(default_factory=list)


# ---- rows ---------------------------------------------------------------------------------------------------


def load_rows(config: TrainConfig, settings: Settings) -> TrainData:
    d = config.data
    template = template_ref = None
    prompts = get_task(config.task).row_shape == PROMPT_ROWS
    if d.template and prompts and d.source != "feedback":  # feedback prompts are rendered already
        library = TemplateLibrary.from_settings(settings)
        try:
            template, version = load_template(library, d.template)
        except LlmplayError as exc:
            raise TrainDataError(f"data.template: {exc}") from None
        template_ref = f"{version.template}@v{version.number}"
    if d.source == "dataset":
        df, mapping = dataset_table(settings, d.dataset)
        rows, fmt = rows_from_dataset(df, mapping, config.task, d, template, d.max_rows, config.seed)
        source = f"dataset {d.dataset}"
    else:
        if d.source == "file":
            records, source = records_from_file(settings, d.file), f"file {d.file}"
        elif d.source == "feedback":
            records, source = feedback_records(settings), "accepted feedback corrections"
        else:
            records, source = [dict(r) for r in d.rows or []], "inline rows"
        if not records:
            raise TrainDataError(f"The training data ({source}) has no rows.")
        ids = record_ids(records)
        keep = seeded_subset(len(records), d.max_rows, config.seed)
        records, ids = [records[i] for i in keep], [ids[i] for i in keep]
        if template is not None:  # a table's columns fill the template's variables, as for a saved dataset
            columns = list(dict.fromkeys(k for r in records for k in r))
            mapping = suggest_mapping([v.name for v in template.variables], columns)
            rows, fmt = rows_from_table(list(zip(ids, records)), columns, mapping, config.task, d, template)
        else:
            rows, fmt = rows_from_records(records, ids, config.task, d)
    check_rows(rows, config.task)
    validation = None
    if d.validation_dataset:
        vdf, vmapping = dataset_table(settings, d.validation_dataset)
        validation, _ = rows_from_dataset(vdf, vmapping, config.task, d, template, None, config.seed)
        check_rows(validation, config.task)
    return TrainData(rows, data_hash(rows, template_ref), source, fmt, template_ref, validation)


def data_hash(rows: list[TrainRow], template_ref: str | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"template": template_ref}).encode())
    for row in rows:
        digest.update(b"\n")
        digest.update(json.dumps(row.content(), ensure_ascii=False, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def split_rows(config: TrainConfig, data: TrainData) -> tuple[list[TrainRow], list[TrainRow]]:
    """Train and validation rows, disjoint; seeded by ``config.seed``; each in the data's order."""
    if data.validation_rows is not None:
        return list(data.rows), list(data.validation_rows)
    n = len(data.rows)
    fraction = config.data.validation_fraction
    n_val = round(n * fraction)
    if fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)  # a requested split keeps at least one row on each side
    order = list(range(n))
    random.Random(config.seed).shuffle(order)
    held = set(order[:n_val])
    train = [r for i, r in enumerate(data.rows) if i not in held]
    validation = [r for i, r in enumerate(data.rows) if i in held]
    return train, validation


# ---- examples -----------------------------------------------------------------------------------------------


def build_examples(config: TrainConfig, loaded, rows: list[TrainRow]) -> list[Example]:
    shape = get_task(config.task).row_shape
    if shape == TEXT_ROWS:
        return _text_chunks(loaded, rows, config.max_length)
    if shape != PROMPT_ROWS:
        raise LlmplayError(f"build_examples formats causal-LM tasks (sft, cpt); {config.task!r} is an encoder task.")
    kind = loaded.spec.kind
    if kind not in ("chat", "base"):
        raise LlmplayError(
            f"{loaded.spec.name} is an {kind} model; fine-tuning with task sft needs a chat or base model."
        )
    from llmplay.engine.prompt_text import encode_prompt, render_prompt

    examples = []
    for row in rows:
        request = _request(row, kind)
        prompt_text = render_prompt(loaded, request)
        prompt_ids = encode_prompt(loaded, prompt_text)
        completion_ids = _completion_ids(loaded, request, prompt_text, row.target)
        examples.append(_fit(prompt_ids, completion_ids, row.id, config.max_length))
    return examples


def formatted_text(loaded, row: TrainRow) -> tuple[str, str]:
    """(prompt text, completion text) of a row as the model sees them: the render path, then the target."""
    from llmplay.engine.prompt_text import render_prompt

    request = _request(row, loaded.spec.kind)
    prompt_text = render_prompt(loaded, request)
    return prompt_text, _completion_text(loaded, request, prompt_text, row.target)


def _request(row: TrainRow, kind: str) -> GenerationRequest:
    params = GenerationParams()
    try:
        if row.template is not None:
            return build_request(row.template, kind, row.values, params)[0]
        if row.messages is not None:
            return request_from_messages(kind, row.messages, params)
        turns = ([{"role": "system", "content": row.system}] if row.system else []) + [
            {"role": "user", "content": row.prompt or ""}
        ]
        return request_from_messages(kind, turns, params)
    except LlmplayError as exc:
        raise TrainDataError(f"Row {row.id}: {exc}") from None


def _completion_text(loaded, request: GenerationRequest, prompt_text: str, target: str) -> str:
    tok = loaded.tokenizer
    if loaded.spec.kind != "chat":
        return target + (tok.eos_token or "")
    turns = request.as_messages() + [{"role": "assistant", "content": target}]
    full = tok.apply_chat_template(turns, tokenize=False)
    end = tok.eos_token or ""
    if not full.startswith(prompt_text):
        # A chat template that rewrites earlier turns once a reply follows: train on target + end of turn.
        return target + end
    completion = full[len(prompt_text) :]
    if end and end in completion:  # what follows the end of turn (a newline) is never generated
        completion = completion[: completion.rindex(end) + len(end)]
    return completion


def _completion_ids(loaded, request: GenerationRequest, prompt_text: str, target: str) -> list[int]:
    tok = loaded.tokenizer
    if loaded.spec.kind != "chat":
        ids = tok(target, add_special_tokens=False)["input_ids"]
        return ids + ([tok.eos_token_id] if tok.eos_token_id is not None else [])
    return tok(_completion_text(loaded, request, prompt_text, target), add_special_tokens=False)["input_ids"]


def _fit(prompt_ids: list[int], completion_ids: list[int], row_id, max_length: int) -> Example:
    total = len(prompt_ids) + len(completion_ids)
    truncated = total > max_length
    if truncated:
        keep_prompt = max(max_length - len(completion_ids), min(len(prompt_ids), max_length // 4))
        prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt :]
        completion_ids = completion_ids[: max_length - keep_prompt]
    ids = prompt_ids + completion_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + completion_ids
    return Example(ids, labels, row_id, truncated, len(prompt_ids))


def _text_chunks(loaded, rows: list[TrainRow], max_length: int) -> list[Example]:
    """Continued pre-training: every document then eos, all joined and cut into max_length chunks."""
    tok = loaded.tokenizer
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    add_special = loaded.spec.kind != "chat"  # as encode_prompt: base text gets the tokenizer's BOS
    stream: list[int] = []
    starts: list[tuple[int, int | str]] = []
    for row in rows:
        starts.append((len(stream), row.id))
        stream += tok(row.text or "", add_special_tokens=add_special)["input_ids"] + eos
    examples, k = [], 0
    for begin in range(0, len(stream), max_length):
        chunk = stream[begin : begin + max_length]
        if len(chunk) < 2:
            break  # nothing to predict
        while k + 1 < len(starts) and starts[k + 1][0] <= begin:
            k += 1
        examples.append(Example(chunk, list(chunk), starts[k][1]))
    return examples


# ---- preview ------------------------------------------------------------------------------------------------


def preview(config: TrainConfig, settings: Settings, engine, n: int = 3) -> DataPreview:
    """What a job would train on, before it starts. Raises TrainDataError (or LlmplayError) naming the problem."""
    data = load_rows(config, settings)
    train, validation = split_rows(config, data)
    loaded = tokenizer_view(engine, engine.catalog.get(config.base_model))
    if get_task(config.task).row_shape == PROMPT_ROWS:  # a prompt cut from the start: count the whole example
        whole = build_examples(replace(config, max_length=10**9), loaded, train + validation)
        lengths = [len(e.input_ids) for e in whole]  # before truncation: what max_length should cover
        examples = [_fit_like(e, config) for e in whole]
    else:
        examples = build_examples(config, loaded, train + validation)
        lengths = [len(e.input_ids) for e in examples]
    truncated = sum(e.truncated for e in examples)
    warnings = []
    if truncated:
        warnings.append(
            f"{truncated} of {len(examples)} examples are longer than max_length={config.max_length} tokens and "
            "will be truncated (the prompt's start is cut); raise max_length to keep them whole."
        )
    if not validation:
        warnings.append("No validation rows: validation loss and early stopping need data.validation_fraction > 0.")
    return DataPreview(
        examples=[_preview_example(loaded, e) for e in examples[:n]],
        rows=len(data.rows) + len(data.validation_rows or []),
        train_rows=len(train),
        validation_rows=len(validation),
        token_stats=_stats(sorted(lengths)),
        truncated=truncated,
        max_length=config.max_length,
        format=data.format,
        source=data.source,
        data_hash=data.data_hash,
        warnings=warnings,
    )


@dataclass
class TokenizerView:
    """What formatting and tokenizing need of a loaded model (``spec`` and ``tokenizer``), without its weights."""

    spec: object
    tokenizer: object


_TOKENIZERS: dict[tuple, object] = {}  # (folder, chat template) -> tokenizer: a preview loads each once


def tokenizer_view(engine, spec):
    """The loaded model when the engine has it, else its tokenizer alone (cached): a preview of 20 rows took
    61 s on a busy 2-core machine, almost all of it loading the model's weights, which formatting never uses.
    GGUF weights not converted yet (and models with their own code) still load the model."""
    if engine.models.is_loaded(spec) or spec.trust_remote_code:
        return engine.models.get(spec)
    try:
        weights = engine.models.weights(spec)
    except LlmplayError:
        return engine.models.get(spec)
    folder = weights.path
    if weights.is_gguf:
        entry = engine.models.cache_entry(spec)
        if entry is None or not engine.models.is_cached(spec):
            return engine.models.get(spec)
        folder = str(entry)
    key = (str(folder), spec.chat_template or "")
    tokenizer = _TOKENIZERS.get(key)
    if tokenizer is None:
        from transformers import AutoTokenizer

        try:
            # No remote code here: a model that needs it falls back to the full load, which applies its setting.
            tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
        except Exception:  # let the full load explain what is wrong with the model
            return engine.models.get(spec)
        if spec.chat_template:
            tokenizer.chat_template = spec.chat_template
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        _TOKENIZERS[key] = tokenizer
    return TokenizerView(spec, tokenizer)


_SKELETONS: dict[str, object] = {}  # folder -> the model's modules on the meta device (no weights, no memory)


def model_skeleton(engine, spec):
    """The model's module tree without weights (the loaded model when the engine has it): what a check of
    layer names needs, in a fraction of a second instead of a weights load."""
    view = tokenizer_view(engine, spec)
    if not isinstance(view, TokenizerView):
        return view.model
    weights = engine.models.weights(spec)
    folder = str(engine.models.cache_entry(spec)) if weights.is_gguf else str(weights.path)
    if folder not in _SKELETONS:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        with torch.device("meta"):
            _SKELETONS[folder] = AutoModelForCausalLM.from_config(
                AutoConfig.from_pretrained(folder, trust_remote_code=False), trust_remote_code=False
            )
    return _SKELETONS[folder]


def _fit_like(example: Example, config: TrainConfig) -> Example:
    prompt = example.input_ids[: example.prompt_tokens]
    completion = example.input_ids[example.prompt_tokens :]
    return _fit(prompt, completion, example.row_id, config.max_length)


def _preview_example(loaded, example: Example) -> PreviewExample:
    tok = loaded.tokenizer
    masked = tok.decode(example.input_ids[: example.prompt_tokens], skip_special_tokens=False)
    trained = tok.decode(example.input_ids[example.prompt_tokens :], skip_special_tokens=False)
    segments = [s for s in ({"text": masked, "trained": False}, {"text": trained, "trained": True}) if s["text"]]
    text = masked + TRAINED_MARKERS[0] + trained + TRAINED_MARKERS[1]
    return PreviewExample(example.row_id, segments, text, len(example.input_ids), example.truncated)


def _stats(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {"min": 0, "median": 0, "p95": 0, "max": 0}
    p95 = lengths[min(len(lengths) - 1, int(round(0.95 * (len(lengths) - 1))))]
    return {"min": lengths[0], "median": statistics.median(lengths), "p95": p95, "max": lengths[-1]}
