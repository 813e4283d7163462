"""Rendering a template for one model: variables -> messages -> the engine's own request and prompt text.

The text shown to the user comes from ``llmplay.engine.prompt_text.render_prompt``, the function the local
provider itself uses, on the very request returned here; so a preview is exactly what ``Engine.stream``
or ``Engine.generate`` will send for that request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmplay.engine.text import base_model_text
from llmplay.engine.tools import with_tools_block
from llmplay.engine.types import GenerationParams, GenerationRequest
from llmplay.errors import LlmplayError, short
from llmplay.models.catalog import ModelSpec
from llmplay.templates.contexts import with_contexts
from llmplay.templates.conversation import TURN_VARIABLE, Exchange, read_script
from llmplay.templates.model import Template, TemplateError, validate_template
from llmplay.templates.retrieval import select_examples
from llmplay.templates.sandbox import BoundedSandbox, TemplateRenderError, shared_sandbox


@dataclass
class RenderedPrompt:
    model: str
    # Exactly what the model receives (its chat template applied for chat models). For an endpoint
    # this is a readable transcript: the server applies its own chat template.
    text: str
    messages: list[dict]
    # What to pass to Engine.stream / Engine.generate (messages for chat models, a prompt for base models).
    request: GenerationRequest
    token_count: int | None = None  # None for endpoints: their tokenizer is not available here
    context_length: int | None = None
    warnings: list[str] = field(default_factory=list)


def fill_values(template: Template, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults plus the given values; None counts as not given. Raises TemplateError on unknown or missing ones.

    A text value for a variable whose default is a list or mapping is read as JSON (forms and the CLI give text).
    """
    given = {k: v for k, v in (values or {}).items() if v is not None}
    declared = {v.name: v for v in template.variables}
    known = ", ".join(declared) or "none"
    unknown = [k for k in given if k not in declared]
    problems = [f"unknown variable {short(k)} (declared: {known})" for k in unknown[:5]]
    if len(unknown) > 5:
        problems.append(f"and {len(unknown) - 5} more unknown variables")
    filled = template.defaults()
    for name, value in given.items():
        var = declared.get(name)
        if var is not None and isinstance(var.default, list | dict) and isinstance(value, str) and not value.strip():
            continue  # an empty cell (a row without passages of its own): the default
        if var is not None and isinstance(var.default, list | dict) and isinstance(value, str):
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError):  # "[[[[..." nests past Python's stack
                problems.append(
                    f"variable {short(name)} expects a JSON {type(var.default).__name__}; got {short(value)}"
                )
                continue
        filled[name] = value
    missing = [v.name for v in template.variables if v.required and v.name not in filled]
    if missing:
        problems.append(f"missing value for required variable(s): {', '.join(missing)}")
    if problems:
        raise TemplateError(problems, template.name)
    return filled


def build_messages(template: Template, values: Mapping[str, Any] | None = None) -> list[dict]:
    """System message, then each few-shot example as a user/assistant pair, then the user turn.

    The examples are the template's fixed ``examples``, then, for a template with ``retrieve``, the pool rows
    most similar to this row (``retrieval.select_examples``: the most similar last)."""
    validate_template(template)
    filled = with_contexts(template, fill_values(template, values))  # a template's retrieved passages (contexts.py)
    if template.conversation is not None:  # a preview of the last turn, after the script's replies
        exchanges = read_script(filled[template.conversation.messages])
        last = len(exchanges) - 1
        return turn_messages(template, filled, exchanges, [e.reply or "…" for e in exchanges[:last]], last)
    sandbox = shared_sandbox()
    messages = []
    if template.system:
        messages.append({"role": "system", "content": _render(sandbox, template.system, filled, "system")})
    shots = [(f"example #{i}", e) for i, e in enumerate(template.examples, 1)]
    if template.retrieve is not None:
        pool = {id(e): i for i, e in enumerate(template.retrieve.pool, 1)}
        shots += [(f"retrieve.pool row #{pool[id(e)]}", e) for e in select_examples(template, filled)]
    for where, example in shots:
        shot = fill_values(template, example.values)
        messages.append({"role": "user", "content": _render(sandbox, template.body, shot, where)})
        messages.append({"role": "assistant", "content": example.output})
    messages.append({"role": "user", "content": _render(sandbox, template.body, filled, "body")})
    return messages


def turn_messages(
    template: Template, filled: Mapping[str, Any], exchanges: list[Exchange], replies: list[str], upto: int
) -> list[dict]:
    """What the model sees at turn ``upto`` of a conversation: the system message, each earlier user turn
    (through the body, its text as ``{{ turn }}``) with ``replies[k]`` after it, then turn ``upto``."""
    sandbox = shared_sandbox()
    messages = []
    if template.system:
        messages.append({"role": "system", "content": _render(sandbox, template.system, dict(filled), "system")})
    for k, exchange in enumerate(exchanges[: upto + 1]):
        values = {**filled, TURN_VARIABLE: exchange.user}
        messages.append({"role": "user", "content": _render(sandbox, template.body, values, f"turn {k + 1}")})
        if k < upto:
            messages.append({"role": "assistant", "content": replies[k]})
    return messages


