"""Playing conversation rows in an evaluation run (templates/conversation.py says what a conversation row is).

Each cell is one whole conversation. With ``replies: own`` the cells of a chunk advance together, one turn per
batched ``Engine.generate`` call: turn k of every conversation still going, each after its own earlier replies.
With ``replies: scripted`` every turn follows the script's history, so all turns of all cells go in one batch.
The cell's output is the transcript (what the grid shows); its details keep the replies turn by turn, which the
cell's answer (a JSON list) carries to the turn metrics (evaluation/turn_checks.py).
"""

from __future__ import annotations

import json
import threading

from llmplay.engine.base import Provider
from llmplay.engine.engine import Engine
from llmplay.engine.types import GenerationRequest, GenerationResult
from llmplay.errors import LlmplayError
from llmplay.evaluation.plan import Cell, PlannedColumn
from llmplay.templates.conversation import Exchange, read_script, scripted_replies, transcript
from llmplay.templates.render import base_model_prompt, fill_values, turn_messages


def answer_of(details: dict | None) -> str | None:
    """A conversation cell's answer: its replies as a JSON list (None when the output has none)."""
    turns = (details or {}).get("turns")
    return json.dumps(turns, ensure_ascii=False) if isinstance(turns, list) else None


def play(
    engine: Engine, column: PlannedColumn, cells: list[Cell], cancel: threading.Event
) -> list[tuple[GenerationResult, dict | None]]:
    """One (result, details) per cell, as ``EvalRunner._generate`` returns them."""
    template, cfg = column.template, column.config
    assert template.conversation is not None
    scripts: list[list[Exchange]] = []
    for cell in cells:
        try:
            scripts.append(read_script(fill_values(template, cell.values)[template.conversation.messages]))
        except LlmplayError as exc:  # rendered once already (_prepare_cells): kept for safety
            scripts.append([])
            cell.error = str(exc)
    replies: list[list[str]] = [[] for _ in cells]
    spent = [GenerationResult(model=cfg.model) for _ in cells]  # token and time totals per conversation
    failed: dict[int, GenerationResult] = {}
    backend = cells[0].backend if cells else None  # chosen once for the column, from its first turns

    def generate(requests: list[GenerationRequest]) -> list[GenerationResult]:
        return engine.generate(
            cfg.model, requests, dtype=cfg.dtype, adapter=cfg.adapter, cancel=cancel, batch_backend=backend
        )

    def request(i: int, upto: int, history: list[str]) -> GenerationRequest:
        messages = turn_messages(template, fill_values(template, cells[i].values), scripts[i], history, upto)
        if column.spec.kind == "base":
            return GenerationRequest.of(base_model_prompt(messages), cfg.params)
        return GenerationRequest.of(messages, cfg.params)

    def take(i: int, turn: int, result: GenerationResult) -> None:
        if not result.ok or result.finish_reason == "cancelled":
            failed.setdefault(i, result)
            return
        total = spent[i]
        total.prompt_tokens += result.prompt_tokens
        total.completion_tokens += result.completion_tokens
        total.latency_s += result.latency_s
        total.finish_reason, total.backend = result.finish_reason, result.backend
        while len(replies[i]) <= turn:
            replies[i].append("")
        replies[i][turn] = result.text

    if template.conversation.replies == "scripted":
        work = []
        for i, script in enumerate(scripts):
            for turn in range(len(script)):
                try:
                    work.append((i, turn, request(i, turn, scripted_replies(script, turn))))
                except LlmplayError as exc:
                    failed.setdefault(i, GenerationResult.failure(str(exc), cfg.model, 0.0))
                    break
        work = [w for w in work if w[0] not in failed]
        results = generate([w[2] for w in work])
        for (i, turn, _), result in zip(work, results):
            take(i, turn, result)
    else:
        for turn in range(max((len(s) for s in scripts), default=0)):
            going = [i for i, s in enumerate(scripts) if turn < len(s) and i not in failed]
            if not going or cancel.is_set():
                break
            batch = [request(i, turn, replies[i]) for i in going]
            results = generate(batch)
            for i, result in zip(going, results):
                take(i, turn, result)

    out: list[tuple[GenerationResult, dict | None]] = []
    for i, cell in enumerate(cells):
        result = failed.get(i)
        if (
            cancel.is_set()
            and (result is None or result.finish_reason == "cancelled")
            and len(replies[i]) < len(scripts[i])
        ):
            out.append((Provider.cancelled_result(cfg.model), None))
        elif cell.error is not None:
            out.append((GenerationResult.failure(cell.error, cfg.model, 0.0), None))
        elif result is not None:
            turn = len(replies[i]) + 1
            out.append((GenerationResult.failure(f"turn {turn}: {result.error}", cfg.model, result.latency_s), None))
        else:
            total = spent[i]
            total.text = transcript(scripts[i], replies[i])
            out.append((total, {"turns": replies[i]}))
    return out
