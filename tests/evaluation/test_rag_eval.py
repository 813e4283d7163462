"""`llmplay eval evals/rag.yaml` on the bundled chat model: the shipped retrieval-augmented example passes its
thresholds, every row carries its faithfulness, answer relevance and context recall (so intervals and paired
comparisons have rows), and the passages each row got are stored with the run (what the grid shows)."""

from __future__ import annotations

import json

import pytest

from llmplay.cli import main
from llmplay.evaluation.results import load_results
from llmplay.feedback.eval_rows import create_eval_queue, queue_eval_rows
from llmplay.settings import Settings
from llmplay.store import connect
from tests.conftest import ROOT

METRICS = ["faithfulness", "answer_relevance", "context_recall"]


@pytest.mark.slow
def test_the_rag_example_passes_and_scores_every_row(tmp_path, model_cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "data"
    config = ROOT / "evals" / "rag.yaml"
    argv = ["--data-dir", str(data), "eval", str(config), "--prompts-dir", str(ROOT / "prompts"), "--quiet", "--json"]
    code = main(argv)
    out = capsys.readouterr()
    report = json.loads(out.out)
    column = report["summary"]["columns"][0]
    scores = {name: round(column["metrics"][name]["score"], 3) for name in METRICS if name in column["metrics"]}
    print("rag scores:", scores, "errors:", column["metric_errors"])  # shown with -s: the thresholds
    assert code == 0, (scores, report["checks"], out.err)
    assert report["status"] == "done" and column["n"] == 16 and column["metric_errors"] == {}
    assert all(check["passed"] for check in report["checks"]) and len(report["checks"]) == 3
    for name in METRICS:
        metric = column["metrics"][name]
        assert 0 <= metric["low"] <= metric["score"] <= metric["high"] <= 1 and metric["n"] == 16, name
    results = load_results(Settings.from_env(data_dir=data), report["run_id"])
    cells = [cell for cell in results.cells.values() if cell.error is None]
    assert len(cells) == 16 and all(set(METRICS) <= set(cell.scores) for cell in cells)
    faithfulness = results.column_scores(0, "faithfulness")
    assert sum(faithfulness) / len(faithfulness) == pytest.approx(column["metrics"]["faithfulness"]["score"])
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
