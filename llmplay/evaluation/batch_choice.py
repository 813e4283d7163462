"""What decodes each column of an evaluation run, chosen once before any row runs (``Settings.batch_backend``,
a column's ``backend``; llmplay.engine.backends has the backends and their measured rates).

Every column left on "auto" decodes on one backend, so a run's columns compare like with like: ONNX Runtime int8
(backends.BATCH_ONNX) when each of them can decode on it and all together are estimated to finish sooner there (short
prompts, long answers), transformers otherwise (few-shot prompts whose shared prefix transformers computes once; a
constrained, sampled or likelihood column; a model ONNX batches do not serve). A column that names a backend (or a
setting other than "auto") gets that one where it applies. Likelihood columns are scored by transformers; endpoints
decode their own way. The choice is part of each cell's cache key.
"""

from __future__ import annotations

from collections.abc import Callable

from llmplay.backend_names import AUTO, REFERENCE
from llmplay.engine import backends
from llmplay.engine.engine import Engine
from llmplay.engine.types import GenerationRequest
from llmplay.evaluation.plan import Plan, PlannedColumn

LABEL_TOKENS = 16  # new tokens a label answer is expected to take, however many are allowed


def choose(
    engine: Engine,
    default: str,
    plan: Plan,
    requests_of: Callable[[PlannedColumn], list[GenerationRequest]],
) -> dict[int, str]:
    """Column index -> "transformers" or "onnx/<precision>". ``default``: the settings' batch_backend;
    ``requests_of``: a column's rendered requests (rows that fail to render left out)."""
    chosen: dict[int, str] = {}
    auto: list[tuple[PlannedColumn, list[GenerationRequest]]] = []
    for column in plan.columns:
        if column.mode == "likelihood" or column.spec.provider != "local":
            chosen[column.index] = REFERENCE
            continue
        cfg = column.config
        requests = requests_of(column)
        choice = cfg.backend or default
        if not requests:
            chosen[column.index] = REFERENCE
        elif choice != AUTO:
            chosen[column.index] = engine.batch_backend(column.spec, requests, choice, cfg.dtype, cfg.adapter)
        else:
            auto.append((column, requests))
    if not auto:
        return chosen
    estimates = [
        engine.batch_estimates(
            c.spec,
            requests,
            c.config.dtype,
            c.config.adapter,
            new_tokens=LABEL_TOKENS if c.template.output.labels else None,
        )
        for c, requests in auto
    ]
    pick = backends.choose_for_all(estimates)
    if pick != REFERENCE and not all(
        engine.ready_for_batches(c.spec, pick, c.config.dtype, c.config.adapter) for c, _ in auto
    ):
        pick = REFERENCE  # an export failed: every auto column on transformers
    for column, _ in auto:
        chosen[column.index] = pick
    return chosen
