"""`llmplay eval evals/structured-output.yaml` on the bundled chat model, decoding freely and constrained: the
shipped structured-output example passes its thresholds, every row carries its JSON metrics (so intervals and
paired comparisons have rows), and the constrained column's replies all satisfy the schema."""

from __future__ import annotations

import pytest

from llmplay.evaluation.results import compare_columns, scoreboard
from tests.evaluation.examples import assert_scored_rows

METRICS = ["valid_json", "schema_valid", "field_match", "field_f1"]


@pytest.mark.slow
def test_the_structured_output_example_passes_and_scores_every_row(run_example):
    run = run_example("structured-output")
    free, constrained = run.columns
    for column in run.columns:
        print(column["title"], {m: round(column["metrics"][m]["score"], 3) for m in METRICS})  # -s: the thresholds
    assert run.code == 0 and run.report["status"] == "done", (run.report["checks"], run.stderr)
    assert all(check["passed"] for check in run.report["checks"]) and len(run.report["checks"]) == 6
    assert constrained["title"].endswith(" · constrained") and not free["title"].endswith("constrained")
    assert_scored_rows(run, METRICS, 20, column=0)
    assert_scored_rows(run, METRICS, 20, column=1)
    # Constrained decoding generates only replies the schema accepts: every row parses and is valid.
    assert {m: constrained["metrics"][m]["score"] for m in ("valid_json", "schema_valid")} == {
        "valid_json": 1.0,
        "schema_valid": 1.0,
    }
    # The Evaluate tab's scoreboard and paired comparison read these columns as any others: constrained minus free.
    results = run.results()
    board = scoreboard(results.info)
    assert {(c["title"], m) for c in run.columns for m in METRICS} <= set(zip(board["column"], board["metric"]))
    paired = compare_columns(results, 0, 1, "schema_valid")
    free_valid = free["metrics"]["schema_valid"]["score"]
    assert paired.interval.estimate == pytest.approx(1.0 - free_valid) and paired.difference.worse == []
    assert paired.difference.better == [r for r in range(20) if results.cells[(r, 0)].scores["schema_valid"] == 0]
