"""Planning an evaluation run: every check before anything runs, and what the run then works through (the
rows, each column's template, model and mapping, the metrics, the judge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmplay.datasets import DatasetError, load_dataset, sample
from llmplay.engine.engine import Engine
from llmplay.engine.prompt_logprobs import likelihood_refusal
from llmplay.engine.types import GenerationRequest
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.evaluation import attacks, rag
from llmplay.evaluation import judge as judging
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.metrics.registry import MetricRegistry
from llmplay.evaluation.scorer import ATTACK_COLUMNS, ATTACK_METRICS, needs_reference
from llmplay.models.catalog import ModelSpec
from llmplay.settings import Settings
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import Template, parse_template
from llmplay.templates.render import build_request
from llmplay.templates.versions import Version


@dataclass
class PlannedColumn:
    index: int
    config: ColumnConfig
    template: Template
    version: Version
    spec: ModelSpec
    mode: str  # generate | likelihood
    variables: dict[str, str]  # template variable -> dataset column
    dtype: str


@dataclass
class Plan:
    config: RunConfig
    rows: list[dict[str, Any]]
    source_index: list[int]
    references: list[Any] | None
    columns: list[PlannedColumn]
    metrics: list[MetricConfig]
    dataset_hash: str
    reference_column: str | None = None
    skipped_metrics: dict[str, str] = field(default_factory=dict)  # suggested by a template but not applicable
    judge_template: Template | None = None
    judge_version: Version | None = None
    judge_spec: ModelSpec | None = None
    # column index -> what decodes it ("transformers", "onnx/int8"), chosen before the run (batch_choice.py)
    backends: dict[int, str] = field(default_factory=dict)


@dataclass
class Cell:
    row: int
    key: str = ""
    prompt: str = ""
    messages: list[dict] = field(default_factory=list)
    request: GenerationRequest | None = None
    error: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # the row's template variables (conversations replay them)
    backend: str = "transformers"  # what decodes it: chosen once for the whole column (batch_choice.py)


def plan_run(
    settings: Settings, engine: Engine, library: TemplateLibrary, registry: MetricRegistry, config: RunConfig
) -> Plan:
    """Every check before anything runs: the dataset, each column's template and model, the metrics, the judge;
    one InvalidRequestError lists every problem."""
    try:
        dataset = load_dataset(settings, config.dataset)
    except DatasetError as exc:
        raise InvalidRequestError(str(exc)) from None
    df = sample(dataset.df, config.sample, config.seed) if config.sample else dataset.df
    rows = [dict(zip(df.columns, r)) for r in df.itertuples(index=False, name=None)]
    mapping = dataset.mapping
    references = [r[mapping.reference] for r in rows] if mapping.reference else None
    problems: list[str] = []
    columns = []
    for i, col in enumerate(config.columns):
        try:
            columns.append(resolve_column(settings, engine, library, i, col, list(df.columns), mapping.variables))
            # retrieved passages stored with the rows (the grid shows them; every column renders from them)
            rag.attach_contexts(columns[-1].template, rows, columns[-1].variables)
        except LlmplayError as exc:
            problems.append(f"column {i + 1} ({col.title}): {exc}")
    metrics, skipped = list(config.metrics), {}
    if not metrics:  # every metric the templates suggest that applies here, in order
        for name in dict.fromkeys(m for c in columns for m in c.template.metrics):
            if name not in registry.names():
                skipped[name] = "not a registered metric"
            elif references is None and needs_reference(MetricConfig(name)):
                skipped[name] = "needs a reference column, and the dataset has none mapped"
            elif name in ATTACK_METRICS and _attack_problems(MetricConfig(name), rows):
                skipped[name] = "needs each row's attack kind and success_if check (e.g. the attacks sample)"
            else:
                metrics.append(MetricConfig(name))
    for metric in metrics:
        if metric.name not in registry.names():
            problems.append(f"unknown metric {metric.name!r} (known: {', '.join(registry.names())})")
        elif references is None and needs_reference(metric):
            problems.append(
                f"metric {metric.name!r} needs a reference column; dataset {config.dataset!r} has none mapped"
            )
        elif metric.name in ATTACK_METRICS:  # probe rows checked now, not found wrong after the run
            problems += [f"metric {metric.name!r}: {p}" for p in _attack_problems(metric, rows)]
    plan = Plan(config, rows, [int(i) for i in df.index], references, columns, metrics, dataset.info.content_hash)
    plan.reference_column = mapping.reference
    if config.judge:
        try:
            plan.judge_version = library.current_version(config.judge.template)
            plan.judge_template = parse_template(plan.judge_version.content, config.judge.template)
            judging.check_template(plan.judge_template)
            plan.judge_spec = engine.catalog.get(config.judge.model)
            if plan.judge_spec.kind not in ("chat", "base"):
                raise LlmplayError(f"{config.judge.model!r} is an encoder; a judge must generate text.")
        except LlmplayError as exc:
            problems.append(f"judge: {exc}")
    if problems:
        raise InvalidRequestError("Cannot start the evaluation: " + "; ".join(p.rstrip(".") for p in problems) + ".")
    plan.skipped_metrics = skipped
    return plan


def _attack_problems(metric: MetricConfig, rows: list[dict]) -> list[str]:
    columns = {k: str(metric.args.get(k, d)) for k, d in ATTACK_COLUMNS.items()}
    return attacks.rows_problems(rows, columns["kind_column"], columns["check_column"])


def resolve_column(
    settings: Settings,
    engine: Engine,
    library: TemplateLibrary,
    index: int,
    col: ColumnConfig,
    columns: list[str],
    dataset_vars: dict,
) -> PlannedColumn:
    if col.template_version:
        version = library.version(col.template, col.template_version)
    else:
        version = library.current_version(col.template)
    template = parse_template(version.content, col.template)
    spec = engine.catalog.get(col.model)
    predictor = spec.kind in ("classifier", "tagger")  # a fine-tuned encoder: reads the text variable
    if spec.kind not in ("chat", "base") and not predictor:
        raise LlmplayError(f"{col.model!r} is an encoder model; evaluation columns need a generative model.")
    if col.adapter and spec.provider != "local":
        raise LlmplayError(f"{col.model!r} is an endpoint; LoRA adapters apply to local models only.")
    mode = col.mode if col.mode != "auto" else ("likelihood" if template.output.mode == "likelihood" else "generate")
    if predictor:
        mode = "generate"  # it predicts its own label; there is no text likelihood to rank labels by
    if mode == "likelihood":
        if not template.output.labels:
            raise LlmplayError("likelihood mode chooses among the template's output labels; it declares none")
        if spec.provider == "openai":  # scored by the prompt log-probabilities the server returns
            refusal = likelihood_refusal(spec)
            if refusal:
                raise LlmplayError(refusal)
        elif spec.provider != "local":
            raise LlmplayError("likelihood mode needs a local model or a base-model endpoint")
    if col.constrained:
        if template.output.schema is None:
            raise LlmplayError("constrained decoding follows the template's output.schema; it declares none")
        if spec.provider != "local" or mode != "generate":
            raise LlmplayError("constrained decoding applies to local models generating text (mode generate)")
    # Column mapping: the column's own, else the dataset's, else a dataset column of the same name.
    variables = dict(col.variables or {})
    for var in template.variables:
        if var.name in variables:
            continue
        if var.name in dataset_vars:
            variables[var.name] = dataset_vars[var.name]
        elif var.name in columns:
            variables[var.name] = var.name
    missing = [v.name for v in template.variables if v.required and v.name not in variables]
    if missing:
        raise LlmplayError(
            f"template variable(s) {', '.join(missing)} have no dataset column; map them (dataset columns: "
            f"{', '.join(columns)})"
        )
    absent = sorted({c for c in variables.values() if c not in columns})
    if absent:
        raise LlmplayError(f"mapped column(s) {', '.join(absent)} are not in the dataset")
    return PlannedColumn(index, col, template, version, spec, mode, variables, col.dtype or settings.dtype)


def request_messages(column: PlannedColumn, row: dict) -> list[dict]:
    values = {var: row[col] for var, col in column.variables.items()}
    _, messages = build_request(column.template, column.spec.kind, values, column.config.params)
    return messages
