"""Text helpers shared by every provider, so local and HTTP models format and cut text the same way."""

from __future__ import annotations

from llmplay.engine.tools import with_tools_block
from llmplay.engine.types import GenerationRequest


def base_model_text(request: GenerationRequest) -> str:
    """Text for a base (completion) model: the raw prompt, or the conversation as a plain transcript."""
    if request.messages is None:
        return request.prompt or ""
    messages = with_tools_block(request.as_messages(), request.tools or ())  # a base model reads tools as text
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"


def truncate_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string; return (text, whether a stop string was found)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def stop_holdback(stops: tuple[str, ...]) -> int:
    """Characters to hold back while streaming so a stop string is never shown half-emitted."""
    return max((len(s) for s in stops), default=1) - 1
