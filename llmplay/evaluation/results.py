"""Reading runs back: history, the results grid, the scoreboard, paired comparisons and exports.

Everything here reads SQLite only (no models), so the UI can reopen any past run at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from llmplay.csvsafe import csv_text
from llmplay.errors import InvalidRequestError
from llmplay.evaluation.stats import Interval, PairedDifference, paired_bootstrap
from llmplay.settings import Settings
from llmplay.store import connect, immediate


@dataclass(frozen=True)
class RunInfo:
    id: int
    name: str
    status: str
    dataset: str
    rows: int
    total_cells: int
    done_cells: int
    generated_cells: int
    cached_cells: int
    failed_cells: int
    created_at: str
    finished_at: str | None
    elapsed_s: float | None
    error: str | None
    config: dict
    summary: dict | None

    @property
    def titles(self) -> list[str]:
        return [c["title"] for c in self.config.get("resolved", {}).get("columns", [])]

    @property
    def metrics(self) -> list[str]:
        return list((self.summary or {}).get("metrics", []))

    @property
    def lower_is_better(self) -> list[str]:
        """The run's metrics where a lower score is better (attack_success: 1 = the attack worked)."""
        return list((self.summary or {}).get("lower_is_better", []))

    def label(self) -> str:
        return f"#{self.id} {self.name} · {self.status} · {self.created_at}"


@dataclass(frozen=True)
class Cell:
    row: int
    column: int
    text: str | None
    answer: str | None
    scores: dict[str, float]
    latency_s: float
    completion_tokens: int
    cached: bool
    error: str | None
    judge_score: float | None = None
    judge_verdict: str | None = None


