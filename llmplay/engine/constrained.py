"""Constrained decoding for local models: only replies valid against a JSON Schema can be generated.

Built on ``outlines-core`` (the outlines team's Rust core, maintained, no Hub access): the schema becomes a regular
expression (``build_regex_from_schema``), the regular expression an index over the tokenizer's vocabulary, and a
``Guide`` per row says which tokens may come next. ``SchemaLogits`` is a transformers logits processor that masks
every other token at each step. We use the core rather than the ``outlines`` package itself: its transformers
wrapper decoded about 5x slower here (measured 2026-12-06), and we keep our own batching.

Whitespace between JSON tokens is limited to one optional space: a free whitespace pattern lets a small model
loop on newlines until max_new_tokens, which is never valid JSON.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from llmplay.errors import LlmplayError

WHITESPACE = r"[ ]?"
_INDEXES: OrderedDict[tuple[str, int], tuple] = OrderedDict()  # (schema, tokenizer id) -> (tokenizer, Index)
_VOCABULARIES: dict[int, tuple] = {}  # tokenizer id -> (tokenizer, Vocabulary)
_LOCK = threading.Lock()
_KEEP = 16


class ConstraintError(LlmplayError):
    """The schema cannot drive constrained decoding (or outlines-core is missing)."""


def _core():
    try:
        import outlines_core
    except ImportError:
        raise ConstraintError(
            "Constrained decoding needs the outlines-core package: pip install outlines-core"
        ) from None
    return outlines_core


def _token_text(tokenizer, token: str) -> str:
    text = tokenizer.convert_tokens_to_string([token])
    # SentencePiece marks a leading space with "▁", which convert_tokens_to_string strips from a lone token.
    return " " + text if token.startswith("▁") or token == "<0x20>" else text


def vocabulary(tokenizer) -> Any:
    """outlines-core's view of a tokenizer: each token's text (special tokens left out), EOS as the stop."""
    core = _core()
    key = id(tokenizer)
    with _LOCK:
        # keyed by id, checked by identity: a freed tokenizer's id may be reused by another one
        if key not in _VOCABULARIES or _VOCABULARIES[key][0] is not tokenizer:
            special = set(tokenizer.all_special_tokens)
            texts: dict[str, list[int]] = {}
            for token, token_id in tokenizer.get_vocab().items():
                if token in special:
                    continue
                texts.setdefault(_token_text(tokenizer, token), []).append(token_id)
            _VOCABULARIES[key] = (tokenizer, core.Vocabulary(tokenizer.eos_token_id, texts))
        return _VOCABULARIES[key][1]


def schema_index(schema_json: str, tokenizer) -> Any:
    """The token index of a schema for a tokenizer, built once (seconds for a large vocabulary) and kept."""
    core = _core()
    key = (schema_json, id(tokenizer))
    with _LOCK:
        if key in _INDEXES and _INDEXES[key][0] is tokenizer:
            _INDEXES.move_to_end(key)
            return _INDEXES[key][1]
    try:
        regex = core.json_schema.build_regex_from_schema(schema_json, WHITESPACE)
        index = core.Index(regex, vocabulary(tokenizer))
    except Exception as exc:  # the core raises plain ValueErrors for schemas it cannot express
        raise ConstraintError(f"This JSON Schema cannot drive constrained decoding: {exc}") from None
    with _LOCK:
        _INDEXES[key] = (tokenizer, index)
        while len(_INDEXES) > _KEEP:
            _INDEXES.popitem(last=False)
    return index


class SchemaLogits:
    """A logits processor for a batch of ``rows`` prompts padded to ``width`` tokens: each row may only take
    tokens its guide allows; once a row has finished (EOS), it may only repeat EOS / padding."""

    def __init__(self, schema_json: str, tokenizer, rows: int, width: int, pad_id: int | None):
        core = _core()
        index = schema_index(schema_json, tokenizer)
        self.guides = [core.Guide(index) for _ in range(rows)]
        self.width = width
        self.eos = tokenizer.eos_token_id
        self.pad = self.eos if pad_id is None else pad_id
        self.done = [False] * rows

    def __call__(self, input_ids, scores):
        import torch

        if input_ids.shape[1] > self.width:  # the token each row took at the previous step
            for row, token in enumerate(input_ids[:, -1].tolist()):
                if self.done[row]:
                    continue
                if token == self.eos or self.guides[row].is_finished():
                    self.done[row] = True
                else:
                    self.guides[row].advance(token)
        mask = torch.full_like(scores, float("-inf"))
        for row, guide in enumerate(self.guides):
            allowed = [self.eos, self.pad] if self.done[row] else guide.get_tokens()
            mask[row, torch.tensor(allowed, dtype=torch.long)] = 0
        return scores + mask
