"""Migrations of the evaluation runs' tables (llmplay/evaluation/)."""

from __future__ import annotations

from sqlite_utils import Database


def m003_eval_runs(db: Database) -> None:
    db["eval_runs"].create(
        {
            "id": int,
            "name": str,
            "status": str,  # queued | running | done | cancelled | failed | interrupted
            "config": str,  # JSON of RunConfig, with each column's resolved template version id
            "dataset": str,
            "dataset_hash": str,
            "rows": int,  # rows evaluated (after sampling)
            "total_cells": int,  # rows x columns
            "done_cells": int,
            "generated_cells": int,  # cells the models had to generate in this run
            "cached_cells": int,  # cells reused from earlier runs
            "failed_cells": int,
            "error": str,
            "summary": str,  # JSON scoreboard, written when the run ends
            "created_at": str,
            "started_at": str,
            "finished_at": str,
            "elapsed_s": float,
            "pid": int,  # the process running it: a run left "running" by a dead process is marked interrupted
        },
        pk="id",
        not_null={"name", "status", "config", "created_at"},
    )
    # The rows a run evaluated (after sampling), kept with the run so it can be reopened after the dataset changes.
    db["eval_rows"].create(
        {"run_id": int, "row_index": int, "source_index": int, "data": str},
        pk=("run_id", "row_index"),
        foreign_keys=[("run_id", "eval_runs", "id")],
    )
    # One stored model output, found again by its cache key (rendered prompt, model, adapter, params, mode).
    db["eval_outputs"].create(
        {
            "id": int,
            "cache_key": str,
            "mode": str,  # generate | likelihood | judge
            "model": str,
            "adapter": str,
            "template_version_id": int,
            "prompt": str,  # exactly what the model saw
            "params": str,  # JSON
            "text": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "latency_s": float,
            "finish_reason": str,
            "details": str,  # JSON, e.g. each option's log-probability in likelihood mode
            "created_at": str,
        },
        pk="id",
        not_null={"cache_key", "mode", "model", "prompt", "params", "created_at"},
    )
    db["eval_outputs"].create_index(["cache_key"], unique=True)
    # One (row, column) of a run: which output it used, the parsed answer and its per-row scores.
    db["eval_cells"].create(
        {
            "run_id": int,
            "row_index": int,
            "column_index": int,
            "output_id": int,
            "answer": str,  # the answer parsed from the reply; NULL when unparseable
            "scores": str,  # JSON {metric: per-row score}
            "judge_output_id": int,
            "judge_score": float,
            "cached": int,  # 1 when the output came from an earlier run
            "error": str,
        },
        pk=("run_id", "row_index", "column_index"),
        foreign_keys=[("run_id", "eval_runs", "id")],
    )


def m010_output_backend(db: Database) -> None:
    # Which backend and precision computed a stored output ("transformers float32"); older rows: NULL, and
    # they were all computed by transformers in their cache key's dtype.
    db["eval_outputs"].add_column("backend", str)
