"""Passages for retrieval-augmented answers: a list-valued template variable (``contexts`` by default) the body
loops over, given by the row or retrieved from a document set (a template's ``documents`` option).

A row may carry its passages itself: a dataset column holding a JSON list of texts, mapped to a variable declared
with ``default: []`` (``render.fill_values`` reads JSON text for a list-valued variable; an empty cell is the
default). A template with ``documents: {dataset, column, k, query, variable}`` fills that variable, where the row
gave none, with the ``k`` passages of the document set most similar to the row's ``query`` variable (cosine of the
bundled all-MiniLM-L6-v2 embeddings, ``retrieval.nearest``), the most similar first, so the body numbers it [1].

``render.build_messages`` calls ``with_contexts``, so the Templates preview, evaluation runs, Compare and the Arena
all give a row the same passages. The document set is a saved dataset (of the data dir the template library was
opened on: ``use_settings``) or a built-in sample of that name; its texts are read once per content hash and its
vectors computed once per content (``retrieval.cached_vectors``). An unknown dataset, a missing column or an empty
document set is a TemplateError naming what there is.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmplay.errors import short, short_list

if TYPE_CHECKING:
    from llmplay.settings import Settings
    from llmplay.templates.model import Template

DOCUMENTS_FIELDS = ("dataset", "column", "k", "query", "variable")
DEFAULT_VARIABLE = "contexts"
MAX_DOCUMENTS_K = 16

_lock = threading.Lock()
_settings: Settings | None = None
_texts: dict[tuple[str, str, str], tuple[str, ...]] = {}  # (source, content hash, column) -> passages


@dataclass(frozen=True)
class Documents:
    """Retrieved passages: the ``k`` texts of ``dataset``'s ``column`` closest to the row's ``query`` variable,
    put in the list variable ``variable`` (where the row gave no passages of its own)."""

    dataset: str
    column: str = "text"
    k: Any = 3  # as written: template_problems checks it
    query: str | None = None  # None: the variable named "question", else the first required one
    variable: str = DEFAULT_VARIABLE

    def to_dict(self) -> dict:
        data = {"dataset": self.dataset, "column": self.column, "k": self.k}
        if self.query:
            data["query"] = self.query
        if self.variable != DEFAULT_VARIABLE:
            data["variable"] = self.variable
        return data


def use_settings(settings: Settings) -> None:
    """Saved document sets are read from this data dir (``TemplateLibrary.from_settings`` calls it)."""
    global _settings
    _settings = settings


# ---- the template option ------------------------------------------------------------------------------------


def documents_from(raw: Any, problems: list[str]) -> Documents | None:
    """The ``documents`` mapping as Documents (values as given), shape problems added to ``problems``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("'documents' must be a mapping: {dataset: NAME, column: text, k: 3, query: question}")
        return None
    extra = set(raw) - set(DOCUMENTS_FIELDS)
    if extra:
        problems.append(
            f"documents: unknown field(s) {short_list(sorted(map(str, extra)))}; known: {', '.join(DOCUMENTS_FIELDS)}"
        )
    dataset = raw.get("dataset")
    if not isinstance(dataset, str) or not dataset.strip():
        problems.append("documents.dataset is required: the saved dataset (or built-in sample) holding the passages")
        dataset = ""
    texts = {}
    for key, default in (("column", "text"), ("variable", DEFAULT_VARIABLE), ("query", None)):
        value = raw.get(key, default)
        if value is not None and not isinstance(value, str):
            problems.append(f"documents.{key} must be a name; got {short(value)}")
            value = default
        texts[key] = value
    return Documents(dataset.strip(), texts["column"], raw.get("k", 3), texts["query"], texts["variable"])


def documents_problems(template: Template) -> list[str]:
    """What is wrong with a template's ``documents`` option that can be told without reading the data."""
    docs = template.documents
    if docs is None:
        return []
    problems = []
    k = docs.k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_DOCUMENTS_K:
        problems.append(f"documents.k must be a whole number from 1 to {MAX_DOCUMENTS_K}; got {short(k)}")
    declared = {v.name: v for v in template.variables}
    variable = declared.get(docs.variable)
    if variable is None:
        problems.append(
            f"documents.variable {short(docs.variable)} is not declared: declare it under 'variables' with "
            "default: [] (the body loops over it)"
        )
    elif variable.required:
        problems.append(f"variable {short(docs.variable)} holds retrieved passages: give it default: []")
    query = query_variable(template)
    if query is None:
        problems.append("documents.query: name the variable whose value is the search query (e.g. question)")
    elif query not in declared:
        problems.append(f"documents.query {short(query)} is not a declared variable")
    elif query == docs.variable:
        problems.append("documents.query must be another variable than the passages' own")
    return problems


