"""Evaluation runs on the real bundled models and real rows from ../shared/datasets, stored in a real SQLite file."""

from __future__ import annotations

import json
import random
import shutil
import time

import pandas as pd
import pytest
from seqeval.metrics import f1_score

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine import GenerationParams
from llmplay.errors import InvalidRequestError
from llmplay.evaluation.config import ColumnConfig, JudgeConfig, MetricConfig, RunConfig
from llmplay.evaluation.progress import mark_interrupted
from llmplay.evaluation.results import compare_columns, compare_runs, get_run, load_results, scoreboard
from llmplay.evaluation.runner import EvalRunner
from llmplay.evaluation.scorer import entity_lines_to_bio
from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from tests.conftest import BASE_MODEL, CHAT_MODEL, ROOT, SHARED_DATASETS

LABELS = ("positive", "negative", "neutral")


@pytest.fixture(scope="module")
def runner(engine, tmp_path_factory) -> EvalRunner:
    folder = tmp_path_factory.mktemp("eval-prompts") / "prompts"
    shutil.copytree(ROOT / "prompts", folder, ignore=shutil.ignore_patterns("README.md"))
    return EvalRunner(engine, TemplateLibrary(folder, engine.settings.db_path))


def _jsonl(path) -> list[dict]:
    if not path.exists():  # a clone without ../shared: these tests need the real data set
        pytest.skip(f"{path} is missing (the shared datasets are not next to this clone)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def fpb30(engine) -> str:
    rows = _jsonl(SHARED_DATASETS / "financial_phrasebank" / "sentences_allagree.jsonl")
    random.Random(4).shuffle(rows)
    df = pd.DataFrame(rows[:30], columns=["text", "label"], dtype=object)
    save_dataset(engine.settings, "fpb30-runs", df, ColumnMapping({"text": "text"}, "label"), source="fpb")
    return "fpb30-runs"


def _sentiment(params: GenerationParams | None = None, **kw) -> ColumnConfig:
    return ColumnConfig("financial-sentiment", CHAT_MODEL, params=params or GenerationParams(max_new_tokens=6), **kw)


def _independent_label(text: str) -> str | None:
    """The test's own parser: the label word that appears first in the reply (ignoring case)."""
    found = [(m, label) for label in LABELS if (m := text.lower().find(label)) >= 0]
    return min(found)[1] if found else None


def test_sentiment_run_accuracy_matches_an_independent_recomputation(runner, engine, fpb30):
    run_id = runner.run(RunConfig(dataset=fpb30, columns=(_sentiment(),), metrics=(MetricConfig("accuracy"),)))
    info = get_run(engine.settings, run_id)
    assert info.status == "done" and info.done_cells == 30 and info.failed_cells == 0

    # Recompute from what SQLite holds: the raw replies and the stored rows, not the run's own parsed answers.
    with connect(engine.settings.db_path) as db:
        stored = list(
            db.query(
                "select r.data, o.text from eval_cells c join eval_rows r on r.run_id = c.run_id "
                "and r.row_index = c.row_index join eval_outputs o on o.id = c.output_id where c.run_id = ?",
                [run_id],
            )
        )
    assert len(stored) == 30
    correct = [_independent_label(s["text"]) == json.loads(s["data"])["label"] for s in stored]
    expected = sum(correct) / len(correct)

    accuracy = info.summary["columns"][0]["metrics"]["accuracy"]
    assert accuracy["score"] == pytest.approx(expected)
    assert accuracy["low"] <= accuracy["score"] <= accuracy["high"] and accuracy["n"] == 30
    # Latency, tokens/s and output length are always recorded.
    column = info.summary["columns"][0]
    assert column["latency_s"]["score"] > 0 and column["tokens_per_s"]["score"] > 0 and column["output_tokens"]["n"]
    board = scoreboard(info)
    assert set(board["metric"]) >= {"accuracy", "latency_s", "tokens_per_s"}
    # Every stored output names what computed it: evaluation batches decode on the reference backend.
    with connect(engine.settings.db_path) as db:
        sql = "select o.backend from eval_cells c join eval_outputs o on o.id = c.output_id where c.run_id = ?"
        produced = {r["backend"] for r in db.query(sql, [run_id])}
    assert produced == {"transformers float32"}


def test_rerun_is_served_from_the_cache_and_one_changed_column_regenerates(runner, engine, fpb30):
    first = _sentiment()
    second = _sentiment(GenerationParams(max_new_tokens=6, seed=424242))
    config = RunConfig(dataset=fpb30, columns=(first, second), metrics=(MetricConfig("accuracy"),))
    runner.run(config)
    again = get_run(engine.settings, runner.run(config))
    assert again.generated_cells == 0 and again.cached_cells == 60

    changed = RunConfig(
        dataset=fpb30,
        columns=(first, _sentiment(GenerationParams(max_new_tokens=6, seed=777001))),
        metrics=(MetricConfig("accuracy"),),
    )
    third = get_run(engine.settings, runner.run(changed))
    assert third.generated_cells == 30 and third.cached_cells == 30
    results = load_results(engine.settings, third.id)
    assert all(results.cells[(r, 0)].cached for r in range(30))
    assert not any(results.cells[(r, 1)].cached for r in range(30))
    # Greedy decoding ignores the seed: the regenerated column says the same, so the paired difference is 0.
    comparison = compare_columns(results, 0, 1, "accuracy")
    assert comparison.interval.estimate == 0 and comparison.difference.better == []
    regressions = compare_runs(engine.settings, again.id, third.id)
    assert list(regressions.table["delta"]) == [0.0] and regressions.regressions.empty


def test_likelihood_mode_never_leaves_an_answer_unparseable(runner, engine, fpb30):
    run_id = runner.run(
        RunConfig(
            dataset=fpb30,
            sample=8,
            seed=3,
            columns=(_sentiment(mode="likelihood"),),
            metrics=(MetricConfig("accuracy"), MetricConfig("macro_f1")),
        )
    )
    info = get_run(engine.settings, run_id)
    column = info.summary["columns"][0]
    assert info.rows == 8 and column["mode"] == "likelihood" and column["unparseable"] == 0
    assert "tokens_per_s" not in column and column["latency_s"]["score"] > 0  # nothing generated, only scored
    results = load_results(engine.settings, run_id)
    assert all(results.cells[(r, 0)].answer in LABELS for r in range(8))
    with connect(engine.settings.db_path) as db:
        details = [
            json.loads(d["details"])
            for d in db.query("select details from eval_outputs where mode = ?", ["likelihood"])
        ]
    assert details and set(details[0]["options"]) == set(LABELS)
    with connect(engine.settings.db_path) as db:
        assert {r["backend"] for r in db.query("select backend from eval_outputs where mode = 'likelihood'")} == {
            "transformers float32"
        }


def test_ner_run_scores_entities_with_seqeval_on_conll_rows(runner, engine):
    rows = _jsonl(SHARED_DATASETS / "conll2003" / "eng.testb.jsonl")
    picked = [r for r in rows if sum(t != "O" for t in r["tags_iob2"]) >= 2 and 8 <= len(r["tokens"]) <= 20][:8]
    df = pd.DataFrame(
        [{"text": " ".join(r["tokens"]), "tags": json.dumps(r["tags_iob2"])} for r in picked], dtype=object
    )
    save_dataset(engine.settings, "conll8", df, ColumnMapping({"text": "text"}, "tags"))
    column = ColumnConfig("ner-extraction", CHAT_MODEL, params=GenerationParams(max_new_tokens=48))
    run_id = runner.run(RunConfig(dataset="conll8", columns=(column,)))
    info = get_run(engine.settings, run_id)
    assert info.status == "done", info.error
    metrics = info.summary["columns"][0]["metrics"]
    assert set(metrics) == {"entity_f1", "entity_precision", "entity_recall"}  # the template's suggestions

    results = load_results(engine.settings, run_id)
    gold = [r["tags_iob2"] for r in picked]
    predicted = [entity_lines_to_bio(results.cells[(i, 0)].answer, r["tokens"]) for i, r in enumerate(picked)]
    assert metrics["entity_f1"]["score"] == pytest.approx(f1_score(gold, predicted, zero_division=0))
    assert 0 <= metrics["entity_f1"]["low"] <= metrics["entity_f1"]["score"] <= metrics["entity_f1"]["high"] <= 1


def test_cancel_stops_within_seconds_and_keeps_finished_rows(engine, runner):
    rows = _jsonl(SHARED_DATASETS / "alpaca_eval" / "alpaca_eval_instructions.jsonl")[:24]
    key = next(k for k in ("instruction", "prompt", "text") if k in rows[0])
    df = pd.DataFrame([{"message": r[key]} for r in rows], dtype=object)
    save_dataset(engine.settings, "alpaca24", df, ColumnMapping({"message": "message"}))
    slow = EvalRunner(engine, runner.library, chunk_size=2)
    column = ColumnConfig("assistant", CHAT_MODEL, params=GenerationParams(max_new_tokens=200, seed=99))
    run_id = slow.submit(RunConfig(dataset="alpaca24", columns=(column,), metrics=(MetricConfig("length"),)))

    deadline = time.monotonic() + 120
    while slow.progress(run_id).done < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slow.progress(run_id).done >= 2, "the first chunk never finished"
    asked = time.monotonic()
    assert slow.cancel(run_id)
    final = slow.wait(run_id, timeout=30)
    assert time.monotonic() - asked < 8
    assert final.status == "cancelled" and 2 <= final.done < 24

    # The finished rows are stored and a rerun resumes from them.
    results = load_results(engine.settings, run_id)
    assert len(results.cells) == final.done and all(c.text for c in results.cells.values())
    assert not slow.cancel(run_id)  # nothing left to cancel


def test_judge_verdicts_are_stored_and_scored(runner, engine, fpb30):
    config = RunConfig(
        dataset=fpb30,
        sample=3,
        columns=(_sentiment(),),
        metrics=(MetricConfig("accuracy"),),
        judge=JudgeConfig(model=CHAT_MODEL, params=GenerationParams(max_new_tokens=40)),
    )
    run_id = runner.run(config)
    results = load_results(engine.settings, run_id)
    verdicts = [results.cells[(r, 0)].judge_verdict for r in range(3)]
    assert all(v for v in verdicts)  # the judge's raw text is kept
    judge = get_run(engine.settings, run_id).summary["columns"][0]["metrics"]["judge"]
    graded = [results.cells[(r, 0)].judge_score for r in range(3)]
    expected = sum(0.0 if g is None else (g - 1) / 4 for g in graded) / 3
    assert judge["score"] == pytest.approx(expected) and judge["ungraded"] == sum(g is None for g in graded)
    # Judging again reuses the stored verdicts (no new judge outputs).
    with connect(engine.settings.db_path) as db:
        before = db["eval_outputs"].count
    runner.run(config)
    with connect(engine.settings.db_path) as db:
        assert db["eval_outputs"].count == before


def test_bad_configs_are_refused_before_anything_runs(runner, engine, fpb30):
    with connect(engine.settings.db_path) as db:
        before = db["eval_runs"].count
    bad = RunConfig(
        dataset=fpb30,
        columns=(
            ColumnConfig("no-such-template", CHAT_MODEL),
            ColumnConfig("financial-sentiment", "no-such-model"),
            ColumnConfig("news-summary", BASE_MODEL),  # its variable is not a dataset column
        ),
        metrics=(MetricConfig("no_such_metric"),),
    )
    with pytest.raises(InvalidRequestError) as err:
        runner.submit(bad)
    message = str(err.value)
    for needle in ("no-such-template", "no-such-model", "no_such_metric", "have no dataset column"):
        assert needle in message
    with pytest.raises(InvalidRequestError, match="No dataset named"):
        runner.submit(RunConfig(dataset="missing", columns=(_sentiment(),)))
    with pytest.raises(InvalidRequestError, match="likelihood"):
        runner.submit(RunConfig(dataset=fpb30, columns=(ColumnConfig("news-summary", CHAT_MODEL, mode="likelihood"),)))
    with connect(engine.settings.db_path) as db:
        assert db["eval_runs"].count == before


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(settings):
    from llmplay.store import open_db

    db = open_db(settings.db_path)
    db["eval_runs"].insert({"name": "x", "status": "running", "config": "{}", "created_at": "t", "pid": 2**22 + 12345})
    db.close()
    assert mark_interrupted(settings.db_path) == 1
    with connect(settings.db_path) as db:
        row = next(db.query("select status, error from eval_runs"))
    assert row["status"] == "interrupted" and "rerun" in row["error"]


@pytest.fixture(scope="module")
def lora_adapter(engine, tmp_path_factory):
    """A real (untrained, randomly initialised) LoRA adapter for SmolLM2, saved with peft."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    base = AutoModelForCausalLM.from_pretrained(loaded.folder)  # a private copy: the shared model stays as it is
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    folder = tmp_path_factory.mktemp("adapter") / "smol-lora"
    get_peft_model(base, config).save_pretrained(folder)
    return folder


def test_a_column_can_carry_a_lora_adapter_and_its_outputs_are_its_own(runner, engine, fpb30, lora_adapter):
    params = GenerationParams(max_new_tokens=6)
    base = ColumnConfig("financial-sentiment", CHAT_MODEL, params=params)
    adapted = ColumnConfig("financial-sentiment", CHAT_MODEL, adapter=str(lora_adapter), params=params)
    config = RunConfig(dataset=fpb30, sample=4, columns=(base, adapted), metrics=(MetricConfig("accuracy"),))
    run_id = runner.run(config)
    info = get_run(engine.settings, run_id)
    assert info.status == "done", info.error
    assert info.summary["columns"][1]["adapter"] == str(lora_adapter) and "+smol-lora" in info.titles[1]
    results = load_results(engine.settings, run_id)
    assert not any(results.cells[(r, 1)].cached for r in range(4))  # never served from the base model's outputs
    with connect(engine.settings.db_path) as db:
        adapters = {r["adapter"] for r in db.query("select adapter from eval_outputs where adapter != ''")}
    assert str(lora_adapter) in adapters

    # New adapter weights in the same folder are a new adapter: its cells are generated again.
    weights = lora_adapter / "adapter_model.safetensors"
    from safetensors.torch import load_file, save_file

    tensors = {k: v * 0.5 for k, v in load_file(weights).items()}
    save_file(tensors, weights)
    again = get_run(engine.settings, runner.run(config))
    assert again.cached_cells == 4 and again.generated_cells == 4  # base column cached, adapter column regenerated
