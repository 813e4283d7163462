"""Training defaults that scale with the data: batch size and logging interval, once the rows are known.

``TrainConfig.batch_size`` and ``logging_steps`` default to ``None`` ("scaled"); every trainer calls
``resolve(config, train_rows)`` right after it split its rows, and explicit values (YAML, the form, the loop)
always win. The 500-row defaults are what bench/finetune.py chose: batch 16, 2 epochs (63 steps). A newcomer's
20 rows get batches of 4 (18 train rows: 5 steps an epoch, 10 steps), so the job ends in about a minute on two
cores with a loss point at every step, instead of 4 steps of 16 rows and one logged loss.
"""

from __future__ import annotations

import math
from dataclasses import replace

from llmplay.training.config import TrainConfig

BENCH_BATCH = 16  # bench/finetune.py: 500 FPB rows, shared-prefix batches (more rows per step train faster)
MIN_BATCH = 2
ROWS_PER_BATCH = 4  # batch = the largest power of two up to rows / 4: at least ~4 steps an epoch
CHART_POINTS = 50  # logging_steps: a loss point every step up to 50 steps, then about 50 points in all


def batch_size(train_rows: int) -> int:
    """The scaled batch size for ``train_rows`` rows: 16 from 64 rows up, halving below (never under 2)."""
    target = max(1, int(train_rows)) / ROWS_PER_BATCH
    size = 1 << max(0, int(math.floor(math.log2(target)))) if target >= 1 else 1
    return max(MIN_BATCH, min(BENCH_BATCH, size))


def logging_steps(total_steps: int) -> int:
    """Log every step of a short job (a curve from the first step), about CHART_POINTS points of a long one."""
    return max(1, math.ceil(max(1, int(total_steps)) / CHART_POINTS))


def steps_for(config: TrainConfig, train_rows: int, processes: int = 1) -> int:
    """Optimizer steps of a run with a concrete batch size (max_steps wins), as the Trainer counts them."""
    if config.max_steps and config.max_steps > 0:
        return config.max_steps
    size = config.batch_size or batch_size(train_rows)
    batches = math.ceil(math.ceil(max(1, train_rows) / processes) / size)
    per_epoch = max(1, batches // config.grad_accum)
    return max(1, math.ceil(config.epochs * per_epoch))


def resolve(config: TrainConfig, train_rows: int, processes: int = 1) -> TrainConfig:
    """``config`` with its scaled fields filled in for ``train_rows`` training rows (explicit values kept)."""
    size = config.batch_size or batch_size(train_rows)
    resolved = replace(config, batch_size=size)
    if not config.logging_steps:
        resolved = replace(resolved, logging_steps=logging_steps(steps_for(resolved, train_rows, processes)))
    return resolved


def describe(config: TrainConfig, train_rows: int) -> str:
    """One line for the preview: what the job will run with, and which values were scaled."""
    resolved = resolve(config, train_rows)
    steps = steps_for(resolved, train_rows)
    scaled = [name for name in ("batch_size", "logging_steps") if not getattr(config, name)]
    note = f" ({', '.join(scaled)} scaled to the data)" if scaled else ""
    return (
        f"{train_rows} training rows · batch {resolved.batch_size} · {config.epochs:g} epochs · {steps} steps · "
        f"loss logged every {resolved.logging_steps} step{'s' if resolved.logging_steps > 1 else ''}{note}"
    )
