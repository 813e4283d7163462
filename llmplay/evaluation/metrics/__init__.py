"""Metrics as local Hugging Face ``evaluate`` modules (``modules/<name>/<name>.py``) behind a registry.

LLM-as-judge is not a metric module: the run scores it with a judge model (see evaluation/judge.py).

Must not know: the runner, the engine, the UI (a metric scores answers against references, nothing more).
"""

from llmplay.evaluation.metrics.registry import (
    Metric,
    MetricError,
    MetricRegistry,
    MetricResult,
    UnknownMetricError,
    builtin_registry,
    default_registry,
    get_metric,
    list_metrics,
    load_user_metrics,
    register_metric,
)

__all__ = [
    "Metric",
    "MetricError",
    "MetricRegistry",
    "MetricResult",
    "UnknownMetricError",
    "builtin_registry",
    "default_registry",
    "get_metric",
    "list_metrics",
    "load_user_metrics",
    "register_metric",
]
