"""Every error says what went wrong: what Gradio refuses before a handler runs (the app as `launch` serves
it), a chat history of the wrong shape, and an uploaded JSON file nested 200,000 deep."""

from __future__ import annotations

import os

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from llmplay.ui.common import ERROR
from llmplay.ui.tabs.playground import Playground
from tests.conftest import CHAT_MODEL
from tests.ui.conftest import free_port


def test_launch_sends_gradios_own_rejections_with_their_message(engine, monkeypatch):
    from llmplay.ui.app import launch

    monkeypatch.setenv("GRADIO_TEMP_DIR", "restored-after-the-test")  # launch points it into the data dir
    monkeypatch.delenv("GRADIO_TEMP_DIR")
    demo = launch(engine, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        assert os.environ["GRADIO_TEMP_DIR"] == str((engine.settings.data_dir / "tmp" / "gradio").resolve())
        client = Client(demo.local_url, verbose=False)
        try:
            with pytest.raises(AppError) as refused:  # the chatbot's payload model refuses a string
                client.predict(message="Hi", history="not a list", model=CHAT_MODEL, api_name="/chat")
        finally:
            client.close()
    finally:
        demo.close()
    message = str(refused.value)
    assert "verbose error reporting" not in message and "valid list" in message, message


def test_chat_refuses_a_history_of_the_wrong_shape_by_name(client, engine):
    # Gradio's chatbot model lets any role through; the handler names it instead of silently dropping turns.
    odd = [{"role": "robot", "content": [{"type": "text", "text": "beep"}]}]
    history, status = client.predict(
        message="Hi", history=odd, model=CHAT_MODEL, max_new_tokens=2, temperature=0, api_name="/chat"
    )
    assert status.startswith(ERROR) and "role 'robot'" in status and history == [], status

    # A script calling the handler itself is checked the same way.
    for bad, fragment in [("not a list", "history must be a list"), ([["user", "Hi"]], "history message 1")]:
        *_, (history, status) = Playground(engine).chat("Hi", bad, CHAT_MODEL, max_new_tokens=2)
        assert status.startswith(ERROR) and fragment in status and "unexpected" not in status, status


def test_a_json_upload_nested_too_deeply_is_refused_clearly(client, tmp_path):
    depth = 200_000
    path = tmp_path / "deep.json"
    path.write_text('[{"a": ' + "[" * depth + "]" * depth + "}]", encoding="utf-8")
    info, preview, *_ = client.predict(file=handle_file(str(path)), template="", api_name="/eval_upload_preview")
    assert info.startswith(ERROR) and "deep.json is nested too deeply" in info, info
    assert preview["data"] == []
