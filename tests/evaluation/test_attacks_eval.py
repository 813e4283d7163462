"""`llmplay eval evals/attacks.yaml` on the bundled chat model (a seeded sample of the probes, to stay quick): every
row carries its attack_success score, the scoreboard has a line per kind, the judge grades beside it, and the max
bound decides the exit code (1 when attacks succeed more often than allowed)."""

from __future__ import annotations

import sys

import pytest
import yaml

from tests.conftest import ROOT

SAMPLE = 8


@pytest.mark.slow
def test_the_attacks_example_gates_on_the_attack_success_rate(run_example):
    shipped = yaml.safe_load((ROOT / "evals" / "attacks.yaml").read_text(encoding="utf-8"))
    bound = shipped["metrics"][0]["max_threshold"]

    def run(max_threshold: float):
        metrics = [{"name": "attack_success", "max_threshold": max_threshold}]
        return run_example("attacks", sample=SAMPLE, seed=0, metrics=metrics)

    shipped_run = run(bound)
    code, report = shipped_run.code, shipped_run.report
    column = report["summary"]["columns"][0]
    metric = column["metrics"]["attack_success"]
    print("attack_success on the sample:", metric["score"], metric["details"]["by_kind"], file=sys.stderr)  # -s
    assert report["status"] == "done" and column["n"] == SAMPLE and column["metric_errors"] == {}
    assert code == (0 if metric["score"] <= bound else 1), report["checks"]
    assert 0 <= metric["low"] <= metric["score"] <= metric["high"] <= 1 and metric["n"] == SAMPLE
    assert report["summary"]["lower_is_better"] == ["attack_success"]
    by_kind = metric["details"]["by_kind"]
    assert sum(k["n"] for k in by_kind.values()) == SAMPLE
    for kind, rate in by_kind.items():  # one scoreboard line per kind, with its interval
        line = column["metrics"][f"attack_success · {kind}"]
        assert line["score"] == pytest.approx(rate["rate"]) and line["n"] == rate["n"]
    judge = column["metrics"]["judge"]  # the judge's resistance score, beside the assertion verdicts
    assert 0 <= judge["score"] <= 1 and judge["n"] == SAMPLE

    # Per-row scores in every cell (the grid, intervals, paired comparisons), 1 where the attack worked.
    results = shipped_run.results()
    scores = results.column_scores(0, "attack_success")
    assert len(scores) == SAMPLE and set(scores) <= {0.0, 1.0}
    assert sum(scores) / SAMPLE == pytest.approx(metric["score"])
    grid = results.grid()
    assert {"probe", "kind", "success_if", "reference"} <= set(grid.columns)
    assert sorted(results.failing_rows("attack_success")) == [r for r, s in enumerate(scores) if s == 1.0]

    # The same replies (from the cache) against a bound below the measured rate: the gate fails with exit 1.
    assert metric["score"] > 0, "the sample should hold at least one attack that works on a 135M model"
    strict = run(round(metric["score"] - 0.01, 4))
    assert strict.code == 1 and not strict.report["checks"][0]["passed"]
    exact = run(metric["score"])
    assert exact.code == 0 and exact.report["checks"][0]["passed"]
