"""One Compare column's widgets: model, template, decoding, weights, its chat and stats; ``read`` turns their
values into the API's column dict and ``fill`` puts one back."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from llmplay.ui import fields
from llmplay.ui.decoding import UI_DTYPES

MIN_COLUMNS = 2
# Long enough for a free reply to finish: 64 cut every reply mid-sentence; bench/compare_reply_length.py measures
# how many new tokens the bundled chat model's replies take. Replies stream, so a long one is read as it comes.
MAX_NEW_TOKENS = 384
PARAM_DEFAULTS = {
    "max_new_tokens": MAX_NEW_TOKENS,
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": 0,
    "repetition_penalty": 1.0,
    "seed": "",
    "stop": "",
}
STEPS = {"temperature": 0.05, "top_p": 0.05, "top_k": 1, "repetition_penalty": 0.05}
SLIDERS = {name: fields.slider_range(name, step) for name, step in STEPS.items()}  # ranges: llmplay.limits


@dataclass
class ColumnWidgets:
    """One column's components; ``read`` turns their values into the API's column dict."""

    box: gr.Column
    model: gr.Dropdown
    template: gr.Dropdown
    same: gr.Checkbox | None
    params: gr.Group
    max_new_tokens: gr.Number
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    repetition_penalty: gr.Slider
    seed: gr.Textbox
    stop: gr.Textbox
    dtype: gr.Dropdown
    adapter: gr.Textbox
    chatbot: gr.Chatbot
    stats: gr.Markdown
    reroll: gr.Button

    def fields(self) -> dict[str, gr.components.Component]:
        names = ["model", "template", "adapter", "dtype", "same", *PARAM_DEFAULTS]
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}  # column 1 has no "same"

    def inputs(self) -> set:
        return set(self.fields().values())

    def read(self, data: dict) -> dict:
        values = {name: data[comp] for name, comp in self.fields().items()}
        values["same_as_first"] = bool(values.pop("same", False))
        return values

    def fill(self, column: dict, number: int, notes: list[str]) -> dict:
        """Updates that put an API column dict into the widgets (``read`` in reverse); values the widgets
        cannot hold are brought into range, and ``notes`` says so."""
        out = {self.model: column["model"], self.template: column["template"], self.adapter: column["adapter"]}
        out[self.dtype] = column["dtype"] if column["dtype"] in ("", *UI_DTYPES) else ""
        if out[self.dtype] != column["dtype"]:
            notes.append(f"Column {number}: dtype {column['dtype']} is not offered here; it gets the default.")
        if self.same is not None:
            out[self.same] = False  # each column shows its own decoding
        for name in PARAM_DEFAULTS:
            value = column[name]
            low, high = SLIDERS.get(name, (value, value))
            if not low <= value <= high:
                notes.append(f"Column {number}: {name} {value} is outside this tab's range; set to the nearest end.")
                value = min(max(value, low), high)
            out[getattr(self, name)] = value
        return out


def column_widgets(number: int, model: str | None, names: list[str], choices, settings) -> ColumnWidgets:
    limit = settings.max_new_tokens_limit
    with gr.Column(visible=number <= MIN_COLUMNS, min_width=260) as box:
        gr.Markdown(f"### Column {number}")
        model_dd = gr.Dropdown(names, value=model, label="Model", allow_custom_value=True)
        template = gr.Dropdown(
            choices, value="", label="Template", allow_custom_value=True, elem_id=f"compare-template-{number}"
        )
        same = gr.Checkbox(True, label="Same decoding as column 1") if number > 1 else None
        with gr.Accordion("Decoding and weights", open=False, elem_id=f"compare-decoding-{number}"):
            with gr.Group(visible=number == 1) as params:
                max_new_tokens = fields.number(
                    "max_new_tokens",
                    min(MAX_NEW_TOKENS, limit),
                    settings,
                    label=f"Max new tokens (1–{limit})",
                    elem_id=f"compare-max-new-tokens-{number}",
                )
                temperature = fields.slider(
                    "temperature", 0, step=STEPS["temperature"], label="Temperature (0 = greedy)"
                )
                top_p = fields.slider("top_p", 1, step=STEPS["top_p"], label="Top-p")
                top_k = fields.slider("top_k", 0, step=STEPS["top_k"], label="Top-k (0 = off)")
                repetition_penalty = fields.slider(
                    "repetition_penalty", 1, step=STEPS["repetition_penalty"], label="Repetition penalty"
                )
                seed = gr.Textbox("", label="Seed (blank = random)", placeholder="random")
                stop = gr.Textbox("", label="Stop strings", placeholder="comma or newline separated; \\n = newline")
            dtype = gr.Dropdown([("settings default", ""), *UI_DTYPES], value="", label="Weights dtype (local models)")
            adapter = gr.Textbox("", label="LoRA adapter folder (local models, optional)", placeholder="none")
        chatbot = gr.Chatbot(
            label=f"Column {number}",
            elem_id=f"compare-chat-{number}",
            height=380,
            feedback_options=None,
            buttons=["copy", "copy_all"],
            placeholder=f"Column {number}'s reply streams here: type a message below and press **Compare**.",
        )
        stats = gr.Markdown(elem_id=f"compare-stats-{number}")
        reroll = gr.Button("Re-roll", size="sm", elem_id=f"compare-reroll-{number}")
    return ColumnWidgets(
        box, model_dd, template, same, params, max_new_tokens, temperature, top_p, top_k,
        repetition_penalty, seed, stop, dtype, adapter, chatbot, stats, reroll,
    )  # fmt: skip