@dataclass
class RunResults:
    info: RunInfo
    rows: list[dict[str, Any]]
    source_index: list[int]
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)

    @property
    def titles(self) -> list[str]:
        return self.info.titles

    @property
    def reference_column(self) -> str | None:
        return self.info.config.get("resolved", {}).get("reference")

    def reference(self, row: int) -> Any:
        col = self.reference_column
        return self.rows[row].get(col) if col else None

    def input_columns(self) -> list[str]:
        used = []
        for col in self.info.config.get("resolved", {}).get("columns", []):
            used += [c for c in (col.get("variables") or {}).values() if c not in used]
        return used

    def check_columns(self) -> list[str]:
        """Dataset columns a metric read besides the inputs (attack_success: each probe's kind and success_if),
        shown in the grid after the inputs."""
        from llmplay.evaluation.scorer import ATTACK_COLUMNS, ATTACK_METRICS

        shown, out = set(self.input_columns()), []
        for metric in self.info.config.get("resolved", {}).get("metrics", []):
            if metric.get("name") in ATTACK_METRICS:
                args = metric.get("args") or {}
                out += [str(args.get(k, d)) for k, d in ATTACK_COLUMNS.items()]
        return [c for c in dict.fromkeys(out) if c not in shown and any(c in row for row in self.rows)]

    def disagreeing_rows(self) -> list[int]:
        """Rows where the columns' parsed answers are not all the same (a failed cell counts as different)."""
        out = []
        for r in range(len(self.rows)):
            answers = {_norm(c.answer) if c.error is None else f"error:{c.column}" for c in self._row(r)}
            if len(answers) > 1:
                out.append(r)
        return out

    def failing_rows(self, metric: str | None = None) -> list[int]:
        """Rows where any column failed to generate, had no parsable answer, or scored below 1 on ``metric``
        (default: the run's first metric; above 0 for a lower-is-better metric: an attack that worked)."""
        metric = metric or next(iter(self.info.metrics), None)
        lower = metric in self.info.lower_is_better
        out = []
        for r in range(len(self.rows)):
            for c in self._row(r):
                score = c.scores.get(metric) if metric else None
                wrong = score is not None and (score > 0 if lower else score < 1)
                if c.error is not None or c.answer is None or wrong:
                    out.append(r)
                    break
        return out

    def grid(self, show: str = "all", metric: str | None = None, max_chars: int = 0) -> pd.DataFrame:
        """One row per dataset row: inputs, reference, then each column's reply and its score on ``metric``.

        ``show``: all | disagree | failed."""
        if show not in ("all", "disagree", "failed"):
            raise InvalidRequestError(f"show must be all, disagree or failed; got {show!r}")
        metric = metric or next(iter(self.info.metrics), None)
        indices = {
            "all": range(len(self.rows)),
            "disagree": self.disagreeing_rows(),
            "failed": self.failing_rows(metric),
        }[show]
        records = []
        for r in indices:
            record: dict[str, Any] = {"row": r}
            for col in self.input_columns() + self.check_columns():
                record[col] = _clip(self.rows[r].get(col), max_chars)
            if self.reference_column:
                record["reference"] = _clip(self.reference(r), max_chars)
            for i, title in enumerate(self.titles):
                cell = self.cells.get((r, i))
                if cell is None:
                    record[title] = "(not run)"
                elif cell.error is not None:
                    record[title] = f"⚠️ {cell.error}"
                else:
                    record[title] = _clip(cell.text, max_chars)
                if metric:
                    record[f"{title} · {metric}"] = cell.scores.get(metric) if cell else None
            records.append(record)
        return pd.DataFrame.from_records(records)

    def column_scores(self, column: int, metric: str) -> list[float]:
        """Per-row scores of one column (rows where it has one), in row order."""
        return [self.cells[(r, column)].scores.get(metric) for r in range(len(self.rows)) if (r, column) in self.cells]

    def _row(self, r: int) -> list[Cell]:
        return [self.cells[(r, i)] for i in range(len(self.titles)) if (r, i) in self.cells]

    # ---- exports ----------------------------------------------------------------------------------------
    def to_records(self) -> list[dict[str, Any]]:
        """One record per cell (long format): what the CSV and JSON exports hold."""
        cols = self.info.config.get("columns", [])
        out = []
        for (r, c), cell in sorted(self.cells.items()):
            out.append(
                {
                    "run_id": self.info.id,
                    "row": r,
                    "source_row": self.source_index[r],
                    **{f"input.{k}": self.rows[r].get(k) for k in self.input_columns()},
                    "reference": self.reference(r),
                    "column": self.titles[c],
                    "template": cols[c]["template"],
                    "template_version": self.info.config["resolved"]["columns"][c]["template_version"],
                    "model": cols[c]["model"],
                    "adapter": cols[c].get("adapter"),
                    "output": cell.text,
                    "answer": cell.answer,
                    **{f"score.{k}": v for k, v in cell.scores.items()},
                    "judge_score": cell.judge_score,
                    "judge_verdict": cell.judge_verdict,
                    "latency_s": cell.latency_s,
                    "completion_tokens": cell.completion_tokens,
                    "cached": cell.cached,
                    "error": cell.error,
                }
            )
        return out

    def to_csv(self) -> str:
        records = self.to_records()
        return csv_text(records, list(dict.fromkeys(k for r in records for k in r)))  # formula cells as text

    def to_json(self) -> dict[str, Any]:
        info = self.info
        return {
            "run": {
                "id": info.id,
                "name": info.name,
                "status": info.status,
                "dataset": info.dataset,
                "created_at": info.created_at,
                "elapsed_s": info.elapsed_s,
                "config": info.config,
            },
            "summary": info.summary,
            "cells": self.to_records(),
        }

    def export(self, folder: Path | str, stem: str | None = None) -> tuple[Path, Path]:
        """Write ``<stem>.csv`` and ``<stem>.json`` into ``folder``; returns both paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = stem or f"run-{self.info.id}"
        csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
        csv_path.write_text(self.to_csv(), encoding="utf-8")
        json_path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        return csv_path, json_path


# ---- history ----------------------------------------------------------------------------------------------


def list_runs(settings: Settings, limit: int = 200) -> list[RunInfo]:
    with connect(settings.db_path) as db:
        rows = list(db.query("select * from eval_runs order by id desc limit ?", [limit]))
    return [_info(r) for r in rows]


def get_run(settings: Settings, run_id: int) -> RunInfo:
    with connect(settings.db_path) as db:
        row = next(db.query("select * from eval_runs where id = ?", [run_id]), None)
    if row is None:
        raise InvalidRequestError(f"No evaluation run #{run_id}.")
    return _info(row)


def delete_run(settings: Settings, run_id: int) -> None:
    """Forget a run (its cells and rows); stored outputs stay in the cache for later runs."""
    info = get_run(settings, run_id)
    if info.status in ("queued", "running"):
        raise InvalidRequestError(f"Run #{run_id} is still {info.status}; cancel it first.")
    with connect(settings.db_path) as db, immediate(db):
        db["eval_cells"].delete_where("run_id = ?", [run_id])
        db["eval_rows"].delete_where("run_id = ?", [run_id])
        db["eval_runs"].delete(run_id)


def load_results(settings: Settings, run_id: int) -> RunResults:
    info = get_run(settings, run_id)
    with connect(settings.db_path) as db:
        stored_rows = list(db.query("select * from eval_rows where run_id = ? order by row_index", [run_id]))
        cells = db.query(
            "select c.*, o.text, o.latency_s, o.completion_tokens, j.text as verdict from eval_cells c "
            "left join eval_outputs o on o.id = c.output_id left join eval_outputs j on j.id = c.judge_output_id "
            "where c.run_id = ?",
            [run_id],
        )
        results = RunResults(
            info,
            rows=[json.loads(r["data"]) for r in stored_rows],
            source_index=[r["source_index"] for r in stored_rows],
        )
        for c in cells:
            results.cells[(c["row_index"], c["column_index"])] = Cell(
                row=c["row_index"],
                column=c["column_index"],
                text=c["text"],
                answer=c["answer"],
                scores=json.loads(c["scores"] or "{}"),
                latency_s=c["latency_s"] or 0.0,
                completion_tokens=c["completion_tokens"] or 0,
                cached=bool(c["cached"]),
                error=c["error"],
                judge_score=c["judge_score"],
                judge_verdict=c["verdict"],
            )
    return results


# ---- scoreboard and comparisons -----------------------------------------------------------------------------


def scoreboard(info: RunInfo, usage: bool = True) -> pd.DataFrame:
    """One line per (column, metric): score with its 95% interval, n (answered cells) and failed (cells that
    failed, not scored); latency, tokens/s and output length are appended for every column when ``usage``.
    A column with failed cells gets a ``failed`` line whose note says why (``column failed`` when all did)."""
    if not info.summary:
        return pd.DataFrame(columns=["column", "metric", "score", "ci_low", "ci_high", "n", "failed"])
    lines = []
    for col in info.summary["columns"]:
        failed = col.get("failed", 0)
        entries = list(col["metrics"].items())
        speed = ("latency_s", "tokens_per_s", "output_tokens")
        if usage:
            entries += [(k, col[k]) for k in speed if k in col]
        for name, value in entries:
            lines.append(
                {
                    "column": col["title"],
                    "metric": name,
                    "score": value["score"],
                    "ci_low": value["low"],
                    "ci_high": value["high"],
                    "n": value["n"],
                    "failed": failed,
                }
            )
            if name in speed and col.get("backend"):  # speed depends on what decoded: say it
                lines[-1]["note"] = f"on {col['backend']}"
        if failed:
            lines.append({"column": col["title"], "metric": "failed", "n": col.get("n", 0), "failed": failed})
            lines[-1]["note"] = failure_note(col)
        for name, problem in col.get("metric_errors", {}).items():
            lines.append({"column": col["title"], "metric": name, "note": problem})
    return pd.DataFrame.from_records(lines)


def failure_note(col: dict) -> str:
    """What a summary column's failed cells say, e.g. "column failed: all 2 cells failed (Model failed to ...)"."""
    failed, answered = col.get("failed", 0), col.get("n", 0)
    reason = f" ({col['error']})" if col.get("error") else ""
    if col.get("status") == "failed":
        return f"column failed: all {failed} cells failed{reason}"
    return f"{failed} of {failed + answered} cells failed and are not scored{reason}"


