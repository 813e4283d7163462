"""The Compare tab through its public API (gradio_client) on a live server with the real bundled models, and
in a real browser. Greedy decoding, so every reply can be checked against the engine's own output (and an
evaluation row reopened here against the run's stored output).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
from pathlib import Path

import pandas as pd
import pytest

from llmplay.compare import ColumnConfig
from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine import GenerationParams, GenerationRequest, backends
from llmplay.evaluation.config import ColumnConfig as EvalColumn
from llmplay.evaluation.config import RunConfig
from llmplay.evaluation.handoff import RowHandoff
from llmplay.evaluation.runner import EvalRunner
from llmplay.models.catalog import ModelSpec
from llmplay.services import Services
from llmplay.store import connect
from llmplay.templates import TemplateLibrary
from llmplay.ui.common import ERROR
from llmplay.ui.tabs.compare.columns import MAX_NEW_TOKENS
from llmplay.ui.tabs.compare.tab import CompareTab, build_compare_tab
from llmplay.ui.tabs.compare.view import api_column, column_params, handoff_dict
from tests.conftest import BASE_MODEL, CHAT_MODEL, PARIS_QUESTION

STORY = "Write a short story about a robot who learns to paint."
TOKENS = 32
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = os.environ.get("LLMPLAY_COMPARE_SCREENSHOT")  # a path to look at the tab after a run
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def compare_job(client, message: str, columns: list[dict], **kwargs):
    return client.submit(message=message, columns=columns, api_name="/compare", **kwargs)


def greedy(model: str, **extra) -> dict:
    return {"model": model, "max_new_tokens": TOKENS, "temperature": 0, **extra}


def chat_reply(engine, messages: list[dict], tokens: int = TOKENS) -> str:
    """The greedy reply one stream gives alone, on the stream backend Compare's columns use."""
    request = GenerationRequest.of(messages, GenerationParams(max_new_tokens=tokens))
    return next(e.result for e in engine.stream(CHAT_MODEL, request) if e.done).text


def base_reply(engine, text: str, tokens: int = TOKENS) -> str:
    request = GenerationRequest.of(text, GenerationParams(max_new_tokens=tokens))
    return next(e.result for e in engine.stream(BASE_MODEL, request) if e.done).text


@pytest.fixture()
def dead_endpoint(engine):
    """A catalog model whose endpoint refuses connections (a loopback port nothing listens on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = ModelSpec(name="ui-compare-dead", kind="chat", source="endpoint", location=f"http://127.0.0.1:{port}/v1")
    engine.catalog.add(spec, persist=False)
    yield spec.name
    engine.catalog.remove(spec.name)


HANDOFF = "compare-handoff"
HANDOFF_YAML = """\
name: compare-handoff
description: A short sentiment prompt for opening evaluation rows in Compare.
task: classification
variables:
  - name: text
body: |-
  {body}
output:
  labels: [positive, negative, neutral]
"""
HANDOFF_ROWS = [
    ("Harbourline Shipping doubled its quarterly profit.", "positive"),
    ("Quillon Chemicals will lay off 600 workers.", "negative"),
    ("The meeting will take place in Oslo on 3 April.", "neutral"),
]


@pytest.fixture(scope="module")
def eval_run(engine, ui_prompts_dir) -> tuple[int, list]:
    """A finished 3-row run in the app's database: version 1 of a template and its current version 2, on the
    chat model; the dataset's ``sentence`` column fills the ``text`` variable. Returns (run id, versions)."""
    library = TemplateLibrary(ui_prompts_dir, engine.settings.db_path)  # the app's library: same folder and db
    for body in ("{{ text }}\n  Sentiment (positive, negative or neutral):", "Sentence: {{ text }}\n  Sentiment:"):
        library.save(HANDOFF_YAML.format(body=body), message="compare tab test")
    versions = library.versions(HANDOFF)[-2:]
    df = pd.DataFrame(HANDOFF_ROWS, columns=["sentence", "label"], dtype=object)
    save_dataset(engine.settings, "compare-handoff-rows", df, ColumnMapping({"text": "sentence"}, "label"))
    params = GenerationParams(max_new_tokens=4)
    # on the precision Compare streams on (the session's auto: onnx int8), so a rerun repeats the replies on any CPU
    # (transformers float32 and int8 part ways on some prompts, and where differs between CPUs)
    pin = {"backend": f"onnx/{backends.AUTO_ONNX}"}
    columns = (
        EvalColumn(HANDOFF, CHAT_MODEL, params=params, template_version=versions[0].number, **pin),
        EvalColumn(HANDOFF, CHAT_MODEL, params=params, **pin),
    )
    run_id = EvalRunner(engine, library).run(RunConfig(dataset="compare-handoff-rows", columns=columns))
    return run_id, versions


