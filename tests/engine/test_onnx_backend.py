"""The onnx backends (llmplay.engine.onnx_decoder: ONNX Runtime GenAI steps, llmplay's sampler) against the
transformers reference, on the real bundled models and real exports (made once per cache by the session engine)."""

from __future__ import annotations

import threading

import pytest

from llmplay.engine import GenerationParams, backends, onnx_decoder
from tests.conftest import BASE_MODEL, CHAT_MODEL, PARIS_QUESTION, release_session_memory
from tests.engine.test_fast_backend import SHORT_PROMPTS, random_lora, stream

pytestmark = pytest.mark.skipif(bool(onnx_decoder.unavailable_reason()), reason="onnxruntime-genai not installed")
REFERENCE, INT8, FP32 = "transformers", "onnx/int8", "onnx/fp32"


@pytest.fixture(autouse=True)
def _release_after_each_test():
    """Each test opens its own exports (Gemma's fp32, two LoRA versions' merged weights and fp32 exports, a fresh
    int8 one): held until the module ends, they took the suite's peak to 9.2 GB."""
    yield
    release_session_memory()


@pytest.mark.parametrize("backend", [INT8, FP32])
def test_paris_with_its_label_and_the_reference_counts(engine, backend):
    text, result, _ = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), backend)
    assert text == result.text == "The capital of France is Paris."
    assert result.backend == backend.replace("/", " ")
    _, reference, _ = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), REFERENCE)
    assert (result.completion_tokens, result.prompt_tokens) == (reference.completion_tokens, reference.prompt_tokens)
    assert result.finish_reason == "stop" and result.time_to_first_token_s > 0


def test_same_greedy_text_as_the_reference_on_short_prompts(engine):
    params = GenerationParams(max_new_tokens=24)
    reference = [stream(engine, p, params, REFERENCE)[1].text for p in SHORT_PROMPTS]
    fp32 = [stream(engine, p, params, FP32)[1].text for p in SHORT_PROMPTS]
    int8 = [stream(engine, p, params, INT8)[1].text for p in SHORT_PROMPTS]
    assert sum(a == b for a, b in zip(fp32, reference)) / len(SHORT_PROMPTS) >= 0.9, list(zip(fp32, reference))
    # int8 weights round each block of 32 and its kernels differ between CPUs (AVX-512 VNNI machines matched 7 of 10
    # replies word for word, an AVX2 one 5): most replies start as the reference does; the bench measures the task
    # accuracy that backs it as the default.
    starts = sum(a.split()[:3] == b.split()[:3] for a, b in zip(int8, reference))
    assert starts / len(SHORT_PROMPTS) >= 0.8, list(zip(int8, reference))
    assert sum(a == b for a, b in zip(int8, reference)) / len(SHORT_PROMPTS) >= 0.3, list(zip(int8, reference))


def test_stop_strings_and_max_new_tokens(engine):
    prompt = "Count from 1 to 10, one number per line."
    params = GenerationParams(max_new_tokens=60, stop=("4",))
    text, result, _ = stream(engine, prompt, params, INT8)
    _, full, _ = stream(engine, prompt, GenerationParams(max_new_tokens=60), INT8)
    assert "4" in full.text and "4" not in text and full.text.startswith(text)
    assert result.finish_reason == "stop"
    _, reference, _ = stream(engine, prompt, params, REFERENCE)
    assert result.completion_tokens == reference.completion_tokens  # decoding stopped at the same token
    _, short, _ = stream(engine, "Write a long story about a dragon.", GenerationParams(max_new_tokens=5), INT8)
    assert short.finish_reason == "length" and short.completion_tokens == 5


def test_sampling_is_reproducible_with_a_seed_and_the_penalty_matches_the_reference(engine):
    prompt = "Write a poem about the sea."
    params = GenerationParams(max_new_tokens=24, temperature=1.0, top_p=0.95, top_k=50, seed=7)
    assert stream(engine, prompt, params, INT8)[1].text == stream(engine, prompt, params, INT8)[1].text
    others = {
        stream(engine, prompt, GenerationParams(max_new_tokens=24, temperature=1.0, seed=s), INT8)[1].text
        for s in (1, 2, 3)
    }
    assert len(others) > 1, "different seeds should give different samples"
    prompt = "Repeat the word 'cat' ten times."
    plain = stream(engine, prompt, GenerationParams(max_new_tokens=24), FP32)[1].text
    penalised = stream(engine, prompt, GenerationParams(max_new_tokens=24, repetition_penalty=1.8), FP32)[1].text
    reference = stream(engine, prompt, GenerationParams(max_new_tokens=24, repetition_penalty=1.8), REFERENCE)[1].text
    assert penalised != plain and penalised == reference