def query_variable(template: Template) -> str | None:
    """The variable holding the question: ``documents.query``, else ``question``, else the first required one
    that is not the passages' variable."""
    if template.documents is not None and template.documents.query:
        return template.documents.query
    names = template.variable_names()
    if "question" in names:
        return "question"
    skip = context_variable(template)
    return next((v.name for v in template.variables if v.required and v.name != skip), None)


def context_variable(template: Template) -> str | None:
    """The list variable holding a row's passages: ``documents.variable``, else a declared ``contexts``."""
    if template.documents is not None:
        return template.documents.variable
    return DEFAULT_VARIABLE if DEFAULT_VARIABLE in template.variable_names() else None


# ---- passages ----------------------------------------------------------------------------------------------------


def passages(value: Any) -> list[str]:
    """A row's passages as a list of texts: a list, JSON text of a list, one plain text, or nothing ([])."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [p if isinstance(p, str) else json.dumps(p, ensure_ascii=False) for p in value if p not in (None, "")]
    text = str(value).strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            parsed = None
        if isinstance(parsed, list):
            return passages(parsed)
    return [text]


def with_contexts(template: Template, filled: Mapping[str, Any]) -> dict[str, Any]:
    """``filled`` (values as ``fill_values`` gives them) with the retrieved passages put in, for a template with
    ``documents`` whose row gave no passages of its own."""
    out = dict(filled)
    docs = template.documents
    if docs is None or passages(out.get(docs.variable)):
        return out
    query = query_variable(template)
    out[docs.variable] = retrieve(template, str(out.get(query) or "") if query else "")
    return out


def retrieve(template: Template, query: str) -> list[str]:
    """The ``documents.k`` passages of the template's document set closest to ``query``, the closest first."""
    from llmplay.templates.model import TemplateError
    from llmplay.templates.retrieval import nearest

    docs = template.documents
    texts = document_texts(docs.dataset, docs.column, template.name)
    if not query.strip():
        raise TemplateError([f"documents: the query variable {query_variable(template)!r} is empty"], template.name)
    return [texts[i] for i in nearest(query, texts, docs.k)]


def document_texts(dataset: str, column: str, source: str = "") -> tuple[str, ...]:
    """The non-empty texts of ``column`` in the saved dataset (else the built-in sample) named ``dataset``."""
    from llmplay.datasets import DatasetError, builtin_datasets, dataset_info, load_builtin, load_dataset
    from llmplay.templates.model import TemplateError

    settings = _settings
    if settings is None:
        from llmplay.settings import Settings

        settings = Settings.from_env()
    info = None
    if settings.db_path.exists():  # never create a database to look a name up
        try:
            info = dataset_info(settings, dataset)
        except DatasetError:
            info = None
    if info is not None:
        key = (str(settings.data_dir), info.content_hash, column)
        with _lock:
            if key in _texts:
                return _texts[key]
        df = load_dataset(settings, dataset).df
    elif dataset in builtin_datasets():
        df = load_builtin(dataset)[0]
        digest = hashlib.sha256(df.to_json(orient="values").encode()).hexdigest()
        key = ("builtin", digest, column)
    else:
        raise TemplateError(
            [
                f"documents.dataset {dataset!r} is neither a saved dataset nor a built-in sample "
                f"(built-in: {', '.join(builtin_datasets())})"
            ],
            source,
        )
    if column not in df.columns:
        raise TemplateError(
            [f"documents.column {column!r} is not in dataset {dataset!r} (columns: {', '.join(map(str, df.columns))})"],
            source,
        )
    texts = tuple(str(v).strip() for v in df[column] if v is not None and str(v).strip())
    if not texts:
        raise TemplateError([f"documents: column {column!r} of dataset {dataset!r} holds no text"], source)
    with _lock:
        _texts[key] = texts
    return texts


def clear_cache() -> None:
    with _lock:
        _texts.clear()
