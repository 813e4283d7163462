"""The local transformers provider on the real bundled models."""

from __future__ import annotations

import pytest

from llmplay.engine import Engine, GenerationParams, GenerationRequest
from llmplay.engine.prompt_text import render_prompt
from llmplay.errors import UnknownModelError
from llmplay.models.catalog import Catalog, ModelSpec
from tests.conftest import BASE_MODEL, CHAT_MODEL, PARIS_QUESTION

GREEDY = GenerationParams(max_new_tokens=32)
QUESTIONS = [
    "Name three primary colors.",
    "What is 12 times 12?",
    "Write one sentence about cats.",
    "Translate 'good morning' into French.",
    "Who wrote Romeo and Juliet?",
    "Give me a synonym for happy.",
]


def test_paris_through_engine(engine):
    [result] = engine.generate(CHAT_MODEL, [PARIS_QUESTION], GREEDY)
    assert result.error is None
    assert "Paris" in result.text
    assert result.finish_reason == "stop"
    assert 0 < result.completion_tokens < GREEDY.max_new_tokens
    assert result.prompt_tokens > 10 and result.latency_s > 0


def test_batched_equals_one_at_a_time(engine):
    # fp32: batched and single decoding are numerically the same computation (bf16 is not; see bench).
    batched = engine.generate(CHAT_MODEL, QUESTIONS, GREEDY, dtype="float32")
    single = [engine.generate(CHAT_MODEL, [q], GREEDY, dtype="float32")[0] for q in QUESTIONS]
    assert all(r.error is None for r in batched + single)
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.completion_tokens for r in batched] == [r.completion_tokens for r in single]


def test_rows_sharing_a_long_prefix_reuse_it_and_say_the_same_as_alone(engine, monkeypatch):
    from llmplay.engine.local import MIN_SHARED_PREFIX, _shared_prefix_length
    from llmplay.engine.prompt_text import encode_prompt, render_prompt
    from llmplay.engine.types import GenerationRequest

    # Few-shot style: a long shared instruction, then each row's own question.
    shared = "Answer each question in a few words. " * 12
    prompts = [f"{shared}\nQuestion: {q}" for q in QUESTIONS[:4]]
    provider = engine.provider(CHAT_MODEL, "float32")
    loaded = provider.load()
    ids = [encode_prompt(loaded, render_prompt(loaded, GenerationRequest.of(p, GREEDY))) for p in prompts]
    assert _shared_prefix_length(ids) >= MIN_SHARED_PREFIX  # the batch takes the shared-prefix path
    provider._prefixes.clear()
    ref = {"dtype": "float32", "batch_backend": "transformers"}  # the path that shares a prefix
    single = [engine.generate(CHAT_MODEL, [p], GREEDY, **ref)[0] for p in prompts]
    assert not provider._prefixes  # a lone row computes no prefix for itself
    batched = engine.generate(CHAT_MODEL, prompts, GREEDY, **ref)
    assert len(provider._prefixes) == 1  # the prefix was computed once and kept for later batches
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.completion_tokens for r in batched] == [r.completion_tokens for r in single]
    assert [r.prompt_tokens for r in batched] == [len(i) for i in ids]

    # A lone row later (an evaluation's chunk of one) starts from the kept prefix, and says the same as alone.
    used, cache = [], provider._prefix_cache
    monkeypatch.setattr(
        provider, "_prefix_cache", lambda lo, prefix, rows: used.append(len(prefix)) or cache(lo, prefix, rows)
    )
    lone = engine.generate(CHAT_MODEL, [prompts[2]], GREEDY, **ref)[0]
    assert used == [_shared_prefix_length(ids)]
    assert (lone.text, lone.completion_tokens) == (single[2].text, single[2].completion_tokens)


def test_batch_keeps_order_and_isolates_bad_rows(engine):
    prompts = [QUESTIONS[0], "", PARIS_QUESTION, "   "]
    results = engine.generate(CHAT_MODEL, prompts, GREEDY)
    assert [r.error is None for r in results] == [True, False, True, False]
    assert "empty" in results[1].error
    assert "Paris" in results[2].text