def stored_outputs(engine, run_id: int, row: int) -> list[str]:
    """The run's replies for one row, straight from SQLite, in column order."""
    with connect(engine.settings.db_path) as db:
        rows = db.query(
            "select o.text from eval_cells c join eval_outputs o on o.id = c.output_id "
            "where c.run_id = ? and c.row_index = ? order by c.column_index",
            [run_id, row],
        )
        return [r["text"] for r in rows]


def compare_feedback(engine) -> list[dict]:
    """Compare's feedback items (both built-in queues, in the order sent) with their queue and the response."""
    with connect(engine.settings.db_path) as db:
        return list(
            db.query(
                "select i.*, q.name as queue, r.labeler, r.value, r.status as response from feedback_items i "
                "join feedback_queues q on q.id = i.queue_id left join feedback_responses r on r.item_id = i.id "
                "where i.source like 'compare%' order by i.id"
            )
        )


# ---- plain helpers -----------------------------------------------------------------------------------------
def test_column_params_take_defaults_and_reject_bad_values():
    assert column_params({}) == GenerationParams(max_new_tokens=MAX_NEW_TOKENS)
    assert column_params({"temperature": 0.7, "seed": "5", "stop": "###"}).seed == 5
    from llmplay.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="whole number"):
        column_params({"max_new_tokens": 2.5})


def test_api_column_is_what_the_compare_endpoint_reads_back(engine):
    tab = CompareTab(engine, TemplateLibrary(Path("."), engine.settings.db_path))
    params = GenerationParams(max_new_tokens=7, temperature=0.5, top_p=0.9, top_k=4, seed=11, stop=("\n\n", "###"))
    config = ColumnConfig(CHAT_MODEL, params, template="t@v2", adapter="/loras/x", dtype="bfloat16")
    assert tab.column_config(api_column(config), None) == config
    json.dumps(api_column(config))


def test_a_one_column_run_opens_as_two_columns():
    handoff = RowHandoff(3, 0, (ColumnConfig(CHAT_MODEL, dtype="float32"),), {"text": "Hi"}, ("t",), ("ok",), ())
    opened = handoff_dict(handoff, default_dtype="float32")
    assert opened["count"] == 2 and opened["columns"][0] == opened["columns"][1]
    assert opened["columns"][0]["dtype"] == "", "the settings' default dtype shows as the default"
    assert "column 2 repeats it" in opened["notes"][-1] and opened["error"] is None


