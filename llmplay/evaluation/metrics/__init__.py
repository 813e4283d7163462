"""Metrics as local Hugging Face ``evaluate`` modules (``modules/<name>/<name>.py``) behind a registry.

Semantic similarity and LLM-as-judge are not here yet.
"""

from llmplay.evaluation.metrics.registry import (
    Metric,
    MetricError,
    MetricRegistry,
    MetricResult,
    UnknownMetricError,
    builtin_registry,
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
    "get_metric",
    "list_metrics",
    "load_user_metrics",
    "register_metric",
]
