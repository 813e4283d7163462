"""A line served by an external OpenAI-compatible engine, end to end: the official ``openai`` client talks to
llmplay's ``/v1``, llmplay forwards ``line:NAME`` to a real server process (llm-katan serving SmolLM2,
tests/servers.py), streamed and not, and keeps the key check, the trace and the feedback on its side."""

from __future__ import annotations

import httpx
import openai
import pytest

from llmplay import traces
from llmplay.auth.keys import create_key
from llmplay.loop.lines import create_line, set_serving
from llmplay.models.line_serving import LineServing
from llmplay.store import connect
from tests.conftest import CHAT_MODEL
from tests.servers import KATAN_KEY

pytestmark = pytest.mark.slow
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def forwarded(server, katan):
    """Line 'fwd' served by katan; its key comes from an environment variable the operator names."""
    url, settings, _ = server
    mp = pytest.MonkeyPatch()
    mp.setenv("FWD_ENGINE_KEY", KATAN_KEY)
    with connect(settings.db_path) as db:
        create_line(db, "fwd", CHAT_MODEL, "financial-sentiment")
        set_serving(db, "fwd", LineServing(url=katan.url, model="smol", key_env="FWD_ENGINE_KEY"), user="ada")
    client = openai.OpenAI(base_url=url + "/v1", api_key=create_key(settings, "vic"), max_retries=0, timeout=300)
    yield client, settings
    mp.undo()


def katan_reply(katan, **body) -> str:
    """What katan answers when asked directly (it decodes greedily whatever the temperature)."""
    answer = httpx.post(
        katan.url + "/chat/completions", json={"model": "smol", "messages": QUESTION, **body},
        headers={"Authorization": f"Bearer {KATAN_KEY}"}, timeout=300,
    )  # fmt: skip
    answer.raise_for_status()
    return answer.json()["choices"][0]["message"]["content"]


def test_a_line_served_by_an_engine_forwards_requests_there_and_keeps_the_trace(forwarded, katan):
    client, settings = forwarded
    raw = client.chat.completions.with_raw_response.create(
        model="line:fwd", messages=QUESTION, temperature=0, max_tokens=12
    )
    reply = raw.parse()
    assert reply.model == "line:fwd" and raw.headers["x-llmplay-served-by"] == CHAT_MODEL
    assert reply.choices[0].message.content == katan_reply(katan, max_tokens=12, temperature=0)
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0  # katan's counts, passed on
    trace = traces.get_trace(settings, reply.id)
    assert (trace.user, trace.line, trace.backend, trace.reply) == (
        "vic", "fwd", "endpoint", reply.choices[0].message.content,
    )  # fmt: skip


def test_a_streamed_request_is_forwarded_chunk_by_chunk(forwarded, katan):
    client, settings = forwarded
    stream = client.chat.completions.create(
        model="line:fwd", messages=QUESTION, temperature=0, max_tokens=12, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    text = "".join(deltas)
    assert text == katan_reply(katan, max_tokens=12, temperature=0)
    # katan sends a whole reply in 4-character pieces; llmplay's own decoder streams tokens. The pieces show
    # which one answered.
    assert len(deltas) > 1 and all(len(d) == 4 for d in deltas[:-1]), deltas
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert traces.get_trace(settings, chunks[0].id).stream


def test_a_bad_key_is_refused_by_llmplay_before_anything_is_forwarded(server, forwarded):
    url, _, _ = server
    stranger = openai.OpenAI(base_url=url + "/v1", api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="line:fwd", messages=QUESTION, max_tokens=4)


def test_an_engine_that_is_down_is_a_clear_server_error_and_a_stored_trace(server, forwarded):
    from tests.servers import free_port

    _, settings = forwarded
    with connect(settings.db_path) as db:
        create_line(db, "down", CHAT_MODEL, "financial-sentiment")
        set_serving(db, "down", LineServing(url=f"http://127.0.0.1:{free_port()}"), user="ada")
    client, _ = forwarded
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="line:down", messages=QUESTION, max_tokens=4)
    assert "127.0.0.1" in str(exc.value)  # the message names the engine's address
