"""The exact text and token ids a local model receives for a request (chat template or raw text), one rule for
generation, likelihood scoring, training data and the prompts the UI shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmplay.engine.text import base_model_text
from llmplay.engine.tools import with_tools_block
from llmplay.engine.types import GenerationRequest

if TYPE_CHECKING:
    from llmplay.models.loader import LoadedModel


def render_prompt(loaded: LoadedModel, request: GenerationRequest) -> str:
    """The exact text the model receives: chat template for chat models, raw text for base models."""
    if loaded.spec.kind == "chat":
        messages, render = request.as_messages(), loaded.tokenizer.apply_chat_template
        if request.tools:
            # The chat template's own tools support when it has one; a template that ignores them renders the same
            # text with and without, and gets the tools described in its system message instead (engine/tools.py).
            try:
                text = render(messages, tools=list(request.tools), add_generation_prompt=True, tokenize=False)
            except Exception:  # a chat template that fails on tools (jinja raising on their shape): the block
                text = None
            if text is not None and text != render(messages, add_generation_prompt=True, tokenize=False):
                return text
            messages = with_tools_block(messages, request.tools)
        return render(messages, add_generation_prompt=True, tokenize=False)
    return base_model_text(request)


def encode_prompt(loaded: LoadedModel, text: str) -> list[int]:
    # Chat templates already contain any BOS token; base text needs the tokenizer's special tokens.
    add_special = loaded.spec.kind != "chat"
    return loaded.tokenizer(text, add_special_tokens=add_special)["input_ids"]


def soft_prompt(loaded: LoadedModel) -> bool:
    """A prompt-tuning adapter: peft prepends its virtual tokens on every forward pass, so cached prefixes
    computed without them (shared batch prefixes, likelihood scoring) do not apply."""
    config = getattr(loaded.model, "active_peft_config", None)
    return bool(config is not None and config.is_prompt_learning)
