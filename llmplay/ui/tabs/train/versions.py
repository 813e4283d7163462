"""The Train tab's versions section: trained versions with their metrics; evaluate one against its base on
held-out rows (an evaluation run with both columns and the paired comparison); merge an adapter into its base
and export a safetensors folder; download the adapter as a zip; delete a version no job or run uses.

Heavy work stays off the request path: evaluation runs on the app's EvalRunner thread (polled by a timer),
merging in a child process on a background thread (the handler only waits and reports).

API endpoints (gradio_client): ``/versions_list () -> (table, picker, details)``, ``/version_delete (label) ->
(message, table, picker)``, ``/version_zip (label) -> (file, message)``, ``/version_merge (label) -> (file,
message)``, ``/version_evaluate (label, dataset, template, rows) -> (message, run, timer)``,
``/version_eval_poll (run_id) -> report`` (progress until the run is done).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from llmplay.datasets import install_builtins
from llmplay.engine import Engine
from llmplay.errors import LlmplayError
from llmplay.evaluation.config import ColumnConfig, RunConfig
from llmplay.evaluation.results import compare_columns, get_run, load_results, scoreboard
from llmplay.evaluation.runner import EvalRunner
from llmplay.models import registry
from llmplay.tempfiles import export_folder
from llmplay.training import manage
from llmplay.training.jobs import settings_env
from llmplay.ui.access import Guard, declare
from llmplay.ui.tabs.train.view import VERSION_HEADERS, error_html, version_rows

log = logging.getLogger(__name__)
PRIVATE = {"api_visibility": "private"}
USAGE_METRICS = ("latency_s", "tokens_per_s", "output_tokens", "failed")


def _safe_message(exc: Exception) -> str:
    if isinstance(exc, LlmplayError):
        return error_html(str(exc))
    log.exception("Versions panel failed")
    return error_html(f"Something unexpected went wrong ({type(exc).__name__}: {exc}).")


class VersionsPanel:
    def __init__(self, engine: Engine, eval_runner: EvalRunner, prompts_dir: Path | None = None):
        self.engine = engine
        self.settings = engine.settings
        self.eval_runner = eval_runner
        self.prompts_dir = prompts_dir
        self._merges: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    # ---- listing ---------------------------------------------------------------------------------------
    def labels(self) -> list[str]:
        return [v.label for v in registry.list_versions(self.settings.db_path)]

    @declare("admin", "see trained versions", read=True)
    def listing(self, selected: str | None = None) -> tuple:
        versions = registry.list_versions(self.settings.db_path)
        labels = [v.label for v in versions]
        value = selected if selected in labels else (labels[-1] if labels else None)
        return version_rows(versions), gr.Dropdown(choices=labels, value=value), self.details(value)

    @declare("admin", "see trained versions", read=True)
    def details(self, label: str | None) -> str:
        if not label:
            return "No trained versions yet: a finished job registers one."
        version = registry.find(self.settings.db_path, label)
        if version is None:
            return f"No version {label!r} (deleted?)."
        config = version.config or {}
        keys = ("task", "method", "lora_r", "lora_alpha", "learning_rate", "epochs", "max_steps", "batch_size")
        hyper = ", ".join(f"{k}={config[k]}" for k in keys if k in config)
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in version.metrics.items() if isinstance(v, int | float))
        parent = f" · parent version #{version.parent_id}" if version.parent_id else ""
        return (
            f"**{version.label}** · {version.kind} on `{version.base_model}` · job #{version.job_id}{parent}  \n"
            f"{hyper}  \nvalidation: {metrics or '–'} · {len(version.row_ids)} training rows · data "
            f"`{(version.data_hash or '')[:12]}` · files `{(version.files_hash or '')[:12]}` · `{version.path}`"
        )

    # ---- delete / zip / merge --------------------------------------------------------------------------
    def delete(self, label: str | None) -> tuple:
        try:
            version = manage.delete_version(self.settings, label or "")
            self.engine.models.unload(version.label)  # free a loaded copy's memory
        except Exception as exc:
            return _safe_message(exc), gr.skip(), gr.skip()
        rows, picker, _ = self.listing()
        return f"✅ Deleted **{version.label}** (its files are removed; the record stays for history).", rows, picker

    def zip_adapter(self, label: str | None) -> tuple:
        try:
            version = manage.find_version(self.settings, label or "")
            with export_folder(self.settings, f"version-{version.id}-") as folder:
                path = manage.zip_folder(Path(version.path), folder / f"{manage.slug(version.label)}.zip")
        except Exception as exc:
            return None, _safe_message(exc)
        return str(path), f"✅ {version.label}: {path.stat().st_size / 1e6:.1f} MB zip ready to download."

    def merge(self, label: str | None) -> Iterator[tuple]:
        """Merge in a child process (started on a background thread); reports every few seconds, then offers
        the merged folder as a zip. The folder stays under <data dir>/models/merged (add it as a local model)."""
        try:
            version = manage.find_version(self.settings, label or "")
            manage.check_mergeable(version)
        except Exception as exc:
            yield None, _safe_message(exc)
            return
        out_dir = manage.merged_dir(self.settings) / manage.slug(version.label)
        box: dict = {}
        with self._lock:
            thread = self._merges.get(version.id)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._merge, args=(version, out_dir, box), daemon=True)
                self._merges[version.id] = thread
                thread.start()
        started = time.monotonic()
        while thread.is_alive():
            yield None, f"⏳ Merging {version.label} into {version.base_model}… {time.monotonic() - started:.0f} s"
            thread.join(timeout=2)
        if "error" in box:
            yield None, _safe_message(box["error"])
        elif "zip" in box:
            yield box["zip"], f"✅ Merged into `{out_dir}` (safetensors); the zip is ready to download."
        else:  # another request started this merge: its result is on disk
            yield None, f"✅ Merged into `{out_dir}`; press again to get the zip."

    def _merge(self, version, out_dir: Path, box: dict) -> None:
        try:
            env = {**os.environ, **settings_env(self.settings, self.prompts_dir), "PYTHONUNBUFFERED": "1"}
            manage.run_merge(version, out_dir, out_dir.parent / f"{out_dir.name}.log", env)
            with export_folder(self.settings, f"merged-{version.id}-") as folder:
                box["zip"] = str(manage.zip_folder(out_dir, folder / f"{manage.slug(version.label)}-merged.zip"))
        except Exception as exc:
            box["error"] = exc

    # ---- evaluate against the base -----------------------------------------------------------------------
    def evaluate(self, label: str | None, dataset: str | None, template: str | None, rows) -> tuple:
        """Start an evaluation run with two columns (the base, the version) on held-out rows."""
        try:
            version = manage.find_version(self.settings, label or "")
            if version.kind != "adapter":
                base_model, model = None, version.label
            else:
                base_model, model = version.base_model, version.label
            if not dataset or not template:
                raise LlmplayError("Pick a dataset and a template to evaluate on.")
            if dataset.startswith("builtin:"):  # evaluation runs read saved datasets: install the samples
                install_builtins(self.settings)
                dataset = dataset.removeprefix("builtin:")
            dataset, note = manage.heldout_dataset(self.settings, version, dataset)
            sample = int(rows) if rows not in (None, "", 0) and float(rows) > 0 else None
            columns = [ColumnConfig(template=template, model=model)]
            if base_model:
                columns.insert(0, ColumnConfig(template=template, model=base_model))
            config = RunConfig(dataset=dataset, columns=tuple(columns), sample=sample, name=f"{version.label} vs base")
            run_id = self.eval_runner.submit(config)
        except Exception as exc:
            return _safe_message(exc), gr.skip(), gr.Timer(active=False)
        return f"⏳ Evaluation run #{run_id} started on {dataset}. {note}", run_id, gr.Timer(active=True)

    @declare("admin", "see trained versions", read=True)
    def eval_poll(self, run_id) -> tuple:
        """Timer tick: the run's progress, then its report (and the timer stops)."""
        if run_id in (None, "", 0):
            return "", gr.Timer(active=False)
        text, finished = self._eval_state(int(run_id))
        return text, gr.Timer(active=not finished)

    @declare("admin", "see trained versions", read=True)
    def eval_text(self, run_id: int) -> str:
        """The run's progress while it runs, its report once it is done."""
        return self._eval_state(int(run_id))[0]

    def _eval_state(self, run_id: int) -> tuple[str, bool]:
        try:
            progress = self.eval_runner.progress(run_id)
            if not progress.finished:
                return f"⏳ {progress.describe()}", False
            return self.eval_report(run_id), True
        except Exception as exc:
            return _safe_message(exc), True

    def eval_report(self, run_id: int) -> str:
        """Both columns' scores with their 95% intervals and the paired difference (version minus base)."""
        info = get_run(self.settings, run_id)
        if info.status != "done":
            return f"Run #{run_id} {info.status}: {info.error or 'no scores'}."
        board = scoreboard(info, usage=False)
        lines = [f"**Run #{run_id}** · {info.name} · dataset {info.dataset} · {info.rows} rows", ""]
        lines += ["| column | metric | score | 95% interval |", "|---|---|---|---|"]
        for row in board.itertuples(index=False):
            if row.metric in USAGE_METRICS or row.score != row.score:  # NaN: a metric that failed
                continue
            lines.append(f"| {row.column} | {row.metric} | {row.score:.3f} | [{row.ci_low:.3f}, {row.ci_high:.3f}] |")
        if len(info.titles) == 2:
            results = load_results(self.settings, run_id)
            lines += [
                "",
                "| metric | version − base | 95% interval | rows better | rows worse |",
                "|---|---|---|---|---|",
            ]
            for metric in info.metrics:
                try:
                    diff = compare_columns(results, 0, 1, metric).difference  # column 1 (version) - 0 (base)
                except LlmplayError:
                    continue
                ci = diff.interval
                lines.append(
                    f"| {metric} | {ci.estimate:+.3f} | [{ci.low:+.3f}, {ci.high:+.3f}] | {len(diff.better)} | "
                    f"{len(diff.worse)} |"
                )
        return "\n".join(lines)