def test_fill_puts_an_evaluation_row_into_the_form(engine, ui_prompts_dir):
    import gradio as gr

    with gr.Blocks() as demo:
        handle = build_compare_tab(Services.build(engine, ui_prompts_dir, check_s=0), demo)
    hot = ColumnConfig(BASE_MODEL, GenerationParams(max_new_tokens=9, temperature=3.0), dtype="float16")
    columns = [api_column(ColumnConfig(CHAT_MODEL, template=HANDOFF)), api_column(hot), api_column(hot)]
    handoff = {"run_id": 5, "row": 1, "count": 3, "columns": columns, "values": {"text": "Profit rose."}}
    handoff |= {"titles": ["a", "b", "c"], "outputs": ["positive", None, "x"], "notes": ["Row note."]}

    out = handle.fill(handoff)
    assert set(out) <= set(handle.outputs), "every update goes to a declared output"
    by_label = {}
    for component, value in out.items():
        by_label.setdefault(getattr(component, "label", None), []).append(value)
    assert by_label["Columns"] == [3] and json.loads(by_label["Template variables (JSON)"][0]) == handoff["values"]
    assert by_label["Model"] == [CHAT_MODEL, BASE_MODEL, BASE_MODEL] and by_label["Template"] == [HANDOFF, "", ""]
    assert by_label["Temperature (0 = greedy)"] == [0.0, 2, 2], "brought into the slider's range"
    assert by_label["Same decoding as column 1"] == [False, False]
    assert by_label["Weights dtype (local models)"] == ["", "", ""]
    assert {} in list(out.values()) and by_label["Column 1"] == [[]], "a new comparison: the rerun is a first turn"
    status = next(v for v in out.values() if isinstance(v, str) and v.startswith("Opened row"))
    assert "Opened row 1 of run #5" in status and "“positive”" in status and "(failed in the run)" in status
    assert "Row note." in status and "temperature 3.0 is outside" in status and "float16 is not offered" in status


# ---- through gradio_client ---------------------------------------------------------------------------------
def test_two_models_stream_in_parallel_and_match_their_greedy_replies(client, engine):
    expected = [chat_reply(engine, [{"role": "user", "content": STORY}]), base_reply(engine, STORY)]
    job = compare_job(client, STORY, [greedy(CHAT_MODEL), {"model": BASE_MODEL, "same_as_first": True}])
    final = job.result(timeout=300)

    assert final["error"] is None and final["done"]
    chat, base = final["columns"]
    assert [chat["text"], base["text"]] == expected
    for col in (chat, base):
        assert col["state"] == "done" and col["stats"].startswith("✅") and "tokens/s" in col["stats"]
        assert col["ttft_s"] > 0 and col["tok_s"] > 0 and col["tokens"] > 0
    assert base["config"]["params"]["max_new_tokens"] == TOKENS, "same_as_first copies column 1's decoding"
    assert chat["request"] == {"messages": [{"role": "user", "content": STORY}]}
    assert base["request"] == {"prompt": STORY}, "a base model continues the raw text"

    updates = job.outputs()
    both_partial = [u for u in updates if [c["state"] for c in u["columns"]] == ["generating", "generating"]]
    assert both_partial, "expected updates with both replies streaming at once"
    assert max(chat["first_text_s"], base["first_text_s"]) < min(chat["finished_s"], base["finished_s"])


def test_a_failing_column_shows_its_error_while_the_other_completes(client, engine, dead_endpoint):
    expected = chat_reply(engine, [{"role": "user", "content": PARIS_QUESTION}], tokens=16)
    columns = [{"model": dead_endpoint}, greedy(CHAT_MODEL, max_new_tokens=16), {"model": "no-such-model"}]
    final = compare_job(client, PARIS_QUESTION, columns).result(timeout=300)

    dead, good, unknown = final["columns"]
    assert dead["state"] == "error" and "Cannot reach endpoint" in dead["error"]
    assert dead["stats"].startswith(ERROR) and dead["history"] == []
    assert "Unknown model 'no-such-model'" in unknown["error"]
    assert good["state"] == "done" and good["text"] == expected and "Paris" in good["text"]


def test_follow_up_turn_and_reroll_reuse_each_columns_conversation(client, engine):
    columns = [greedy(CHAT_MODEL, max_new_tokens=16), greedy(BASE_MODEL, max_new_tokens=8)]
    first = compare_job(client, PARIS_QUESTION, columns, system_message="Be brief.").result(timeout=300)
    histories = [col["history"] for col in first["columns"]]
    assert histories[0][0] == {"role": "system", "content": "Be brief."}
    assert histories[0][-1]["role"] == "assistant" and len(histories[1]) == 3  # system, user, reply

    follow_up = "And of Germany?"
    second = compare_job(client, follow_up, columns, histories=histories).result(timeout=300)
    chat = second["columns"][0]
    sent = histories[0] + [{"role": "user", "content": follow_up}]
    assert chat["request"] == {"messages": sent}
    assert chat["text"] == chat_reply(engine, sent, tokens=16)
    assert chat["history"] == sent + [{"role": "assistant", "content": chat["text"]}]

    rerolled = client.submit(column=2, columns=columns, comparison=second, api_name="/reroll").result(timeout=300)
    assert rerolled["columns"][0] == second["columns"][0], "re-rolling column 2 leaves column 1 alone"
    assert rerolled["columns"][1]["request"] == second["columns"][1]["request"], "same input again"
    assert rerolled["columns"][1]["text"] == second["columns"][1]["text"], "greedy: the same reply again"


