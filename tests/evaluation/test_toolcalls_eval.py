"""`llmplay eval evals/tool-calls.yaml` on the bundled chat model: the shipped tool-call example passes its
thresholds, and every row carries the four tool-call metrics (so intervals and paired comparisons have rows)."""

from __future__ import annotations

import json

import pytest

from tests.evaluation.examples import assert_scored_rows

METRICS = ["tool_called", "tool_args_valid", "tool_args_match", "tool_no_call"]


@pytest.mark.slow
def test_the_tool_call_example_passes_and_scores_every_row(run_example):
    run = run_example("tool-calls")
    (column,) = run.columns
    print("tool-call scores:", {m: round(column["metrics"][m]["score"], 3) for m in METRICS})  # -s: the thresholds
    assert run.code == 0 and run.report["status"] == "done", (run.report["checks"], run.stderr)
    assert all(check["passed"] for check in run.report["checks"]) and len(run.report["checks"]) == 4
    assert_scored_rows(run, METRICS, 20)
    # the parsed answer of each row is a call as JSON or "none"
    cells = [cell for cell in run.results().cells.values() if cell.error is None]
    calls = [json.loads(c.answer) for c in cells if c.answer not in (None, "none")]
    assert calls and all({"name", "arguments"} <= set(call) for call in calls)
