"""Evaluation batches on ONNX Runtime (Settings.batch_backend = "onnx/int8", "onnx/w8a8"), on the real bundled models
and their real exports (made once per cache by the session engine): each reply equals its prompt decoded alone on the
same path, whatever its batch mates, lengths and order."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from llmplay.engine import Engine, GenerationParams, onnx_decoder
from llmplay.engine.types import GenerationRequest
from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from tests.conftest import BASE_MODEL, CHAT_MODEL, PARIS_QUESTION
from tests.engine.test_fast_backend import SHORT_PROMPTS, stream

pytestmark = pytest.mark.skipif(bool(onnx_decoder.unavailable_reason()), reason="onnxruntime-genai not installed")
ONNX_BATCH = "onnx/int8"
# prompts of very different lengths, so each batch pads most of its rows
PROMPTS = [
    *SHORT_PROMPTS,
    "Hi",
    "Write a short paragraph about the history of the bicycle, with two dates and one inventor's name.",
    "Explain in three sentences why the sea is salty, for a ten-year-old who likes boats and fishing.",
]


@pytest.fixture()
def onnx_engine(settings, engine):
    eng = Engine(replace(settings, batch_backend=ONNX_BATCH), shared_models=engine.models)
    yield eng
    eng.close()


def test_batched_replies_equal_one_at_a_time(onnx_engine):
    params = GenerationParams(max_new_tokens=24)
    batched = onnx_engine.generate(CHAT_MODEL, PROMPTS, params)
    alone = [onnx_engine.generate(CHAT_MODEL, [p], params)[0] for p in PROMPTS]
    assert [r.backend for r in batched] == ["onnx int8"] * len(PROMPTS)
    assert [(r.text, r.completion_tokens, r.finish_reason) for r in batched] == [
        (r.text, r.completion_tokens, r.finish_reason) for r in alone
    ]
    assert all(r.text for r in batched) and {r.finish_reason for r in batched} == {"stop", "length"}
    # another order and batch size: the same replies
    mixed = [PROMPTS[-1], PROMPTS[2], PROMPTS[-3]]
    assert [r.text for r in onnx_engine.generate(CHAT_MODEL, mixed, params)] == [
        alone[-1].text,
        alone[2].text,
        alone[-3].text,
    ]


def test_w8a8_batches_equal_one_at_a_time(settings, engine):
    """int8 products with a scale per row (what "auto" batches decode on): no reply depends on its batch mates."""
    rows = Engine(replace(settings, batch_backend="onnx/w8a8"), shared_models=engine.models)
    try:
        params = GenerationParams(max_new_tokens=24)
        batched = rows.generate(CHAT_MODEL, PROMPTS, params)
        alone = [rows.generate(CHAT_MODEL, [p], params)[0] for p in PROMPTS]
        assert [r.backend for r in batched] == ["onnx w8a8"] * len(PROMPTS)
        assert [(r.text, r.completion_tokens) for r in batched] == [(r.text, r.completion_tokens) for r in alone]
        assert all(r.text for r in batched)
        mixed = [PROMPTS[-1], PROMPTS[2]]
        assert [r.text for r in rows.generate(CHAT_MODEL, mixed, params)] == [alone[-1].text, alone[2].text]
        _, streamed, _ = stream(rows, PROMPTS[0], params, "onnx/w8a8")  # the Playground shows the same reply
        assert streamed.text == alone[0].text
    finally:
        rows.close()


def test_a_batched_reply_is_the_streamed_one_with_its_counts(onnx_engine):
    """What an evaluation measures on onnx int8 is what the Playground shows on it."""
    params = GenerationParams(max_new_tokens=32)
    batched = onnx_engine.generate(CHAT_MODEL, [PARIS_QUESTION, *SHORT_PROMPTS[:3]], params)
    for prompt, result in zip([PARIS_QUESTION, *SHORT_PROMPTS[:3]], batched):
        _, streamed, _ = stream(onnx_engine, prompt, params, ONNX_BATCH)
        assert (result.text, result.prompt_tokens, result.completion_tokens) == (
            streamed.text,
            streamed.prompt_tokens,
            streamed.completion_tokens,
        )
    assert batched[0].text == "The capital of France is Paris."


def test_stop_strings_end_each_row_as_alone(onnx_engine):
    prompts = ["Count from 1 to 10, one number per line.", "Count from 1 to 8, one number per line."]
    params = GenerationParams(max_new_tokens=40, stop=("4",))
    batched = onnx_engine.generate(CHAT_MODEL, prompts, params)
    full = onnx_engine.generate(CHAT_MODEL, prompts[:1], GenerationParams(max_new_tokens=40))[0]
    assert "4" in full.text and "4" not in batched[0].text and full.text.startswith(batched[0].text)
    assert batched[0].finish_reason == "stop"
    alone = [onnx_engine.generate(CHAT_MODEL, [p], params)[0] for p in prompts]
    assert [(r.text, r.completion_tokens) for r in batched] == [(r.text, r.completion_tokens) for r in alone]


def test_the_base_model_batches_equal_alone(onnx_engine):
    """Gemma-3 (sliding-window attention, its own export) on raw prompts."""
    # two of one length (one batch), one alone
    prompts = [
        "The capital of France is",
        "The capital of Spain is",
        "Once upon a time, in a small village there lived a",
    ]
    params = GenerationParams(max_new_tokens=12)
    batched = onnx_engine.generate(BASE_MODEL, prompts, params)
    alone = [onnx_engine.generate(BASE_MODEL, [p], params)[0] for p in prompts]
    assert [r.backend for r in batched] == ["onnx int8"] * 3
    assert [r.text for r in batched] == [r.text for r in alone] and all(r.text.strip() for r in batched)


def test_sampling_and_schemas_stay_on_transformers(onnx_engine):
    sampled = onnx_engine.generate(CHAT_MODEL, [PARIS_QUESTION], GenerationParams(max_new_tokens=8, temperature=0.8))
    assert sampled[0].error is None and sampled[0].backend == "transformers float32"


def test_a_cancelled_batch_returns_cancelled_rows(onnx_engine):
    provider = onnx_engine.provider(CHAT_MODEL, None, None)
    loaded = provider.load()
    params = GenerationParams(max_new_tokens=8)
    rows = [provider._prepare(loaded, GenerationRequest.of(p, params)) for p in SHORT_PROMPTS[:2]]
    cancel = threading.Event()
    cancel.set()
    results = provider._run_batch(loaded, params, rows, cancel, ONNX_BATCH)
    assert [r.finish_reason for r in results] == ["cancelled", "cancelled"] and all(r.error for r in results)


def test_batch_backend_choices_are_checked(tmp_path):
    assert Settings(data_dir=tmp_path).batch_backend == "auto"  # one choice per column (test_auto_batch_backend.py)
    assert Settings(data_dir=tmp_path, batch_backend="ONNX/int8").batch_backend == ONNX_BATCH
    assert Settings(data_dir=tmp_path, batch_backend="onnx/fp32").batch_backend == "onnx/fp32"
    with pytest.raises(LlmplayError, match="batch_backend"):  # the dropped fast bfloat16 batches: a clear error
        Settings(data_dir=tmp_path, batch_backend="fast/bfloat16")
