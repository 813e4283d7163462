"""`llmplay eval evals/structured-output.yaml` on the bundled chat model: the shipped structured-output example
passes its thresholds, and every row carries its JSON metrics (so intervals and paired comparisons have rows)."""

from __future__ import annotations

import json

import pytest

from llmplay.cli import main
from llmplay.evaluation.results import load_results
from llmplay.settings import Settings
from tests.conftest import ROOT

METRICS = ["valid_json", "schema_valid", "field_match", "field_f1"]


@pytest.mark.slow
def test_the_structured_output_example_passes_and_scores_every_row(tmp_path, model_cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "data"
    config = ROOT / "evals" / "structured-output.yaml"
    argv = ["--data-dir", str(data), "eval", str(config), "--prompts-dir", str(ROOT / "prompts"), "--quiet", "--json"]
    code = main(argv)
    out = capsys.readouterr()
    report = json.loads(out.out)
    free, constrained = report["summary"]["columns"]
    assert constrained["title"].endswith(" · constrained") and not free["title"].endswith("constrained")
    for column in (free, constrained):
        scores = {name: round(column["metrics"][name]["score"], 3) for name in METRICS if name in column["metrics"]}
        print(column["title"], scores, "errors:", column["metric_errors"])  # shown with -s: the thresholds
        assert column["n"] == 20 and column["metric_errors"] == {}, column["title"]
        for name in METRICS:
            metric = column["metrics"][name]
            assert 0 <= metric["low"] <= metric["score"] <= metric["high"] <= 1 and metric["n"] == 20, name
    assert code == 0, (report["checks"], out.err)
    assert report["status"] == "done"
    assert all(check["passed"] for check in report["checks"]) and len(report["checks"]) == 6
    # Constrained decoding generates only replies the schema accepts: every row parses and is valid.
    assert (
        constrained["metrics"]["valid_json"]["score"] == 1.0 and constrained["metrics"]["schema_valid"]["score"] == 1.0
    )
    # Per-row scores, stored in every cell: what the grid, intervals and paired comparisons read.
    results = load_results(Settings.from_env(data_dir=data), report["run_id"])
    cells = [cell for cell in results.cells.values() if cell.error is None]
    assert len(cells) == 40 and all(set(METRICS) <= set(cell.scores) for cell in cells)
    field_f1 = results.column_scores(0, "field_f1")
    assert sum(field_f1) / len(field_f1) == pytest.approx(free["metrics"]["field_f1"]["score"])
