"""Running a shipped example config (evals/*.yaml) through `llmplay eval` as a user would, for the real-model
tests of each evaluation kind: the exit code, the JSON report and the stored results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from llmplay.cli import main
from llmplay.evaluation.results import RunResults, load_results
from llmplay.settings import Settings
from tests.conftest import ROOT


@dataclass
class ExampleRun:
    code: int
    report: dict
    stderr: str
    data: Path

    @property
    def columns(self) -> list[dict]:
        return self.report["summary"]["columns"]

    def results(self) -> RunResults:
        return load_results(Settings.from_env(data_dir=self.data), self.report["run_id"])


def example_runner(tmp_path: Path, model_cache_dir: Path, monkeypatch, capsys):
    """``run(name, **changes)``: `llmplay eval evals/<name>.yaml` (the shipped file, or a copy with ``changes`` to
    its top-level keys, e.g. a sample) on the bundled models, in one data dir per test."""
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "data"

    def run(name: str, **changes) -> ExampleRun:
        config = ROOT / "evals" / f"{name}.yaml"
        if changes:
            changed = {**yaml.safe_load(config.read_text(encoding="utf-8")), **changes}
            config = tmp_path / f"{name}-{len(list(tmp_path.glob('*.yaml')))}.yaml"
            config.write_text(yaml.safe_dump(changed), encoding="utf-8")
        argv = ["--data-dir", str(data), "eval", str(config), "--prompts-dir", str(ROOT / "prompts"), "--quiet"]
        code = main([*argv, "--json"])
        out = capsys.readouterr()
        return ExampleRun(code, json.loads(out.out), out.err, data)

    return run


def assert_scored_rows(run: ExampleRun, metrics: list[str], rows: int, column: int = 0) -> None:
    """Every metric of the column has its interval over all ``rows``, and each answered cell its per-row scores
    (what the grid, intervals and paired comparisons read), whose mean is the column's score."""
    entry = run.columns[column]
    assert entry["n"] == rows and entry["metric_errors"] == {}, (entry["title"], entry["metric_errors"])
    for name in metrics:
        metric = entry["metrics"][name]
        assert 0 <= metric["low"] <= metric["score"] <= metric["high"] <= 1 and metric["n"] == rows, name
    results = run.results()
    cells = [cell for (_, c), cell in results.cells.items() if c == column and cell.error is None]
    assert len(cells) == rows and all(set(metrics) <= set(cell.scores) for cell in cells)
    for name in metrics:
        scores = results.column_scores(column, name)
        assert sum(scores) / len(scores) == pytest.approx(entry["metrics"][name]["score"]), name
