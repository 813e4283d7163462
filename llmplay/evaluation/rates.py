"""How fast evaluation runs on this machine: measured seconds per cell for each model and mode, a run's
estimate from them, and the per-row share of a batch's time.

- ``record`` / ``seconds_per_cell``: the runner stores each chunk's measured seconds per generated cell under
  (model, mode, dtype), a moving average in ``<data_dir>/evaluation/rates.json`` (one small JSON file, rewritten
  whole; only the latest figures matter). The Evaluate form uses them to say how long a run will take before it
  starts, and the runner for its first estimate and for sizing its chunks.
- ``row_latencies``: the engine generates a batch at once and gives every row the batch's wall time; a row's
  latency is its share of that time (the batch's seconds over its rows), so a column's mean latency is the
  time a row costs, not the batch's time repeated on every row.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from llmplay.atomicfile import atomic_write

WEIGHT = 0.3  # moving average: the newest chunk's weight
LONG_S = 60.0  # the form warns before a run estimated to take longer than this


def rates_file(data_dir: Path | str) -> Path:
    return Path(data_dir) / "evaluation" / "rates.json"


def key(model: str, mode: str, dtype: str | None) -> str:
    return f"{model}|{mode}|{dtype or ''}"


def _load(data_dir) -> dict:
    try:
        value = json.loads(rates_file(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def record(data_dir, model: str, mode: str, dtype: str | None, seconds: float, cells: int) -> None:
    """Fold one measured chunk (``cells`` generated in ``seconds``) into the stored rate; never raises."""
    if cells <= 0 or seconds <= 0 or not math.isfinite(seconds):
        return
    rates = _load(data_dir)
    name = key(model, mode, dtype)
    measured = seconds / cells
    old = rates.get(name) or {}
    previous = old.get("s_per_cell")
    value = measured if not previous else (1 - WEIGHT) * float(previous) + WEIGHT * measured
    rates[name] = {"s_per_cell": round(value, 4), "cells": int(old.get("cells", 0)) + cells}
    try:
        path = rates_file(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(rates, indent=1, sort_keys=True))
    except OSError:
        pass


def seconds_per_cell(data_dir, model: str, mode: str, dtype: str | None) -> float | None:
    """The measured seconds per cell of ``model`` in ``mode`` on this machine, or None if never measured."""
    entry = _load(data_dir).get(key(model, mode, dtype)) or {}
    value = entry.get("s_per_cell")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def estimate(data_dir, columns: Sequence[tuple[str, str, str | None]], rows: int) -> tuple[float, list[str]]:
    """(seconds for ``rows`` rows of every (model, mode, dtype) column measured before, the columns never
    measured as ``model (mode)``). Cached cells make a rerun faster than this."""
    total, unknown = 0.0, []
    for model, mode, dtype in columns:
        rate = seconds_per_cell(data_dir, model, mode, dtype)
        if rate is None:
            unknown.append(f"{model} ({mode})")
        else:
            total += rate * rows
    return total, unknown


def row_latencies(latencies: Sequence[float]) -> list[float]:
    """Each row's share of its batch's time: rows of one batch carry the same wall time (the engine times the
    batch), so a latency shared by k rows of a chunk is split k ways. Rows timed alone keep their own."""
    counts = Counter(latencies)
    return [value / counts[value] if value > 0 else value for value in latencies]