def test_template_columns_render_their_templates(client, engine):
    columns = [
        greedy(CHAT_MODEL, template="financial-sentiment", max_new_tokens=4),
        greedy(CHAT_MODEL, max_new_tokens=4),
    ]
    values = {"text": "Operating profit more than doubled and sales rose 30 %."}
    final = compare_job(client, "Hello", columns, values=values).result(timeout=300)
    templated, free = final["columns"]
    sent = templated["request"]["messages"]
    assert sent[0]["role"] == "system" and values["text"] in sent[-1]["content"]
    assert templated["text"].strip().lower().startswith(("positive", "negative", "neutral")), templated["text"]
    assert free["request"] == {"messages": [{"role": "user", "content": "Hello"}]}


def test_bad_requests_come_back_as_errors(client):
    assert client.predict(message="Hi", columns=[greedy(CHAT_MODEL)], api_name="/compare")["error"].startswith(ERROR)
    final = client.predict(message="Hi", columns=[greedy(CHAT_MODEL, max_new_tokens=0)] * 2, api_name="/compare")
    assert all("max_new_tokens must be between" in col["error"] for col in final["columns"])
    rerolled = client.predict(column=3, columns=[], comparison={}, api_name="/reroll")
    assert "no column 3" in rerolled["error"]


def test_diff_and_export_of_a_comparison(client):
    comparison = {
        "input": {"message": "Hi"},
        "columns": [
            {"column": 1, "model": "a", "text": "The cat sat.", "config": {}, "tokens": 4},
            {"column": 2, "model": "b", "text": "The dog sat.", "config": {}, "tokens": 4},
        ],
    }
    html = client.predict(comparison=comparison, a=1, b=2, api_name="/diff_columns")
    assert "<del" in html and "cat" in html and "<ins" in html and "dog" in html
    exported = client.predict(comparison=comparison, api_name="/export_comparison")
    assert exported["format"] == "llmplay-comparison" and exported["input"] == {"message": "Hi"}
    assert [c["text"] for c in exported["columns"]] == ["The cat sat.", "The dog sat."]
    json.dumps(exported)


def test_replies_go_to_the_feedback_queues_as_a_pair_and_a_correction(client, engine):
    columns = [greedy(CHAT_MODEL, max_new_tokens=8), greedy(BASE_MODEL, max_new_tokens=4), {"model": "no-such"}]
    final = compare_job(client, STORY, columns).result(timeout=300)
    chat, base, _ = final["columns"]
    assert chat["text"] and base["text"] and chat["text"] != base["text"]
    before = compare_feedback(engine)

    assert final["id"], "a finished comparison is stored; feedback names its id"
    sent = client.predict(
        comparison_id=final["id"], preferred=2, rejected=1, user="ui-test", api_name="/compare_preference"
    )
    assert sent.startswith("✅") and "preference pair" in sent, sent
    fixed = "Once upon a time, a robot picked up a brush."
    sent = client.predict(
        comparison_id=final["id"], column=1, correction=fixed, user="", api_name="/compare_correction"
    )
    assert sent.startswith("✅") and "corrected answer" in sent, sent

    pair, correction = compare_feedback(engine)[len(before) :]
    assert (pair["queue"], pair["output"], pair["output_b"]) == ("preferences", base["text"], chat["text"])
    assert (pair["model"], pair["model_b"], pair["labeler"]) == (BASE_MODEL, CHAT_MODEL, "ui-test")
    assert (json.loads(pair["value"]), pair["response"]) == ("a", "submitted")
    assert json.loads(pair["prompt"]) == STORY, "what the preferred (base) model was sent: the raw text"
    assert (correction["queue"], correction["output"], json.loads(correction["value"])) == (
        "inbox",
        chat["text"],
        fixed,
    )
    assert correction["model"] == CHAT_MODEL and correction["labeler"] == "anonymous"
    assert correction["source"] == "compare" and correction["response"] == "submitted"
    assert json.loads(correction["prompt"]) == [{"role": "user", "content": STORY}]


