"""A comparison's columns: what each runs (model, adapter, template, decoding) and the request for its next
turn; a column that cannot run carries its error instead."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from llmplay.engine import Engine, GenerationParams, GenerationRequest
from llmplay.errors import LlmplayError
from llmplay.models.catalog import ModelSpec
from llmplay.templates import Template, build_request, request_from_messages

MAX_COLUMNS = 4
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ColumnConfig:
    """What one column runs: a catalog model, optionally a LoRA adapter (local models) and a template."""

    model: str
    params: GenerationParams = field(default_factory=GenerationParams)
    template: str | None = None  # a template's name, or name@v3 for a saved version; None = the free message
    adapter: str | None = None
    dtype: str | None = None  # None = the settings' default
    # The template version the first turn rendered (set when it is rendered), so feedback can name it.
    template_version_id: int | None = None

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "template": self.template,
            "template_version_id": self.template_version_id,
            "adapter": self.adapter,
            "dtype": self.dtype,
            "params": self.params.to_dict(),
        }


@dataclass(frozen=True)
class Column:
    """A column ready to run: its config and the request, or the reason it cannot run (``error``)."""

    config: ColumnConfig
    request: GenerationRequest | None = None
    error: str | None = None
    # The model as resolved when the column was prepared: the lanes, the import guard and the stream use it, so
    # a request consults the catalog once per column (a trained version's lookup is a SQLite read).
    spec: ModelSpec | None = None


def sampled_seed(params: GenerationParams, fresh: bool = False) -> GenerationParams:
    """Sampling gets a concrete seed (a new one when ``fresh``), so every reply can be reproduced from the
    export; greedy decoding needs none."""
    if params.greedy or (params.seed is not None and not fresh):
        return params
    return replace(params, seed=random.randrange(2**31))


def prepare_column(
    engine: Engine,
    config: ColumnConfig,
    history: list[dict] | None = None,
    message: str = "",
    system_message: str = "",
    template: Template | None = None,
    values: dict[str, Any] | None = None,
) -> Column:
    """The request for the column's next turn; problems become the column's error, never an exception.

    With no history, a column with a template sends the rendered template (its system message and examples
    included); one without sends ``system_message`` + ``message``. With history, ``message`` is a follow-up.
    """
    try:
        spec = engine.catalog.get(config.model or "")
        params = sampled_seed(config.params)
        config = replace(config, params=params)
        history = checked_history(history)
        text = (message or "").strip()
        if history or template is None:
            if not text:
                raise LlmplayError("The message is empty: type a message first.")
            head = [] if history or not (system_message or "").strip() else [system(system_message)]
            request = request_from_messages(spec.kind, head + history + [user(message)], params)
            return Column(config, request, spec=spec)
        request, _ = build_request(template, spec.kind, values, params)
        return Column(config, request, spec=spec)
    except LlmplayError as exc:
        return Column(config, error=str(exc))


def prepare_reroll(engine: Engine, config: ColumnConfig, history: list[dict]) -> Column:
    """The column's last turn again: its conversation without the last reply (a fresh seed when sampling)."""
    config = replace(config, params=sampled_seed(config.params, fresh=True))
    try:
        turns = checked_history(history)
        if turns and turns[-1]["role"] == "assistant":
            turns.pop()
        if not turns:
            raise LlmplayError("Nothing to re-roll yet: run a comparison first.")
        spec = engine.catalog.get(config.model or "")
    except LlmplayError as exc:
        return Column(config, error=str(exc))
    return Column(config, request_from_messages(spec.kind, turns, config.params), spec=spec)


def checked_history(history: list[dict] | None) -> list[dict]:
    """A conversation as given by an API caller, checked so a malformed one fails only its own column."""
    turns = list(history or [])
    for turn in turns:
        if not (isinstance(turn, dict) and turn.get("role") in ROLES and isinstance(turn.get("content"), str)):
            raise LlmplayError(
                f"Each history entry must be {{'role': system|user|assistant, 'content': str}}; got {turn!r}."
            )
    return [{"role": t["role"], "content": t["content"]} for t in turns]


def system(text: str) -> dict:
    return {"role": "system", "content": text.strip()}


def user(text: str) -> dict:
    return {"role": "user", "content": text}
