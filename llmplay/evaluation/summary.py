"""Scoring a finished (or cancelled) run: per-row scores into its cells, and a scoreboard with 95% bootstrap
intervals into ``eval_runs.summary``. Recomputable at any time from what the run stored."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from llmplay.evaluation import judge as judging
from llmplay.evaluation.config import MetricConfig
from llmplay.evaluation.metrics.registry import MetricRegistry
from llmplay.evaluation.scorer import ColumnReplies, metric_inputs
from llmplay.evaluation.stats import Interval, bootstrap_mean
from llmplay.settings import Settings
from llmplay.store import connect, immediate
from llmplay.templates.model import Template, parse_template
from llmplay.templates.versions import version_by_id

RESAMPLES = 1000  # corpus metrics are recomputed per resample: enough for a stable 95% interval


@dataclass(frozen=True)
class CellRecord:
    row: int
    column: int
    output_id: int | None
    text: str | None
    answer: str | None
    latency_s: float
    completion_tokens: int
    cached: bool
    error: str | None
    judge_score: float | None
    judge_output_id: int | None
    backend: str | None = None  # what computed the output ("onnx int8"); None for older outputs and failures


def interval_dict(interval: Interval) -> dict[str, float]:
    return {"score": interval.estimate, "low": interval.low, "high": interval.high, "n": interval.n}


def load_cells(db, run_id: int) -> list[CellRecord]:
    rows = db.query(
        "select c.*, o.text, o.latency_s, o.completion_tokens, o.backend from eval_cells c "
        "left join eval_outputs o on o.id = c.output_id where c.run_id = ? order by c.column_index, c.row_index",
        [run_id],
    )
    return [
        CellRecord(
            row=r["row_index"],
            column=r["column_index"],
            output_id=r["output_id"],
            text=r["text"],
            answer=r["answer"],
            latency_s=r["latency_s"] or 0.0,
            completion_tokens=r["completion_tokens"] or 0,
            cached=bool(r["cached"]),
            error=r["error"],
            judge_score=r["judge_score"],
            judge_output_id=r["judge_output_id"],
            backend=r["backend"],
        )
        for r in rows
    ]


def run_templates(db, config: dict) -> list[Template]:
    resolved = config["resolved"]["columns"]
    return [
        parse_template(version_by_id(db, c["template_version_id"]).content, col["template"])
        for c, col in zip(resolved, config["columns"])
    ]


def score_run(settings: Settings, run_id: int, registry: MetricRegistry) -> dict[str, Any]:
    """Score every column on the rows it finished; store per-row scores and the summary; return the summary."""
    with connect(settings.db_path) as db:
        run = db["eval_runs"].get(run_id)
        config = json.loads(run["config"])
        templates = run_templates(db, config)
        rows = [
            json.loads(r["data"])
            for r in db.query("select data from eval_rows where run_id = ? order by row_index", [run_id])
        ]
        cells = load_cells(db, run_id)
    ref_column = config["resolved"].get("reference")  # the mapping's reference column at the time of the run
    references = [r.get(ref_column) for r in rows] if ref_column else None
    metrics = [MetricConfig(**m) for m in config["resolved"]["metrics"]]
    by_column: dict[int, list[CellRecord]] = {}
    for cell in cells:
        by_column.setdefault(cell.column, []).append(cell)

    summary_columns, row_scores = [], {}
    for index, col in enumerate(config["columns"]):
        resolved = config["resolved"]["columns"][index]
        # A failed cell (the model did not load, the row did not render, generation errored) has no answer to
        # score: counting it as a wrong answer would make a broken setup look like a quality regression.
        all_cells = by_column.get(index, [])
        col_cells = [c for c in all_cells if c.error is None]
        failed = [c for c in all_cells if c.error is not None]
        entry: dict[str, Any] = {
            "index": index,
            "title": resolved["title"],
            "template": col["template"],
            "template_version": resolved["template_version"],
            "model": col["model"],
            "adapter": col.get("adapter"),
            "mode": resolved["mode"],
            "n": len(col_cells),  # answered cells: the ones scored
            "failed": len(failed),
            "status": "failed" if failed and not col_cells else ("ok" if all_cells else "not run"),
            "unparseable": sum(c.answer is None for c in col_cells),
            "cached": sum(c.cached for c in all_cells),
            "metrics": {},
            "metric_errors": {},
        }
        if failed:  # the most frequent reason, to say why without listing every cell
            entry["error"] = Counter(c.error for c in failed).most_common(1)[0][0]
        if col_cells:
            _score_column(entry, col_cells, templates[index], rows, references, resolved, metrics, registry, row_scores)
            _usage(entry, col_cells)
            if config.get("judge"):
                judged = [judging.score(_grade(c)) for c in col_cells]
                entry["metrics"]["judge"] = interval_dict(bootstrap_mean(judged, resamples=RESAMPLES))
                entry["metrics"]["judge"]["ungraded"] = sum(c.judge_score is None for c in col_cells)
        summary_columns.append(entry)

    names = [m.name for m in metrics] + (["judge"] if config.get("judge") else [])
    summary = {"metrics": names, "columns": summary_columns, "rows": len(rows)}
    summary["skipped_metrics"] = config["resolved"].get("skipped_metrics", {})
    # Metrics where a lower score is better (attack_success): the CLI, the grid's failing rows, paired comparisons
    # and labeling queues read this instead of assuming higher is better.
    lower = {n for c in summary_columns for n, m in c["metrics"].items() if m.get("details", {}).get("lower_is_better")}
    summary["lower_is_better"] = [n for n in names if n in lower]
    with connect(settings.db_path) as db, immediate(db):
        for (row, column), scores in row_scores.items():
            db["eval_cells"].update((run_id, row, column), {"scores": json.dumps(scores)})
        db["eval_runs"].update(run_id, {"summary": json.dumps(summary, ensure_ascii=False, default=str)})
    return summary


def _grade(cell: CellRecord) -> int | None:
    return int(cell.judge_score) if cell.judge_score is not None else None


def _score_column(entry, cells, template, rows, references, resolved, metrics, registry, row_scores) -> None:
    """Score the column's answered cells (``cells`` holds no failed ones)."""
    texts = [c.text for c in cells]
    answers = [c.answer for c in cells]
    col_rows = [rows[c.row] for c in cells]
    refs = [references[c.row] for c in cells] if references is not None else None
    variables = resolved.get("variables") or {}
    text_var = variables.get("text") or next(iter(variables.values()), None)
    replies = ColumnReplies(template, texts, answers, col_rows, refs, text_var, variables)
    for metric in metrics:
        try:
            preds, metric_refs, kwargs = metric_inputs(metric, replies)
            result, interval = registry.get(metric.name).interval(preds, metric_refs, resamples=RESAMPLES, **kwargs)
        except Exception as exc:  # one metric failing (bad args, odd data) must not hide the others
            entry["metric_errors"][metric.name] = str(exc)
            continue
        groups = result.details.pop("groups", None) or {}
        entry["metrics"][metric.name] = {**interval_dict(interval), "details": _small(result.details)}
        if result.per_row is not None and result.row_mean:  # e.g. attack_success by kind: one line per group
            for group, positions in groups.items():
                part = [result.per_row[i] for i in positions]
                entry["metrics"][f"{metric.name} · {group}"] = interval_dict(bootstrap_mean(part, resamples=RESAMPLES))
        if result.per_row is not None:
            for cell, value in zip(cells, result.per_row):
                row_scores.setdefault((cell.row, cell.column), {})[metric.name] = value
    if entry["unparseable"] and template.output.labels:
        entry["metric_errors"].setdefault(
            "note", f"{entry['unparseable']} replies had no recognisable label and count as wrong"
        )
    same = one_label_note(answers, template.output.labels, entry.get("mode", ""))
    if same:
        entry["metric_errors"]["one label"] = same