def test_bad_feedback_requests_say_why_and_store_nothing(client, engine):
    columns = [greedy(CHAT_MODEL, max_new_tokens=3), greedy(CHAT_MODEL, max_new_tokens=2), {"model": "no-such"}]
    final = compare_job(client, PARIS_QUESTION, columns).result(timeout=300)
    before = compare_feedback(engine)

    def prefer(comparison, a, b):
        return client.predict(
            comparison_id=comparison, preferred=a, rejected=b, user="", api_name="/compare_preference"
        )

    def correct(number, text):
        return client.predict(
            comparison_id=final["id"], column=number, correction=text, user="", api_name="/compare_correction"
        )

    for reply, expected in [
        (prefer(None, 1, 2), "Run a comparison first"),
        (prefer(final["id"] + 1000, 1, 2), f"There is no comparison {final['id'] + 1000} of yours"),
        (prefer(final["id"], 2, 2), "Choose two different columns"),
        (prefer(final["id"], 1, 3), "Column 3 (no-such) failed"),
        (correct(1, "   "), "Write the correct answer first"),
        (correct(3, "Paris"), "failed, so it has no reply"),
    ]:
        assert reply.startswith(ERROR) and expected in reply, reply
    assert compare_feedback(engine) == before


def test_an_evaluation_row_opens_as_compare_inputs_that_repeat_the_run(client, engine, eval_run):
    run_id, versions = eval_run
    opened = client.predict(run_id=run_id, row=2, api_name="/open_in_compare")
    assert opened["error"] is None and (opened["run_id"], opened["row"], opened["count"]) == (run_id, 2, 2)
    assert [c["model"] for c in opened["columns"]] == [CHAT_MODEL, CHAT_MODEL]
    assert [c["template"] for c in opened["columns"]] == [f"{HANDOFF}@v{versions[0].number}", HANDOFF]
    assert [c["max_new_tokens"] for c in opened["columns"]] == [4, 4]
    assert opened["values"] == {"text": HANDOFF_ROWS[2][0]}
    assert opened["outputs"] == stored_outputs(engine, run_id, 2)

    rerun = client.predict(message="", columns=opened["columns"], values=opened["values"], api_name="/compare")
    assert rerun["error"] is None
    assert [c["text"] for c in rerun["columns"]] == opened["outputs"], "greedy: the run's replies again"
    assert [c["config"]["template_version_id"] for c in rerun["columns"]] == [v.id for v in versions]
    assert HANDOFF_ROWS[2][0] in rerun["columns"][0]["request"]["messages"][-1]["content"]
    rerolled = client.predict(column=1, columns=opened["columns"], comparison=rerun, api_name="/reroll")
    assert rerolled["columns"][0]["config"]["template_version_id"] == versions[0].id, "still that version's turn"

    missing = client.predict(run_id=run_id, row=3, api_name="/open_in_compare")
    assert missing["error"].startswith(ERROR) and "there is no row 3" in missing["error"]
    assert "Choose a run" in client.predict(run_id=None, row=0, api_name="/open_in_compare")["error"]


