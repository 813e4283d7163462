"""The Playground through its public API, on a live server with the real bundled chat model (greedy).

Every bad input must come back as a clear "⚠️ Error: ..." status (never an exception), and the app must
keep answering afterwards.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import time

import pytest

from llmplay.ui.common import ERROR
from llmplay.ui.decoding import parse_params, parse_stop
from llmplay.ui.tabs.chat_turns import is_note
from llmplay.ui.tabs.playground import build_prompt, content_text
from tests.conftest import BASE_MODEL, CHAT_MODEL, PARIS_QUESTION

GREEDY = {"max_new_tokens": 24, "temperature": 0}


def ask(client, message: str, history=None, model: str = CHAT_MODEL, **params) -> tuple[list, str]:
    return client.predict(message=message, history=history or [], model=model, **{**GREEDY, **params}, api_name="/chat")


def add_model(client, name: str, source: str, location: str, kind: str = "chat", api_model: str = "") -> tuple:
    return client.predict(
        name=name,
        source=source,
        location=location,
        kind=kind,
        api_model=api_model,
        api_key_env="",
        api_name="/add_model",
    )


def reply_of(history: list) -> str:
    assert history and history[-1]["role"] == "assistant"
    return content_text(history[-1]["content"])


def assert_still_serving(client) -> None:
    history, status = ask(client, PARIS_QUESTION)
    assert "Paris" in reply_of(history), history
    assert status.startswith("✅"), status


def assert_error(result: tuple, *fragments: str) -> None:
    history, status = result
    assert status.startswith(ERROR), status
    assert "unexpected" not in status, status  # a known failure deserves a specific message
    for fragment in fragments:
        assert fragment in status, status
    assert history == [], "a failed send leaves the history unchanged"


# ---- plain helpers ------------------------------------------------------------------------------------
def test_parse_stop_splits_on_commas_and_newlines():
    assert parse_stop("###, END\n\\n\\n,  ") == ("###", " END", "\n\n")
    assert parse_stop("") == ()


def test_parse_params_rejects_fractional_token_count():
    from llmplay.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="whole number"):
        parse_params(1.5, 0, 1, 0, 1, None, "")


def test_build_prompt_sends_history_to_chat_models_and_raw_text_to_base_models():
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert build_prompt("chat", "Next", history, "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Next"},
    ]
    assert build_prompt("base", "Once upon a time", [], "") == "Once upon a time"


# ---- live app -------------------------------------------------------------------------------------------
def test_paris_reply_streams_in_with_stats(client):
    job = client.submit(message=PARIS_QUESTION, history=[], model=CHAT_MODEL, **GREEDY, api_name="/chat")
    history, status = job.result(timeout=300)
    assert "Paris" in reply_of(history)
    assert "tokens/s" in status and "first token" in status and "finish: stop" in status, status
    # the first text is shown at once, before the finished reply with its stats note
    partial = [h for h, _ in job.outputs() if h and h[-1]["role"] == "assistant" and reply_of(h) != reply_of(history)]
    assert partial and reply_of(history).startswith(reply_of(partial[0])), job.outputs()


def test_a_long_reply_streams_in_pieces_at_most_every_pacing_interval(engine):
    """Redraws come at most every EVERY_S (a redraw per token made the browser fall behind the stream, and its Stop
    click with it), and often enough to read as a stream."""
    from llmplay.pacing import EVERY_S
    from llmplay.ui.tabs.playground import Playground

    updates = []
    for history, _status in Playground(engine).chat(
        "Count from 1 to 40, one number per line.", [], CHAT_MODEL, max_new_tokens=96
    ):
        if history and history[-1]["role"] == "assistant" and not is_note(history[-1]):
            updates.append((time.perf_counter(), reply_of(history)))
    *partial, (_, final) = updates
    assert len(partial) >= 3, f"expected the reply to stream in pieces; got {updates}"
    gaps = [b - a for (a, _), (b, _) in zip(partial, partial[1:])]
    assert min(gaps) >= EVERY_S * 0.9, gaps  # perf_counter on both sides: only the loop's own jitter
    assert all(final.startswith(text) for _, text in partial)


def test_the_stats_name_the_backend_and_the_selector_switches_it(client, monkeypatch):
    from llmplay.engine import fast_decoder

    history, status = ask(client, PARIS_QUESTION)  # the default: ONNX Runtime int8 for SmolLM2 (exported)
    assert "`onnx int8`" in status and "Paris" in reply_of(history), status
    history, status = ask(client, PARIS_QUESTION, backend="transformers")
    assert "`transformers float32`" in status and "Paris" in reply_of(history), status
    monkeypatch.setattr(fast_decoder, "SUPPORTED", ("llama",))  # Gemma-3 as an architecture it does not run
    history, status = ask(
        client, "The capital of France is", model=BASE_MODEL, backend="fast/float16", max_new_tokens=4
    )
    assert "`transformers float32`" in status and "Ran on the reference backend" in status, status


def test_history_is_sent_as_messages(client):
    first, first_status = ask(client, PARIS_QUESTION)
    second, second_status = ask(client, "And the capital of Italy?", history=first)
    # each reply comes after its stats note (llmplay/ui/tabs/chat_turns.py), which the model is never sent
    assert [m["role"] for m in second if not is_note(m)] == ["user", "assistant", "user", "assistant"]
    assert [is_note(m) for m in second] == [False, True, False, False, True, False]

    def prompt_tokens(status: str) -> int:
        return int(re.search(r"(\d+) prompt", status).group(1))

    assert prompt_tokens(second_status) > prompt_tokens(first_status) + 5


@pytest.mark.parametrize(
    "message, params, fragments",
    [
        (PARIS_QUESTION, {"model": "no-such-model"}, ["Unknown model 'no-such-model'", CHAT_MODEL]),
        ("   ", {}, ["empty"]),
        (PARIS_QUESTION, {"max_new_tokens": 5000}, ["max_new_tokens must be between 1 and 2048"]),
        (PARIS_QUESTION, {"max_new_tokens": 0}, ["max_new_tokens must be between 1 and 2048"]),
    ],
    ids=["unknown-model", "empty-message", "too-many-new-tokens", "zero-new-tokens"],
)
def test_bad_input_gives_clear_error(client, message, params, fragments):
    assert_error(ask(client, message, **params), *fragments)


def test_over_long_prompt_gives_clear_error(client, engine):
    limit = engine.settings.max_input_chars
    assert_error(ask(client, "x" * (limit + 1)), "characters; the limit is")


def test_app_keeps_serving_after_errors(client):
    assert_error(ask(client, "", model="no-such-model"))
    assert_still_serving(client)


@pytest.mark.skipif(
    importlib.util.find_spec("llmplay.engine.openai_compat") is None, reason="OpenAI-compatible provider not written"
)
def test_unreachable_endpoint_gives_clear_error(client):
    _, message = add_model(client, "ui-test-dead-endpoint", "endpoint", "http://127.0.0.1:9/v1", api_model="smol")
    assert message.startswith("✅"), message
    assert_error(ask(client, PARIS_QUESTION, model="ui-test-dead-endpoint"), "Cannot reach endpoint")
    assert_still_serving(client)


def test_add_model_rejects_invalid_name_and_missing_path(client, engine, tmp_path):
    _, message = add_model(client, "bad name!", "hub", "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert message.startswith(ERROR) and "not valid" in message, message
    # Visitors may not probe or load server paths (issue #9): the same refusal for a folder, a file, nothing.
    for path in ("/etc", "/etc/passwd", "/no/such/path"):
        _, message = add_model(client, "ui-test-outside", "local", path)
        assert message.startswith(ERROR) and "inside an allowed folder" in message, message
    _, message = add_model(client, "ui-test-dotdot", "hub", "../main")
    assert message.startswith(ERROR) and "Hub id must look like" in message, message
    _, message = add_model(client, "ui-test-missing", "local", str(engine.settings.models_dir / "nope"))
    assert message.startswith(ERROR) and "does not exist" in message, message
    _, message = add_model(client, "ui-test-bad-hub", "hub", "not a hub id")
    assert message.startswith(ERROR) and "org/model" in message, message


def test_added_hub_model_appears_and_fails_clearly_offline(client):
    picked, message = add_model(client, "ui-test-smol-360m", "hub", "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert message.startswith("✅"), message
    # The model dropdown update selects it and lists it among the choices.
    assert picked["value"] == "ui-test-smol-360m"
    assert "ui-test-smol-360m" in [value for _, value in picked["choices"]]
    # Adding loads nothing; the first use tries the Hub, which tests run offline.
    assert_error(ask(client, PARIS_QUESTION, model="ui-test-smol-360m"), "Hugging Face Hub")
    assert_still_serving(client)


def test_bad_local_path_gives_clear_error(client, engine):
    not_a_model = engine.settings.models_dir / "empty-folder"  # visitors may add folders from here only
    not_a_model.mkdir(parents=True)
    _, message = add_model(client, "ui-test-not-a-model", "local", str(not_a_model))
    assert message.startswith("✅"), message
    assert_error(ask(client, PARIS_QUESTION, model="ui-test-not-a-model"), "config.json")

    gone = engine.settings.models_dir / "moved-away"
    gone.mkdir()
    _, message = add_model(client, "ui-test-gone", "local", str(gone))
    assert message.startswith("✅"), message
    shutil.rmtree(gone)
    assert_error(ask(client, PARIS_QUESTION, model="ui-test-gone"), "does not exist")
    assert_still_serving(client)


def test_models_added_here_can_be_removed_here_and_no_others(client, engine):
    from llmplay.models.catalog import ModelSpec

    _, message = add_model(client, "ui-test-removable", "hub", "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert message.startswith("✅"), message
    picked, removable, message = client.predict(name="ui-test-removable", api_name="/remove_model")
    assert message.startswith("✅ Removed"), message
    assert "ui-test-removable" not in [v for _, v in picked["choices"]] + [v for _, v in removable["choices"]]
    assert "ui-test-removable" not in engine.catalog.names()

    engine.catalog.add(ModelSpec("ui-test-operator", "chat", "hub", "org/model"), persist=False)
    try:
        for name, fragment in [("gemma-3-270m", "built-in"), ("ui-test-operator", "set up by the operator")]:
            *_, message = client.predict(name=name, api_name="/remove_model")
            assert message.startswith(ERROR) and fragment in message, message
            assert name in engine.catalog.names()
    finally:
        engine.catalog.remove("ui-test-operator")


def test_default_model_is_preloaded_in_the_background(session_settings, engine):
    from llmplay.engine import Engine
    from llmplay.ui.app import warm_default_model

    fresh = Engine(session_settings, engine.catalog)
    spec = fresh.catalog.get(session_settings.default_model)
    assert not fresh.models.is_loaded(spec)
    warm_default_model(fresh).join(timeout=120)
    assert fresh.models.is_loaded(spec)
    loaded = fresh.models.get(spec)
    assert ("onnx", "int8") in loaded.conversions  # the first reply opens nothing (the export is on disk)


# ---- feedback on a reply ----------------------------------------------------------------------------------
def playground_feedback(engine, output: str) -> dict[str, list[dict]]:
    """Items for this reply per queue, each with its responses (all statuses)."""
    from llmplay.feedback.store import Item, list_items, list_queues, list_responses
    from llmplay.store import connect

    with connect(engine.settings.db_path) as db:
        out = {}
        for queue in list_queues(db):
            items: list[Item] = [i for i in list_items(db, queue, status=None) if i.output == output]
            out[queue.name] = [{"item": i, "responses": list_responses(db, item_id=i.id, status=None)} for i in items]
        return out


LAST = object()


def rate(client, history, liked, index=LAST, user="rater"):
    index = len(history) - 1 if index is LAST else index
    return client.predict(
        history=history, index=index, liked=liked, model=CHAT_MODEL, system_message="", user=user,
        api_name="/playground_rate",
    )  # fmt: skip


def test_thumbs_rate_a_reply_and_a_thumbs_down_waits_in_the_inbox(client, engine):
    history, _ = ask(client, "Name a colour. One word.")
    reply = reply_of(history)
    expected_prompt = [{"role": "user", "content": "Name a colour. One word."}]

    status = rate(client, history, False)
    assert status.startswith("✅") and "playground-ratings" in status and "inbox" in status, status
    found = playground_feedback(engine, reply)
    (rating,) = found["playground-ratings"]
    assert rating["item"].prompt == expected_prompt and rating["item"].model == CHAT_MODEL
    assert rating["item"].source == "playground"
    assert [(r.labeler, r.value, r.status) for r in rating["responses"]] == [("rater", 0, "submitted")]
    (flagged,) = found["inbox"]
    assert flagged["responses"] == [] and flagged["item"].status == "open", "a labeler corrects it there"

    assert rate(client, history, True).startswith("✅")  # changed their mind: 👍
    found = playground_feedback(engine, reply)
    assert [(r.value, r.status) for r in found["playground-ratings"][0]["responses"]] == [(1, "submitted")]
    assert found["inbox"][0]["item"].status == "discarded", "no longer flagged for correction"

    assert rate(client, history, "") == "✅ Rating taken back."  # the thumb clicked again
    found = playground_feedback(engine, reply)
    assert [r.status for r in found["playground-ratings"][0]["responses"]] == ["discarded"]

    fixed = "Blue."
    status = client.predict(
        history=history, correction=fixed, model=CHAT_MODEL, system_message="", user="",
        api_name="/playground_correction",
    )  # fmt: skip
    assert status.startswith("✅") and "inbox" in status, status
    fixes = [f for f in playground_feedback(engine, reply)["inbox"] if f["responses"]]
    assert [(r.value, r.labeler) for f in fixes for r in f["responses"]] == [(fixed, "anonymous")]
    assert fixes[0]["item"].prompt == expected_prompt


def test_bad_feedback_on_a_reply_says_why_and_stores_nothing(client, engine):
    history, _ = ask(client, PARIS_QUESTION)
    before = playground_feedback(engine, reply_of(history))
    assert rate(client, history, False, index=0).startswith(ERROR + "Only the model's replies")
    assert rate(client, history, False, index=7).startswith(ERROR + "There is no message 7")
    assert rate(client, [], True, index=None).startswith(ERROR + "There is no reply yet")
    assert rate(client, history, "maybe").startswith(ERROR)
    empty = client.predict(
        history=history,
        correction="  ",
        model=CHAT_MODEL,
        system_message="",
        user="",
        api_name="/playground_correction",
    )
    assert empty.startswith(ERROR) and "empty" in empty, empty
    assert playground_feedback(engine, reply_of(history)) == before


@pytest.mark.slow
def test_thumbs_down_and_a_correction_in_the_browser(ui_url, engine):
    from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
        pytest.skip("chromium or playwright is not installed")
    from playwright.sync_api import expect, sync_playwright

    question = "Name a fruit. One word."
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(ui_url)
            box = page.locator("#playground-message textarea")
            box.fill(question)
            box.press("Enter")
            page.locator("#playground-status").get_by_text("tokens/s").wait_for(timeout=120_000)
            page.locator("#playground-user").get_by_role("textbox").fill("browser-rater")
            page.locator("#playground-chat").get_by_label("Dislike").last.click()
            status = page.locator("#playground-feedback-status")
            expect(status).to_contain_text("playground-ratings", timeout=30_000)
            page.locator("#playground-correct").get_by_text("Correct this reply").click()
            page.locator("#playground-correction textarea").fill("Apple.")
            page.locator("#playground-send-correction").click()
            expect(status).to_contain_text("queue 'inbox' as a corrected answer", timeout=30_000)
        finally:
            browser.close()
    from llmplay.feedback.store import list_items, list_responses
    from llmplay.store import connect

    with connect(engine.settings.db_path) as db:
        (rated,) = [i for i in list_items(db, "playground-ratings") if i.prompt[-1]["content"] == question]
        assert [(r.labeler, r.value) for r in list_responses(db, item_id=rated.id)] == [("browser-rater", 0)]
        (fixed,) = [i for i in list_items(db, "inbox") if i.output == rated.output]
        assert [(r.labeler, r.value) for r in list_responses(db, item_id=fixed.id)] == [("browser-rater", "Apple.")]