def one_label_note(answers: list, labels, mode: str) -> str | None:
    """A column that gave the same label on every row (of at least four) has not classified anything: say so,
    and what to try (a small chat model in generate mode often repeats one word whatever the text)."""
    found = [a for a in answers if a is not None]
    if not labels or len(found) < 4 or len(set(found)) != 1:
        return None
    advice = (
        "try another model"
        if mode == "likelihood"
        else "try Answer mode likelihood (it ranks every label) or another model"
    )
    return (
        f"answered {found[0]!r} on every row ({len(found)} rows): the model is not telling the labels apart; {advice}"
    )


def _usage(entry: dict, cells: list[CellRecord]) -> None:
    ok = [c for c in cells if c.text is not None]
    if not ok:
        return
    entry.update(column_usage([c.latency_s for c in ok], [c.completion_tokens for c in ok]))
    # what computed the column's outputs (a run's columns share one batch backend: evaluation/batch_choice.py)
    entry["backend"] = ", ".join(sorted({c.backend for c in ok if c.backend}))
    entry["output_chars"] = interval_dict(bootstrap_mean([len(c.text or "") for c in ok], resamples=RESAMPLES))
    if any(c.completion_tokens for c in ok):  # likelihood mode scores labels without generating: no tokens
        entry["output_tokens"] = interval_dict(bootstrap_mean([c.completion_tokens for c in ok], resamples=RESAMPLES))


def column_usage(latencies: list[float], tokens: list[int]) -> dict[str, dict]:
    """A column's speed: ``latency_s``, the seconds a row cost (each row's share of its batch: runner.py), with a
    95% interval only when rows were timed apart (equal figures have no spread to show: an interval of a batch's
    time repeated would read ``19.0 (CI 19.0-19.0)``); ``tokens_per_s``, generated tokens over the column's
    time, once per column (no interval: it is one measure of throughput, not an average of rows)."""
    out: dict[str, dict] = {}
    if not latencies:
        return out
    if len(set(latencies)) > 1:
        out["latency_s"] = interval_dict(bootstrap_mean(latencies, resamples=RESAMPLES))
    else:
        out["latency_s"] = {"score": latencies[0], "low": None, "high": None, "n": len(latencies)}
    spent = sum(latencies)
    if any(tokens) and spent > 0:
        out["tokens_per_s"] = {"score": sum(tokens) / spent, "low": None, "high": None, "n": len(tokens)}
    return out


def _small(details: dict) -> dict:
    """Details worth keeping in the summary (drop per-row lists; keep counts and per-class tables)."""
    out = {}
    for key, value in details.items():
        if isinstance(value, list) and len(value) > 20:
            continue
        if isinstance(value, dict) and len(value) > 50:
            continue
        out[key] = value
    return out