# ---- in a real browser -------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed")
def test_compare_in_the_browser(ui_url):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(ui_url)
            page.get_by_role("tab", name="Compare").click()
            page.locator("#compare-decoding-1").get_by_text("Decoding and weights").click()
            tokens = page.locator("#compare-max-new-tokens-1 input")
            # column 2 follows: "Same decoding as column 1" is ticked by default. A value typed while the page
            # is still settling can be reset by it, so type again until it holds.
            for _attempt in range(5):
                tokens.fill("16")
                tokens.press("Tab")
                page.wait_for_timeout(300)
                if tokens.input_value() == "16":
                    break
            expect(tokens).to_have_value("16")
            page.wait_for_timeout(500)  # let the app take the new value before the run reads the form
            box = page.locator("#compare-message textarea")
            box.fill(PARIS_QUESTION)
            box.press("Enter")
            for number in (1, 2):
                page.locator(f"#compare-stats-{number}").get_by_text("tokens/s").wait_for(timeout=180_000)
            page.locator("#compare-chat-1").get_by_text("Paris").wait_for(timeout=10_000)
            page.locator("#compare-diff").get_by_text("of words in common").wait_for(timeout=10_000)
            assert page.locator("#compare-diff del, #compare-diff ins").count() > 0, "the two replies differ"
            assert box.input_value() == "", "the message box empties once the replies are in"
            stats = [page.locator(f"#compare-stats-{n}").inner_text() for n in (1, 2)]
            assert "16 completion tokens" in stats[1], stats

            page.get_by_text("Copy / export").click()
            expect(page.locator("#compare-markdown textarea")).to_have_value(re.compile(r"\| 2 \| gemma-3-270m \|"))
            page.locator("#compare-reroll-1").click()  # a new run: at least its latency differs
            expect(page.locator("#compare-stats-1")).not_to_have_text(stats[0], timeout=120_000)
            expect(page.locator("#compare-stats-1")).to_contain_text("tokens/s", timeout=120_000)
            assert page.locator("#compare-stats-2").inner_text() == stats[1], "re-roll leaves column 2 alone"
        finally:
            if SCREENSHOT:
                page.screenshot(path=SCREENSHOT, full_page=True)
            browser.close()


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed")
def test_open_an_evaluation_row_in_compare_rerun_it_and_correct_a_reply_in_the_browser(ui_url, engine, eval_run):
    from playwright.sync_api import expect, sync_playwright

    run_id, versions = eval_run
    stored = stored_outputs(engine, run_id, 1)
    before = compare_feedback(engine)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(ui_url)
            page.get_by_role("tab", name="Evaluate").click()
            page.get_by_role("tab", name="Results").click()
            picker = page.locator("#eval-results-run input")
            picker.fill(str(run_id))  # the picker takes a typed run id
            picker.press("Enter")
            page.locator("#eval-summary").get_by_text(f"Run #{run_id}").wait_for(timeout=30_000)
            row = page.get_by_label("Row (click one in the grid)")
            row.fill("1")
            row.press("Tab")
            page.wait_for_timeout(500)  # let the app take the new value before the click reads it
            page.locator("#eval-open-compare").click()

            expect(page.get_by_role("tab", name="Compare")).to_have_attribute("aria-selected", "true", timeout=30_000)
            status = page.locator("#compare-status")
            expect(status).to_contain_text(f"Opened row 1 of run #{run_id}", timeout=30_000)
            page.wait_for_timeout(500)  # the template change events settle before the run reads the form
            page.locator("#compare-run").click()
            for number, text in enumerate(stored, 1):
                page.locator(f"#compare-stats-{number}").get_by_text("tokens/s").wait_for(timeout=120_000)
                expect(page.locator(f"#compare-chat-{number}")).to_contain_text(text.strip(), timeout=10_000)

            page.get_by_text("Send to feedback").click()
            page.locator("#compare-correction textarea").fill("negative")
            page.locator("#compare-correct").click()
            expect(page.locator("#compare-feedback-status")).to_contain_text("✅ Sent", timeout=30_000)
        finally:
            if SCREENSHOT:
                page.screenshot(path=SCREENSHOT, full_page=True)
            browser.close()
    (item,) = compare_feedback(engine)[len(before) :]
    assert (item["queue"], item["output"], json.loads(item["value"])) == ("inbox", stored[0], "negative")
    assert item["template_version_id"] == versions[0].id and HANDOFF_ROWS[1][0] in item["prompt"]