def base_model_prompt(messages: list[dict]) -> str:
    """One plain text for a base model: blocks separated by a blank line, each example's answer on the
    line after its rendered body, ending where the model should write the answer."""
    blocks, pending = [], None
    for m in messages:
        if m["role"] == "system":
            blocks.append(m["content"])
        elif m["role"] == "user":
            pending = m["content"]
        else:
            blocks.append(f"{pending}\n{m['content']}")
            pending = None
    blocks.append(f"{pending}\n")
    return "\n\n".join(blocks)


def build_request(
    template: Template, kind: str, values: Mapping[str, Any] | None = None, params: GenerationParams | None = None
) -> tuple[GenerationRequest, list[dict]]:
    """The request the engine generates from: chat messages for chat models, one prompt for base models."""
    messages = build_messages(template, values)
    if kind == "chat":  # a template's tools travel with the request (engine/tools.py: how each model gets them)
        return GenerationRequest.of(messages, params, tools=template.tools or None), messages
    if kind == "base":
        return GenerationRequest.of(base_model_prompt(with_tools_block(messages, template.tools)), params), messages
    if kind in ("classifier", "tagger"):  # fine-tuned encoders read the text itself, not the instruction
        return GenerationRequest.of(encoder_text(template, values), params), messages
    raise LlmplayError(f"Templates render for chat and base models; this model's kind is {kind!r}.")


def encoder_text(template: Template, values: Mapping[str, Any] | None = None) -> str:
    """What a classifier / tagger reads for a row: the ``text`` variable, else the first required one."""
    filled = fill_values(template, values)
    names = [v.name for v in template.variables]
    name = "text" if "text" in names else next((v.name for v in template.variables if v.required), None)
    if name is None:
        raise LlmplayError(f"Template {template.name!r} has no text variable for a classifier or tagger to read.")
    return str(filled[name])


def render_for_model(
    engine,
    template: Template,
    model: str | ModelSpec,
    values: Mapping[str, Any] | None = None,
    params: GenerationParams | None = None,
) -> RenderedPrompt:
    """Render ``template`` for ``model`` (a catalog name, or the spec the caller resolved): exact text, token
    count and warnings.

    Raises TemplateError (invalid template, bad values), TemplateRenderError (sandbox) or LlmplayError
    (unknown model, model fails to load).
    """
    spec = model if isinstance(model, ModelSpec) else engine.catalog.get(model)
    params = params or GenerationParams()
    request, messages = build_request(template, spec.kind, values, params)
    warnings = []
    if spec.kind in ("classifier", "tagger"):
        warnings.append(f"{spec.name} is a fine-tuned {spec.kind}: it reads only the text, not the instruction.")
        return RenderedPrompt(spec.name, request.prompt or "", messages, request, warnings=warnings)
    if spec.source == "endpoint":
        warnings.append("Endpoint models apply their own chat template on the server; shown as a transcript.")
        return RenderedPrompt(spec.name, base_model_text(request), messages, request, warnings=warnings)

    from llmplay.engine.prompt_text import encode_prompt, render_prompt

    loaded = engine.models.get(spec)
    text = render_prompt(loaded, request)
    tokens = len(encode_prompt(loaded, text))
    context = loaded.context_length
    if tokens > context:
        warnings.append(f"The prompt is {tokens:,} tokens, more than {spec.name}'s context of {context:,} tokens.")
    elif tokens + params.max_new_tokens > context:
        warnings.append(
            f"The prompt is {tokens:,} tokens; with max_new_tokens={params.max_new_tokens} it exceeds "
            f"{spec.name}'s context of {context:,} tokens, so generation will be refused. "
            "Shorten the prompt or lower max_new_tokens."
        )
    limit = engine.settings.max_input_chars
    if request.text_length() > limit:
        warnings.append(f"The prompt has {request.text_length():,} characters; the engine accepts at most {limit:,}.")
    return RenderedPrompt(spec.name, text, messages, request, tokens, context, warnings)


def _render(sandbox: BoundedSandbox, source: str, values: dict[str, Any], where: str) -> str:
    try:
        return sandbox.render(source, values)
    except TemplateRenderError as exc:
        raise TemplateRenderError(f"{where}: {exc}") from None


def request_from_messages(kind: str, messages: list[dict], params: GenerationParams) -> GenerationRequest:
    """A base model given one user turn continues it as raw text; anything longer is a conversation."""
    if kind == "base" and len(messages) == 1 and messages[0]["role"] == "user":
        return GenerationRequest(prompt=messages[0]["content"], params=params)
    return GenerationRequest.of(messages, params)