def test_closing_a_stream_stops_decoding_and_frees_the_model(engine):
    events = engine.stream(CHAT_MODEL, "Write a long story about a dragon.", GenerationParams(max_new_tokens=400),
                           backend=INT8)  # fmt: skip
    for event in events:
        if event.delta:
            break
    events.close()
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    assert loaded.lock.acquire(timeout=5), "the decoding thread kept the model after the reader left"
    loaded.lock.release()
    assert "Paris" in stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), INT8)[1].text


def test_gemma3_exports_with_both_rotary_bases_and_gives_the_reference_text(engine):
    # transformers 5 keeps Gemma-3's global and sliding-window rotary settings apart; the export restores both
    # (a wrong local base changes every reply after a few tokens).
    params = GenerationParams(max_new_tokens=24)
    for prompt in ["The capital of France is", "Once upon a time", "Water boils at"]:
        _, reference, _ = stream(engine, prompt, params, REFERENCE, model=BASE_MODEL)
        text, fp32, _ = stream(engine, prompt, params, FP32, model=BASE_MODEL)
        assert fp32.backend == "onnx fp32" and text == fp32.text == reference.text
        assert fp32.completion_tokens == reference.completion_tokens


def test_a_lora_version_streams_its_own_outputs_from_its_own_export(engine, tmp_path, monkeypatch):
    # This test's versions export into its own folder (half a GB each in fp32), not the session's model cache.
    exports = tmp_path / "exports"
    keyed = onnx_decoder.conversion_key
    monkeypatch.setattr(
        onnx_decoder, "converted_dir", lambda cache, loaded, precision: exports / keyed(loaded, precision)
    )
    base = engine.models.get(engine.catalog.get(CHAT_MODEL))
    folder = tmp_path / "adapter"
    random_lora(base.folder, folder, seed=0)
    params = GenerationParams(max_new_tokens=24)
    plain = stream(engine, PARIS_QUESTION, params, FP32)[1].text
    tuned = stream(engine, PARIS_QUESTION, params, FP32, adapter=str(folder))[1]
    reference = stream(engine, PARIS_QUESTION, params, REFERENCE, adapter=str(folder))[1]
    assert tuned.backend == "onnx fp32" and tuned.text == reference.text != plain
    first = engine.models.get(engine.catalog.get(CHAT_MODEL), adapter=str(folder))
    first_dir = onnx_decoder.converted_dir(engine.settings.cache_dir, first, "fp32")
    assert onnx_decoder.is_converted(first_dir)
    assert first_dir != onnx_decoder.converted_dir(engine.settings.cache_dir, base, "fp32")
    # The first version's merged weights and fp32 session go before the second loads (the suite's peak, 7.9 GB,
    # was here, with both versions and the base's fp32 session held): the module alone 6.2 -> 5.4 GB.
    first = None
    release_session_memory()

    random_lora(base.folder, folder, seed=1)  # new weights in the same folder: a new version, exported afresh
    monkeypatch.setenv("LLMPLAY_ONNX_KEEP", "1")  # ... and the cache keeps one export: the older one goes
    again = stream(engine, PARIS_QUESTION, params, FP32, adapter=str(folder))[1]
    second = engine.models.get(engine.catalog.get(CHAT_MODEL), adapter=str(folder))
    second_dir = onnx_decoder.converted_dir(engine.settings.cache_dir, second, "fp32")
    assert second_dir != first_dir and onnx_decoder.is_converted(second_dir) and not first_dir.exists()
    assert again.text == stream(engine, PARIS_QUESTION, params, REFERENCE, adapter=str(folder))[1].text
    assert again.text != tuned.text


def test_the_export_cache_keeps_the_most_recently_used(tmp_path, monkeypatch):
    import os
    import time

    root = tmp_path / "onnx"
    folders = []
    for i, name in enumerate(["oldest", "old", "recent", "newest"]):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / onnx_decoder.READY).write_text("{}")
        stamp = time.time() - 1000 + i * 100
        os.utime(folder / onnx_decoder.READY, (stamp, stamp))
        folders.append(folder)
    (root / "unfinished").mkdir()  # no READY file: an export in progress, never counted nor removed
    stale = root / ".x-int8.123.4.partial"
    stale.mkdir()
    os.utime(stale, (time.time() - 2 * 86_400,) * 2)
    removed = onnx_decoder.prune(root, keep=2, protect={folders[0]})
    assert sorted(p.name for p in removed) == [".x-int8.123.4.partial", "old"]
    assert sorted(p.name for p in root.iterdir()) == ["newest", "oldest", "recent", "unfinished"]
    monkeypatch.setenv("LLMPLAY_ONNX_KEEP", "three")
    assert onnx_decoder.keep() == onnx_decoder.KEEP  # a bad value: the default, with a warning in the log
    monkeypatch.setenv("LLMPLAY_ONNX_KEEP", "0")
    assert onnx_decoder.keep() == 1


