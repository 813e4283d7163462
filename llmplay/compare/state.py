"""Folding the columns' events into per-column state: text so far, loading stage, timings, result."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from llmplay.compare.columns import Column
from llmplay.compare.parallel import lanes, stream_columns
from llmplay.engine import Engine, GenerationRequest, GenerationResult, StreamEvent
from llmplay.pacing import EVERY_S, Pacer


@dataclass
class ColumnRun:
    """One column's progress: the text so far, the loading stage, and the final result."""

    column: Column
    history: list[dict] = field(default_factory=list)  # the conversation before this turn
    text: str = ""
    loading: str = ""
    result: GenerationResult | None = None
    first_text_s: float | None = None  # seconds from the comparison's start; shows the columns' overlap
    finished_s: float | None = None
    waits_for: int | None = None  # the column (1-based) on the same local model that goes first

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def error(self) -> str | None:
        return self.result.error if self.result is not None else None

    @property
    def state(self) -> str:
        if self.result is not None:
            return "error" if self.result.error else "done"
        return "loading" if self.loading and not self.text else ("generating" if self.text else "waiting")

    def conversation(self) -> list[dict]:
        """The conversation as it stands: a failed turn leaves it unchanged, so nothing half-done is kept."""
        if self.error or self.column.request is None:
            return list(self.history)
        text = self.result.text if self.result is not None else self.text
        return self.column.request.as_messages() + [{"role": "assistant", "content": text}]

    def to_dict(self, number: int) -> dict:
        result = self.result
        return {
            "column": number,
            "model": self.column.config.model,
            "config": self.column.config.to_dict(),
            "state": self.state,
            "loading": self.loading,
            "text": result.text if result is not None and result.ok else self.text,
            "error": self.error,
            "ttft_s": _round(result.time_to_first_token_s) if result else None,
            "tok_s": round(result.tokens_per_s, 2) if result and result.ok else None,
            "backend": result.backend if result and result.ok else None,
            "tokens": result.completion_tokens if result else None,
            "finish_reason": result.finish_reason if result else None,
            "result": result.to_dict() if result else None,
            "waits_for": self.waits_for,
            "first_text_s": _round(self.first_text_s),
            "finished_s": _round(self.finished_s),
            "request": _request_dict(self.column.request),
            "history": self.conversation(),
        }


class Comparison:
    """Merges the columns' events into per-column state; ``snapshot()`` is the plain-data view of it."""

    def __init__(self, columns: Sequence[Column], histories: Sequence[list[dict]] | None = None, inputs=None):
        histories = list(histories or [])
        self.runs = [ColumnRun(c, list(histories[i]) if i < len(histories) else []) for i, c in enumerate(columns)]
        self.inputs: dict = dict(inputs or {})
        self.started = time.perf_counter()
        self.wall_s: float | None = None

    @property
    def done(self) -> bool:
        return all(run.done for run in self.runs)

    def apply(self, index: int, event: StreamEvent) -> None:
        run = self.runs[index]
        now = time.perf_counter() - self.started
        if event.status:
            run.loading = event.status
        if event.delta:
            run.first_text_s = run.first_text_s if run.first_text_s is not None else now
            run.text += event.delta
        if event.done:
            run.result = event.result or GenerationResult.failure("The reply ended without a result.")
            run.finished_s = now
            if self.done:
                self.wall_s = now

    def stream(self, engine: Engine, every_s: float = EVERY_S) -> Iterator[Comparison]:
        """Run all columns, yielding self at most every ``every_s`` seconds while text arrives, at every
        loading stage and finished column, and once at the end."""
        columns = [run.column for run in self.runs]
        plan = lanes(engine, columns)
        for lane in plan:
            for before, index in zip(lane, lane[1:]):
                self.runs[index].waits_for = before + 1
        pacer = Pacer(every_s)
        with closing(stream_columns(engine, columns, plan)) as events:
            for index, event in events:
                self.apply(index, event)
                if pacer.due() or event.done or event.status:
                    yield self

    def run(self, engine: Engine) -> Comparison:
        for _ in self.stream(engine, every_s=float("inf")):
            pass
        return self

    def snapshot(self) -> dict:
        return {
            "input": self.inputs,
            "columns": [run.to_dict(i + 1) for i, run in enumerate(self.runs)],
            "done": self.done,
            "wall_s": _round(self.wall_s),
        }


def run_columns(engine: Engine, columns: Sequence[Column]) -> list[GenerationResult]:
    """Run the columns in parallel and return their final results, in column order."""
    comparison = Comparison(columns).run(engine)
    return [run.result for run in comparison.runs if run.result is not None]


def _request_dict(request: GenerationRequest | None) -> dict | None:
    if request is None:
        return None
    if request.messages is None:
        return {"prompt": request.prompt}
    return {"messages": request.as_messages()}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
