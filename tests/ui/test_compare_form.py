"""The Compare form's first impression, without generating: the default length, "New comparison" starting
clean, column pickers offering only existing columns, and a template's few-shot turns folded above the answer.
(The browser test in test_issue21_browser.py runs the same through Chromium.)"""

from __future__ import annotations

import gradio as gr
import pytest

from llmplay.compare import ColumnConfig
from llmplay.services import Services
from llmplay.templates import load_template
from llmplay.ui.tabs.compare.columns import MAX_NEW_TOKENS
from llmplay.ui.tabs.compare.form import FRESH, NO_DIFF
from llmplay.ui.tabs.compare.tab import CompareTab, build_compare_tab
from llmplay.ui.tabs.compare.view import chat_view, column_choices, column_params, kept_pick
from tests.conftest import BASE_MODEL, CHAT_MODEL


@pytest.fixture()
def built(engine, ui_prompts_dir):
    services = Services.build(engine, ui_prompts_dir, check_s=0)
    with gr.Blocks() as demo:
        build_compare_tab(services, demo)
    return demo, services


def handler(demo: gr.Blocks, label: str):
    """The function a button with this label runs on click, with its output components."""
    button = next(b for b in demo.blocks.values() if isinstance(b, gr.Button) and b.value == label)
    fn = next(f for f in demo.fns.values() if any(t[0] == button._id for t in f.targets))
    return fn.fn, fn.outputs


def test_the_default_length_lets_a_reply_finish(built):
    demo, _ = built
    assert MAX_NEW_TOKENS >= 256 and column_params({}).max_new_tokens == MAX_NEW_TOKENS
    boxes = [b for b in demo.blocks.values() if getattr(b, "elem_id", "") == "compare-max-new-tokens-1"]
    assert [b.value for b in boxes] == [MAX_NEW_TOKENS], "the form shows the same default the API uses"


def test_new_comparison_clears_replies_template_variables_and_message(built):
    demo, _ = built
    fn, outputs = handler(demo, "New comparison")
    pairs = list(zip(outputs, fn(), strict=True))
    by_name = {o.label or o.elem_id: v for o, v in pairs if o.label or o.elem_id}
    assert [v for o, v in pairs if o.label == "Template"] == ["", "", "", ""], "no column keeps the old template"
    assert [v for o, v in pairs if isinstance(o, gr.State)] == [{}], "no previous comparison to follow up"
    assert by_name["Template variables (JSON)"] == "" and by_name["System message (columns without a template)"] == ""
    assert by_name["compare-status"] == FRESH and by_name["compare-diff"] == NO_DIFF
    assert by_name["Column 1"] == [] and by_name["compare-stats-1"] == ""
    assert by_name[next(o.label for o, _ in pairs if (o.label or "").startswith("Message"))] == ""
    assert by_name["The correct answer"] == "" and by_name["Comparison file"] is None
    assert not any(o.label in ("Model", "Temperature (0 = greedy)") for o in outputs), "models and decoding stay"


def test_column_pickers_offer_only_existing_columns():
    comparison = {"columns": [{"model": CHAT_MODEL}, {"model": BASE_MODEL}]}
    assert column_choices(comparison, 4) == [(f"Column 1 · {CHAT_MODEL}", 1), (f"Column 2 · {BASE_MODEL}", 2)]
    assert column_choices({}, 3) == [("Column 1", 1), ("Column 2", 2), ("Column 3", 3)], "before a run: the form's"
    assert column_choices(None, "2") == [("Column 1", 1), ("Column 2", 2)]
    assert [kept_pick(4, 2, 2), kept_pick(3, 3, 2), kept_pick(None, 2, 1), kept_pick("x", 3, 2)] == [2, 3, 1, 2]


def test_few_shot_turns_fold_into_one_closed_box_above_the_answer(engine, ui_prompts_dir):
    services = Services.build(engine, ui_prompts_dir, check_s=0)
    tab = CompareTab(engine, services.templates)
    examples = len(load_template(services.templates, "financial-sentiment")[0].examples)
    assert examples >= 2
    config = ColumnConfig(CHAT_MODEL, column_params({}), template="financial-sentiment")
    column, shots = tab._column(config, [], "", "", {"text": "Profit rose."})
    assert column.error is None and shots == 2 * examples
    history = [*column.request.as_messages(), {"role": "assistant", "content": "positive"}]

    shown = chat_view(history, shots)
    folded, *rest = shown
    assert folded["metadata"] == {"title": f"{examples} few-shot examples from the template ({shots} turns)",
                                  "status": "done"}, "a closed accordion"  # fmt: skip
    assert [m["role"] for m in rest] == ["user", "assistant"] and rest[-1]["content"] == "positive"
    assert "Profit rose." in rest[0]["content"] and "Profit rose." not in folded["content"]
    assert chat_view(history) == [m for m in history if m["role"] != "system"], "no template: every turn shown"

    follow_up, again = tab._column(config, history, "Why?", "", {})
    assert again == shots, "a follow-up keeps the examples folded"
    base, none = tab._column(ColumnConfig(BASE_MODEL, template="financial-sentiment"), [], "", "", {"text": "x"})
    assert base.error is None and none == 0, "a base model gets one prompt text: nothing to fold"