def test_stream_chunks_join_to_full_reply(engine):
    events = list(engine.stream(CHAT_MODEL, PARIS_QUESTION, GREEDY))
    deltas = [e.delta for e in events if e.delta]
    final = events[-1]
    assert final.done and final.result.error is None
    assert len(deltas) > 1
    assert "".join(deltas) == final.result.text
    assert final.result.text == engine.generate(CHAT_MODEL, [PARIS_QUESTION], GREEDY)[0].text
    assert final.result.time_to_first_token_s is not None
    assert final.result.time_to_first_token_s <= final.result.latency_s


def test_stream_closed_early_stops_generation(engine):
    stream = engine.stream(CHAT_MODEL, "Write a long story about a dragon.", GenerationParams(max_new_tokens=400))
    for event in stream:
        if event.delta:
            break
    stream.close()  # must return promptly and free the model for the next request
    [after] = engine.generate(CHAT_MODEL, [PARIS_QUESTION], GREEDY)
    assert "Paris" in after.text


def test_stop_strings_cut_the_reply(engine):
    params = GenerationParams(max_new_tokens=60, stop=("4",))
    [full] = engine.generate(CHAT_MODEL, ["Count from 1 to 10, one number per line."], GREEDY)
    assert "4" in full.text, "the prompt must make the model write a 4 for this test to mean anything"
    [cut] = engine.generate(CHAT_MODEL, ["Count from 1 to 10, one number per line."], params)
    assert "4" not in cut.text and cut.finish_reason == "stop"
    assert full.text.startswith(cut.text)
    streamed = "".join(e.delta for e in engine.stream(CHAT_MODEL, "Count from 1 to 10, one number per line.", params))
    assert streamed == cut.text


def test_max_new_tokens_reached_is_length(engine):
    [r] = engine.generate(CHAT_MODEL, ["Write a long story about a dragon."], GenerationParams(max_new_tokens=5))
    assert r.finish_reason == "length" and r.completion_tokens == 5


def test_sampling_is_reproducible_with_a_seed(engine):
    params = GenerationParams(max_new_tokens=24, temperature=1.0, top_p=0.95, top_k=50, seed=7)
    a = engine.generate(CHAT_MODEL, ["Write a poem about the sea."], params)[0].text
    b = engine.generate(CHAT_MODEL, ["Write a poem about the sea."], params)[0].text
    others = {engine.generate(CHAT_MODEL, ["Write a poem about the sea."], GenerationParams(
        max_new_tokens=24, temperature=1.0, seed=s))[0].text for s in (1, 2, 3)}  # fmt: skip
    assert a == b
    assert len(others) > 1, "different seeds should give different samples"


def test_multi_turn_messages_use_the_chat_template(engine):
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": PARIS_QUESTION},
    ]
    request = GenerationRequest.of(messages, GREEDY)
    expected = loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert render_prompt(loaded, request) == expected
    assert "<|im_start|>system\nYou answer briefly." in expected
    [r] = engine.generate(CHAT_MODEL, [request])
    assert r.error is None and r.text.strip()
    assert r.prompt_tokens == len(loaded.tokenizer(expected, add_special_tokens=False)["input_ids"])


def test_base_model_gets_raw_text(engine):
    loaded = engine.models.get(engine.catalog.get(BASE_MODEL))
    assert loaded.spec.kind == "base"
    request = GenerationRequest.of("The capital of France is", GenerationParams(max_new_tokens=8))
    assert render_prompt(loaded, request) == "The capital of France is"
    [r] = engine.generate(BASE_MODEL, [request])
    assert r.error is None and r.completion_tokens > 0 and r.text.strip()
    # the tokenizer's BOS is added for raw text
    assert r.prompt_tokens == len(loaded.tokenizer("The capital of France is")["input_ids"])


@pytest.mark.parametrize(
    ("params", "prompt", "message"),
    [
        (GenerationParams(max_new_tokens=0), "hi", "max_new_tokens must be between 1 and"),
        (GenerationParams(max_new_tokens=100_000), "hi", "max_new_tokens must be between 1 and"),
        (GenerationParams(temperature=-1), "hi", "temperature"),
        (GenerationParams(top_p=0), "hi", "top_p"),
        (GREEDY, "", "empty"),
        (GREEDY, "x" * 40_000, "characters; the limit is"),
    ],
)
def test_bad_requests_are_error_results(engine, params, prompt, message):
    [r] = engine.generate(CHAT_MODEL, [prompt], params)
    assert r.error is not None and message in r.error
    assert r.finish_reason == "error"
    [stream_end] = [e for e in engine.stream(CHAT_MODEL, prompt, params) if e.done]
    assert message in stream_end.result.error


