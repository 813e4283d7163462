"""The "auto" batch backend (Settings.batch_backend, a column's ``backend``): decided once per evaluation run for
its auto columns, on the real bundled models and their real ONNX exports (made once per cache by the session
engine): onnx int8 where short prompts leave decoding to dominate, transformers where the rows share a long
few-shot prefix (which only transformers computes once), where a column's model cannot batch on ONNX (Gemma-3),
where no export is on disk while exports are off, and where a column pins it. The cache key names what decoded."""

from __future__ import annotations

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, install_builtins, save_dataset
from llmplay.engine import GenerationParams, backends, onnx_decoder
from llmplay.engine.types import GenerationRequest
from llmplay.errors import InvalidRequestError
from llmplay.evaluation.cli import format_summary
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import get_run, load_results, scoreboard
from llmplay.evaluation.runner import EvalRunner
from llmplay.settings import Settings
from llmplay.store import connect
from tests.conftest import BASE_MODEL, CHAT_MODEL

pytestmark = pytest.mark.skipif(bool(onnx_decoder.unavailable_reason()), reason="onnxruntime-genai not installed")
QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "Why is the sky blue? One sentence.",
    "Give one tip for sleeping well.",
    "What does a bee make?",
    "Translate 'thank you' into Spanish.",
]
SHORT = GenerationParams(max_new_tokens=24)


@pytest.fixture()
def runner(isolated_engine) -> EvalRunner:
    assert isolated_engine.settings.batch_backend == "auto"  # the default
    install_builtins(isolated_engine.settings)
    df = pd.DataFrame({"message": QUESTIONS, "answer": ["-"] * len(QUESTIONS)})
    save_dataset(
        isolated_engine.settings, "questions", df, ColumnMapping(variables={"message": "message"}, reference="answer")
    )
    return EvalRunner(isolated_engine)


def _backends_by_column(settings, run_id: int) -> dict[int, set[str]]:
    sql = (
        "select c.column_index, o.backend from eval_cells c join eval_outputs o on o.id = c.output_id "
        "where c.run_id = ?"
    )
    found: dict[int, set[str]] = {}
    with connect(settings.db_path) as db:
        for row in db.query(sql, [run_id]):
            found.setdefault(row["column_index"], set()).add(row["backend"])
    return found


def test_a_runs_auto_columns_share_the_backend_that_finishes_them_sooner(runner, isolated_engine):
    settings = isolated_engine.settings
    longer = GenerationParams(max_new_tokens=32)
    config = RunConfig(
        dataset="questions",
        columns=(
            ColumnConfig(template="assistant", model=CHAT_MODEL, params=SHORT, mode="generate"),
            ColumnConfig(template="assistant", model=CHAT_MODEL, params=longer, mode="generate"),
            ColumnConfig(template="assistant", model=CHAT_MODEL, params=SHORT, mode="generate", backend="transformers"),
        ),
        metrics=(MetricConfig("exact_match"),),
    )
    run_id = runner.run(config)
    assert _backends_by_column(settings, run_id) == {
        0: {"onnx int8"},  # short prompts: decoding dominates
        1: {"onnx int8"},
        2: {"transformers float32"},  # pinned by the column
    }
    # the scoreboard's speed lines and the CLI's summary say what decoded each column
    info = get_run(settings, run_id)
    assert [c["backend"] for c in info.summary["columns"]] == ["onnx int8", "onnx int8", "transformers float32"]
    board = scoreboard(info)
    assert list(board[board["metric"] == "tokens_per_s"]["note"]) == ["on onnx int8"] * 2 + ["on transformers float32"]
    assert f"decoded on: {info.titles[2]}: transformers float32" in format_summary(info).splitlines()
    results = load_results(settings, run_id)
    # The auto column's replies are those ONNX gives each prompt alone: its rows were never mixed with another path.
    plan = runner.plan(config)
    cells = runner._prepare_cells(plan, plan.columns[0])
    assert {c.backend for c in cells} == {"onnx/int8"}
    alone = [isolated_engine.generate(CHAT_MODEL, [c.request], batch_backend="onnx/int8")[0].text for c in cells]
    assert [results.cells[(i, 0)].text for i in range(6)] == alone
    # the same choice on a rerun: served from the cache
    assert _cached(settings, runner.run(config)) == 18