@dataclass(frozen=True)
class ColumnComparison:
    metric: str
    a: str
    b: str
    difference: PairedDifference  # b - a over the rows both columns finished
    # attack_success and the like: b - a above 0 means b is worse (better/worse rows are swapped to match)
    lower_is_better: bool = False

    @property
    def interval(self) -> Interval:
        return self.difference.interval

    def describe(self) -> str:
        d = self.interval
        verdict = "no clear difference"
        if (d.low > 0) != self.lower_is_better and (d.low > 0 or d.high < 0):
            verdict = f"{self.b} is better"
        elif d.low > 0 or d.high < 0:
            verdict = f"{self.a} is better"
        return (
            f"{self.metric}: {self.b} − {self.a} = {d.estimate:+.3f} (95% CI {d.low:+.3f} to {d.high:+.3f}, "
            f"n={d.n}): {verdict}; {len(self.difference.better)} rows better, {len(self.difference.worse)} worse"
        )


def compare_columns(results: RunResults, a: int, b: int, metric: str, seed: int = 0) -> ColumnComparison:
    """Paired bootstrap of column b minus column a on the per-row scores of ``metric`` (same rows).

    For corpus-level metrics (BLEU, chrF, entity F1) the per-row scores are sentence-level scores, so the
    difference is of their means, not of the corpus scores."""
    rows = [
        r for r in range(len(results.rows)) if metric in _scores(results, r, a) and metric in _scores(results, r, b)
    ]
    if not rows:
        raise InvalidRequestError(f"No rows where both columns have a '{metric}' score.")
    first = [results.cells[(r, a)].scores[metric] for r in rows]
    second = [results.cells[(r, b)].scores[metric] for r in rows]
    diff = paired_bootstrap(first, second, seed=seed)
    # Report row numbers of the run, not positions in the filtered list.
    higher, lower = [rows[i] for i in diff.better], [rows[i] for i in diff.worse]
    if metric in results.info.lower_is_better:  # a higher score on this metric is worse
        diff = PairedDifference(diff.interval, lower, higher)
        return ColumnComparison(metric, results.titles[a], results.titles[b], diff, lower_is_better=True)
    diff = PairedDifference(diff.interval, higher, lower)
    return ColumnComparison(metric, results.titles[a], results.titles[b], diff)


