"""The rules around the OpenAI-compatible API that need no server: reading requests, the single-user-mode
loopback rule, and the gate that bounds API generations."""

from __future__ import annotations

import threading

import pytest
from starlette.requests import Request

from llmplay.api.openai_api import _caller
from llmplay.api.openai_shapes import ApiError, parse_chat, parse_completion
from llmplay.concurrency import Busy, Gate
from llmplay.engine import Engine


def test_a_chat_request_maps_to_the_engines_request_and_ignores_unknown_fields():
    call = parse_chat(
        {
            "model": "m",
            "messages": [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                         {"role": "user", "content": "Hi"}],
            "max_completion_tokens": 5, "max_tokens": 99, "temperature": 0, "stop": "\n", "seed": 3,
            "logit_bias": {"1": 2}, "user": "someone",
        },
        max_tokens_limit=512,
    )  # fmt: skip
    assert call.chat and not call.stream
    assert call.request.as_messages() == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    p = call.request.params
    assert (p.max_new_tokens, p.temperature, p.stop, p.seed) == (5, 0.0, ("\n",), 3)
    plain = parse_chat({"model": "m", "messages": [{"role": "user", "content": "x"}]}, 512)
    assert plain.request.params.temperature == 1.0, "OpenAI's default: sampling"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "'model' is required"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0] must be an object with a role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "'content' must be a string"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10_000}, "between 1 and 512"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}, "must be an integer"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a"] * 5}, "at most 4"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "'stream' must be true"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_a_malformed_chat_request_is_a_400_naming_the_field(body, fragment):
    with pytest.raises(ApiError, match=fragment.replace("[", r"\[").replace("]", r"\]")) as info:
        parse_chat(body, 512)
    assert info.value.status == 400 and info.value.body()["error"]["type"] == "invalid_request_error"


def test_a_completion_takes_one_prompt_and_refuses_what_it_cannot_do():
    assert parse_completion({"model": "m", "prompt": ["one"]}, 512).request.prompt == "one"
    with pytest.raises(ApiError, match="one prompt per request"):
        parse_completion({"model": "m", "prompt": ["a", "b"]}, 512)
    with pytest.raises(ApiError, match="'echo', 'logprobs'"):
        parse_completion({"model": "m", "prompt": "a", "echo": True}, 512)


def _request(host: str, headers: dict | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "GET", "path": "/v1/models", "headers": raw, "client": (host, 1)})


def test_single_user_mode_answers_this_machine_only_unless_opened(settings):
    engine = Engine(settings)
    assert _caller(engine, _request("127.0.0.1")).role == "admin"
    with pytest.raises(ApiError, match="answers this machine only") as info:
        _caller(engine, _request("203.0.113.9"))
    assert info.value.status == 403
    opened = Engine(settings.with_(api_open=True))
    assert _caller(opened, _request("203.0.113.9")).single_user


def test_the_gate_bounds_holders_and_refuses_past_its_queue():
    gate = Gate(limit=1, waiting_max=1)
    gate.acquire()
    waiter_done = threading.Event()

    def waiter():
        gate.acquire(timeout=30)
        waiter_done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = threading.Event()
    while gate._waiting == 0 and not deadline.wait(0.01):
        pass
    with pytest.raises(Busy, match="1 requests are waiting"):
        gate.acquire(timeout=1)
    gate.release()
    thread.join(timeout=30)
    assert waiter_done.is_set(), "the waiting caller got the freed slot"
    with pytest.raises(Busy, match="no slot became free"):
        gate.acquire(timeout=0.05)