def test_opening_an_export_marks_it_used(engine):
    import os

    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    folder = onnx_decoder.converted_dir(engine.settings.cache_dir, loaded, "int8")
    os.utime(folder / onnx_decoder.READY, (1_000_000, 1_000_000))
    onnx_decoder.OnnxDecoder(folder, "int8")
    assert onnx_decoder.last_used(folder) > 1_000_000


def test_an_unsupported_architecture_falls_back_with_a_note(engine, monkeypatch):
    monkeypatch.setattr(onnx_decoder, "SUPPORTED", ("llama",))  # as for any architecture the builder lacks
    text, result, statuses = stream(engine, "The capital of France is", GenerationParams(max_new_tokens=6), INT8,
                                    model=BASE_MODEL)  # fmt: skip
    assert result.backend.startswith("transformers") and text == result.text and result.completion_tokens > 0
    assert any("Ran on the reference backend" in s and "gemma3_text" in s for s in statuses), statuses


def test_a_failed_export_leaves_nothing_behind_and_the_reply_falls_back(engine, tmp_path, monkeypatch):
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    monkeypatch.setattr(loaded, "conversions", {})
    monkeypatch.setattr(onnx_decoder, "converted_dir", lambda cache, loaded, precision: tmp_path / "onnx" / "x")
    monkeypatch.setattr(onnx_decoder, "_EXPORT", "import sys; sys.stderr.write('disk full'); sys.exit(3)")
    text, result, statuses = stream(engine, PARIS_QUESTION, GenerationParams(max_new_tokens=32), INT8)
    assert text == "The capital of France is Paris." and result.backend == "transformers float32"
    assert any("disk full" in s for s in statuses), statuses
    assert list((tmp_path / "onnx").iterdir()) == []  # no half export, no partial folder


def test_auto_without_an_export_runs_on_the_fast_path_and_exports_in_the_background(engine, tmp_path, monkeypatch):
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    monkeypatch.setattr(loaded, "conversions", {})
    target = tmp_path / "onnx" / "smollm2-int8"
    monkeypatch.setattr(onnx_decoder, "converted_dir", lambda cache, loaded, precision: target)
    params = GenerationParams(max_new_tokens=16)
    # The tests' default (LLMPLAY_ONNX_AUTO_EXPORT=0): exports on disk only; none here, so the fast path, no note.
    _, result, statuses = stream(engine, PARIS_QUESTION, params, None)
    assert result.backend == f"fast {engine.settings.fast_precision}" and not statuses
    assert not target.exists()

    monkeypatch.setenv("LLMPLAY_ONNX_AUTO_EXPORT", "1")
    started = threading.Event()
    convert = onnx_decoder.convert

    def watched(*args):
        started.set()
        return convert(*args)

    monkeypatch.setattr(onnx_decoder, "convert", watched)
    _, first, statuses = stream(engine, PARIS_QUESTION, params, None)
    assert first.backend == f"fast {engine.settings.fast_precision}" and "Paris" in first.text
    assert any("Preparing onnx int8" in s for s in statuses), statuses
    assert started.wait(30)
    exporter = next(t for t in threading.enumerate() if t.name.startswith("onnx-export-"))
    exporter.join(timeout=600)
    assert onnx_decoder.is_converted(target) and ("onnx", "int8") in loaded.conversions
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".partial")]
    _, later, statuses = stream(engine, PARIS_QUESTION, params, None)
    assert later.backend == "onnx int8" and later.text == first.text and not statuses


def test_the_export_key_names_the_weights_and_the_adapter_content(engine, tmp_path):
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))

    class Version:  # a LoadedModel's identity fields, with an adapter folder
        folder, adapter = loaded.folder, str(tmp_path)

    (tmp_path / "adapter_model.safetensors").write_bytes(b"one")
    one = onnx_decoder.conversion_key(Version, "int8")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"two")
    assert onnx_decoder.conversion_key(Version, "int8") != one
    assert onnx_decoder.conversion_key(loaded, "int8") not in (one, onnx_decoder.conversion_key(loaded, "fp32"))
    assert backends.check_choice("ONNX/INT8") == INT8
