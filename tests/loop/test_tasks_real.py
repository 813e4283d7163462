"""The per-task gate on real models: a candidate that keeps one task and drops another is rejected with the dropped
task named. The two slices are built so the verdicts are known whatever the models answer: slice "kept-by-active"
takes SmolLM2's own answers as its references (the active version scores 1.0 there, the other model less), slice
"kept-by-candidate" takes Gemma's (the candidate scores 1.0)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, load_dataset, save_dataset
from llmplay.datasets.samples import install_builtins
from llmplay.engine.types import GenerationParams
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import load_results
from llmplay.evaluation.runner import EvalRunner
from llmplay.loop.gates import _compare, template_metric
from llmplay.loop.lines import create_line, update_settings
from llmplay.loop.tasks import task_gates
from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from tests.conftest import BASE_MODEL, CHAT_MODEL, ROOT

TEMPLATE = "financial-sentiment"


@pytest.mark.slow
def test_a_candidate_that_drops_one_task_is_rejected_with_the_task_named(isolated_engine, tmp_path):
    engine = isolated_engine
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder, ignore=shutil.ignore_patterns("README.md"))
    runner = EvalRunner(engine, TemplateLibrary(folder, engine.settings.db_path))
    install_builtins(engine.settings)
    with connect(engine.settings.db_path) as db:
        line = create_line(db, "two-tasks", CHAT_MODEL, TEMPLATE, settings={"max_new_tokens": 6})
    # Both models' answers on the sample, as the gate runs will ask (same parameters: the gates reuse them cached).
    params = GenerationParams(max_new_tokens=line.settings.max_new_tokens)
    columns = tuple(ColumnConfig(TEMPLATE, m, params=params, mode="generate") for m in (CHAT_MODEL, BASE_MODEL))
    results = load_results(
        engine.settings, runner.run(RunConfig("financial-sentiment", columns, (MetricConfig("accuracy"),)))
    )
    texts = load_dataset(engine.settings, "financial-sentiment").df["text"].tolist()
    answers = [[results.cells[(r, c)].answer for r in range(len(texts))] for c in (0, 1)]
    differ = [
        r for r in range(len(texts)) if None not in (answers[0][r], answers[1][r]) and answers[0][r] != answers[1][r]
    ]
    assert len(differ) >= 5, f"the two models should disagree on some rows: {answers}"
    for name, source in (("kept-by-active", 0), ("kept-by-candidate", 1)):
        frame = pd.DataFrame([{"text": texts[r], "label": answers[source][r]} for r in differ], dtype=object)
        save_dataset(engine.settings, name, frame, ColumnMapping({"text": "text"}, "label"))
    tasks = [{"name": "sentiment", "dataset": "kept-by-active"}, {"name": "other", "dataset": "kept-by-candidate"}]
    with connect(engine.settings.db_path) as db:
        line = update_settings(db, line.name, {"tasks": tasks})

    def compare(dataset, template, metric):
        return _compare(runner, engine.settings, dataset, template, CHAT_MODEL, BASE_MODEL, metric, line.settings)

    forgot, kept = task_gates(line, compare, lambda t: template_metric(runner.library, t), CHAT_MODEL, BASE_MODEL)
    assert (forgot.task, forgot.metric, forgot.baseline, forgot.candidate) == ("sentiment", "accuracy", 1.0, 0.0)
    assert not forgot.passed and forgot.n == len(differ)
    assert forgot.reason.startswith("task 'sentiment' forgot: accuracy on 'kept-by-active' dropped by 1.000")
    assert (kept.task, kept.passed, kept.candidate) == ("other", True, 1.0)
