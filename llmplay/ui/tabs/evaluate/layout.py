"""The Evaluate tab's layout (sub-tabs Data, Run, Results) and the wiring of its events to EvaluateTab's
handlers (llmplay/ui/tabs/evaluate/tab.py), which hold the behaviour; this module only places and connects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import gradio as gr

from llmplay.datasets import list_datasets
from llmplay.evaluation.metrics import list_metrics
from llmplay.ui import fields
from llmplay.ui.access import Guard, declare, declared, needs
from llmplay.ui.models_panel import default_model, generative_names
from llmplay.ui.tabs.evaluate.view import (
    MODE_CHOICES,
    PREVIEW_ROWS,
    RUN_HEADERS,
    SHOW_CHOICES,
    _no_preview,
    datasets_frame,
)
from llmplay.ui.template_picks import template_choices

if TYPE_CHECKING:
    from llmplay.ui.tabs.evaluate.tab import EvaluateTab

# ---- layout ---------------------------------------------------------------------------------------------
PICK = {"allow_custom_value": True}  # names created after the page loaded stay usable (and API calls)
PRIVATE = {"api_visibility": "private"}


def data_layout(tab: EvaluateTab) -> SimpleNamespace:
    ui = SimpleNamespace()
    templates, datasets = tab.template_names(), tab.dataset_names()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            ui.upload = gr.File(
                label="Dataset file (CSV, TSV, JSON, JSONL or Parquet)",
                file_types=[".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet"],
                type="filepath",
                height=120,
            )
            ui.upload_info = gr.Markdown(elem_id="eval-upload-info")
            ui.preview = gr.Dataframe(
                _no_preview(), label=f"First {PREVIEW_ROWS} rows", interactive=False, max_height=320
            )
        with gr.Column(scale=2, min_width=300):
            ui.map_for = gr.Dropdown(
                [("(every template)", ""), *templates], value="", label="Map columns for template", **PICK
            )
            ui.variables = gr.Textbox(
                label="Variables mapping (JSON: template variable → column)", placeholder='{"text": "sentence"}'
            )
            ui.reference = gr.Dropdown([("(none)", "")], value="", label="Reference (expected answer) column", **PICK)
            ui.name = gr.Textbox(label="Dataset name", placeholder="letters, digits, - and _")
            ui.save = gr.Button("Save dataset", variant="primary")
            ui.status = gr.Markdown(elem_id="eval-save-status")
    with gr.Accordion("Saved datasets", open=True):
        ui.table = gr.Dataframe(datasets_frame(list_datasets(tab.settings)), interactive=False, max_height=260)
        with gr.Row():
            ui.refresh = gr.Button("Refresh", size="sm")
            ui.delete_name = gr.Dropdown(datasets, value=None, label="Dataset to delete", **PICK)
            ui.delete_confirm = gr.Checkbox(False, label="Yes, delete")
            ui.delete = gr.Button("Delete", variant="stop", size="sm")
    return ui


def run_layout(tab: EvaluateTab) -> SimpleNamespace:
    ui = SimpleNamespace()
    engine, limit = tab.engine, tab.settings.max_new_tokens_limit
    models, datasets = generative_names(engine), tab.dataset_names()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            ui.dataset = gr.Dropdown(
                datasets, value=datasets[0] if datasets else None, label="Dataset", elem_id="eval-dataset", **PICK
            )
            ui.dataset_info = gr.Markdown()
            with gr.Row():
                ui.sample = fields.number(
                    "sample", 0, label="Sample N rows (0 = all)", minimum=0, elem_id="eval-sample"
                )
                ui.sample_seed = fields.number("sample_seed", 0, label="Sample seed")
            ui.templates = gr.Dropdown(
                template_choices(tab.library),
                value=[],
                multiselect=True,
                label="Templates (name, or name@v2)",
                elem_id="eval-templates",
                **PICK,
            )
            ui.template_info = gr.Markdown()
            ui.variables = gr.Textbox(
                "",  # a default, so API callers may leave it out
                label="Variables mapping for this run (JSON: template variable → dataset column; blank = the "
                "dataset's saved mapping)",
                placeholder='{"text": "sentence"}',
            )
            first = [default_model(engine)] if models else []
            ui.models = gr.Dropdown(models, value=first, multiselect=True, label="Models", **PICK)
            ui.adapters = gr.Textbox(
                label="LoRA adapters (optional; one per line: model = /path/to/adapter)", lines=2, max_lines=6
            )
            ui.metrics = gr.Dropdown(
                list_metrics(), value=[], multiselect=True, label="Metrics (none = the templates' suggestions)"
            )
        with gr.Column(scale=2, min_width=300):
            ui.mode = gr.Dropdown(MODE_CHOICES, value="auto", label="Answer mode", elem_id="eval-mode")
            ui.max_new_tokens = fields.number(
                "max_new_tokens", 64, tab.settings, label=f"Max new tokens (1–{limit})", elem_id="eval-max-new-tokens"
            )
            ui.temperature = fields.slider("temperature", 0, step=0.05, label="Temperature (0 = greedy)")
            ui.seed = gr.Textbox("", label="Decoding seed (blank = none)", elem_id="eval-seed")
            with gr.Accordion("More decoding options", open=False):
                ui.top_p = fields.slider("top_p", 1, step=0.05, label="Top-p")
                ui.top_k = fields.slider("top_k", 0, step=1, label="Top-k (0 = off)")
                ui.repetition_penalty = fields.slider("repetition_penalty", 1, step=0.05, label="Repetition penalty")
                ui.stop = gr.Textbox("", label="Stop strings", placeholder="comma or newline separated; \\n = newline")
            ui.judge = gr.Dropdown([("(no judge)", ""), *models], value="", label="LLM judge model (optional)", **PICK)
            ui.name = gr.Textbox(label="Run name (optional)")
            with gr.Row():
                ui.start = gr.Button("Start run", variant="primary", elem_id="eval-start")
                ui.cancel = gr.Button("Cancel run", variant="stop")
            ui.estimate = gr.Markdown(elem_id="eval-estimate")  # how long a long run should take, before it starts
            ui.run_id = fields.number("run_id", None, label="Run id", interactive=False)
            ui.status = gr.Markdown(elem_id="eval-run-status")
            ui.progress = gr.Markdown(elem_id="eval-progress")
            ui.bar = gr.HTML(elem_id="eval-bar")
            ui.finished = gr.Number(None, visible=False)  # set to a run's id when it ends
            ui.seen = gr.State(None)  # finished cells when the grid was last renewed (it fills in as they finish)
    ui.timer = gr.Timer(1.0, active=False)
    return ui


def results_layout() -> SimpleNamespace:
    ui = SimpleNamespace()
    with gr.Row():
        ui.run = gr.Dropdown([], label="Run", scale=4, elem_id="eval-results-run", **PICK)
        ui.refresh = gr.Button("Refresh history", size="sm", scale=1)
    with gr.Accordion("Run history", open=False):
        ui.history = gr.Dataframe(headers=RUN_HEADERS, interactive=False, max_height=260)
        with gr.Row():
            ui.delete_confirm = gr.Checkbox(False, label="Yes, delete the run chosen above")
            ui.delete = gr.Button("Delete run", variant="stop", size="sm")
        ui.delete_status = gr.Markdown(elem_id="eval-delete-run-status")
    ui.summary = gr.Markdown(elem_id="eval-summary")
    ui.board = gr.Dataframe(label="Scoreboard (95% bootstrap intervals)", interactive=False, max_height=320)
    ui.chart = gr.HTML(elem_id="eval-chart")
    with gr.Row():
        ui.show = gr.Radio(SHOW_CHOICES, value="all", label="Rows")
        ui.grid_metric = gr.Dropdown([], label="Metric in the grid", **PICK)
    ui.grid = gr.Dataframe(label="Outputs side by side", interactive=False, wrap=True, max_height=520)
    with gr.Row():
        ui.diff_row = fields.number("row", 0, label="Row (click one in the grid)", scale=1)
        ui.open_compare = gr.Button("Open row in Compare", size="sm", scale=1, elem_id="eval-open-compare")
    ui.open_status = gr.Markdown(elem_id="eval-open-status")
    with gr.Row():
        ui.col_a = gr.Dropdown([], label="Column A", **PICK)
        ui.col_b = gr.Dropdown([], label="Column B", **PICK)
    with gr.Accordion("Word-level diff of one row", open=False):
        ui.diff = gr.Button("Diff A → B", size="sm")
        ui.diff_view = gr.HTML()
    with gr.Accordion("Paired comparison of A and B", open=False):
        with gr.Row():
            ui.pair_metric = gr.Dropdown([], label="Metric", **PICK)
            ui.pair = gr.Button("Compare A and B", size="sm")
        ui.pair_text = gr.Markdown()
        ui.pair_rows = gr.Dataframe(label="Rows that changed", interactive=False, wrap=True, max_height=360)
    with gr.Accordion("Export", open=False), gr.Row():
        ui.export = gr.Button("Export CSV + JSON", size="sm")
        ui.csv = gr.File(label="CSV", interactive=False, height=80)
        ui.json = gr.File(label="JSON", interactive=False, height=80)
    with gr.Accordion("Compare two runs (what regressed)", open=False):
        with gr.Row():
            ui.old = gr.Dropdown([], label="Old run", **PICK)
            ui.new = gr.Dropdown([], label="New run", **PICK)
            ui.compare = gr.Button("Compare runs", size="sm")
        ui.compare_text = gr.Markdown()
        ui.compare_table = gr.Dataframe(label="Scores", interactive=False)
        ui.regressions = gr.Dataframe(label="Rows whose score dropped", interactive=False, wrap=True, max_height=360)
    return ui


def wire_data(tab: EvaluateTab, data: SimpleNamespace, run: SimpleNamespace) -> None:
    listed = [data.table, run.dataset]
    guard = Guard(tab.settings)  # datasets are admin's (they feed evaluations and training)
    needs("admin", data.save, data.delete)
    data.upload.upload(
        guard("admin", "upload datasets", tab.upload_preview),
        [data.upload, data.map_for],
        [data.upload_info, data.preview, data.variables, data.reference, data.name],
        api_name="eval_upload_preview",
    )
    data.map_for.change(tab.resuggest, [data.preview, data.map_for, data.reference], data.variables, **PRIVATE)
    saved = data.save.click(
        guard("admin", "save datasets", tab.save_dataset),
        [data.upload, data.name, data.variables, data.reference],
        [data.status, *listed],
        api_name="eval_save_dataset",
    )
    saved.then(declared("view", lambda: tab.reset_delete()[1]), None, data.delete_name, **PRIVATE)
    data.refresh.click(tab.datasets_view, run.dataset, listed, api_name="eval_datasets")
    deleted = data.delete.click(
        guard("admin", "delete datasets", tab.delete_dataset),
        [data.delete_name, data.delete_confirm],
        [data.status, *listed],
        api_name="eval_delete_dataset",
    )
    deleted.then(tab.reset_delete, None, [data.delete_confirm, data.delete_name], **PRIVATE)


def wire_run(tab: EvaluateTab, run: SimpleNamespace, res: SimpleNamespace) -> None:
    run.dataset.change(tab.describe_dataset, run.dataset, run.dataset_info, **PRIVATE)
    run.templates.change(tab.describe_templates, run.templates, run.template_info, **PRIVATE)
    form = [run.dataset, run.sample, run.sample_seed, run.templates, run.models, run.adapters, run.max_new_tokens]
    form += [run.temperature, run.seed, run.mode, run.metrics, run.judge, run.name]
    form += [run.top_p, run.top_k, run.repetition_penalty, run.stop, run.variables]  # last: older callers omit them
    guard = Guard(tab.settings)  # evaluation runs cost model time: admin's
    needs("admin", run.start, run.cancel)
    started = run.start.click(
        guard("admin", "start evaluation runs", tab.start), form, [run.status, run.run_id], api_name="eval_start"
    )
    started.then(tab.watch, run.run_id, run.timer, **PRIVATE)
    # The results show the new run at once: its grid fills in as cells finish (poll renews it).
    started.then(tab.runs_view, run.run_id, [res.history, res.run, res.old, res.new], **PRIVATE)
    ticked = [run.progress, run.bar, run.timer, run.finished, res.history, res.run, res.old, res.new]
    ticked += [res.grid, run.seen]
    polled = [run.run_id, res.run, res.show, res.grid_metric, run.seen]
    run.timer.tick(tab.poll, polled, ticked, show_progress="hidden", **PRIVATE)
    sized = [run.dataset, run.sample, run.templates, run.models, run.adapters, run.mode]
    gr.on([c.change for c in sized], tab.estimate, sized, run.estimate, show_progress="hidden", **PRIVATE)
    run.cancel.click(
        guard("admin", "cancel evaluation runs", tab.cancel), run.run_id, run.status, api_name="eval_cancel"
    )
    gr.api(tab.progress, api_name="eval_progress")


@declare("view")
def row_from_grid(evt: gr.SelectData):
    """The dataset row of a clicked grid cell (the grid's first column holds it; filters hide some rows)."""
    value = (evt.row_value or [None])[0]
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else gr.skip()


def wire_results(tab: EvaluateTab, run: SimpleNamespace, res: SimpleNamespace) -> None:
    shown = [res.summary, res.board, res.chart]
    pickers = [res.grid_metric, res.col_a, res.col_b, res.pair_metric]
    for event in (
        # a run a person picks can take a moment to load: its summary shows that (llmplay/ui/progress.py)
        res.run.change(tab.results, res.run, shown, api_name="eval_results", show_progress_on=res.summary),
        run.finished.change(tab.results, res.run, shown, **PRIVATE),  # the run shown may be the one that ended
    ):
        event.then(tab.result_pickers, res.run, pickers, **PRIVATE).then(
            tab.grid_view, [res.run, res.show, res.grid_metric], res.grid, **PRIVATE
        )
    listed = [res.history, res.run, res.old, res.new]
    res.refresh.click(tab.runs_view, res.run, listed, api_name="eval_runs")
    guard = Guard(tab.settings)
    needs("admin", res.delete)
    deleted = res.delete.click(
        guard("admin", "delete evaluation runs", tab.delete_run),
        [res.run, res.delete_confirm],
        [res.delete_status, *listed],
        api_name="eval_delete_run",
    )
    deleted.then(declared("view", lambda: False), None, res.delete_confirm, **PRIVATE)
    grid_inputs = [res.run, res.show, res.grid_metric]
    gr.on([res.show.change, res.grid_metric.change], tab.grid_view, grid_inputs, res.grid, **PRIVATE)
    gr.api(tab.grid_table, api_name="eval_grid")
    res.grid.select(row_from_grid, None, res.diff_row, **PRIVATE)
    res.diff.click(tab.diff, [res.run, res.diff_row, res.col_a, res.col_b], res.diff_view, api_name="eval_diff")
    res.pair.click(
        tab.compare_columns,
        [res.run, res.col_a, res.col_b, res.pair_metric],
        [res.pair_text, res.pair_rows],
        api_name="eval_compare_columns",
    )
    res.export.click(tab.export, res.run, [res.csv, res.json], api_name="eval_export")
    res.compare.click(
        tab.compare_runs,
        [res.old, res.new],
        [res.compare_text, res.compare_table, res.regressions],
        api_name="eval_compare_runs",
    )
