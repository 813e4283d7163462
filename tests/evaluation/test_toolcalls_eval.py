"""`llmplay eval evals/tool-calls.yaml` on the bundled chat model: the shipped tool-call example passes its
thresholds, and every row carries the four tool-call metrics (so intervals and paired comparisons have rows)."""

from __future__ import annotations

import json

import pytest

from llmplay.cli import main
from llmplay.evaluation.results import load_results
from llmplay.settings import Settings
from tests.conftest import ROOT

METRICS = ["tool_called", "tool_args_valid", "tool_args_match", "tool_no_call"]


@pytest.mark.slow
def test_the_tool_call_example_passes_and_scores_every_row(tmp_path, model_cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "data"
    config = ROOT / "evals" / "tool-calls.yaml"
    argv = ["--data-dir", str(data), "eval", str(config), "--prompts-dir", str(ROOT / "prompts"), "--quiet", "--json"]
    code = main(argv)
    out = capsys.readouterr()
    report = json.loads(out.out)
    column = report["summary"]["columns"][0]
    scores = {name: round(column["metrics"][name]["score"], 3) for name in METRICS if name in column["metrics"]}
    print("tool-call scores:", scores, "errors:", column["metric_errors"])  # shown with -s: the thresholds
    assert code == 0, (scores, report["checks"], out.err)
    assert report["status"] == "done" and column["n"] == 20 and column["metric_errors"] == {}
    assert all(check["passed"] for check in report["checks"]) and len(report["checks"]) == 4
    for name in METRICS:
        metric = column["metrics"][name]
        assert 0 <= metric["low"] <= metric["score"] <= metric["high"] <= 1 and metric["n"] == 20, name
    # Per-row scores in every cell (what the grid, intervals and paired comparisons read); the parsed answer of
    # each row is a call as JSON or "none".
    results = load_results(Settings.from_env(data_dir=data), report["run_id"])
    cells = [cell for cell in results.cells.values() if cell.error is None]
    assert len(cells) == 20 and all(set(METRICS) <= set(cell.scores) for cell in cells)
    calls = [json.loads(c.answer) for c in cells if c.answer not in (None, "none")]
    assert calls and all({"name", "arguments"} <= set(call) for call in calls)
    called = results.column_scores(0, "tool_called")
    assert sum(called) / len(called) == pytest.approx(column["metrics"]["tool_called"]["score"])
