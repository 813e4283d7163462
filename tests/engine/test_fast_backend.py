"""The fast decoder (llmplay.engine.fast_decoder) against the transformers reference, on the real models."""

from __future__ import annotations

import pytest

from llmplay.engine import GenerationParams, backends, fast_decoder
from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from tests.conftest import BASE_MODEL, CHAT_MODEL, PARIS_QUESTION
from tests.engine.test_local import QUESTIONS

REFERENCE, FAST32, FAST16 = "transformers", "fast/float32", "fast/float16"
SHORT_PROMPTS = [
    *QUESTIONS,
    "What is the boiling point of water?",
    "Name a planet in our solar system.",
    "What colour is the sky on a clear day?",
    "How many legs does a spider have?",
]


def stream(engine, prompt, params, backend, model=CHAT_MODEL, adapter=None):
    """(joined deltas, final result, status lines) of one streamed reply."""
    deltas, statuses, result = [], [], None
    for event in engine.stream(model, prompt, params, backend=backend, adapter=adapter):
        deltas.append(event.delta)
        if event.status:
            statuses.append(event.status)
        if event.done:
            result = event.result
    assert result is not None and result.error is None, result and result.error
    return "".join(deltas), result, statuses


@pytest.mark.parametrize("backend", [REFERENCE, FAST32, FAST16])
def test_paris_on_every_backend_with_its_label_and_counts(engine, backend):
    text, result, _ = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), backend)
    assert text == result.text == "The capital of France is Paris."
    assert (
        result.backend == {REFERENCE: "transformers float32", FAST32: "fast float32", FAST16: "fast float16"}[backend]
    )
    _, reference, _ = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), REFERENCE)
    assert (result.completion_tokens, result.prompt_tokens) == (reference.completion_tokens, reference.prompt_tokens)
    assert result.finish_reason == "stop" and result.time_to_first_token_s > 0


def test_auto_picks_onnx_int8_for_smollm2_where_exported(engine):
    # The session engine exported the bundled models (tests/conftest.py); without an export, see test_onnx_backend.
    _, result, _ = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=16), None)
    assert result.backend == "onnx int8"


def test_same_greedy_text_as_the_reference_on_short_prompts(engine):
    params = GenerationParams(max_new_tokens=24)
    reference = [stream(engine, p, params, REFERENCE)[1].text for p in SHORT_PROMPTS]
    fast32 = [stream(engine, p, params, FAST32)[1].text for p in SHORT_PROMPTS]
    fast16 = [stream(engine, p, params, FAST16)[1].text for p in SHORT_PROMPTS]
    same32 = sum(a == b for a, b in zip(fast32, reference)) / len(SHORT_PROMPTS)
    same16 = sum(a == b for a, b in zip(fast16, reference)) / len(SHORT_PROMPTS)
    assert same32 >= 0.9, list(zip(fast32, reference))
    # float16 rounds weights and activations: most short replies still match word for word (the bench
    # measures the task accuracy check that backs it as the default).
    assert same16 >= 0.7, list(zip(fast16, reference))


@pytest.mark.parametrize("backend", [REFERENCE, FAST16])
def test_stop_strings_end_the_reply_at_the_same_token(engine, backend):
    prompt = "Count from 1 to 10, one number per line."
    params = GenerationParams(max_new_tokens=60, stop=("4",))
    text, result, _ = stream(engine, prompt, params, backend)
    _, full, _ = stream(engine, prompt, GenerationParams(max_new_tokens=60), backend)
    assert "4" in full.text and "4" not in text and full.text.startswith(text)
    assert result.finish_reason == "stop"
    _, reference, _ = stream(engine, prompt, params, REFERENCE)
    assert result.completion_tokens == reference.completion_tokens  # decoding stopped at the same token


def test_max_new_tokens_is_length_on_the_fast_path(engine):
    _, result, _ = stream(engine, "Write a long story about a dragon.", GenerationParams(max_new_tokens=5), FAST16)
    assert result.finish_reason == "length" and result.completion_tokens == 5


def test_sampling_on_the_fast_path_is_reproducible_with_a_seed(engine):
    prompt = "Write a poem about the sea."
    params = GenerationParams(max_new_tokens=24, temperature=1.0, top_p=0.95, top_k=50, seed=7)
    a = stream(engine, prompt, params, FAST16)[1].text
    b = stream(engine, prompt, params, FAST16)[1].text
    others = {
        stream(engine, prompt, GenerationParams(max_new_tokens=24, temperature=1.0, seed=s), FAST16)[1].text
        for s in (1, 2, 3)
    }
    assert a == b
    assert len(others) > 1, "different seeds should give different samples"


def test_repetition_penalty_changes_a_fast_reply_like_the_reference(engine):
    prompt = "Repeat the word 'cat' ten times."
    plain = stream(engine, prompt, GenerationParams(max_new_tokens=24), FAST32)[1].text
    penalised = stream(engine, prompt, GenerationParams(max_new_tokens=24, repetition_penalty=1.8), FAST32)[1].text
    reference = stream(engine, prompt, GenerationParams(max_new_tokens=24, repetition_penalty=1.8), REFERENCE)[1].text
    assert penalised != plain
    assert penalised == reference


def test_closing_a_fast_stream_stops_decoding_and_frees_the_model(engine):
    events = engine.stream(CHAT_MODEL, "Write a long story about a dragon.", GenerationParams(max_new_tokens=400),
                           backend=FAST16)  # fmt: skip
    for event in events:
        if event.delta:
            break
    events.close()
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    assert loaded.lock.acquire(timeout=5), "the decoding thread kept the model after the reader left"
    loaded.lock.release()
    _, after, _ = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), FAST16)
    assert "Paris" in after.text


