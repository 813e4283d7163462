"""A scripted fake engine and small helpers the comparison tests share: merging and failure paths in
milliseconds, with no model loaded."""

from __future__ import annotations

import time
from types import SimpleNamespace

from llmplay.compare import (
    Column,
    ColumnConfig,
    stream_columns,
)
from llmplay.engine import GenerationParams, GenerationRequest, GenerationResult, StreamEvent
from llmplay.errors import UnknownModelError
from llmplay.models.catalog import Catalog

GREEDY = GenerationParams(max_new_tokens=24)
STORY = "Write a short story about a robot who learns to paint."


class ScriptedEngine:
    """Streams each model's scripted pieces with a pause between them; records when each piece went out."""

    catalog = Catalog()  # the built-in models only (scripts may use their names)
    settings = SimpleNamespace(dtype="float32")

    def __init__(self, scripts: dict[str, list[str]], pause_s: float = 0.02):
        self.scripts = scripts
        self.pause_s = pause_s
        self.closed: list[str] = []

    def stream(self, model, request, params=None, dtype=None, adapter=None):
        if model not in self.scripts:
            raise UnknownModelError(f"Unknown model {model!r}.")
        return self._events(model)

    def _events(self, model):
        pieces = self.scripts[model]
        try:
            for piece in pieces:
                time.sleep(self.pause_s)
                if piece == "<boom>":
                    raise RuntimeError("kaboom")
                if piece == "<end>":
                    return  # a stream that ends without its done event
                yield StreamEvent(delta=piece)
            text = "".join(pieces)
            yield StreamEvent(done=True, result=GenerationResult(text=text, completion_tokens=len(pieces), model=model))
        finally:
            self.closed.append(model)


def column(model: str) -> Column:
    return Column(ColumnConfig(model, GREEDY), GenerationRequest.of("hi", GREEDY))


def collect(engine, columns) -> tuple[dict[int, str], dict[int, list[StreamEvent]]]:
    texts: dict[int, str] = {}
    done: dict[int, list[StreamEvent]] = {}
    for index, event in stream_columns(engine, columns):
        texts[index] = texts.get(index, "") + event.delta
        if event.done:
            done.setdefault(index, []).append(event)
    return texts, done
