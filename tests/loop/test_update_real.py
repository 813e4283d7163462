"""One real update of a line on SmolLM2: accepted (wrong) feedback -> a training job (child process) -> gates
through the evaluation runner -> rejected by the regression gate, the reason naming the set and the figures;
an admin promotes it by hand, the line then serves the new version (same greedy text as the version itself);
rollback serves the base again."""

from __future__ import annotations

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine.types import GenerationParams
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import load_results
from llmplay.evaluation.runner import EvalRunner
from llmplay.loop import lines
from llmplay.loop.update import list_updates, promote_candidate, run_update
from llmplay.models.registry import get_version
from llmplay.store import connect
from llmplay.training.jobs import JobRunner
from tests.conftest import CHAT_MODEL
from tests.loop.helpers import SENTENCES, add_accepted

pytestmark = [pytest.mark.slow]


def base_answers_as_regression_set(engine, runner: EvalRunner, name: str) -> int:
    """A regression set whose references are the base model's own answers: the base scores 100% on it, so a
    candidate that changed any answer scores lower. Returns its row count."""
    texts = [f"{text} (audit {i})" for i, (text, _) in enumerate(SENTENCES * 2)]
    save_dataset(engine.settings, f"{name}-probe", pd.DataFrame({"text": texts, "label": ["neutral"] * len(texts)}),
                 ColumnMapping({"text": "text"}, "label"))  # fmt: skip
    column = ColumnConfig("financial-sentiment", CHAT_MODEL, params=GenerationParams(max_new_tokens=4), mode="generate")
    results = load_results(
        engine.settings, runner.run(RunConfig(f"{name}-probe", (column,), (MetricConfig("accuracy"),)))
    )
    rows = [(t, results.cells[(i, 0)].answer) for i, t in enumerate(texts) if results.cells[(i, 0)].answer]
    frame = pd.DataFrame(rows, columns=["text", "label"], dtype=object)
    save_dataset(engine.settings, name, frame, ColumnMapping({"text": "text"}, "label"))
    return len(rows)


def test_an_update_trains_gates_and_an_admin_promotes_then_rolls_back(engine):
    settings = engine.settings
    runner = EvalRunner(engine)
    assert base_answers_as_regression_set(engine, runner, "loop-real-frozen") >= 6
    with connect(settings.db_path) as db:
        lines.create_line(
            db, "loop-real", CHAT_MODEL, "financial-sentiment",
            settings={"queues": ["loop-real-q"], "min_new_rows": 10, "heldout_fraction": 0.35, "epochs": 2.0,
                      "batch_size": 8, "learning_rate": 2e-3, "max_new_tokens": 4,
                      "regression_dataset": "loop-real-frozen", "regression_margin": 0.0, "general_ratio": 0.25,
                      "forgetting_retries": 0},
        )  # fmt: skip
        # (no retry: whether a probe gate fails beside the regression one, which would double the general rows of
        # a retry, depends on the seed; tests/loop/test_retry.py covers retries)
        add_accepted(db, 24, queue="loop-real-q", wrong=True)  # labelers who got every label wrong
    jobs = JobRunner(settings, catalog=engine.catalog, poll_s=0.5)
    try:
        update = run_update(engine, "loop-real", jobs=jobs, runner=runner, trigger="cli")
    finally:
        jobs.close()
    assert update is not None and update.status == "rejected", update
    gates = {g["gate"]: g for g in update.gates}
    assert set(gates) == {"feedback", "regression", "probe_task", "probe_perplexity", "probe_reply"}
    regression = gates["regression"]
    assert not regression["passed"] and regression["baseline"] == 1.0 and regression["candidate"] < 1.0
    assert regression["reason"].startswith("accuracy on regression set 'loop-real-frozen' dropped by ")
    assert f"{-regression['difference']:.3f}" in regression["reason"] and "95% CI" in regression["reason"]
    assert any("regression set 'loop-real-frozen'" in r for r in update.reasons)
    assert gates["feedback"]["n"] == len(update.heldout_ids) >= 5
    # Where its time went: self-rehearsal (general_ratio), the training job, the gates; all within the total.
    # Rehearsal may take ~0 s: the base model's replies are cached with the converted models (llmplay/loop/probe.py),
    # so an earlier test of the session that asked for the same prompts already paid for them.
    took = update.timings
    assert took["rehearsal_s"] >= 0 and took["train_s"] > 0 and took["gates_s"] > 0
    assert took["total_s"] >= took["data_s"] + took["rehearsal_s"] + took["train_s"] + took["gates_s"] - 0.5
    for gate in ("probe_perplexity", "probe_reply"):
        assert gates[gate]["baseline"] > 1 and gates[gate]["candidate"] > 1
    # Lineage: what it trained on, disjoint from the held-out items; the version it made belongs to the line.
    assert update.feedback_ids and not set(update.feedback_ids) & set(update.heldout_ids)
    version = get_version(settings.db_path, update.candidate_version_id)
    assert version.name == "loop-real"
    trained = [i for i in version.row_ids if i.startswith("fb")]
    assert sorted(trained) == sorted(f"fb{i}" for i in update.feedback_ids)
    general = [i for i in version.row_ids if i.startswith("general")]
    assert len(general) == len(update.general_ids) == round(len(update.feedback_ids) * 0.25)
    with connect(settings.db_path) as db:
        assert lines.get_line(db, "loop-real").active_version_id is None  # rejected: the base stays active
        consumed = db.execute(
            "select count(*) from feedback_consumption where consumer = ?", [f"loop:loop-real:update-{update.id}"]
        ).fetchone()[0]
        assert consumed == len(update.feedback_ids)
        assert list_updates(db, "loop-real")[0].id == update.id

    prompt = "Operating profit rose 30 % and the company raised its outlook."
    params = GenerationParams(max_new_tokens=8)

    def reply(model: str) -> str:
        return engine.generate(model, [prompt], params)[0].text

    base_text = reply(CHAT_MODEL)
    assert reply("line:loop-real") == base_text
    with connect(settings.db_path) as db:
        promote_candidate(db, update.id, user="root")
        assert lines.get_line(db, "loop-real").active_version_id == version.id
    assert reply("line:loop-real") == reply(version.label)
    with connect(settings.db_path) as db:
        lines.rollback(db, "loop-real", user="root")
        assert lines.get_line(db, "loop-real").active_version_id is None
        actions = [e["action"] for e in lines.events(db, "loop-real")]
    assert actions[:3] == ["rollback", "promote", "reject"]
    assert reply("line:loop-real") == base_text
