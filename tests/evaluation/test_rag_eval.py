"""`llmplay eval evals/rag.yaml` on the bundled chat model: the shipped retrieval-augmented example passes its
thresholds, every row carries its faithfulness, answer relevance and context recall (so intervals and paired
comparisons have rows), and the passages each row got are stored with the run (what the grid shows)."""

from __future__ import annotations

import json

import pytest

from llmplay.feedback.eval_rows import create_eval_queue, queue_eval_rows
from llmplay.settings import Settings
from llmplay.store import connect
from tests.evaluation.examples import assert_scored_rows

METRICS = ["faithfulness", "answer_relevance", "context_recall"]


@pytest.mark.slow
def test_the_rag_example_passes_and_scores_every_row(run_example):
    run = run_example("rag")
    (column,) = run.columns
    print("rag scores:", {m: round(column["metrics"][m]["score"], 3) for m in METRICS})  # -s: the thresholds
    assert run.code == 0 and run.report["status"] == "done", (run.report["checks"], run.stderr)
    assert all(check["passed"] for check in run.report["checks"]) and len(run.report["checks"]) == 3
    assert_scored_rows(run, METRICS, 16)
    results, report, data = run.results(), run.report, run.data
    # the grid's input columns include the passages each row was answered from
    grid = results.grid()
    assert "contexts · rag-answer" in grid.columns
    assert all(len(json.loads(p)) >= 2 for p in grid["contexts · rag-answer"])
    # the rows not wholly faithful go to labeling with the passages they were answered from
    settings = Settings.from_env(data_dir=data)
    wrong = [r for r in range(16) if results.cells[(r, 0)].scores["faithfulness"] < 1]
    with connect(settings.db_path) as db:
        create_eval_queue(db, report["run_id"], "rag-review", "correction", user="lead")
        queued = queue_eval_rows(db, report["run_id"], "rag-review", which="wrong", user="lead")
    assert list(queued.rows) == wrong and queued.added == len(wrong)