@dataclass(frozen=True)
class RunComparison:
    old: RunInfo
    new: RunInfo
    table: pd.DataFrame  # column, metric, old, new, delta (shared columns and metrics)
    regressions: pd.DataFrame  # rows whose per-row score dropped: column, metric, source_row, old, new, output


def compare_runs(settings: Settings, old_id: int, new_id: int) -> RunComparison:
    """What changed from run ``old_id`` to ``new_id``: scores of the columns they share (by title) and the
    dataset rows (matched by their index in the dataset) whose per-row score went down."""
    old, new = load_results(settings, old_id), load_results(settings, new_id)
    shared = [t for t in new.titles if t in old.titles]
    if not shared:
        raise InvalidRequestError(
            f"Runs #{old_id} and #{new_id} have no column in common (columns are matched by their titles)."
        )
    lines, regressions = [], []
    old_cols = {c["title"]: c for c in (old.info.summary or {}).get("columns", [])}
    new_cols = {c["title"]: c for c in (new.info.summary or {}).get("columns", [])}
    old_pos = {src: i for i, src in enumerate(old.source_index)}
    for title in shared:
        a, b = old.titles.index(title), new.titles.index(title)
        for metric in new.info.metrics:
            before = old_cols.get(title, {}).get("metrics", {}).get(metric)
            after = new_cols.get(title, {}).get("metrics", {}).get(metric)
            if before is None or after is None:
                continue
            lines.append(
                {
                    "column": title,
                    "metric": metric,
                    "old": before["score"],
                    "new": after["score"],
                    "delta": after["score"] - before["score"],
                }
            )
            for r, src in enumerate(new.source_index):
                if src not in old_pos or (r, b) not in new.cells or (old_pos[src], a) not in old.cells:
                    continue
                was = old.cells[(old_pos[src], a)].scores.get(metric)
                now = new.cells[(r, b)].scores.get(metric)
                lower = metric in new.info.lower_is_better  # e.g. attack_success: a rise is the regression
                if was is not None and now is not None and (now > was if lower else now < was):
                    regressions.append(
                        {
                            "column": title,
                            "metric": metric,
                            "source_row": src,
                            "old": was,
                            "new": now,
                            "old_output": old.cells[(old_pos[src], a)].text,
                            "new_output": new.cells[(r, b)].text,
                        }
                    )
    return RunComparison(old.info, new.info, pd.DataFrame.from_records(lines), pd.DataFrame.from_records(regressions))


def _scores(results: RunResults, row: int, column: int) -> dict:
    cell = results.cells.get((row, column))
    return cell.scores if cell is not None and cell.error is None else {}


def _info(row: dict) -> RunInfo:
    return RunInfo(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        dataset=row["dataset"] or "",
        rows=row["rows"] or 0,
        total_cells=row["total_cells"] or 0,
        done_cells=row["done_cells"] or 0,
        generated_cells=row["generated_cells"] or 0,
        cached_cells=row["cached_cells"] or 0,
        failed_cells=row["failed_cells"] or 0,
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        elapsed_s=row["elapsed_s"],
        error=row["error"],
        config=json.loads(row["config"]),
        summary=json.loads(row["summary"]) if row["summary"] else None,
    )


def _norm(answer: str | None) -> str | None:
    return " ".join(answer.split()).casefold() if answer is not None else None


def _clip(value: Any, max_chars: int) -> Any:
    if max_chars and isinstance(value, str) and len(value) > max_chars:
        return value[: max_chars - 1] + "…"
    return value
