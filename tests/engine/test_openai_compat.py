"""The OpenAI-compatible provider against a real server: llm-katan serving the bundled SmolLM2 on loopback.

llm-katan runs real transformers generation on the model folder. It requires an Authorization header,
checks the key when started with --validate-keys, streams SSE (it generates the whole reply first, then
sends it in 4-character chunks), reports usage, and ignores stop/top_k/seed. It has no /v1/completions.
Only the retry and payload tests use a tiny scripted HTTP server, because a real one cannot be made to
fail on cue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from llmplay.engine import Engine
from llmplay.engine.openai_compat import OpenAICompatProvider, normalize_base_url
from llmplay.engine.types import GenerationParams, GenerationRequest, Message
from llmplay.errors import ProviderError
from llmplay.models.catalog import Catalog, ModelSpec
from tests.servers import KATAN_KEY, free_port

pytestmark = pytest.mark.slow

CHAT_MODEL = "smollm2-135m-instruct"
PARIS = "What is the capital of France? Answer in one word."
SHORT = GenerationParams(max_new_tokens=16)  # enough for "The capital of France is Paris."


@pytest.fixture()
def smol_spec(katan, monkeypatch) -> ModelSpec:
    # The default key variable, holding the key the server was started with.
    monkeypatch.setenv("OPENAI_API_KEY", KATAN_KEY)
    return ModelSpec(name="smol-endpoint", kind="chat", source="endpoint", location=katan.url, api_model="smol")


@pytest.fixture()
def smol(smol_spec, settings) -> Iterator[OpenAICompatProvider]:
    provider = OpenAICompatProvider(smol_spec, settings)
    yield provider
    provider.close()


# ---- against the real server ----------------------------------------------------------------------------------
def test_paris_greedy(smol):
    [res] = smol.generate([GenerationRequest.of(PARIS, SHORT)])
    assert res.error is None, res.error
    assert "Paris" in res.text
    assert res.completion_tokens > 0 and res.prompt_tokens > 0  # llm-katan reports usage
    assert res.finish_reason == "stop"
    assert res.latency_s > 0
    assert res.model == "smol-endpoint"


def test_through_engine(smol_spec, settings):
    catalog = Catalog(None)
    catalog.add(smol_spec, persist=False)
    engine = Engine(settings, catalog)
    try:
        [res] = engine.generate("smol-endpoint", [PARIS], SHORT)
        assert isinstance(engine.provider("smol-endpoint"), OpenAICompatProvider)
    finally:
        engine.close()
    assert res.ok, res.error
    assert "Paris" in res.text


def test_batch_keeps_order_and_isolates_bad_rows(smol):
    requests = [
        GenerationRequest.of(PARIS, SHORT),
        GenerationRequest.of("   ", SHORT),
        GenerationRequest.of("What is 2 + 2? Answer with a number.", SHORT),
        GenerationRequest.of([Message("user", "Name the capital of Italy in one word.")], SHORT),
    ]
    results = smol.generate(requests)
    assert len(results) == 4
    assert results[1].error and "empty" in results[1].error
    assert results[1].finish_reason == "error"
    for i in (0, 2, 3):
        assert results[i].ok, results[i].error
        assert results[i].text.strip()
    assert "Paris" in results[0].text
    assert "4" in results[2].text
    assert "Rome" in results[3].text


def test_stream_chunks_join_to_result(smol):
    events = list(smol.stream(GenerationRequest.of(PARIS, SHORT)))
    deltas = [e.delta for e in events if not e.done and e.delta]
    final = events[-1]
    assert final.done and all(not e.done for e in events[:-1])
    assert final.result.ok, final.result.error
    assert len(deltas) > 1  # llm-katan really streams (in 4-character chunks)
    assert "".join(deltas) == final.result.text
    assert "Paris" in final.result.text
    assert final.result.completion_tokens > 0  # from the usage in the last chunk
    assert 0 < final.result.time_to_first_token_s <= final.result.latency_s


def test_stop_strings_cut_the_reply_even_when_the_server_ignores_them(smol):
    # llm-katan ignores "stop", so this checks the client-side cut, in both paths.
    params = GenerationParams(max_new_tokens=16, stop=("Paris",))
    [res] = smol.generate([GenerationRequest.of(PARIS, params)])
    assert res.ok, res.error
    assert res.text.startswith("The capital") and "Paris" not in res.text
    events = list(smol.stream(GenerationRequest.of(PARIS, params)))
    streamed = "".join(e.delta for e in events if not e.done)
    assert events[-1].result.ok
    assert streamed == events[-1].result.text == res.text


def test_list_models(smol):
    assert smol.list_models() == ["smol"]


def test_wrong_api_key_is_a_clear_401(katan, settings, monkeypatch):
    monkeypatch.setenv("LLMPLAY_TEST_WRONG_KEY", "not-the-key")
    spec = ModelSpec(
        name="smol-bad-key", kind="chat", source="endpoint", location=katan.url, api_model="smol",
        api_key_env="LLMPLAY_TEST_WRONG_KEY",
    )  # fmt: skip
    provider = OpenAICompatProvider(spec, settings, backoff_s=0.01)
    try:
        started = time.perf_counter()
        [res] = provider.generate([GenerationRequest.of(PARIS, SHORT)])
        final = list(provider.stream(GenerationRequest.of(PARIS, SHORT)))[-1]
    finally:
        provider.close()
    assert time.perf_counter() - started < 5  # a 4xx is not retried
    assert "HTTP 401" in res.error and "invalid API key" in res.error
    assert "$LLMPLAY_TEST_WRONG_KEY" in res.error and katan.url in res.error
    assert "tried" not in res.error
    assert final.done and "HTTP 401" in final.result.error


def test_missing_api_key_says_it_is_not_set(katan, settings, monkeypatch):
    monkeypatch.delenv("LLMPLAY_TEST_UNSET_KEY", raising=False)
    spec = ModelSpec(
        name="smol-no-key", kind="chat", source="endpoint", location=katan.url, api_key_env="LLMPLAY_TEST_UNSET_KEY"
    )
    with pytest.raises(ProviderError, match=r"HTTP 401.*\$LLMPLAY_TEST_UNSET_KEY \(it is not set\)"):
        OpenAICompatProvider(spec, settings).list_models()


def test_wrong_path_is_a_404_with_the_url(katan, settings, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KATAN_KEY)
    location = f"http://127.0.0.1:{katan.port}/nope/v1"
    spec = ModelSpec(name="smol-404", kind="chat", source="endpoint", location=location, api_model="smol")
    provider = OpenAICompatProvider(spec, settings)
    [res] = provider.generate([GenerationRequest.of(PARIS, SHORT)])
    provider.close()
    assert res.finish_reason == "error"
    assert "HTTP 404" in res.error and f"{location}/chat/completions" in res.error


def test_base_model_on_a_chat_only_server_explains_the_404(katan, settings, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KATAN_KEY)
    spec = ModelSpec(name="smol-base", kind="base", source="endpoint", location=f"http://127.0.0.1:{katan.port}")
    provider = OpenAICompatProvider(spec, settings)
    [res] = provider.generate([GenerationRequest.of("Once upon a time", SHORT)])
    provider.close()
    assert "HTTP 404" in res.error and "/v1/completions" in res.error and "chat model" in res.error


def test_unreachable_endpoint_fails_fast_without_raising(settings):
    port = free_port()  # nothing listens there
    spec = ModelSpec(name="nobody", kind="chat", source="endpoint", location=f"http://127.0.0.1:{port}/v1")
    provider = OpenAICompatProvider(spec, settings, max_attempts=2, backoff_s=0.05)
    started = time.perf_counter()
    results = provider.generate([GenerationRequest.of(PARIS), GenerationRequest.of("")])
    events = list(provider.stream(GenerationRequest.of(PARIS)))
    provider.close()
    assert time.perf_counter() - started < 5
    err = results[0].error
    assert err.startswith(f"Cannot reach endpoint http://127.0.0.1:{port}/v1 (connection refused)")
    assert "Is the server running?" in err and "tried 2 times" in err
    assert "empty" in results[1].error  # checked before any network call
    assert len(events) == 1 and events[0].done
    assert "Cannot reach endpoint" in events[0].result.error


# ---- retries and payload, against a scripted local HTTP server ------------------------------------------------------
def _completion(text: str) -> dict:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }


def _provider(url: str, settings, **kw) -> OpenAICompatProvider:
    spec = ModelSpec(name="scripted", kind="chat", source="endpoint", location=url, api_model="m")
    return OpenAICompatProvider(spec, settings, **kw)


def test_retries_5xx_with_exponential_backoff(scripted, settings):
    busy = {"error": {"message": "overloaded"}}
    server = scripted((503, busy, {}), (503, busy, {}), (200, _completion("hello"), {}))
    provider = _provider(server.url, settings, max_attempts=3, backoff_s=0.2)
    [res] = provider.generate([GenerationRequest.of("hi")])
    provider.close()
    assert res.ok, res.error
    assert res.text == "hello" and res.finish_reason == "length" and res.completion_tokens == 2
    times = [t for t, *_ in server.seen]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4  # 0.2 s, then doubled


def test_gives_up_after_max_attempts_with_the_status(scripted, settings):
    server = scripted(*[(502, "Bad Gateway", {})] * 3)
    provider = _provider(server.url, settings, max_attempts=3, backoff_s=0.01)
    [res] = provider.generate([GenerationRequest.of("hi")])
    provider.close()
    assert len(server.seen) == 3
    assert "HTTP 502: Bad Gateway" in res.error and "tried 3 times" in res.error


def test_honours_retry_after_on_429(scripted, settings):
    server = scripted((429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}), (200, _completion("ok"), {}))
    provider = _provider(server.url, settings, backoff_s=0.01)
    [res] = provider.generate([GenerationRequest.of("hi")])
    provider.close()
    assert res.ok and len(server.seen) == 2
    assert server.seen[1][0] - server.seen[0][0] >= 1.0


def test_no_retry_on_4xx(scripted, settings):
    server = scripted((400, {"error": {"message": "max_tokens is too large."}}, {}), (200, _completion("no"), {}))
    provider = _provider(server.url, settings, backoff_s=0.01)
    [res] = provider.generate([GenerationRequest.of("hi")])
    provider.close()
    assert len(server.seen) == 1
    assert res.error == f"Endpoint {server.url}/chat/completions returned HTTP 400: max_tokens is too large."


def test_payload_maps_params_and_sends_the_key(scripted, settings, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = scripted((200, _completion("a"), {}), (200, _completion("b"), {}))
    provider = _provider(server.url, settings)
    params = GenerationParams(max_new_tokens=7, temperature=0.5, top_p=0.9, top_k=20, repetition_penalty=1.2)
    params_full = GenerationParams(max_new_tokens=7, stop=("\n",), seed=3)
    provider.generate([GenerationRequest.of("hi", params)])
    provider.generate([GenerationRequest.of("hi", params_full)])
    provider.close()
    (_, path, headers, body), (_, _, _, body2) = server.seen
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {
        "model": "m",
        "max_tokens": 7,
        "temperature": 0.5,
        "messages": [{"role": "user", "content": "hi"}],
        "top_p": 0.9,
        "top_k": 20,
        "repetition_penalty": 1.2,
    }
    assert body2["stop"] == ["\n"] and body2["seed"] == 3 and body2["temperature"] == 0.0
    assert "top_k" not in body2 and "repetition_penalty" not in body2 and "top_p" not in body2


def test_stream_falls_back_when_the_server_sends_plain_json(scripted, settings):
    # Some servers ignore "stream": true; llm-katan streams, so this path needs the scripted server.
    server = scripted((200, _completion("whole reply"), {}))
    provider = _provider(server.url, settings)
    events = list(provider.stream(GenerationRequest.of("hi")))
    provider.close()
    assert server.seen[0][3]["stream"] is True
    assert [e.delta for e in events if not e.done] == ["whole reply"]
    assert events[-1].done and events[-1].result.text == "whole reply" and events[-1].result.ok


def test_redirect_is_reported_not_followed(scripted, settings):
    server = scripted((308, "", {"Location": "https://elsewhere.example/v1/chat/completions"}))
    provider = _provider(server.url, settings)
    [res] = provider.generate([GenerationRequest.of("hi")])
    provider.close()
    assert len(server.seen) == 1
    assert "redirects (HTTP 308) to https://elsewhere.example/v1/chat/completions" in res.error


def test_base_url_normalisation():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url("https://x.example/v1beta/openai") == "https://x.example/v1beta/openai"


def test_a_visitors_model_never_gets_the_default_key(katan, settings, monkeypatch):
    # OPENAI_API_KEY holds the server's key: an operator's model without a key variable sends it (above),
    # a model added in the UI does not, and the 401 says why.
    monkeypatch.setenv("OPENAI_API_KEY", KATAN_KEY)
    spec = ModelSpec("visitor", "chat", "endpoint", katan.url, api_model="smol", added_by="user")
    with pytest.raises(ProviderError, match=r"HTTP 401.*sends no API key"):
        OpenAICompatProvider(spec, settings).list_models()
