"""Evaluation batches on the fast decoder (Settings.batch_backend = "fast/bfloat16"), on the real SmolLM2:
each reply equals its prompt decoded alone on the same path, whatever its batch mates."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from llmplay.engine import Engine, GenerationParams
from llmplay.engine.types import GenerationRequest
from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from tests.conftest import CHAT_MODEL, PARIS_QUESTION
from tests.engine.test_fast_backend import SHORT_PROMPTS

FAST_BATCH = "fast/bfloat16"


@pytest.fixture()
def fast_engine(settings, engine):
    eng = Engine(replace(settings, batch_backend=FAST_BATCH), shared_models=engine.models)
    yield eng
    eng.close()


def test_batched_replies_equal_one_at_a_time_on_the_same_path(fast_engine):
    params = GenerationParams(max_new_tokens=16)
    # prompts of different lengths, in a batch and each alone (few and short: this path is exact, not fast)
    prompts = [*SHORT_PROMPTS[:3], "Write a short paragraph about the history of the bicycle, with two dates."]
    batched = fast_engine.generate(CHAT_MODEL, prompts, params)
    alone = [fast_engine.generate(CHAT_MODEL, [p], params)[0] for p in prompts]
    assert [r.backend for r in batched] == ["fast bfloat16"] * len(prompts)
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.completion_tokens for r in batched] == [r.completion_tokens for r in alone]
    assert all(r.text for r in batched)
    # a different batch order and size gives the same replies too
    assert [r.text for r in fast_engine.generate(CHAT_MODEL, prompts[::-1][:3], params)] == [
        r.text for r in alone[::-1][:3]
    ]


def test_paris_and_counts_as_the_reference(fast_engine, engine):
    params = GenerationParams(max_new_tokens=32)
    fast = fast_engine.generate(CHAT_MODEL, [PARIS_QUESTION, "Name three primary colors."], params)[0]
    reference = engine.generate(CHAT_MODEL, [PARIS_QUESTION], params)[0]
    assert fast.text == reference.text == "The capital of France is Paris."
    assert (fast.prompt_tokens, fast.completion_tokens) == (reference.prompt_tokens, reference.completion_tokens)
    assert fast.finish_reason == "stop" and reference.backend == "transformers float32"


def test_stop_strings_end_each_row_as_alone(fast_engine):
    prompts = ["Count from 1 to 10, one number per line.", "Count from 1 to 8, one number per line."]
    params = GenerationParams(max_new_tokens=40, stop=("4",))
    batched = fast_engine.generate(CHAT_MODEL, prompts, params)
    full = fast_engine.generate(CHAT_MODEL, prompts[:1], GenerationParams(max_new_tokens=40))[0]
    assert "4" in full.text and "4" not in batched[0].text and full.text.startswith(batched[0].text)
    assert batched[0].finish_reason == "stop"
    alone = [fast_engine.generate(CHAT_MODEL, [p], params)[0] for p in prompts]
    assert [(r.text, r.completion_tokens) for r in batched] == [(r.text, r.completion_tokens) for r in alone]


def test_sampling_stays_on_transformers(fast_engine):
    params = GenerationParams(max_new_tokens=8, temperature=0.8, seed=3)
    result = fast_engine.generate(CHAT_MODEL, [PARIS_QUESTION], params)[0]
    assert result.error is None and result.backend == "transformers float32"


def test_a_cancelled_batch_returns_cancelled_rows(fast_engine):
    provider = fast_engine.provider(CHAT_MODEL, None, None)
    loaded = provider.load()
    params = GenerationParams(max_new_tokens=8)
    rows = [provider._prepare(loaded, GenerationRequest.of(p, params)) for p in SHORT_PROMPTS[:2]]
    cancel = threading.Event()
    cancel.set()  # seen by the fast batch after its first token
    results = provider._run_batch(loaded, params, rows, cancel)
    assert [r.finish_reason for r in results] == ["cancelled", "cancelled"] and all(r.error for r in results)


def test_batch_backend_is_checked(tmp_path):
    with pytest.raises(LlmplayError, match="batch_backend"):
        Settings(data_dir=tmp_path, batch_backend="fast/float16")
    assert Settings(data_dir=tmp_path).batch_backend == "transformers"
