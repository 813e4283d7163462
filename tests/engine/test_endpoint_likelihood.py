"""Likelihood scoring on OpenAI-compatible endpoints from prompt log-probabilities (``/completions`` with
``echo: true, logprobs: 1, max_tokens: 1``, as lm-evaluation-harness asks vLLM and llama.cpp servers).

UNIT TEST WITH A REPLAYED RESPONSE, NOT A REAL SERVER: the local test server (llm-katan) has no /completions and
no vLLM or llama.cpp server can run here, so a loopback HTTP server replays replies written in the shapes those
servers send: ``VLLM_REPLY`` in vLLM's / OpenAI's legacy completions shape (``tokens``, ``token_logprobs``,
``text_offset``; the first prompt token without a log-probability, one generated token after the prompt), and
``LLAMA_CPP_CHOICE`` in llama.cpp's per-token ``content`` shape. The numbers are made up; what is tested is how the
provider asks and which tokens it sums. tests/evaluation/test_likelihood_runs.py checks the same path end to end
with log-probabilities computed by a real model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmplay.engine.openai_compat import OpenAICompatProvider
from llmplay.engine.prompt_logprobs import ENDPOINT_LIKELIHOOD, option_score, prompt_logprobs
from llmplay.engine.types import GenerationRequest
from llmplay.errors import InvalidRequestError, ProviderError
from llmplay.models.catalog import ModelSpec

CONTEXT = "The capital of France is"
BOS = "<bos>"


def _legacy_choice(index: int, pieces: list[tuple[str, float | None]]) -> dict:
    """A choice as vLLM sends it with echo: the echoed prompt's tokens, then the generated one."""
    offsets, at = [], 0
    for text, _ in pieces:
        offsets.append(at)
        at += 0 if text == BOS else len(text)  # special tokens are not in the echoed text
    return {
        "index": index,
        "text": "".join(t for t, _ in pieces if t != BOS),
        "logprobs": {
            "text_offset": offsets,
            "token_logprobs": [v for _, v in pieces],
            "tokens": [t for t, _ in pieces],
            "top_logprobs": [None] + [{t: v} for t, v in pieces[1:]],
        },
        "finish_reason": "length",
        "stop_reason": None,
    }


PROMPT_TOKENS = [(BOS, None), ("The", -9.5), (" capital", -6.25), (" of", -0.5), (" France", -2.0), (" is", -1.0)]
# vLLM's reply to prompt = [CONTEXT + " Paris", CONTEXT + " Lyon city"]: BOS has no text and no log-probability.
VLLM_REPLY = {
    "id": "cmpl-4f1c2d",
    "object": "text_completion",
    "created": 1733450000,
    "model": "gemma-3-270m",
    "choices": [
        _legacy_choice(0, [*PROMPT_TOKENS, (" Paris", -0.75), (".", -1.5)]),
        _legacy_choice(1, [*PROMPT_TOKENS, (" Lyon", -4.0), (" city", -3.0), (",", -2.5)]),
    ],
    "usage": {"prompt_tokens": 15, "total_tokens": 17, "completion_tokens": 2},
}
# llama.cpp's per-token shape for CONTEXT + " Paris": offsets come from each token's bytes.
LLAMA_CPP_CHOICE = {
    "index": 0,
    "text": CONTEXT + " Paris.",
    "logprobs": {
        "content": [
            {"id": i, "token": t, "bytes": list(t.encode()), "logprob": v, "top_logprobs": []}
            for i, (t, v) in enumerate([*PROMPT_TOKENS[1:], (" Paris", -0.75), (".", -1.5)])
        ]
    },
}


class _Replay:
    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.reply: tuple[int, dict] = (200, VLLM_REPLY)


@pytest.fixture()
def replay() -> Iterator[tuple[_Replay, str]]:
    state = _Replay()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.requests.append((self.path, body))
            code, reply = state.reply
            data = json.dumps(reply).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _provider(url: str, settings, kind: str = "base") -> OpenAICompatProvider:
    spec = ModelSpec(name="served", kind=kind, source="endpoint", location=url, api_model="gemma-3-270m")
    return OpenAICompatProvider(spec, settings, concurrency=1, max_attempts=1)


def test_vllm_reply_scores_each_option_from_its_prompt_tokens(replay, settings):
    state, url = replay
    provider = _provider(url, settings)
    [row] = provider.score_batch([GenerationRequest.of(CONTEXT)], [" Paris", " Lyon city"])
    assert row.ok, row.error
    paris, lyon = row.scores
    # the option's tokens only: not the context's, not the generated "." / ","
    assert (paris.logprob, paris.tokens) == (-0.75, 1)
    assert (lyon.logprob, lyon.tokens) == (-7.0, 2)
    assert row.best() == " Paris" and row.backend == ENDPOINT_LIKELIHOOD
    [(path, body)] = state.requests
    assert path == "/v1/completions"
    assert body["prompt"] == [CONTEXT + " Paris", CONTEXT + " Lyon city"]
    assert body["echo"] is True and body["logprobs"] >= 1 and body["max_tokens"] == 1 and body["temperature"] == 0
    assert body["model"] == "gemma-3-270m"


def test_llama_cpp_per_token_shape_reads_the_same():
    tokens = prompt_logprobs(LLAMA_CPP_CHOICE, LLAMA_CPP_CHOICE["text"])
    score = option_score(" Paris", CONTEXT, tokens, "http://x")
    assert (score.logprob, score.tokens) == (-0.75, 1)


def test_a_token_across_the_context_end_counts_for_the_option():
    # the server tokenized "Answer:" + " yes" as "Answer" + ": yes"
    choice = _legacy_choice(0, [("Answer", None), (": yes", -0.5), ("!", -3.0)])
    score = option_score(" yes", "Answer:", prompt_logprobs(choice, choice["text"]), "http://x")
    assert (score.logprob, score.tokens) == (-0.5, 1)


def test_a_server_that_returns_no_prompt_logprobs_is_refused_once(replay, settings):
    state, url = replay
    no_logprobs = {"choices": [{"index": i, "text": "x", "logprobs": None} for i in range(2)]}
    state.reply = (200, no_logprobs)
    provider = _provider(url, settings)
    rows = provider.score_batch([GenerationRequest.of(CONTEXT), GenerationRequest.of("Other")], [" a", " b"])
    assert all(not r.ok and "no prompt log-probabilities" in r.error and "generate mode" in r.error for r in rows)
    assert len(state.requests) == 1  # the second row was refused without asking again


def test_a_server_without_completions_says_what_likelihood_needs(replay, settings):
    state, url = replay
    state.reply = (404, {"detail": "Not Found"})
    [row] = _provider(url, settings).score_batch([GenerationRequest.of(CONTEXT)], [" Paris"])
    assert not row.ok and "404" in row.error and "echo + logprobs" in row.error


def test_a_chat_endpoint_is_refused_before_any_request(replay, settings):
    state, url = replay
    with pytest.raises(InvalidRequestError, match="chat endpoint"):
        _provider(url, settings, kind="chat").score_batch([GenerationRequest.of(CONTEXT)], [" Paris"])
    assert state.requests == []


def test_an_echo_less_reply_is_not_mistaken_for_prompt_logprobs():
    generated_only = _legacy_choice(0, [(" Paris", -0.75)])
    assert prompt_logprobs(generated_only, " Paris") is None
    prompt_only = _legacy_choice(0, PROMPT_TOKENS)  # the echo stops before the option
    with pytest.raises(ProviderError, match="no tokens"):
        option_score(" Lyon", CONTEXT, prompt_logprobs(prompt_only, prompt_only["text"]), "http://x")