def test_prompt_longer_than_context(session_settings):
    smol = next(s for s in Catalog().specs() if s.name == CHAT_MODEL)
    catalog = Catalog()
    tiny = ModelSpec(**{**smol.to_dict(), "name": "smol-ctx64", "context_length": 64})
    catalog.add(tiny, persist=False)
    eng = Engine(session_settings, catalog)
    [r] = eng.generate("smol-ctx64", ["word " * 80], GREEDY)
    assert "exceeds smol-ctx64's context of 64 tokens" in r.error


def test_unknown_model_is_a_clear_error(engine):
    with pytest.raises(UnknownModelError, match="Unknown model 'nope'.*smollm2-135m-instruct"):
        engine.generate("nope", ["hi"])


def test_bad_local_path_is_an_error_result(session_settings, tmp_path):
    catalog = Catalog()
    (tmp_path / "empty").mkdir()
    catalog.add(ModelSpec("broken", "chat", "local", str(tmp_path / "empty")), persist=False)
    eng = Engine(session_settings, catalog)
    [r] = eng.generate("broken", ["hi"])
    assert "no config.json" in r.error
    *statuses, end = list(eng.stream("broken", "hi"))
    assert all(e.status and not e.done for e in statuses)
    assert end.done and "no config.json" in end.result.error


def test_hub_model_offline_is_an_error_result(session_settings):
    catalog = Catalog()
    catalog.add(ModelSpec("hubby", "chat", "hub", "HuggingFaceTB/SmolLM2-360M-Instruct"), persist=False)
    [r] = Engine(session_settings, catalog).generate("hubby", ["hi"])
    assert r.error is not None and "Hugging Face Hub" in r.error


def test_lora_adapter_changes_the_output(engine, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = engine.models.get(engine.catalog.get(CHAT_MODEL))
    model = AutoModelForCausalLM.from_pretrained(base.folder, dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    plain = engine.generate(CHAT_MODEL, [PARIS_QUESTION], GREEDY)[0]
    adapted = engine.generate(CHAT_MODEL, [PARIS_QUESTION], GREEDY, adapter=str(tmp_path / "adapter"))[0]
    assert adapted.error is None and plain.error is None
    assert adapted.text != plain.text
    # the base model stays untouched for everyone else
    assert engine.generate(CHAT_MODEL, [PARIS_QUESTION], GREEDY)[0].text == plain.text
    [bad] = engine.generate(CHAT_MODEL, ["hi"], adapter=str(tmp_path))
    assert "adapter_config.json" in bad.error


def test_choose_by_likelihood_picks_the_right_label(engine):
    label, scores = engine.choose(CHAT_MODEL, PARIS_QUESTION, ["London", "Paris", "Berlin"])
    assert label == "Paris"
    assert [s.option for s in scores] == ["London", "Paris", "Berlin"]
    assert all(s.logprob < 0 and s.tokens >= 1 for s in scores)


def test_option_scores_match_a_manual_forward_pass(engine):
    import torch

    from llmplay.engine.prompt_text import encode_prompt

    request = GenerationRequest.of("Is this positive or negative? 'I love it.'")
    options = ["positive", "negative", "it is neutral"]  # different token lengths share one padded batch
    _, scores = engine.choose(CHAT_MODEL, request, options)
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    prompt_ids = encode_prompt(loaded, render_prompt(loaded, request))
    for score in scores:
        ids = loaded.tokenizer(score.option, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([prompt_ids + ids])).logits.float()
        logprobs = torch.log_softmax(logits[0], -1)
        expected = sum(logprobs[len(prompt_ids) + i - 1, t].item() for i, t in enumerate(ids))
        assert score.logprob == pytest.approx(expected, abs=1e-3)
        assert score.tokens == len(ids)


def test_choose_rejects_empty_options_and_endpoints(engine):
    from llmplay.errors import InvalidRequestError, LlmplayError

    with pytest.raises(InvalidRequestError, match="non-empty option"):
        engine.choose(CHAT_MODEL, "hi", [])
    catalog = Catalog()
    catalog.add(ModelSpec("ep", "chat", "endpoint", "http://127.0.0.1:9/v1"), persist=False)
    with pytest.raises(LlmplayError, match="needs a local model"):
        Engine(engine.settings, catalog).choose("ep", "hi", ["a"])
