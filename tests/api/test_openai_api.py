"""The OpenAI-compatible API (/v1) through the official ``openai`` client against a real llmplay server (uvicorn
on a port, users and API keys in a real SQLite file, the bundled SmolLM2 generating)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest

from llmplay.auth.keys import create_key, list_keys, revoke_keys
from llmplay.engine import GenerationParams, GenerationRequest
from llmplay.store import connect
from tests.conftest import CHAT_MODEL

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def client(server):
    url, settings, _ = server
    return openai.OpenAI(base_url=url + "/v1", api_key=create_key(settings, "vic"), max_retries=0, timeout=300)


def test_a_chat_completion_is_the_engines_greedy_reply_with_its_token_counts(server, client):
    _, _, api_engine = server
    reply = client.chat.completions.create(model=CHAT_MODEL, messages=QUESTION, temperature=0, max_tokens=8)
    request = GenerationRequest.of(QUESTION, GenerationParams(max_new_tokens=8))
    expected = [e.result for e in api_engine.stream(CHAT_MODEL, request) if e.done][0]  # the Playground's path
    assert reply.choices[0].message.content == expected.text and "Paris" in expected.text
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage.prompt_tokens == expected.prompt_tokens
    assert reply.usage.completion_tokens == expected.completion_tokens
    assert reply.usage.total_tokens == expected.prompt_tokens + expected.completion_tokens
    assert reply.model == CHAT_MODEL and reply.id.startswith("chatcmpl-")


def test_a_streamed_chat_adds_up_to_the_same_reply_and_ends_with_usage(client):
    whole = client.chat.completions.create(model=CHAT_MODEL, messages=QUESTION, temperature=0, max_tokens=8)
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=QUESTION,
        temperature=0,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "it streamed in pieces"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completions_stop_at_a_stop_string_streamed_or_not(client):
    prompt = "Count: one, two, three, four, five,"
    free = client.completions.create(model=CHAT_MODEL, prompt=prompt, temperature=0, max_tokens=12).choices[0].text
    # the stop string: the reply's third word (what the model writes differs with the CPU's int8 kernels)
    words = free.split()
    assert len(words) >= 3, free
    stop = words[2]
    expected = free[: free.index(stop)]
    cut = client.completions.create(model=CHAT_MODEL, prompt=prompt, temperature=0, max_tokens=12, stop=[stop])
    assert cut.choices[0].text == expected and cut.choices[0].finish_reason == "stop", (free, stop, cut)
    streamed = client.completions.create(
        model=CHAT_MODEL, prompt=prompt, temperature=0, max_tokens=12, stop=[stop], stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == expected


def test_a_seed_reproduces_a_sampled_reply(client):
    def sample(seed):
        reply = client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Tell me a story."}], temperature=1.0,
            max_tokens=16, seed=seed,
        )  # fmt: skip
        return reply.choices[0].message.content

    first = sample(7)
    assert sample(7) == first
    assert any(sample(s) != first for s in (8, 9)), "other seeds sample other replies"


def test_models_lists_catalog_models_and_lines_and_a_line_answers_from_its_active_version(server, client):
    names = {m.id for m in client.models.list()}
    assert {CHAT_MODEL, "line:capitals"} <= names
    assert "all-minilm-l6-v2" not in names, "an embeddings model writes no replies"
    url, settings, _ = server
    raw = client.chat.completions.with_raw_response.create(
        model="line:capitals", messages=QUESTION, temperature=0, max_tokens=4
    )
    assert raw.headers["x-llmplay-served-by"] == CHAT_MODEL, "no version promoted yet: the base model answers"
    assert raw.parse().model == "line:capitals"


def test_errors_come_in_openais_shape_with_their_status(server, client):
    url, settings, _ = server
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=QUESTION)
    assert missing.value.status_code == 404 and missing.value.code == "model_not_found"
    assert "GET /v1/models" in missing.value.message
    with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
        client.chat.completions.create(model=CHAT_MODEL, messages=QUESTION, n=2)
    with pytest.raises(openai.BadRequestError, match="'temperature' must be between 0 and 2"):
        client.chat.completions.create(model=CHAT_MODEL, messages=QUESTION, temperature=5)
    with pytest.raises(openai.AuthenticationError) as bad_key:
        openai.OpenAI(base_url=url + "/v1", api_key="llp-not-a-key", max_retries=0).models.list()
    assert bad_key.value.status_code == 401 and bad_key.value.code == "invalid_api_key"

    key = client.api_key
    for body, status, fragment in [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"model": CHAT_MODEL, "messages": "hi"}).encode(), 400, "'messages' must be a non-empty list"),
        (json.dumps({"model": CHAT_MODEL, "messages": [{"role": "user", "content": "x"}] * 1001}).encode(), 400,
         "at most 1000"),
        (b"{" + b" " * (5 * 1024 * 1024) + b"}", 413, "at most"),
    ]:  # fmt: skip
        request = urllib.request.Request(
            url + "/v1/chat/completions",
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=60)
        error = json.loads(info.value.read())["error"]
        assert info.value.code == status and fragment in error["message"], (status, error)
        assert error["type"] == "invalid_request_error"


def test_a_revoked_key_or_a_removed_user_stops_working_and_listings_show_no_secret(server):
    from llmplay.auth.users import add_user, remove_user

    url, settings, _ = server
    add_user(settings, "tmp", "viewer", "tmp-password")
    key = create_key(settings, "tmp")
    models = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0).models
    assert models.list().data
    assert revoke_keys(settings, "tmp") == 1
    with pytest.raises(openai.AuthenticationError):
        models.list()
    again = create_key(settings, "tmp")
    remove_user(settings, "tmp")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key=again, max_retries=0).models.list()
    listed = list_keys(settings, "tmp")
    assert len(listed) == 2 and all(k.prefix == key[:10] or k.prefix == again[:10] for k in listed)
    with connect(settings.db_path) as db:
        stored = json.dumps([dict(r) for r in db["api_keys"].rows])
    assert key not in stored and again not in stored, "only digests are kept"


# ---- traces and feedback ----------------------------------------------------------------------------------------


def test_every_request_is_a_trace_named_by_the_responses_id(server, client):
    from llmplay import traces

    _, settings, _ = server
    raw = client.chat.completions.with_raw_response.create(
        model="line:capitals", messages=QUESTION, temperature=0, max_tokens=6
    )
    reply = raw.parse()
    assert raw.headers["x-llmplay-trace-id"] == reply.id
    trace = traces.get_trace(settings, reply.id)
    assert (trace.user, trace.model, trace.served, trace.line) == ("vic", "line:capitals", CHAT_MODEL, "capitals")
    assert trace.request == QUESTION and trace.reply == reply.choices[0].message.content
    assert (trace.prompt_tokens, trace.completion_tokens) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert trace.finish_reason == reply.choices[0].finish_reason and trace.params["max_new_tokens"] == 6
    assert trace.latency_s > 0 and trace.backend and not trace.stream

    chunks = list(client.completions.create(model=CHAT_MODEL, prompt="Paris is", max_tokens=5, stream=True))
    streamed = traces.get_trace(settings, chunks[0].id)
    assert streamed.stream and streamed.endpoint == "completion" and streamed.request == "Paris is"
    assert streamed.reply == "".join(c.choices[0].text for c in chunks)
    assert len(traces.list_traces(settings, search="capital of france")) >= 1


def test_feedback_on_a_trace_lands_in_the_queues_with_the_trace_as_its_origin(server, client):
    import httpx

    from llmplay.feedback import store as fb

    url, settings, _ = server
    reply = client.chat.completions.create(model="line:capitals", messages=QUESTION, temperature=0, max_tokens=6)

    def feedback(body, key=None):
        headers = {"Authorization": f"Bearer {key or client.api_key}"}
        return httpx.post(url + "/v1/feedback", json=body, headers=headers, timeout=60)

    answer = feedback({"trace_id": reply.id, "rating": "down", "correction": "Paris.", "comment": "too long"})
    assert answer.status_code == 200, answer.text
    stored = {s["queue"]: s for s in answer.json()["stored"]}
    assert set(stored) == {"playground-ratings", "inbox"}
    with connect(settings.db_path) as db:
        item = fb.get_item(db, stored["inbox"]["item_id"])
        responses = fb.list_responses(db, item_id=item.id)
    assert item.output == reply.choices[0].message.content, "the trace's reply, never the client's"
    assert item.prompt == QUESTION and item.template == "financial-sentiment", "tagged with the line's template"
    assert item.origin == {"api_trace": reply.id} and item.source == "api"
    assert [(r.labeler, r.value) for r in responses if r.status == "submitted"] == [("vic", "Paris.")]

    refused = feedback({"trace_id": reply.id, "rating": "up"}, key=create_key(settings, "lab"))
    assert refused.status_code == 404 and "of yours" in refused.json()["error"]["message"], "another user's trace"
    assert feedback({"trace_id": "chatcmpl-nope", "rating": 1}).status_code == 404
    empty = feedback({"trace_id": reply.id})
    assert empty.status_code == 400 and "rating, a correction" in empty.json()["error"]["message"]
    assert feedback({"trace_id": reply.id, "rating": "meh"}).status_code == 400


def test_line_requests_follow_promotion_and_rollback_at_once(server, client, tmp_path):
    """A promotion (or rollback) moves the line's active alias; the next request is answered by that version,
    with no restart, and the response names it."""
    from llmplay.loop.lines import rollback, set_active
    from llmplay.models import registry
    from tests.models.test_trained import make_adapter

    _, settings, api_engine = server
    version = registry.register(
        settings.db_path, name="capitals", base_model=CHAT_MODEL, kind="adapter",
        path=make_adapter(api_engine, tmp_path / "adapter", seed=3), method="lora", task="sft",
    )  # fmt: skip

    story = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]

    def ask():
        raw = client.chat.completions.with_raw_response.create(
            model="line:capitals", messages=story, temperature=0, max_tokens=16
        )
        return raw.headers["x-llmplay-served-by"], raw.parse().choices[0].message.content

    before = ask()
    with connect(settings.db_path) as db:
        set_active(db, "capitals", version.id, user="ada", action="promote")
    promoted = ask()
    direct = client.chat.completions.create(model=version.label, messages=story, temperature=0, max_tokens=16)
    assert promoted == (version.label, direct.choices[0].message.content)
    assert promoted[1] != before[1], "the adapter answers differently from the base"
    with connect(settings.db_path) as db:
        rollback(db, "capitals", user="ada")
    assert ask() == before
    api_engine.models.unload_adapters()


def test_concurrent_streams_all_finish_and_each_is_stored_once(server, client):
    """Eight clients stream at once (the API's gate lets two generate, the rest wait their turn): every request
    is answered in full and stored as exactly one trace."""
    import threading

    from llmplay import traces

    _, settings, _ = server
    ids, errors = [], []

    def one(i: int) -> None:
        try:
            chunks = list(client.chat.completions.create(
                model=CHAT_MODEL, messages=[{"role": "user", "content": f"Say the number {i}."}], temperature=0,
                max_tokens=6, stream=True,
            ))  # fmt: skip
            assert chunks[-1].choices[0].finish_reason in ("stop", "length")
            ids.append(chunks[0].id)
        except Exception as exc:  # collected: an assert in a thread would be lost
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors and len(set(ids)) == 8
    stored = [t for t in traces.list_traces(settings, limit=1000) if t.id in ids]
    assert sorted(t.id for t in stored) == sorted(ids), "one trace per request, none twice"
    assert all(t.finish_reason in ("stop", "length") and t.reply for t in stored)
