"""The Train tab: configure a fine-tuning job, preview its data, start it, and watch it train.

The form covers the main settings (a "More options" accordion the rest of TrainConfig; a YAML editor is the
advanced alternative); "Preview data" shows formatted examples with the masked prompt part marked, token
statistics, the truncation count and split sizes before anything starts. Start queues the job on the app's
JobRunner (training/jobs.py), which runs it as a child process. A timer polls SQLite for the selected job:
progress bar, loss chart, log tail and the queue; a reloaded page (or a restarted app) finds the running job
again from the database. Cancel keeps the last checkpoint; Resume continues from it. The versions section is
in train_versions.py.

API endpoints (gradio_client): ``/train_preview``, ``/train_yaml`` (form -> YAML), ``/train_start (use_yaml,
yaml_text, form...) -> (message, job, timer)``, ``/train_refresh (job) -> (progress, chart, log, queue,
timer)``, ``/train_cancel (job) -> message``, ``/train_resume (job) -> (message, timer)``.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, fields
from pathlib import Path

import gradio as gr
import yaml

from llmplay import yamlsafe
from llmplay.datasets import builtin_datasets, list_datasets
from llmplay.engine import Engine
from llmplay.errors import LlmplayError
from llmplay.models import registry
from llmplay.services import Services
from llmplay.templates.library import TemplateLibrary
from llmplay.training import records
from llmplay.training.config import (
    CAUSAL_TASKS,
    METHODS,
    PADDING,
    SCHEDULERS,
    TASKS,
    DataConfig,
    TrainConfig,
)
from llmplay.training.data_files import check_place, keep_upload
from llmplay.training.defaults import describe
from llmplay.training.jobs import JobRunner
from llmplay.training.tasks import get_task
from llmplay.ui.access import Guard, declare
from llmplay.ui.tabs.train.versions import build_versions_section
from llmplay.ui.tabs.train.view import (
    QUEUE_HEADERS,
    encoder_preview_html,
    error_html,
    loss_chart_svg,
    preview_html,
    progress_html,
    queue_rows,
)
from llmplay.ui.template_picks import template_choices

log = logging.getLogger(__name__)
PRIVATE = {"api_visibility": "private"}
DEFAULTS = TrainConfig(name="x", base_model="x")
SOURCES = [
    ("Saved dataset + template", "dataset"),
    ("Uploaded file", "file"),
    ("Accepted feedback (corrections)", "feedback"),
]
# The form's fields in order (the handlers take them positionally after their own inputs).
MAIN = ("name", "base_model", "task", "method", "source", "dataset", "template", "file", "epochs", "max_steps")
MAIN += ("learning_rate", "lora_r", "lora_alpha", "batch_size", "max_length")
MORE = ("lora_dropout", "target_modules", "lr_scheduler", "grad_accum", "warmup_ratio", "weight_decay", "seed")
MORE += ("bf16", "gradient_checkpointing", "padding", "early_stopping_patience", "eval_steps", "logging_steps")
MORE += ("save_steps", "validation_fraction", "max_rows", "parent_version", "report_to", "adalora_init_r")
MORE += ("adalora_target_r", "num_virtual_tokens", "freeze_layers", "text_column", "label_column")
FORM = MAIN + MORE
DATA_FIELDS = {"validation_fraction", "max_rows", "text_column", "label_column"}
SCALED = {"batch_size", "logging_steps"}  # left blank (or 0): scaled to the data
INT_FIELDS = {f.name for f in fields(TrainConfig) if f.type in ("int", "int | None")} | {"max_rows"}
BUILTIN_PREFIX = "builtin:"
# What the form starts with (TrainConfig's defaults); API callers pass these for the fields they leave alone.
FORM_DEFAULTS: dict = {k: getattr(DEFAULTS, k) for k in FORM if hasattr(DEFAULTS, k)}
FORM_DEFAULTS.update(name="my-lora", base_model=None, source="dataset", dataset=None, template=None, file=None)
FORM_DEFAULTS.update(validation_fraction=DataConfig().validation_fraction, max_rows=0, parent_version="")
FORM_DEFAULTS.update(report_to=[], text_column="", label_column="", batch_size=0, logging_steps=0)  # 0 = scaled


@dataclass
class TrainHandle:
    tab: TrainTab
    versions_changed: gr.State  # changes when a job finishes: model pickers elsewhere refresh on it
    pickers: tuple  # this tab's own model dropdowns (they offer base models, not versions)


def _number(name: str, value):
    """A form number as TrainConfig wants it: whole numbers as int (Gradio sends floats), blanks as unset."""
    if value is None or value == "":
        return None
    if name in INT_FIELDS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def config_from_form(values: dict) -> dict:
    """The TrainConfig mapping the form describes (validated later by TrainConfig.from_dict). An uploaded file
    is named where Gradio keeps it: only starting a job keeps a copy (data_files.keep_upload)."""
    source = values.get("source") or "dataset"
    data: dict = {"source": source}
    if source == "dataset":
        data["dataset"] = values.get("dataset") or None
        if values.get("template"):
            data["template"] = values["template"]
    elif source == "file":
        data["file"] = values.get("file") or None
    for key in DATA_FIELDS:
        value = values.get(key)
        value = _number(key, value) if not isinstance(value, str) else (value.strip() or None)
        if key == "max_rows" and value in (0, None):
            continue
        if value is not None:
            data[key] = value
    config: dict = {"data": data}
    for key in FORM:
        if key in DATA_FIELDS or key in ("source", "dataset", "template", "file"):
            continue
        value = values.get(key)
        if key == "target_modules":
            text = (value or "default").strip()
            value = text if text in ("default", "all-linear") else [m.strip() for m in text.split(",") if m.strip()]
        elif key == "parent_version":
            value = (value or "").strip() or None
        elif key == "report_to":
            value = list(value or [])
        elif key == "gradient_checkpointing":
            value = bool(value)
        elif isinstance(value, str):
            value = value.strip()
        else:
            value = _number(key, value)
        if key in SCALED and value in (0, None):
            continue  # blank or 0: scaled to the data when the job starts (training/defaults.py)
        if value is not None:
            config[key] = value
    return config


class TrainTab:
    def __init__(self, engine: Engine, runner: JobRunner, library: TemplateLibrary, prompts_dir=None):
        self.engine = engine
        self.runner = runner
        self.library = library
        self.prompts_dir = Path(prompts_dir) if prompts_dir else None
        # The child reads templates from the same folder as this tab (tests point it at a temp copy).
        self.settings = engine.settings.with_(prompts_dir=self.prompts_dir) if self.prompts_dir else engine.settings

    # ---- choices -----------------------------------------------------------------------------------------
    def base_models(self) -> list[str]:
        """Catalog models a job can start from: chat and base models, and encoders (not endpoints)."""
        return [
            s.name
            for s in self.engine.catalog.specs()
            if s.provider == "local" and s.kind in ("chat", "base", "encoder") and not s.base
        ]

    def dataset_names(self) -> list[str]:
        saved = [d.name for d in list_datasets(self.settings)]
        return saved + [f"{BUILTIN_PREFIX}{name}" for name in builtin_datasets() if name not in saved]

    def template_names(self) -> list[str]:
        try:
            return self.library.names()
        except Exception:  # an unreadable folder must not break the page
            log.exception("Listing templates failed")
            return []

    def parent_choices(self) -> list[tuple[str, str]]:
        return [("(none: start from the base model)", "")] + [(v, v) for v in self._labels()]

    def _labels(self) -> list[str]:
        return [v.label for v in registry.list_versions(self.settings.db_path)]

    @declare("admin", "see training jobs", read=True)
    def choices(self) -> tuple:
        return (
            gr.Dropdown(choices=self.base_models()),
            gr.Dropdown(choices=self.dataset_names()),
            gr.Dropdown(choices=template_choices(self.library)),
            gr.Dropdown(choices=self.parent_choices()),
        )

    # ---- form -> config --------------------------------------------------------------------------------------
    def config(self, use_yaml: bool, yaml_text: str, form: tuple) -> TrainConfig:
        if use_yaml:
            try:
                data = yamlsafe.load(yaml_text or "")
            except yaml.YAMLError as exc:
                raise LlmplayError(f"The YAML is not valid: {exc}") from None
        else:
            data = config_from_form(dict(zip(FORM, form)))
        config = TrainConfig.from_dict(data)
        if config.data.file:  # a browser user names files the server reads: uploads only (data_files)
            check_place(self.settings, config.data.file)
        return config

    @declare("admin", "see training jobs", read=True)
    def to_yaml(self, *form) -> str:
        try:
            data = config_from_form(dict(zip(FORM, form)))
            config = TrainConfig.from_dict(data).to_dict()
        except LlmplayError:
            config = config_from_form(dict(zip(FORM, form)))  # show it anyway, to fix in the editor
        return yaml.safe_dump(_without_defaults(config), sort_keys=False, allow_unicode=True)

    # ---- preview / start ---------------------------------------------------------------------------------------
    @declare("admin", "preview training data")
    def preview(self, use_yaml: bool, yaml_text: str, *form) -> str:
        """Formatted examples with the masked part marked, token statistics, truncated count and split sizes."""
        try:
            config = self.config(use_yaml, yaml_text, form)
            if config.task in CAUSAL_TASKS:
                from llmplay.training.data import preview

                result = preview(config, self.settings, self.engine, n=3)
                problem = self._missing_modules(config)
                plan = f"<p class='train-plan'>Will train: {html.escape(describe(config, result.train_rows))}</p>"
                return (error_html(problem) if problem else "") + plan + preview_html(result)
            from llmplay.training.encoder_data import load_encoder_data

            return encoder_preview_html(load_encoder_data(config, self.settings), config.max_length)
        except LlmplayError as exc:
            return error_html(str(exc))
        except Exception as exc:  # a handler must never take the app down
            log.exception("Training preview failed")
            return error_html(f"The preview failed ({type(exc).__name__}: {exc}).")

    def _missing_modules(self, config: TrainConfig) -> str | None:
        """Target modules the base model does not have (from its module tree on the meta device: the preview
        never loads weights)."""
        if not isinstance(config.target_modules, list) or not config.uses_peft:
            return None
        from llmplay.training.data import model_skeleton

        model = model_skeleton(self.engine, self.engine.catalog.get(config.base_model))
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [m for m in config.target_modules if m not in names]
        if not missing:
            return None
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        return (
            f"target_modules {', '.join(missing)} do not exist in {config.base_model}; its linear layers are "
            f"{', '.join(linear)} (or use 'default' / 'all-linear')."
        )

    def start(self, use_yaml: bool, yaml_text: str, *form) -> tuple:
        """Validate and queue a job; its rows are read first, so data problems show before it starts."""
        try:
            config = self.config(use_yaml, yaml_text, form)
            self._check_data(config)
            if config.data.file:  # the job's own copy: Gradio's upload is swept after a day
                config.data.file = str(keep_upload(self.settings, config.data.file))
            job = self.runner.submit(config)
        except LlmplayError as exc:
            return error_html(str(exc)), gr.skip(), gr.skip()
        except Exception as exc:
            log.exception("Starting a training job failed")
            return error_html(f"Could not start the job ({type(exc).__name__}: {exc})."), gr.skip(), gr.skip()
        waiting = "" if job.status == "running" else " It waits in the queue until the running job ends."
        message = f"✅ Job #{job.id} ({job.name}) is {job.status}.{waiting}"
        return message, gr.Dropdown(choices=self.job_choices(), value=job.id), gr.Timer(active=True)

    def _check_data(self, config: TrainConfig) -> None:
        get_task(config.task).check_data(config, self.settings)

    # ---- monitor -------------------------------------------------------------------------------------------
    def job_choices(self, jobs=None) -> list[tuple[str, int]]:
        jobs = self.runner.jobs(limit=50) if jobs is None else jobs
        return [(f"#{j.id} {j.name} · {j.status}", j.id) for j in jobs]

    @declare("admin", "see training jobs", read=True)
    def attach(self) -> tuple:
        """On page load: follow the running job (else the newest), polling while one is active."""
        jobs = self.runner.jobs(limit=50)
        active = [j for j in jobs if j.status in records.ACTIVE]
        running = [j for j in active if j.status == "running"]
        chosen = (running or active or jobs or [None])[0]
        value = chosen.id if chosen else None
        return gr.Dropdown(choices=self.job_choices(), value=value), gr.Timer(active=bool(active))

    @declare("admin", "see training jobs", read=True)
    def relabel(self, listed=None) -> tuple:
        """The job picker's labels (``#3 name · running``), renewed only when one changed (``listed``: the labels
        shown, kept in a State), so a finished job does not still say "running" and an open picker is left
        alone otherwise."""
        choices = self.job_choices()
        if choices == _as_choices(listed):
            return gr.skip(), gr.skip()
        return gr.Dropdown(choices=choices), choices

    @declare("admin", "see training jobs", read=True)
    def refresh(self, job_id) -> tuple:
        """Progress (with the job's live phase and a countdown), chart, log tail and queue of the selected job;
        the timer stops once no job is active."""
        try:
            jobs = self.runner.jobs(limit=50)
            job = self.runner.get(int(job_id)) if job_id not in (None, "") else None
            rows = records.progress(self.settings.db_path, job.id) if job else []
            log_text = self.runner.log_tail(job.id, 40) if job else ""
            phase = records.read_phase(job.output_dir) if job and job.status == "running" else {}
            active = any(j.status in records.ACTIVE for j in jobs)
            stamp = sum(1 for j in jobs if j.status == "done")
            return (
                progress_html(job, rows, phase),
                loss_chart_svg(rows),
                log_text,
                queue_rows(jobs),
                gr.Timer(active=active),
                stamp,
            )
        except Exception as exc:
            if not isinstance(exc, LlmplayError):
                log.exception("Refreshing the training job failed")
            return error_html(str(exc)), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip()

    def cancel(self, job_id) -> str:
        try:
            job = self.runner.cancel(int(job_id))
        except (LlmplayError, TypeError, ValueError) as exc:
            return error_html(str(exc) if isinstance(exc, LlmplayError) else "Pick a job first.")
        if job.status == "cancelled":
            return f"⏹️ Job #{job.id} cancelled."
        return f"⏹️ Stopping job #{job.id}: it saves a checkpoint and stops within seconds."

    def resume(self, job_id) -> tuple:
        try:
            job = self.runner.resume(int(job_id))
        except (LlmplayError, TypeError, ValueError) as exc:
            return error_html(str(exc) if isinstance(exc, LlmplayError) else "Pick a job first."), gr.skip()
        return f"▶️ Job #{job.id} resumes from its last checkpoint ({job.status}).", gr.Timer(active=True)


def _as_choices(listed) -> list[tuple[str, int]] | None:
    """The picker labels kept in the State (JSON turns tuples into lists)."""
    if not isinstance(listed, list):
        return None
    try:
        return [(str(label), int(value)) for label, value in listed]
    except (TypeError, ValueError):
        return None


def _without_defaults(config: dict) -> dict:
    """Only what differs from TrainConfig's defaults, so the YAML stays short and readable."""
    defaults = DEFAULTS.to_dict()
    data_defaults = defaults.pop("data")
    out = {k: v for k, v in config.items() if k != "data" and (k in ("name", "base_model") or defaults.get(k) != v)}
    out["data"] = {k: v for k, v in (config.get("data") or {}).items() if data_defaults.get(k) != v or k == "source"}
    return out


# ---- layout -------------------------------------------------------------------------------------------------
def _form(tab: TrainTab, engine: Engine) -> dict:
    d = DEFAULTS
    c: dict = {}
    bases = tab.base_models()
    datasets, templates = tab.dataset_names(), tab.template_names()
    with gr.Row():
        c["name"] = gr.Textbox("my-lora", label="Version name", elem_id="train-name", scale=2)
        default = engine.settings.default_model if engine.settings.default_model in bases else (bases or [None])[0]
        c["base_model"] = gr.Dropdown(bases, value=default, label="Base model", allow_custom_value=True, scale=2)
        c["task"] = gr.Dropdown(list(TASKS), value=d.task, label="Task", info="sft: prompt -> answer; cpt: raw text")
        c["method"] = gr.Dropdown(list(METHODS), value=d.method, label="Method")
    c["source"] = gr.Radio(SOURCES, value="dataset", label="Training data")
    with gr.Row():
        first = next((n for n in datasets if "financial" in n), datasets[0] if datasets else None)
        c["dataset"] = gr.Dropdown(datasets, value=first, label="Dataset", allow_custom_value=True)
        fin = "financial-sentiment" if "financial-sentiment" in templates else None
        c["template"] = gr.Dropdown(
            template_choices(tab.library), value=fin, label="Template (its reference column is the target)"
        )
        c["file"] = gr.File(label="Or upload a file (prompt/completion, messages, Alpaca, CoNLL, text)", height=90)
    with gr.Row():
        c["epochs"] = gr.Number(d.epochs, label="Epochs")
        c["max_steps"] = gr.Number(d.max_steps, precision=0, label="Max steps (-1 = by epochs)")
        c["learning_rate"] = gr.Number(d.learning_rate, label="Learning rate")
        c["lora_r"] = gr.Number(d.lora_r, precision=0, label="LoRA rank")
        c["lora_alpha"] = gr.Number(d.lora_alpha, precision=0, label="LoRA alpha")
        c["batch_size"] = gr.Number(
            0, precision=0, label="Batch size (0 = scaled)", info="scaled: 16 from 64 rows, 4 for 20"
        )
        c["max_length"] = gr.Number(d.max_length, precision=0, label="Max length (tokens)")
    with gr.Accordion("More options", open=False):
        with gr.Row():
            c["lora_dropout"] = gr.Number(d.lora_dropout, label="LoRA dropout")
            c["target_modules"] = gr.Textbox(
                "default", label="Target modules", info="default, all-linear, or names: q_proj, v_proj"
            )
            c["lr_scheduler"] = gr.Dropdown(list(SCHEDULERS), value=d.lr_scheduler, label="Schedule")
            c["grad_accum"] = gr.Number(d.grad_accum, precision=0, label="Gradient accumulation")
            c["warmup_ratio"] = gr.Number(d.warmup_ratio, label="Warm-up ratio")
            c["weight_decay"] = gr.Number(d.weight_decay, label="Weight decay")
            c["seed"] = gr.Number(d.seed, precision=0, label="Seed")
        with gr.Row():
            c["bf16"] = gr.Radio(["auto", "true", "false"], value=d.bf16, label="bf16 autocast")
            c["gradient_checkpointing"] = gr.Checkbox(d.gradient_checkpointing, label="Gradient checkpointing")
            c["padding"] = gr.Dropdown(list(PADDING), value=d.padding, label="Cut padding", info="pack | group | pad")
            c["early_stopping_patience"] = gr.Number(0, precision=0, label="Early stopping patience (0 = off)")
            c["eval_steps"] = gr.Number(d.eval_steps, precision=0, label="Evaluate every N steps (0 = each epoch)")
            c["logging_steps"] = gr.Number(0, precision=0, label="Log every N steps (0 = every step up to 50 steps)")
            c["save_steps"] = gr.Number(d.save_steps, precision=0, label="Checkpoint every N steps (0 = each epoch)")
        with gr.Row():
            c["validation_fraction"] = gr.Number(DataConfig().validation_fraction, label="Validation fraction")
            c["max_rows"] = gr.Number(0, precision=0, label="Use at most N rows (0 = all)")
            c["parent_version"] = gr.Dropdown(
                tab.parent_choices(), value="", label="Continue from version", allow_custom_value=True
            )
            c["report_to"] = gr.CheckboxGroup(
                ["wandb", "mlflow"], value=[], label="Also report to (TensorBoard always)"
            )
        with gr.Row():
            c["adalora_init_r"] = gr.Number(d.adalora_init_r, precision=0, label="AdaLoRA initial rank")
            c["adalora_target_r"] = gr.Number(d.adalora_target_r, precision=0, label="AdaLoRA target rank")
            c["num_virtual_tokens"] = gr.Number(
                d.num_virtual_tokens, precision=0, label="Prompt tuning: virtual tokens"
            )
            c["freeze_layers"] = gr.Number(d.freeze_layers, precision=0, label="Encoder: freeze lowest N layers")
            c["text_column"] = gr.Textbox("", label="Text / tokens column (encoders)")
            c["label_column"] = gr.Textbox("", label="Label / tags column (encoders)")
    return c


def build_train_tab(services: Services, demo: gr.Blocks) -> TrainHandle:
    """Lay out the tab inside the current Blocks context and wire its events to the app's job runner and
    evaluation runner (``services``)."""
    engine, eval_runner, prompts_dir = services.engine, services.evaluations, services.prompts_dir
    tab = TrainTab(engine, services.jobs, services.templates, prompts_dir)
    gr.Markdown(
        "Fine-tune a model on your data. Jobs run as separate processes, one at a time (others wait in the "
        "queue); a finished job registers a version you can pick by name in every model picker."
    )
    form = _form(tab, engine)
    inputs = [form[k] for k in FORM]
    with gr.Accordion("YAML (advanced)", open=False):
        use_yaml = gr.Checkbox(False, label="Start from this YAML instead of the form", elem_id="train-use-yaml")
        yaml_text = gr.Code("", language="yaml", label="Training config (TrainConfig)", elem_id="train-yaml")
        to_yaml = gr.Button("Fill from the form", size="sm")
    with gr.Row():
        preview_button = gr.Button("Preview data", elem_id="train-preview")
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
    message = gr.HTML(elem_id="train-message")
    preview = gr.HTML(elem_id="train-preview-out")

    gr.Markdown("### Jobs")
    with gr.Row():
        job = gr.Dropdown([], label="Job", allow_custom_value=True, elem_id="train-job", scale=3)
        cancel = gr.Button("Cancel", variant="stop", scale=1, elem_id="train-cancel")
        resume = gr.Button("Resume", scale=1, elem_id="train-resume")
        refresh = gr.Button("Refresh", scale=1)
    progress = gr.HTML(progress_html(None, []), elem_id="train-progress")
    chart = gr.HTML(loss_chart_svg([]), elem_id="train-chart")
    log_tail = gr.Textbox("", label="Log (last lines)", lines=10, max_lines=10, elem_id="train-log", interactive=False)
    queue = gr.Dataframe(headers=QUEUE_HEADERS, value=[], interactive=False, label="Queue", elem_id="train-queue")
    timer = gr.Timer(2.0, active=False)
    versions_changed = gr.State(0)

    versions = build_versions_section(
        engine, eval_runner, demo, prompts_dir, lambda: (tab.dataset_names(), template_choices(tab.library))
    )

    listed = gr.State(None)  # the job picker's labels as last shown (relabel renews them when one changes)
    relabel = (tab.relabel, listed, [job, listed])
    quiet = {"show_progress": "hidden", **PRIVATE}
    watched = [progress, chart, log_tail, queue, timer, versions_changed]
    guard = Guard(engine.settings)  # training jobs are admin's (the tab is hidden from other roles too)
    to_yaml.click(tab.to_yaml, inputs, yaml_text, api_name="train_yaml")
    preview_button.click(tab.preview, [use_yaml, yaml_text, *inputs], preview, api_name="train_preview")
    start.click(
        guard("admin", "start training jobs", tab.start),
        [use_yaml, yaml_text, *inputs],
        [message, job, timer],
        api_name="train_start",
    ).then(tab.refresh, job, watched, **PRIVATE).then(*relabel, **quiet)
    # After every poll and action (relabel): a job that ended no longer says "running" in the picker.
    timer.tick(tab.refresh, job, watched, show_progress="hidden", **PRIVATE).then(*relabel, **quiet)
    gr.on([job.change, refresh.click], tab.refresh, job, watched, api_name="train_refresh", show_progress="hidden")
    refresh.click(*relabel, **quiet)
    cancel.click(guard("admin", "cancel training jobs", tab.cancel), job, message, api_name="train_cancel").then(
        tab.refresh, job, watched, **PRIVATE
    ).then(*relabel, **quiet)
    resume.click(
        guard("admin", "resume training jobs", tab.resume), job, [message, timer], api_name="train_resume"
    ).then(tab.refresh, job, watched, **PRIVATE).then(*relabel, **quiet)
    # A finished job's version shows up in the versions list (and, wired in app.py, in every model picker).
    versions_changed.change(versions["panel"].listing, versions["picker"], versions["listing"], **PRIVATE)
    choices = [form["base_model"], form["dataset"], form["template"], form["parent_version"]]
    versions_changed.change(tab.choices, None, choices, **PRIVATE)

    # A (re)loaded page finds the running job again (it lives in SQLite, not in the page).
    demo.load(tab.choices, None, choices, **PRIVATE)
    demo.load(tab.attach, None, [job, timer], **PRIVATE).then(tab.refresh, job, watched, **PRIVATE).then(
        *relabel, **quiet
    )
    return TrainHandle(tab, versions_changed, (form["base_model"],))
