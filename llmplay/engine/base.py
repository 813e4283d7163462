"""The provider interface and its registry.

A provider turns requests into results for one model. Kinds of provider (local transformers,
OpenAI-compatible HTTP, ...) register themselves by name; the catalog names the kind per model.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING

from llmplay.engine.types import GenerationRequest, GenerationResult, StreamEvent
from llmplay.errors import InvalidRequestError, UnknownModelError

if TYPE_CHECKING:
    from llmplay.models.catalog import ModelSpec
    from llmplay.settings import Settings


class Provider(ABC):
    """Generates text for one model. Must not raise for a per-row failure: return an error result."""

    def __init__(self, spec: ModelSpec, settings: Settings):
        self.spec = spec
        self.settings = settings

    @abstractmethod
    def generate(
        self, requests: list[GenerationRequest], cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        """One result per request, in order. Once ``cancel`` is set, rows not finished come back with
        ``finish_reason="cancelled"`` (and an error), so a long evaluation stops within a few seconds."""

    @abstractmethod
    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        """Yield text deltas; the last event has done=True and the full result."""

    def check_request(self, request: GenerationRequest) -> None:
        """Validation shared by every provider; raises InvalidRequestError."""
        if request.is_empty():
            raise InvalidRequestError("The prompt is empty: type a message first.")
        if request.text_length() > self.settings.max_input_chars:
            raise InvalidRequestError(
                f"The prompt has {request.text_length():,} characters; the limit is "
                f"{self.settings.max_input_chars:,}. Shorten it or raise LLMPLAY_MAX_INPUT_CHARS."
            )
        texts = [m.content for m in request.messages] if request.messages is not None else [request.prompt or ""]
        if any("\x00" in t for t in texts):
            # No model reads NUL as text, and tools downstream (exports, terminals) may cut a string at one.
            raise InvalidRequestError("The prompt contains a NUL character (\\x00); remove it and send it again.")
        request.params.validate(self.settings.max_new_tokens_limit)

    @staticmethod
    def cancelled_result(model: str) -> GenerationResult:
        result = GenerationResult.failure("Cancelled before this row finished.", model)
        result.finish_reason = "cancelled"
        return result

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, ...)."""


# name -> "module:Class" so that heavy backends (torch) are imported only when used.
_PROVIDERS: dict[str, str] = {
    "local": "llmplay.engine.local:LocalProvider",
    "openai": "llmplay.engine.openai_compat:OpenAICompatProvider",
    "encoder": "llmplay.engine.encoder:EncoderProvider",  # fine-tuned classifiers and taggers
}


def register_provider(name: str, target: str | type[Provider]) -> None:
    """Add a provider kind: ``target`` is a Provider subclass or a lazy "module:Class" string."""
    _PROVIDERS[name] = target  # type: ignore[assignment]


def provider_kinds() -> list[str]:
    return sorted(_PROVIDERS)


def provider_class(name: str) -> type[Provider]:
    try:
        target = _PROVIDERS[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown provider kind {name!r}; known kinds: {', '.join(provider_kinds())}."
        ) from None
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
        _PROVIDERS[name] = target
    return target