def test_gemma3_decodes_on_the_fast_path_with_the_reference_text(engine):
    prompts = ["The capital of France is", "Once upon a time", "Water boils at"]
    params = GenerationParams(max_new_tokens=24)
    for prompt in prompts:
        _, reference, _ = stream(engine, prompt, params, REFERENCE, model=BASE_MODEL)
        text, fast, _ = stream(engine, prompt, params, FAST32, model=BASE_MODEL)
        assert fast.backend == "fast float32" and text == fast.text == reference.text
        assert fast.completion_tokens == reference.completion_tokens
    _, auto, _ = stream(engine, prompts[0], params, None, model=BASE_MODEL)
    assert auto.backend == "onnx int8"  # Gemma-3 exports too (tests/engine/test_onnx_backend.py)


def test_an_unsupported_architecture_falls_back_with_a_note(engine, monkeypatch):
    monkeypatch.setattr(fast_decoder, "SUPPORTED", ("llama",))  # as for any architecture it does not implement
    text, result, statuses = stream(engine, "The capital of France is", GenerationParams(max_new_tokens=6), FAST16,
                                    model=BASE_MODEL)  # fmt: skip
    assert result.backend.startswith("transformers") and text == result.text and result.completion_tokens > 0
    assert any("reference backend" in s and "gemma3" in s for s in statuses), statuses


def test_a_failing_conversion_falls_back_to_the_reference(engine, monkeypatch):
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    monkeypatch.setattr(loaded, "conversions", {})  # this test's own conversion attempt

    def broken(model, precision):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(backends, "FastDecoder", broken)
    text, result, statuses = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), FAST16)
    assert text == "The capital of France is Paris." and result.backend == "transformers float32"
    assert any("out of memory" in s for s in statuses)


def test_unsupported_reason_names_what_is_missing(engine):
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    assert fast_decoder.unsupported_reason(loaded.model) is None

    class Config:
        model_type = "mamba"

    class Model:
        config = Config()

    assert "'mamba'" in fast_decoder.unsupported_reason(Model())


def random_lora(base_folder, folder, seed: int) -> None:
    """A random LoRA on the chat model saved to ``folder``: enough to change the replies."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)


def test_a_lora_version_streams_its_own_outputs_on_the_fast_path(engine, tmp_path):
    base = engine.models.get(engine.catalog.get(CHAT_MODEL))
    folder = tmp_path / "adapter"
    random_lora(base.folder, folder, seed=0)
    params = GenerationParams(max_new_tokens=24)
    plain = stream(engine, PARIS_QUESTION, params, FAST32)[1].text
    fast = stream(engine, PARIS_QUESTION, params, FAST32, adapter=str(folder))[1]
    reference = stream(engine, PARIS_QUESTION, params, REFERENCE, adapter=str(folder))[1]
    assert fast.backend == "fast float32" and fast.text == reference.text != plain
    first = engine.models.get(engine.catalog.get(CHAT_MODEL), adapter=str(folder))
    assert ("fast", "float32") in first.conversions and first.model is not base.model

    random_lora(base.folder, folder, seed=1)  # new weights in the same folder: a new version, converted afresh
    again = stream(engine, PARIS_QUESTION, params, FAST32, adapter=str(folder))[1]
    second = engine.models.get(engine.catalog.get(CHAT_MODEL), adapter=str(folder))
    assert second is not first
    assert second.conversions[("fast", "float32")] is not first.conversions[("fast", "float32")]
    assert again.text == stream(engine, PARIS_QUESTION, params, REFERENCE, adapter=str(folder))[1].text
    assert again.text != fast.text


def test_backend_settings_are_checked(tmp_path, monkeypatch):
    with pytest.raises(LlmplayError, match="backend must be one of"):
        Settings(data_dir=tmp_path, backend="llama.cpp")
    with pytest.raises(LlmplayError, match="fast_precision"):
        Settings(data_dir=tmp_path, fast_precision="int3")
    monkeypatch.setenv("LLMPLAY_BACKEND", "transformers")
    monkeypatch.setenv("LLMPLAY_FAST_PRECISION", "float32")
    settings = Settings.from_env(data_dir=tmp_path)
    assert (settings.backend, settings.fast_precision) == ("transformers", "float32")


def test_batches_never_decode_on_the_fast_path_and_say_what_did(engine):
    """Batches decode on their batch backend (transformers or ONNX batches), never on the streams' fast decoder."""
    from llmplay.engine import onnx_decoder

    params = GenerationParams(max_new_tokens=16)
    [pinned] = engine.generate(CHAT_MODEL, [PARIS_QUESTION], params, batch_backend="transformers")
    assert pinned.backend == "transformers float32"
    # "auto" (the default): one short prompt is decode-bound, so ONNX int8 where it runs (tests/evaluation/
    # test_auto_batch_backend.py has the choice itself)
    [auto] = engine.generate(CHAT_MODEL, [PARIS_QUESTION], params)
    assert auto.backend == ("transformers float32" if onnx_decoder.unavailable_reason() else "onnx int8")


def test_the_backend_is_part_of_an_evaluation_output_cache_key(engine):
    from llmplay.evaluation.outputs import cache_key

    spec = engine.catalog.get(CHAT_MODEL)
    common = dict(prompt="p", spec=spec, dtype="float32", adapter=None, params=GenerationParams(), mode="generate")
    assert cache_key(**common) == cache_key(**common, backend="transformers")
    assert cache_key(**common, backend="fast float16") != cache_key(**common)
