"""What an evaluation run is: a dataset (or a seeded sample of it) x columns x metrics, as plain dataclasses.

A column is one (template version, model, adapter, decoding parameters, answer mode). Configs come from
the UI, the CLI's YAML file or code; ``RunConfig.from_dict`` validates at that edge and names every problem.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from llmplay.backend_names import check_batch_choice
from llmplay.engine.types import GenerationParams
from llmplay.errors import InvalidRequestError, LlmplayError, short, short_list
from llmplay.limits import check_number, check_stop

MODES = ("auto", "generate", "likelihood")
MAX_COLUMNS = 16


@dataclass(frozen=True)
class ColumnConfig:
    template: str
    model: str
    adapter: str | None = None  # a LoRA adapter folder (local models only)
    params: GenerationParams = field(default_factory=lambda: GenerationParams(max_new_tokens=64))
    # generate: free text parsed by the template's output spec; likelihood: the most likely of the template's
    # labels (never unparseable); auto: the template's own choice (output.mode), else generate.
    mode: str = "auto"
    template_version: int | None = None  # a version number of the template; None = the current file
    # Template variable -> dataset column, for templates whose variable names differ from the dataset mapping.
    variables: dict[str, str] | None = None
    dtype: str | None = None
    label: str = ""  # shown as the column's name; default "template · model"
    # Decode only replies valid against the template's output.schema (local models; engine/constrained.py), so a
    # model can be measured with and without it as two columns.
    constrained: bool = False
    # How this column's batches decode: "transformers", "onnx/int8", "onnx/w8a8", "onnx/fp32" or "auto"
    # (llmplay.backend_names); None: the settings' batch_backend. Comparisons that must hold precision fixed (the loop's
    # gates, the prompt optimiser) pin "transformers".
    backend: str | None = None

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        adapter = f"+{self.adapter.rstrip('/').rsplit('/', 1)[-1]}" if self.adapter else ""
        version = f"@v{self.template_version}" if self.template_version else ""
        constrained = " · constrained" if self.constrained else ""
        return f"{self.template}{version} · {self.model}{adapter}{constrained}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["params"] = self.params.to_dict()
        return {k: v for k, v in d.items() if v not in (None, "", {}) and v is not False}


@dataclass(frozen=True)
class MetricConfig:
    name: str
    args: dict[str, Any] = field(default_factory=dict)  # e.g. {"value": "refund"} for contains
    threshold: float | None = None  # CLI: the run fails when a column scores below it
    max_threshold: float | None = None  # ... or above it (e.g. a latency budget)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


@dataclass(frozen=True)
class JudgeConfig:
    """LLM-as-judge: a rubric template rendered per cell and scored by ``model``."""

    model: str
    template: str = "judge-rubric"
    params: GenerationParams = field(default_factory=lambda: GenerationParams(max_new_tokens=96))
    threshold: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["params"] = self.params.to_dict()
        return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class RunConfig:
    dataset: str
    columns: tuple[ColumnConfig, ...]
    metrics: tuple[MetricConfig, ...] = ()  # empty: every metric the templates suggest
    sample: int | None = None  # evaluate a seeded sample of this many rows
    seed: int = 0  # sampling seed (decoding seeds are per column, in params)
    judge: JudgeConfig | None = None
    name: str = ""

    def __post_init__(self) -> None:
        problems = []
        if not self.dataset:
            problems.append("choose a dataset")
        if not self.columns:
            problems.append("add at least one column (a template and a model)")
        if len(self.columns) > MAX_COLUMNS:
            problems.append(f"at most {MAX_COLUMNS} columns per run; got {len(self.columns)}")
        for i, col in enumerate(self.columns, 1):
            if not col.template or not col.model:
                problems.append(f"column {i}: needs both a template and a model")
            if col.mode not in MODES:
                problems.append(f"column {i}: mode must be one of {', '.join(MODES)}; got {short(col.mode)}")
            try:
                col.params.validate()
            except InvalidRequestError as exc:
                problems.append(f"column {i}: {exc}")
            if col.template_version is not None:
                problems += _number_problem("template_version", col.template_version, f"column {i}: ")
        if self.sample is not None:
            problems += _number_problem("sample", self.sample)
        problems += _number_problem("sample_seed", self.seed, label="seed (of the sample)")
        problems += _threshold_problems(self)
        configs = [json.dumps(c.to_dict(), sort_keys=True) for c in self.columns]
        dupes = sorted({self.titles()[i] for i, c in enumerate(configs) if configs.count(c) > 1})
        if dupes:
            problems.append(f"two columns are identical ({', '.join(dupes)}): remove one or change a parameter")
        if problems:
            raise InvalidRequestError("Invalid evaluation run: " + "; ".join(problems) + ".")

    def titles(self) -> list[str]:
        """Each column's name; columns that would share one get the settings that tell them apart."""
        base = [c.title for c in self.columns]
        out = []
        for i, (col, title) in enumerate(zip(self.columns, base)):
            if col.label or base.count(title) == 1 or base.index(title) == i:
                out.append(title)
                continue
            first = self.columns[base.index(title)]
            mine, theirs = col.to_dict(), first.to_dict()
            mine_params, their_params = mine.pop("params", {}), theirs.pop("params", {})
            diff = [f"{k}={v}" for k, v in mine_params.items() if their_params.get(k) != v]
            diff += [f"{k}={v}" for k, v in mine.items() if theirs.get(k) != v]
            out.append(f"{title} ({', '.join(diff)})" if diff else f"{title} #{i + 1}")
        return out

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"dataset": self.dataset, "columns": [c.to_dict() for c in self.columns]}
        if self.metrics:
            d["metrics"] = [m.to_dict() for m in self.metrics]
        if self.sample is not None:
            d["sample"] = self.sample
        d["seed"] = self.seed
        if self.judge:
            d["judge"] = self.judge.to_dict()
        if self.name:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        """Build from plain data (YAML/JSON). Shorthands: ``templates`` x ``models`` lists expand into columns;
        a metric may be a name or {name, threshold, args...}; ``params`` at the top apply to every column."""
        if not isinstance(data, dict):
            raise InvalidRequestError("An evaluation config must be a mapping (YAML keys: dataset, columns, ...).")
        known = {"dataset", "columns", "templates", "models", "adapter", "params", "mode", "metrics", "sample"}
        known |= {"seed", "judge", "name", "thresholds"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequestError(f"Unknown key(s) in the evaluation config: {short_list(unknown)}.")
        shared = _params_mapping(data.get("params"))
        columns = [_column(c, shared, data.get("mode")) for c in data.get("columns") or []]
        templates, models = _names(data.get("templates")), _names(data.get("models"))
        if templates or models:
            if not (templates and models):
                raise InvalidRequestError("Give both 'templates' and 'models' (every pair becomes a column).")
            base = {"adapter": data.get("adapter")}
            columns += [
                _column({**base, "template": t, "model": m}, shared, data.get("mode"))
                for t in templates
                for m in models
            ]
        metrics = [_metric(m) for m in data.get("metrics") or []]
        thresholds = data.get("thresholds") or {}
        if not isinstance(thresholds, dict):
            raise InvalidRequestError(
                f"'thresholds' maps metric names to bounds, e.g. {{accuracy: 0.6}}; got {short(thresholds)}."
            )
        for name, bound in thresholds.items():  # thresholds: {accuracy: 0.6}
            metrics = _with_threshold(metrics, name, _bound(bound))
        judge = data.get("judge")
        if judge is not None:
            if not isinstance(judge, dict) or "model" not in judge:
                raise InvalidRequestError("'judge' needs at least a model: judge: {model: NAME}.")
            judge = JudgeConfig(
                model=judge["model"],
                template=judge.get("template", "judge-rubric"),
                params=_params(judge.get("params") or {}, GenerationParams(max_new_tokens=96)),
                threshold=_bound(judge.get("threshold")),
            )
        return cls(
            dataset=str(data.get("dataset") or ""),
            columns=tuple(columns),
            metrics=tuple(metrics),
            sample=check_number("sample", data.get("sample"), blank=None),
            seed=check_number("sample_seed", data.get("seed"), label="seed (of the sample)", blank=0),
            judge=judge,
            name=str(data.get("name") or ""),
        )


def _names(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _params(data: dict, base: GenerationParams | None = None) -> GenerationParams:
    base = base or GenerationParams(max_new_tokens=64)
    data = _params_mapping(data)
    fields = set(GenerationParams.__dataclass_fields__)
    unknown = sorted(set(data) - fields)
    if unknown:
        raise InvalidRequestError(f"Unknown decoding parameter(s): {short_list(unknown)} (known: {', '.join(fields)}).")
    merged = {**base.to_dict(), **data}
    # Numbers written as text ("4") are read as numbers, as on the command line; null is the default.
    for name in ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed"):
        merged[name] = check_number(name, merged[name], blank=getattr(base, name))
    merged["stop"] = check_stop(merged.get("stop"))
    return GenerationParams(**merged)


def _params_mapping(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestError(f"'params' must be a mapping (max_new_tokens: 64, ...); got {short(value)}.")
    return value


def _column(data: dict, shared: dict, mode: str | None) -> ColumnConfig:
    if not isinstance(data, dict):
        raise InvalidRequestError(f"A column must be a mapping with template and model; got {short(data)}.")
    known = set(ColumnConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidRequestError(f"Unknown column key(s): {short_list(unknown)} (known: {', '.join(sorted(known))}).")
    values = {k: v for k, v in data.items() if v is not None}
    if not isinstance(values.get("constrained", False), bool):
        raise InvalidRequestError(f"'constrained' is true or false; got {short(values['constrained'])}.")
    if "backend" in values:
        try:
            values["backend"] = check_batch_choice(str(values["backend"]))
        except LlmplayError as exc:
            raise InvalidRequestError(f"Column {exc}") from None
    if "template_version" in values:
        values["template_version"] = check_number("template_version", values["template_version"])
    values["params"] = _params({**shared, **_params_mapping(data.get("params"))})
    values.setdefault("mode", mode or "auto")
    return ColumnConfig(**values)


def _metric(data) -> MetricConfig:
    if isinstance(data, str):
        return MetricConfig(data)
    if not isinstance(data, dict) or "name" not in data:
        raise InvalidRequestError(f"A metric is a name or a mapping with 'name'; got {short(data)}.")
    data = dict(data)
    name = data.pop("name")
    threshold, max_threshold = data.pop("threshold", None), data.pop("max_threshold", None)
    args = data.pop("args", None) or data  # remaining keys are the metric's arguments
    return MetricConfig(name, dict(args), _bound(threshold), _bound(max_threshold))


def _with_threshold(metrics: list[MetricConfig], name: str, bound: float) -> list[MetricConfig]:
    out, found = [], False
    for m in metrics:
        if m.name == name:
            m, found = MetricConfig(m.name, m.args, bound, m.max_threshold), True
        out.append(m)
    if not found:
        out.append(MetricConfig(name, {}, bound))
    return out


def _bound(value):
    """A threshold as written: numbers (and numeric strings) become floats; anything else is kept for
    ``_threshold_problems`` to report with the rest of the config's problems."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _threshold_problems(config: RunConfig) -> list[str]:
    """Thresholds decide `llmplay eval`'s exit code: a mistyped one must stop the run before it starts, not
    fail it as a quality regression after the whole evaluation ran."""
    bounds = [(f"metric {m.name!r}", k, getattr(m, k)) for m in config.metrics for k in ("threshold", "max_threshold")]
    if config.judge is not None:
        bounds.append(("judge", "threshold", config.judge.threshold))
    problems = []
    for owner, key, value in bounds:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (number and math.isfinite(value)):
            problems.append(f"{owner}: {key} must be a number; got {short(value)}")
    for m in config.metrics:
        low, high = m.threshold, m.max_threshold
        if all(isinstance(b, int | float) and not isinstance(b, bool) for b in (low, high)) and low > high:
            problems.append(f"metric {m.name!r}: threshold {low} is above max_threshold {high}: no score can pass")
    return problems


def _number_problem(name: str, value, where: str = "", label: str | None = None) -> list[str]:
    try:
        check_number(name, value, label=label, exact=True)
    except InvalidRequestError as exc:
        return [where + str(exc).rstrip(".")]
    return []
