"""Inference engine: one provider interface over local transformers models and HTTP endpoints."""

from llmplay.engine.engine import Engine
from llmplay.engine.types import GenerationParams, GenerationRequest, GenerationResult, Message, StreamEvent

__all__ = ["Engine", "GenerationParams", "GenerationRequest", "GenerationResult", "Message", "StreamEvent"]
