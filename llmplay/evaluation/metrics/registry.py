"""A registry of metrics, each a local Hugging Face ``evaluate`` module loaded lazily by path.

``evaluate.load(path)`` with a path to a ``.py`` file copies it into the dynamic-modules cache and imports
it; it never contacts the Hub for a local file (the Hub is only tried for bare names like ``"bleu"``).
We always pass absolute file paths, so loading works offline. Modules import on first use only:
sacrebleu, rouge-score and seqeval stay unloaded until a run asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmplay.errors import LlmplayError
from llmplay.evaluation.metrics import scoring
from llmplay.evaluation.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Interval, bootstrap_mean, bootstrap_metric

MODULES_DIR = Path(__file__).parent / "modules"


class UnknownMetricError(LlmplayError):
    pass


class MetricError(LlmplayError):
    """A metric could not be loaded or computed (bad module, bad inputs)."""


@dataclass
class MetricResult:
    name: str
    score: float
    # Per-row scores (None when the metric has none, e.g. entity F1).
    per_row: list[float] | None = None
    # True when score == mean(per_row), so its interval can bootstrap the rows directly.
    row_mean: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # e.g. unparseable count, per-class F1, failures

    @classmethod
    def from_output(cls, name: str, output: dict[str, Any]) -> MetricResult:
        """Accept llmplay's convention ({"score", "per_row", "row_mean", ...}) or any evaluate-style dict
        with a single number (so a user module may return e.g. {"accuracy": 0.9})."""
        output = dict(output)
        if "score" not in output:
            numbers = [k for k, v in output.items() if isinstance(v, int | float) and not isinstance(v, bool)]
            if len(numbers) != 1:
                raise MetricError(
                    f"metric '{name}' returned {sorted(output)}: add a 'score' key to say which is the score"
                )
            output["score"] = output.pop(numbers[0])
        per_row = output.pop("per_row", None)
        return cls(
            name=name,
            score=float(output.pop("score")),
            per_row=[float(x) for x in per_row] if per_row is not None else None,
            row_mean=bool(output.pop("row_mean", False)),
            details=output,
        )


@dataclass(frozen=True)
class MetricSpec:
    name: str
    path: Path  # the module's .py file
    defaults: dict[str, Any] = field(default_factory=dict)  # keyword arguments preset for this name
    builtin: bool = True


class Metric:
    """A registered metric; the ``evaluate`` module is loaded on the first compute."""

    def __init__(self, spec: MetricSpec):
        self.spec = spec
        self._module = None

    @property
    def name(self) -> str:
        return self.spec.name

    def _load(self):
        if self._module is None:
            import evaluate  # heavy (datasets, pyarrow): only when a metric is actually computed

            try:
                # keep_in_memory: no Arrow cache files per compute under ~/.cache.
                self._module = evaluate.load(str(self.spec.path.resolve()), keep_in_memory=True)
            except Exception as exc:
                raise MetricError(f"could not load metric '{self.name}' from {self.spec.path}: {exc}") from exc
        return self._module

    def compute(self, predictions: Sequence[Any], references: Sequence[Any] | None = None, **kwargs) -> MetricResult:
        predictions = scoring.encode(list(predictions))
        if not predictions:
            raise MetricError(f"metric '{self.name}': nothing to score (0 rows)")
        # Reference-free metrics (assertions with value=) still need the column evaluate declares.
        references = [""] * len(predictions) if references is None else list(references)
        # Numbers (e.g. math answers read from a numeric column) travel as text to evaluate's string features.
        references = [str(r) if isinstance(r, int | float) and not isinstance(r, bool) else r for r in references]
        if len(references) != len(predictions):
            raise MetricError(f"metric '{self.name}': {len(predictions)} predictions but {len(references)} references")
        try:
            output = self._load().compute(
                predictions=predictions, references=references, **{**self.spec.defaults, **kwargs}
            )
        except LlmplayError:
            raise
        except Exception as exc:
            raise MetricError(f"metric '{self.name}' failed: {exc}") from exc
        return MetricResult.from_output(self.name, output)

    def interval(
        self,
        predictions: Sequence[Any],
        references: Sequence[Any] | None = None,
        resamples: int = DEFAULT_RESAMPLES,
        seed: int = DEFAULT_SEED,
        **kwargs,
    ) -> tuple[MetricResult, Interval]:
        """The result and its 95% bootstrap interval: rows resampled directly for row means, otherwise the
        metric is recomputed on each resample (slower: keep ``resamples`` modest for corpus metrics)."""
        result = self.compute(predictions, references, **kwargs)
        if result.row_mean and result.per_row is not None:
            return result, bootstrap_mean(result.per_row, resamples=resamples, seed=seed)
        preds = scoring.encode(list(predictions))
        refs = [""] * len(preds) if references is None else list(references)
        refs = [str(r) if isinstance(r, int | float) and not isinstance(r, bool) else r for r in refs]
        module, arguments = self._load(), {**self.spec.defaults, **kwargs}

        def recompute(idx: np.ndarray) -> float:
            # The module's own _compute on each resample: the same numbers as compute(), without evaluate's
            # Arrow round trip per call (which made 1,000 resamples of a corpus metric take seconds).
            subset = module._compute(
                predictions=[preds[i] for i in idx], references=[refs[i] for i in idx], **arguments
            )
            return MetricResult.from_output(self.name, subset).score

        return result, bootstrap_metric(recompute, len(preds), resamples=resamples, seed=seed)


class MetricRegistry:
    def __init__(self):
        self._specs: dict[str, MetricSpec] = {}
        self._metrics: dict[str, Metric] = {}

    def register(self, name: str, path: str | Path, builtin: bool = False, **defaults) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / f"{path.name}.py"  # evaluate's layout: <name>/<name>.py
        if not path.is_file():
            raise MetricError(f"metric '{name}': no module file at {path}")
        self._specs[name] = MetricSpec(name, path, dict(defaults), builtin)
        self._metrics.pop(name, None)

    def get(self, name: str) -> Metric:
        if name not in self._specs:
            raise UnknownMetricError(f"unknown metric '{name}'; known metrics: {', '.join(self.names())}")
        if name not in self._metrics:
            self._metrics[name] = Metric(self._specs[name])
        return self._metrics[name]

    def names(self) -> list[str]:
        return sorted(self._specs)

    def load_folder(self, folder: str | Path) -> list[str]:
        """Register every user metric dropped into a folder: ``name.py`` or ``name/name.py``.
        A user metric may replace a built-in of the same name on purpose; returns the names found."""
        folder = Path(folder)
        if not folder.is_dir():
            return []
        found = []
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(("_", ".")):
                continue
            if entry.suffix == ".py" and entry.is_file():
                self.register(entry.stem, entry)
            elif entry.is_dir() and (entry / f"{entry.name}.py").is_file():
                self.register(entry.name, entry)
            else:
                continue
            found.append(entry.stem)
        return found


def builtin_registry() -> MetricRegistry:
    registry = MetricRegistry()
    modules = {
        "exact_match": "exact_match",
        "accuracy": "accuracy",
        "macro_f1": "macro_f1",
        "seqeval": "entity_f1",
        "bleu": "bleu",
        "chrf": "chrf",
        "rouge": "rouge",
        "numeric_match": "numeric_match",
        "assertions": "assertions",
        "semantic_similarity": "semantic_similarity",
        # structured output (evaluation/structured.py); valid_json below is the "parses as JSON" check
        "schema_valid": "schema_valid",
        "field_match": "field_match",
        "field_f1": "field_f1",
        # retrieval-augmented answers (evaluation/rag.py): against each row's passages
        "faithfulness": "faithfulness",
        "answer_relevance": "answer_relevance",
        "context_recall": "context_recall",
        # conversations (evaluation/turn_checks.py): each assistant turn against the script's expect
        "turn_pass": "turn_pass",
        "conversation_pass": "conversation_pass",
        # tool calls (evaluation/toolcalls.py)
        "tool_called": "tool_called",
        "tool_args_valid": "tool_args_valid",
        "tool_args_match": "tool_args_match",
        "tool_no_call": "tool_no_call",
        # red team (evaluation/attacks.py): 1 where the row's attack worked; lower is better
        "attack_success": "attack_success",
    }
    for name, module in modules.items():
        registry.register(name, MODULES_DIR / module, builtin=True)
    for name, report in {"entity_f1": "f1", "entity_precision": "precision", "entity_recall": "recall"}.items():
        registry.register(name, MODULES_DIR / "entity_f1", builtin=True, report=report)
    # Assertion shortcuts, so a template can list e.g. metrics: [valid_json].
    for name, check in {
        "contains": "contains",
        "regex": "regex",
        "valid_json": "json",
        "json_schema": "json_schema",
        "length": "length",
    }.items():
        registry.register(name, MODULES_DIR / "assertions", builtin=True, check=check)
    return registry


# The process-wide default; tests and apps that need isolation build their own with builtin_registry().
_default = builtin_registry()


def register_metric(name: str, path: str | Path, **defaults) -> None:
    _default.register(name, path, **defaults)


def get_metric(name: str) -> Metric:
    return _default.get(name)


def list_metrics() -> list[str]:
    return _default.names()


def load_user_metrics(folder: str | Path) -> list[str]:
    """Register the metrics in ``folder`` (e.g. ``<data_dir>/metrics``) with the default registry."""
    return _default.load_folder(folder)


def default_registry() -> MetricRegistry:
    """The process-wide registry (built-ins plus user metrics loaded into it)."""
    return _default