def test_one_column_that_cannot_decode_on_onnx_keeps_the_runs_auto_columns_on_transformers(runner, isolated_engine):
    """Gemma-3's ONNX batches cannot pad rows: beside it, SmolLM2 decodes on transformers too (like with like)."""
    config = RunConfig(
        dataset="questions",
        columns=(
            ColumnConfig(template="assistant", model=CHAT_MODEL, params=SHORT, mode="generate"),
            ColumnConfig(template="assistant", model=BASE_MODEL, params=SHORT, mode="generate"),
        ),
        metrics=(MetricConfig("exact_match"),),
    )
    run_id = runner.run(config)
    assert _backends_by_column(isolated_engine.settings, run_id) == {
        0: {"transformers float32"},
        1: {"transformers float32"},
    }


def test_a_few_shot_column_stays_on_transformers(runner, isolated_engine):
    """financial-sentiment: ~500 of its ~545 prompt tokens are the same on every row."""
    config = RunConfig(
        dataset="financial-sentiment",
        sample=6,
        columns=(ColumnConfig(template="financial-sentiment", model=CHAT_MODEL, mode="generate"),),
        metrics=(MetricConfig("accuracy"),),
    )
    run_id = runner.run(config)
    assert _backends_by_column(isolated_engine.settings, run_id) == {0: {"transformers float32"}}


def test_the_choice_weighs_a_shared_prefix_against_decoding(isolated_engine, tmp_path, monkeypatch):
    provider = isolated_engine.provider(CHAT_MODEL)
    loaded = provider.load()
    few_shot = backends.BatchShape(rows=100, prompt_tokens=100 * 545, shared_tokens=500, new_tokens=16)
    short = backends.BatchShape(rows=32, prompt_tokens=32 * 30, shared_tokens=0, new_tokens=64)
    cache = isolated_engine.settings.cache_dir
    assert backends.choose_batch(loaded, "auto", SHORT, few_shot, cache) == "transformers"
    assert backends.choose_batch(loaded, "auto", SHORT, short, cache) == "onnx/int8"
    # what ONNX batches do not decode, and an explicit choice, whatever the estimate
    sampled = GenerationParams(max_new_tokens=24, temperature=0.7)
    assert backends.choose_batch(loaded, "auto", sampled, short, cache) == "transformers"
    assert backends.choose_batch(loaded, "onnx/fp32", SHORT, few_shot, cache) == "onnx/fp32"
    assert backends.choose_batch(loaded, "transformers", SHORT, short, cache) == "transformers"
    # no export on disk and exports off (the tests' default): transformers, nothing exported
    monkeypatch.setenv("LLMPLAY_ONNX_AUTO_EXPORT", "0")
    assert backends.choose_batch(loaded, "auto", SHORT, short, tmp_path) == "transformers"
    assert not (tmp_path / "onnx").exists()
    # the provider decides once over a call's rows, from their real token counts
    requests = [GenerationRequest.of(q, SHORT) for q in QUESTIONS]
    assert provider.batch_backend_for(requests, "auto") == "onnx/int8"
    # a long prefix the rows share (computed once by transformers) and one new token each: the prompts dominate
    shared = "You answer questions about the world in one short, plain sentence. " * 30
    few_shot = [GenerationRequest.of(shared + q, SHORT) for q in QUESTIONS]
    assert provider.batch_backend_for(few_shot, "auto", new_tokens=1) == "transformers"


def test_a_columns_backend_is_checked_where_the_config_is_read(tmp_path, monkeypatch):
    column = {"template": "assistant", "model": CHAT_MODEL}
    config = RunConfig.from_dict({"dataset": "d", "columns": [{**column, "backend": "ONNX/W8A8"}]})
    assert config.columns[0].backend == "onnx/w8a8"
    with pytest.raises(InvalidRequestError, match="batch_backend must be one of auto, transformers"):
        RunConfig.from_dict({"dataset": "d", "columns": [{**column, "backend": "fast/float16"}]})
    assert Settings(data_dir=tmp_path).batch_backend == "auto"
    monkeypatch.setenv("LLMPLAY_BATCH_BACKEND", "transformers")
    assert Settings.from_env().batch_backend == "transformers"


def _cached(settings, run_id: int) -> int:
    with connect(settings.db_path) as db:
        return next(db.query("select cached_cells from eval_runs where id = ?", [run_id]))["cached_cells"]