def build_versions_section(engine: Engine, eval_runner: EvalRunner, demo: gr.Blocks, prompts_dir, choices) -> dict:
    """Lay out the versions section; ``choices`` gives (datasets, templates) for the evaluation form.
    Returns the components other parts of the tab wire to (``refresh``: a button that reloads the list)."""
    panel = VersionsPanel(engine, eval_runner, prompts_dir)
    datasets, templates = choices()
    gr.Markdown("### Trained versions")
    with gr.Row():
        refresh = gr.Button("Refresh versions", size="sm", scale=0)
    table = gr.Dataframe(
        headers=VERSION_HEADERS, value=[], interactive=False, label="Versions", elem_id="train-versions"
    )
    with gr.Row():
        picker = gr.Dropdown([], label="Version", allow_custom_value=True, elem_id="train-version-picker", scale=3)
        delete = gr.Button("Delete", variant="stop", scale=1)
    details = gr.Markdown()
    message = gr.HTML()
    with gr.Accordion("Evaluate against the base", open=False):
        gr.Markdown(
            "An evaluation run with two columns (the base model and the version) and the paired comparison. "
            "When the dataset is the one the version trained on, only its held-out rows are used."
        )
        with gr.Row():
            eval_dataset = gr.Dropdown(datasets, label="Dataset", allow_custom_value=True)
            eval_template = gr.Dropdown(templates, label="Template", allow_custom_value=True)
            eval_rows = gr.Number(200, precision=0, label="Rows (0 = all)")
        evaluate = gr.Button("Evaluate vs base")
        eval_run = gr.Number(None, visible=False, precision=0)
        eval_report = gr.Markdown(elem_id="train-eval-report")
        eval_timer = gr.Timer(2.0, active=False)
    with gr.Row():
        zip_button = gr.Button("Download adapter (zip)")
        merge = gr.Button("Merge into the base and export")
    download = gr.File(label="Download", interactive=False, height=80)

    listing = [table, picker, details]
    admin = lambda action, fn: Guard(engine.settings)("admin", action, fn)  # noqa: E731 (versions are admin's)
    refresh.click(panel.listing, picker, listing, api_name="versions_list")
    picker.change(panel.details, picker, details, **PRIVATE)
    delete.click(admin("delete versions", panel.delete), picker, [message, table, picker], api_name="version_delete")
    zip_button.click(admin("download adapters", panel.zip_adapter), picker, [download, message], api_name="version_zip")
    merge.click(admin("merge versions", panel.merge), picker, [download, message], api_name="version_merge")
    evaluate.click(
        admin("evaluate versions", panel.evaluate),
        [picker, eval_dataset, eval_template, eval_rows],
        [eval_report, eval_run, eval_timer],
        api_name="version_evaluate",
    )
    eval_timer.tick(panel.eval_poll, eval_run, [eval_report, eval_timer], show_progress="hidden", **PRIVATE)
    gr.api(panel.eval_text, api_name="version_eval_poll")

    @declare("admin", "see trained versions", read=True)
    def fresh_choices():
        ds, tp = choices()
        return gr.Dropdown(choices=ds), gr.Dropdown(choices=tp)

    demo.load(panel.listing, picker, listing, **PRIVATE)
    demo.load(fresh_choices, None, [eval_dataset, eval_template], **PRIVATE)
    return {"panel": panel, "refresh": refresh, "listing": listing, "picker": picker}
