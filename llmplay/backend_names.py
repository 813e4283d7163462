"""The names of the backends that decode a streamed reply, and their checks (``Settings.backend`` /
``Settings.fast_precision``, a request's backend).

A choice is written "transformers" (the reference path), "fast/<precision>" (llmplay's own decoder) or
"onnx/<precision>" (ONNX Runtime GenAI steps); "auto" means the fast path in the configured precision wherever it
runs the model. ``llmplay.engine.backends`` decides and runs them; the
names live here, below both, so that the settings check them without importing the engine.
"""

from __future__ import annotations

from llmplay.errors import LlmplayError

AUTO = "auto"
REFERENCE = "transformers"
FAST = "fast"
PRECISIONS = ("float16", "bfloat16", "float32")  # of the fast decoder's converted weights
ONNX = "onnx"
# of the ONNX export: int8 weights per block of 32 (MatMulNBits), int8 weights and activations with a scale per row
# (integer products: llmplay/engine/onnx_rows.py), float32
ONNX_PRECISIONS = ("int8", "w8a8", "fp32")
CHOICES = (AUTO, REFERENCE, *(f"{FAST}/{p}" for p in PRECISIONS), *(f"{ONNX}/{p}" for p in ONNX_PRECISIONS))


def check_choice(value: str) -> str:
    """``value`` normalised ("fast" means the fast path in the default precision); raises for anything else."""
    text = (value or AUTO).strip().lower()
    if text == FAST:
        return text
    if text not in CHOICES:
        raise LlmplayError(f"backend must be one of {', '.join(CHOICES)} (or 'fast'); got {value!r}.")
    return text


# How evaluation batches decode: transformers in the model's dtype (the reference) or ONNX Runtime's batches (int8
# or fp32 weights, greedy requests); on each, every reply equals that prompt decoded alone on the same path. "auto"
# picks one of the two by which is estimated to finish sooner: once for all of an evaluation run's auto columns
# (llmplay.evaluation.batch_choice), or once per batched call (llmplay.engine.backends ``choose_batch``).
# (The fast decoder's bfloat16 batches were dropped: oneDNN's bfloat16 products change with the number of rows on
# some CPUs, so their replies depended on their batch mates there.)
BATCH_CHOICES = (AUTO, REFERENCE, *(f"{ONNX}/{p}" for p in ONNX_PRECISIONS))


def check_batch_choice(value: str) -> str:
    text = (value or REFERENCE).strip().lower()
    if text not in BATCH_CHOICES:
        raise LlmplayError(f"batch_backend must be one of {', '.join(BATCH_CHOICES)}; got {value!r}.")
    return text


def check_precision(value: str) -> str:
    if value not in PRECISIONS:
        raise LlmplayError(f"fast_precision must be one of {', '.join(PRECISIONS)}; got {value!r}.")
    return value
