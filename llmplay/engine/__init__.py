"""Inference engine: one provider interface over local transformers models and HTTP endpoints.

It runs what ``llmplay.models`` resolves and returns results as data (errors included). Must not know the
features that call it (templates, compare, evaluation, feedback, training, the loop) nor the UI.
"""

from llmplay.engine.engine import Engine
from llmplay.engine.types import GenerationParams, GenerationRequest, GenerationResult, Message, StreamEvent

__all__ = ["Engine", "GenerationParams", "GenerationRequest", "GenerationResult", "Message", "StreamEvent"]
