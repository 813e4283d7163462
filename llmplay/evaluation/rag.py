"""Retrieval-augmented answers: the pure functions behind the ``faithfulness``, ``answer_relevance`` and
``context_recall`` metric modules, and the run's record of the passages each row got.

No NLI model is bundled (and none can be downloaded), so "supported" here is an **embedding proxy, not NLI**: a
sentence is supported by the passages when one passage

- covers at least ``MIN_COVERAGE`` of the sentence's content words (lower-cased, stop words dropped, a plural
  ``s`` cut, numbers without thousands separators),
- holds every number the sentence states (so "35 days" is not supported by "27 days"), and
- has a sentence whose MiniLM cosine with it (the bundled all-MiniLM-L6-v2) is at least ``MIN_COSINE``.

It catches invented facts, wrong figures and answers about something else; it cannot tell a negation or a swapped
relation ("A pays B" / "B pays A") from a faithful sentence. For a model's judgement instead, grade faithfulness
with a judge: ``judge: {template: judge-faithfulness, model: ...}`` (prompts/judge-faithfulness.yaml).

- ``faithfulness``: per row, the share of the answer's sentences supported by the row's passages (no answer, or
  no passages, scores 0; so does "I do not know": it states nothing the passages hold).
- ``answer_relevance``: per row, the MiniLM cosine of the question and the answer, clipped to [0, 1] (does the
  answer talk about what was asked; it says nothing about correctness).
- ``context_recall``: per row, the share of the reference answer's sentences supported by the passages (did
  retrieval find what the answer needs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from llmplay.errors import LlmplayError
from llmplay.templates.contexts import context_variable, passages, query_variable, with_contexts
from llmplay.templates.model import Template

MIN_COVERAGE = 0.6  # share of a sentence's content words one passage must hold
MIN_COSINE = 0.5  # MiniLM cosine of the sentence with the passage's closest sentence

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CITATION = re.compile(r"\[\d+\]")
_WORD = re.compile(r"\d+(?:[.,:]\d+)*%?|[^\W\d_]+(?:'[^\W\d_]+)?")
_NUMBER = re.compile(r"^\d")
STOP_WORDS = frozenset(
    """a an the and or but if of to in on at by for from with without into onto about as is are was were be been
    being am do does did doing have has had having it its it's this that these those there here which who whom
    whose what when where why how i you he she we they me him her us them my your his our their can could may
    might must shall should will would not no nor so than then too very just also only any all each every some
    such other more most own same up down out over under again further once per s t""".split()  # noqa: SIM905
)


# ---- text ------------------------------------------------------------------------------------------------------


def sentences(text: str | None) -> list[str]:
    """A text's sentences (citation marks like [1] dropped); pieces without a word are left out."""
    if not text:
        return []
    pieces = (_CITATION.sub("", p).strip(" -*\t") for p in _SENTENCE_END.split(text))
    return [p for p in pieces if any(ch.isalnum() for ch in p)]


def content_words(text: str) -> set[str]:
    """The words that carry content: lower-cased, stop words dropped, a plural s cut, numbers as digits only."""
    words = set()
    for word in _WORD.findall(text.casefold()):
        if _NUMBER.match(word):
            words.add(word.replace(",", "").rstrip("%").rstrip("."))
        elif word not in STOP_WORDS and len(word) > 1:
            words.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return words


def numbers(text: str) -> set[str]:
    return {w for w in content_words(text) if _NUMBER.match(w)}


# ---- support ------------------------------------------------------------------------------------------------------


def supported(claims: Sequence[str], contexts: Sequence[str]) -> list[bool]:
    """For each claim (a sentence), whether one of the passages supports it (see the module's docstring)."""
    if not claims:
        return []
    if not contexts:
        return [False] * len(claims)
    from llmplay.models.embeddings import DEFAULT_ENCODER, get_embedder

    embedder = get_embedder(DEFAULT_ENCODER)
    split = [sentences(c) or [c] for c in contexts]
    flat = [s for parts in split for s in parts]
    cosines = embedder.encode(list(claims)) @ embedder.encode(flat).T  # [claims, passage sentences]
    words = [content_words(c) for c in contexts]
    figures = [numbers(c) for c in contexts]
    out = []
    for i, claim in enumerate(claims):
        mine, my_numbers = content_words(claim), numbers(claim)
        ok, start = False, 0
        for j, parts in enumerate(split):
            best = float(cosines[i, start : start + len(parts)].max())
            start += len(parts)
            coverage = len(mine & words[j]) / len(mine) if mine else 0.0
            if coverage >= MIN_COVERAGE and my_numbers <= figures[j] and best >= MIN_COSINE:
                ok = True
                break
        out.append(ok)
    return out


