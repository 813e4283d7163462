"""The plain HTTP routes served beside the Gradio app (a real uvicorn server on a loopback port, a real SQLite
file): labeling next / submit, their refusals, and /health, also for a broken database."""

from __future__ import annotations

import threading
import time

import gradio as gr
import httpx
import pytest

from llmplay.engine import Engine
from llmplay.feedback import store
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.ui.app import server_app
from tests.ui.conftest import free_port


@pytest.fixture
def served(tmp_path):
    import uvicorn

    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    with connect(settings.db_path) as db:
        queue = store.create_queue(db, "q", "label", labels=["yes", "no"], k=2, user="admin")
        store.add_items(db, queue, [{"source": "test", "prompt": f"p{i}", "output": "yes"} for i in range(3)])
    with gr.Blocks() as demo:
        gr.Markdown("test")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(server_app(Engine(settings), demo), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url, settings
    server.should_exit = True
    thread.join(timeout=10)


def test_labeling_over_plain_http_stores_once_and_refuses_with_a_message(served):
    url, settings = served
    item = httpx.post(f"{url}/api/labeling/next", json={"queue": "q", "labeler": "ann"}).json()
    assert item["task"] == "label" and item["labels"] == ["yes", "no"]
    body = {"queue": "q", "labeler": "ann", "item_id": item["item_id"], "value": "no", "client_token": "t-1"}
    first = httpx.post(f"{url}/api/labeling/submit", json=body).json()
    again = httpx.post(f"{url}/api/labeling/submit", json=body).json()  # a retried request
    assert first["response_id"] == again["response_id"]
    bad = httpx.post(f"{url}/api/labeling/submit", json=body | {"value": "maybe", "client_token": "t-2"})
    assert bad.status_code == 400 and "not in this queue's label set" in bad.json()["error"]
    nameless = httpx.post(f"{url}/api/labeling/next", json={"queue": "q", "labeler": " "})
    assert nameless.status_code == 400 and "Type your name" in nameless.json()["error"]
    unknown = httpx.post(f"{url}/api/labeling/next", json={"queue": "nope", "labeler": "ann"})
    assert unknown.status_code == 400 and "no feedback queue" in unknown.json()["error"]
    with connect(settings.db_path) as db:
        assert [r.value for r in store.list_responses(db, queue="q")] == ["no"]
    assert httpx.get(url + "/").status_code == 200  # the Gradio app is served at / beside the routes


def test_a_client_token_reused_for_another_item_is_a_409_and_stores_nothing(served):
    url, settings = served
    submit = f"{url}/api/labeling/submit"
    with connect(settings.db_path) as db:
        first, second = [i.id for i in store.list_items(db, "q")][:2]
    body = {"queue": "q", "labeler": "ann", "item_id": first, "value": "no", "client_token": "tok-1"}
    assert httpx.post(submit, json=body).status_code == 200
    reused = httpx.post(submit, json=body | {"item_id": second, "value": "yes"})
    assert reused.status_code == 409 and "already used for another answer" in reused.json()["error"]
    other = httpx.post(submit, json=body | {"labeler": "bo"})  # another labeler's token: not their response
    assert other.status_code == 409 and "response_id" not in other.json()
    retry = httpx.post(submit, json=body)  # the same labeler, item and token: the stored response again
    assert retry.status_code == 200 and retry.json()["item_id"] == first
    with connect(settings.db_path) as db:
        stored = [(r.item_id, r.labeler, r.value) for r in store.list_responses(db, queue="q")]
    assert stored == [(first, "ann", "no")]


def test_health_reports_the_database_and_a_broken_one_as_unhealthy(served):
    url, settings = served
    ok = httpx.get(f"{url}/health")
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    assert ok.json()["database"]["journal_mode"] == "wal"
    settings.db_path.unlink()
    for suffix in ("-wal", "-shm"):
        settings.db_path.with_name(settings.db_path.name + suffix).unlink(missing_ok=True)
    settings.db_path.write_bytes(b"this is not a database" * 100)
    broken = httpx.get(f"{url}/health")
    assert broken.status_code == 503 and broken.json()["status"] == "unhealthy"
    assert broken.json()["database"]["ok"] is False
    # open to anyone, so it names no server path (the data dir, the database, the model cache)
    for answer in (ok, broken):
        assert str(settings.data_dir) not in answer.text and str(settings.cache_dir) not in answer.text


def test_a_body_of_the_wrong_shape_is_a_400_with_what_is_wrong(served):
    url, settings = served
    item = httpx.post(f"{url}/api/labeling/next", json={"queue": "q", "labeler": "ann"}).json()["item_id"]
    body = {"queue": "q", "labeler": "ann", "item_id": 2**70, "value": "no", "client_token": "t-big"}
    for bad, where in [(body, "item_id"), (body | {"item_id": 0}, "item_id"), ({"queue": "q"}, "labeler")]:
        answer = httpx.post(f"{url}/api/labeling/submit", json=bad)
        assert answer.status_code == 400 and where in answer.json()["error"], answer.text
    answer = httpx.post(f"{url}/api/labeling/submit", json=body | {"item_id": item})
    assert answer.status_code == 200  # the same request with a real id is stored
    with connect(settings.db_path) as db:
        assert [r.value for r in store.list_responses(db, queue="q")] == ["no"]
