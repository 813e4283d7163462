"""Per-row retrieved few-shot examples (a template's ``retrieve: {k, pool}``), chosen at render time.

``select_examples(template, values)`` gives the ``k`` pool rows whose input text is most similar to the row's
(cosine of the bundled all-MiniLM-L6-v2 sentence embeddings), ordered so the most similar comes last, closest to
the question. The input text of a row is the values of the variables the pool rows carry, in the template's
variable order, one per line. A pool row with exactly the row's input text is never chosen: a pool row being
evaluated must not see its own answer. Ties (scores equal to 5 decimals, so float noise cannot reorder them) go
to the earlier pool row.

``templates.render.build_messages`` calls it, and every caller (the Templates preview, evaluation runs, Compare,
the Arena, serving, training data) renders through ``build_messages``: they all pick the same examples.

The pool's vectors are cached per process by the pool's content (a small LRU), so an evaluation of 500 rows
embeds the pool once and each row only its own text.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from llmplay.templates.model import Example, Template

# How many pools' vectors stay cached (a 5,000-row pool is 7.7 MB of float32 vectors).
POOL_CACHE_SIZE = 8
SCORE_DECIMALS = 5

_lock = threading.Lock()
_vectors: OrderedDict[tuple, Any] = OrderedDict()  # (encoder, pool texts) -> tensor [n, dim]
_texts: OrderedDict[int, tuple[Template, tuple[str, ...], tuple[str, ...]]] = OrderedDict()  # id -> (template, ...)


def key_variables(template: Template) -> tuple[str, ...]:
    """The variables whose values make a row's input text: those the pool rows carry, in declaration order."""
    carried = {name for row in template.retrieve.pool for name in row.values} if template.retrieve else set()
    return tuple(v.name for v in template.variables if v.name in carried)


def input_text(template: Template, values: Mapping[str, Any], names: tuple[str, ...] | None = None) -> str:
    """A row's input text for retrieval: ``values`` filled as rendering fills them (defaults, JSON text read)."""
    from llmplay.templates.render import fill_values  # render imports this module

    filled = fill_values(template, values)
    names = key_variables(template) if names is None else names
    return "\n".join(_text(filled.get(name)) for name in names)


def select_examples(template: Template, values: Mapping[str, Any] | None = None) -> tuple[Example, ...]:
    """The retrieved examples for one row (empty for a template without ``retrieve``), most similar last."""
    retrieve = template.retrieve
    if retrieve is None or not retrieve.pool:
        return ()
    from llmplay.models.embeddings import DEFAULT_ENCODER, get_embedder

    names, texts = _pool_texts(template)
    query = input_text(template, values or {}, names)
    embedder = get_embedder(DEFAULT_ENCODER)
    pool_vectors = _pool_vectors(embedder, DEFAULT_ENCODER, texts)
    # One text per call: a row's vector never depends on which rows were embedded with it (padding).
    scores = (pool_vectors @ embedder.encode([query])[0]).tolist()
    ranked = sorted(
        (i for i, text in enumerate(texts) if text.strip() != query.strip()),
        key=lambda i: (-round(scores[i], SCORE_DECIMALS), i),
    )
    return tuple(retrieve.pool[i] for i in reversed(ranked[: retrieve.k]))


def nearest(query: str, texts: tuple[str, ...], k: int) -> list[int]:
    """Indices of the ``k`` texts most similar to ``query`` (MiniLM cosine), the most similar first; ties (equal to
    SCORE_DECIMALS) go to the earlier text. The texts' vectors are cached by content, like a pool's (contexts.py's
    retrieved passages use it)."""
    from llmplay.models.embeddings import DEFAULT_ENCODER, get_embedder

    embedder = get_embedder(DEFAULT_ENCODER)
    vectors = _pool_vectors(embedder, DEFAULT_ENCODER, tuple(texts))
    scores = (vectors @ embedder.encode([query])[0]).tolist()
    return sorted(range(len(texts)), key=lambda i: (-round(scores[i], SCORE_DECIMALS), i))[:k]


def _pool_texts(template: Template) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(key variables, input text of each pool row), remembered for the last templates seen (by identity)."""
    with _lock:
        hit = _texts.get(id(template))
        if hit is not None and hit[0] is template:
            _texts.move_to_end(id(template))
            return hit[1], hit[2]
    names = key_variables(template)
    texts = tuple(input_text(template, row.values, names) for row in template.retrieve.pool)
    with _lock:
        _texts[id(template)] = (template, names, texts)  # the template is kept: its id is not reused meanwhile
        while len(_texts) > 4 * POOL_CACHE_SIZE:
            _texts.popitem(last=False)
    return names, texts


def _pool_vectors(embedder, encoder: str, texts: tuple[str, ...]):
    key = (encoder, texts)
    with _lock:
        if key in _vectors:
            _vectors.move_to_end(key)
            return _vectors[key]
    vectors = embedder.encode(list(texts))  # outside the lock: the embedder has its own
    with _lock:
        _vectors[key] = vectors
        while len(_vectors) > POOL_CACHE_SIZE:
            _vectors.popitem(last=False)
    return vectors


def clear_cache() -> None:
    with _lock:
        _vectors.clear()
        _texts.clear()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