def support_share(text: str | None, contexts: Sequence[str]) -> float:
    """The share of ``text``'s sentences the passages support; 0 for no text."""
    claims = sentences(text)
    if not claims:
        return 0.0
    return sum(supported(claims, contexts)) / len(claims)


# ---- metrics ---------------------------------------------------------------------------------------------------


def faithfulness(predictions: Sequence[str | None], contexts: Sequence[Any]) -> dict[str, Any]:
    """Per row, the share of the answer's sentences supported by the row's passages (embedding proxy, not NLI);
    details: how many rows had no passages, and how many answers were wholly unsupported."""
    _same_length("faithfulness", predictions, contexts)
    rows, empty = [], 0
    for answer, given in zip(predictions, contexts):
        found = passages(given)
        empty += not found
        rows.append(support_share(answer, found))
    unsupported = sum(r == 0 for r in rows)
    return {"score": _mean(rows), "per_row": rows, "row_mean": True, "no_passages": empty, "unsupported": unsupported}


def answer_relevance(predictions: Sequence[str | None], questions: Sequence[str]) -> dict[str, Any]:
    """Per row, the MiniLM cosine of the question and the answer, clipped to [0, 1]; no answer scores 0."""
    _same_length("answer_relevance", predictions, questions)
    from llmplay.models.embeddings import DEFAULT_ENCODER, get_embedder

    answers = [(p or "").strip() for p in predictions]
    cosines = get_embedder(DEFAULT_ENCODER).similarity(answers, [str(q or "") for q in questions])
    rows = [max(0.0, min(1.0, c)) if a else 0.0 for c, a in zip(cosines, answers)]
    return {"score": _mean(rows), "per_row": rows, "row_mean": True}


def context_recall(references: Sequence[Any], contexts: Sequence[Any]) -> dict[str, Any]:
    """Per row, the share of the reference answer's sentences supported by the row's passages (embedding proxy);
    details: how many rows had no passages."""
    _same_length("context_recall", references, contexts)
    rows, empty = [], 0
    for i, (reference, given) in enumerate(zip(references, contexts)):
        if not sentences(None if reference is None else str(reference)):
            raise ValueError(f"row {i + 1}: context_recall needs a reference answer; the row has none")
        found = passages(given)
        empty += not found
        rows.append(support_share(str(reference), found))
    return {"score": _mean(rows), "per_row": rows, "row_mean": True, "no_passages": empty}


def _mean(rows: list[float]) -> float:
    return sum(rows) / len(rows) if rows else 0.0


def _same_length(name: str, a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name}: {len(a)} rows but {len(b)} rows of passages or questions")


# ---- a run's rows -----------------------------------------------------------------------------------------------


class RagInputError(LlmplayError):
    pass


def row_inputs(
    template: Template, rows: Sequence[Mapping[str, Any]], variables: Mapping[str, str] | None
) -> tuple[list[list[str]], list[str]]:
    """(passages, question) of each row as the template rendered them: the row's mapped values filled as
    rendering fills them, with a template's retrieved passages where the row gave none."""
    from llmplay.templates.render import fill_values

    name = context_variable(template)
    if name is None:
        raise RagInputError(
            f"template {template.name!r} has no passages to check against: declare a list variable 'contexts' "
            "(default: []) that the body loops over, or give it documents: {dataset, column, k}"
        )
    question = query_variable(template)
    variables = dict(variables or {})
    out_passages, out_questions = [], []
    for row in rows:
        values = {var: row.get(col) for var, col in variables.items()}
        filled = with_contexts(template, fill_values(template, values))
        out_passages.append(passages(filled.get(name)))
        out_questions.append(str(filled.get(question) or "") if question else "")
    return out_passages, out_questions


def attach_contexts(template: Template, rows: list[dict[str, Any]], variables: dict[str, str]) -> str | None:
    """Put the passages each row will be rendered with into the rows, as a new column (JSON lists), and map the
    template's passages variable to it; returns the column's name (None for a template without ``documents``).

    The run stores its rows, so the results grid shows the passages each row got beside its question, the
    scorer reads them back without retrieving again, and every column renders from the same passages."""
    docs = template.documents
    if docs is None:
        return None
    from llmplay.templates.render import fill_values

    found = []
    for row in rows:
        values = {var: row.get(col) for var, col in variables.items()}
        filled = with_contexts(template, fill_values(template, values))
        found.append(json.dumps(passages(filled.get(docs.variable)), ensure_ascii=False))
    column, n = f"{docs.variable} · {template.name}", 1
    while rows and column in rows[0] and [row[column] for row in rows] != found:  # another column's passages
        n += 1
        column = f"{docs.variable} · {template.name} #{n}"
    for row, value in zip(rows, found):
        row[column] = value
    variables[docs.variable] = column
    return column
