"""The Evaluate tab: upload a dataset, run template versions x models over it as a background job, and read the
results: a scoreboard with 95% intervals and a bar chart, the grid of outputs side by side, word-level diffs,
paired comparisons of two columns, exports, and what changed between two runs.

API endpoints (gradio_client and scripts)
-----------------------------------------
Rows are numbered as in the grid's ``row`` column (0-based positions in the run); a run's columns are numbered
from 1 in its order (``/eval_results`` lists them). Errors come back as ``"⚠️ Error: ..."`` text in the first
output (tables then empty); ``/eval_progress`` puts it in ``error``, ``/eval_grid`` in a ``problem`` column,
``/eval_diff`` in the HTML, and ``/eval_export`` returns no files. No handler raises, so the app keeps serving.
Tables come back as ``{"headers", "data"}``; pickers as component updates ``{"choices", "value"}``.

Datasets
- ``/eval_upload_preview``: ``(file, template) -> (info, preview, variables, reference, name)``: Markdown with
  the format, encoding and row count of an uploaded CSV, TSV, JSON, JSONL or Parquet file (or the error), its
  first rows (table), a suggested mapping as JSON text (template variable -> column; ``template`` is the template to
  map for, ``""`` = every template), the suggested reference column (``""`` = none) and a dataset name.
- ``/eval_save_dataset``: ``(file, name, variables, reference) -> (message, datasets, dataset)``: parse the file
  again and save it under ``name``; a bad file or mapping saves nothing.
- ``/eval_datasets``: ``(selected) -> (datasets, dataset)``: the saved datasets (built-in samples included) and
  the picker (keeping ``selected`` if it still exists).
- ``/eval_delete_dataset``: ``(name, confirm) -> (message, datasets, dataset)`` (refused unless ``confirm``).

Runs
- ``/eval_start``: ``(dataset, sample, sample_seed, templates, models, adapters, max_new_tokens, temperature,
  seed, mode, metrics, judge, name, top_p, top_k, repetition_penalty, stop, variables) -> (message, run_id)``.
  ``sample``: rows to draw with ``sample_seed``
  (0 = all); ``templates``: names, ``"name@v2"`` for a saved version; ``models``: catalog names (every template
  x model is a column); ``adapters``: lines ``model = /path/to/lora-adapter``, each another column per
  template; ``seed``: decoding seed (``""`` = none); ``mode``: auto | generate | likelihood; ``metrics``: names
  (``[]`` = the templates' suggestions); ``judge``: a model name for LLM-as-judge (``""`` = none); ``top_p``
  (default 1), ``top_k`` (0 = off), ``repetition_penalty`` (default 1) and ``stop`` (stop strings separated by
  commas or newlines, ``\\n`` = newline) apply to every column, as in the Playground; ``variables``: JSON
  ``{"template variable": "dataset column"}`` used for this run instead of the dataset's saved mapping (``""`` =
  the saved one). The last five are optional (callers that stop at ``name`` still work). The run goes on in the
  background; ``run_id`` is ``None`` when it could not start.
- ``/eval_progress``: ``(run_id) -> dict``: status, done, total, percent, elapsed_s, eta_s, generated, cached,
  failed, finished, error and ``text`` (one line).
- ``/eval_cancel``: ``(run_id) -> message``: stops the run within seconds; finished rows are kept.

Results
- ``/eval_runs``: ``(selected) -> (history, run, old run, new run)``: the run history table (newest first) and
  the three run pickers (``selected``, else the newest finished run, and the one before it as the old run).
- ``/eval_results``: ``(run_id) -> (summary, scoreboard, chart)``: Markdown, table (column, metric, score,
  ci_low, ci_high, n = answered cells, failed = cells that failed and are not scored, note; a column with failed
  cells has a ``failed`` line saying why, "column failed" when every cell did) and an SVG bar chart with the
  intervals as error bars.
- ``/eval_grid``: ``(run_id, show, metric) -> grid``: one row per dataset row: inputs, reference, each column's
  output and score on ``metric`` (``""`` = the run's first). ``show``: all | disagree | failed.
- ``/eval_diff``: ``(run_id, row, a, b) -> HTML``: word-level diff from column ``a``'s output to column ``b``'s.
- ``/eval_compare_columns``: ``(run_id, a, b, metric) -> (message, rows)``: the paired bootstrap of b - a on
  ``metric`` with its interval, and the rows that got better or worse with both outputs.
- ``/eval_export``: ``(run_id) -> (csv file, json file)``: one record per cell.
- ``/eval_compare_runs``: ``(old, new) -> (message, scores, regressions)``: shared columns' scores old vs new,
  and the dataset rows whose score went down.
- ``/eval_delete_run``: ``(run_id, confirm) -> (message, history, run, old run, new run)``: forget a finished
  run (refused unless ``confirm``, and while it is queued or running); its cached outputs stay for later runs.
  The rest is ``/eval_runs`` afterwards.

"Open row in Compare" (click a grid row to pick it) fills the Compare tab with that row's columns and values and
switches to it; ``/open_in_compare`` in the Compare tab's docstring gives the same as data.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd

from llmplay.engine import Engine
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.evaluation.config import MODES
from llmplay.evaluation.datasets import (
    ColumnMapping,
    DatasetError,
    delete_dataset,
    install_builtins,
    list_datasets,
    preview,
    read_table,
    save_dataset,
    suggest_mapping,
)
from llmplay.evaluation.metrics import list_metrics
from llmplay.evaluation.results import (
    RunResults,
    compare_columns,
    compare_runs,
    delete_run,
    get_run,
    list_runs,
    load_results,
    scoreboard,
)
from llmplay.evaluation.runner import ACTIVE, EvalRunner
from llmplay.limits import check_number
from llmplay.tempfiles import discard_upload, export_folder
from llmplay.templates import TemplateLibrary
from llmplay.textdiff import diff_html
from llmplay.ui import fields
from llmplay.ui.access import Guard, needs
from llmplay.ui.evaluate_feedback import build_rows_to_queue
from llmplay.ui.evaluate_view import (
    GRID_CHARS,
    PREVIEW_ROWS,
    RUN_HEADERS,
    SHOW_CHOICES,
    _blank,
    _cell_text,
    _column_index,
    _display,
    _empty,
    _message,
    _no_preview,
    _safe,
    bar_chart_svg,
    build_config,
    changed_rows_frame,
    dataset_name_for,
    datasets_frame,
    describe_run,
    format_error,
    grid_widths,
    parse_template_ref,
    parse_variables,
    progress_bar_html,
    progress_dict,
    quality_lines,
    runs_frame,
)
from llmplay.ui.models_panel import default_model, generative_names

log = logging.getLogger(__name__)


# ---- handlers -------------------------------------------------------------------------------------------
class EvaluateTab:
    """The tab's handlers: plain values in, plain values (or component updates) out; exceptions never escape."""

    def __init__(self, engine: Engine, library: TemplateLibrary, runner: EvalRunner):
        self.engine = engine
        self.settings = engine.settings
        self.library = library
        self.runner = runner

    # ---- choices ------------------------------------------------------------------------------------------
    def template_names(self) -> list[str]:
        try:
            return self.library.names()
        except Exception:  # an unreadable folder must not break the page
            log.exception("Listing templates failed")
            return []

    def dataset_names(self) -> list[str]:
        return [d.name for d in list_datasets(self.settings)]

    def choices(self) -> tuple[gr.Dropdown, gr.Dropdown, gr.Dropdown]:
        """Fresh template and model choices for the run form and the mapping picker (they change meanwhile)."""
        templates = self.template_names()
        return (
            gr.Dropdown(choices=templates),
            gr.Dropdown(choices=generative_names(self.engine)),
            gr.Dropdown(choices=[("(every template)", ""), *templates]),
        )

    # ---- datasets -----------------------------------------------------------------------------------------
    def _variables_for(self, template: str | None) -> list[str]:
        names = [template] if template else self.template_names()
        found: dict[str, None] = {}
        for name in names:
            try:
                found.update(dict.fromkeys(self.library.load(name).variable_names()))
            except LlmplayError:
                continue  # an invalid template suggests nothing
        return list(found)

    def suggest(self, columns: list[str], template: str | None = None, reference: str | None = None) -> tuple[str, str]:
        """(variables JSON, reference column or "") suggested for these columns: same names first; for one
        chosen template, its one unmapped required variable takes the one column left (e.g. text <- sentence)."""
        mapping = suggest_mapping(self._variables_for(template), columns, reference or None)
        variables = dict(mapping.variables)
        if template:
            try:
                required = [v.name for v in self.library.load(template).variables if v.required]
            except LlmplayError:
                required = []
            free_vars = [v for v in required if v not in variables]
            free_cols = [c for c in columns if c not in variables.values() and c != mapping.reference]
            if len(free_vars) == 1 and len(free_cols) == 1:
                variables[free_vars[0]] = free_cols[0]
        return json.dumps(variables, ensure_ascii=False), mapping.reference or ""

    @_safe(_no_preview, "", lambda: gr.Dropdown(choices=[("(none)", "")], value=""), "")
    def upload_preview(self, file: str | None, template: str | None = "") -> tuple:
        if not file:
            raise DatasetError("Choose a CSV, TSV, JSON, JSONL or Parquet file to upload.")
        table = read_table(file, self.settings, filename=Path(file).name)
        shown = preview(table, PREVIEW_ROWS)
        info = (
            f"✅ **{shown.filename}**: {shown.format.upper()}"
            + (f", {shown.encoding}" if shown.encoding else "")
            + f" · {shown.total_rows:,} rows · columns: {', '.join(shown.columns)}"
        )
        variables, reference = self.suggest(shown.columns, template)
        reference_picker = gr.Dropdown(choices=[("(none)", ""), *shown.columns], value=reference)
        frame = pd.DataFrame(shown.rows, columns=shown.columns)
        return info, frame, variables, reference_picker, dataset_name_for(shown.filename)

    def resuggest(self, frame: pd.DataFrame | None, template: str | None, reference: str | None = "") -> str:
        """The variables mapping again after the user picks a template to map for (columns from the preview)."""
        columns = [str(c) for c in getattr(frame, "columns", [])]
        if not columns or columns == list(_no_preview().columns):
            return gr.skip()
        return self.suggest(columns, template, reference)[0]

    def datasets_view(self, selected: str | None = None) -> tuple[pd.DataFrame, gr.Dropdown]:
        infos = list_datasets(self.settings)
        names = [d.name for d in infos]
        value = selected if selected in names else (names[0] if names else None)
        return datasets_frame(infos), gr.Dropdown(choices=names, value=value)

    @_safe(gr.skip(), gr.skip())
    def save_dataset(self, file: str | None, name: str, variables: str = "", reference: str | None = "") -> tuple:
        if not file:
            raise DatasetError("Upload a file first.")
        table = read_table(file, self.settings, filename=Path(file).name)
        mapping = ColumnMapping(parse_variables(variables), reference or None)
        result = save_dataset(self.settings, (name or "").strip(), table.df, mapping, source=table.filename)
        discard_upload(file)  # its rows are in the dataset now; uploading again reads a new copy
        info = result.info
        verb = "Saved" if result.created else "Already saved (mapping updated):"
        message = f"✅ {verb} dataset **{info.name}** · {info.rows:,} rows · columns {', '.join(info.columns)}"
        return (message, *self.datasets_view(info.name))

    @_safe(gr.skip(), gr.skip())
    def delete_dataset(self, name: str, confirm: bool = False) -> tuple:
        if not name:
            raise DatasetError("Choose a dataset to delete.")
        if not confirm:
            raise DatasetError(f"Tick “Yes, delete” to confirm deleting **{name}** (past runs keep their rows).")
        delete_dataset(self.settings, name)
        return (f"🗑️ Deleted dataset **{name}**.", *self.datasets_view())

    def reset_delete(self) -> tuple[bool, gr.Dropdown]:
        return False, gr.Dropdown(choices=self.dataset_names(), value=None)

    def describe_dataset(self, name: str | None) -> str:
        if not name:
            return ""
        info = next((d for d in list_datasets(self.settings) if d.name == name), None)
        if info is None:
            return format_error(f"No dataset named {name!r}.")
        mapping = ", ".join(f"{k} ← {v}" for k, v in info.mapping.variables.items()) or "by column name"
        return f"{info.rows:,} rows · columns {', '.join(info.columns)} · variables {mapping} · reference " + (
            f"**{info.mapping.reference}**" if info.mapping.reference else "none"
        )

    def describe_templates(self, templates: list[str] | None) -> str:
        """What the chosen templates expect and which metrics they suggest (used when no metric is picked)."""
        lines, known = [], set(self.runner.registry.names())
        for ref in templates or []:
            name, version = parse_template_ref(ref)
            try:
                t = self.library.load(name)
            except LlmplayError as exc:
                lines.append(f"- **{ref}**: ⚠️ {exc}")
                continue
            labels = f" · labels {', '.join(t.output.labels)}" if t.output.labels else ""
            versions = f" · version {version}" if version else ""
            suggested = ", ".join(t.metrics) or "none"
            unknown = [m for m in t.metrics if m not in known]
            warning = f" · ⚠️ not available here: {', '.join(unknown)} (pick the metrics yourself)" if unknown else ""
            lines.append(
                f"- **{name}**{versions}: variables {', '.join(t.variable_names()) or 'none'}{labels} · "
                f"suggested metrics {suggested}{warning}"
            )
        return "\n".join(lines)

    # ---- runs ---------------------------------------------------------------------------------------------
    @_safe(None)
    def start(  # named like build_config's parameters: gradio makes these the /eval_start keyword names
        self,
        dataset: str,
        sample=0,
        sample_seed=0,
        templates: list[str] | None = None,
        models: list[str] | None = None,
        adapters: str = "",
        max_new_tokens=64,
        temperature=0.0,
        seed="",
        mode: str = "auto",
        metrics: list[str] | None = None,
        judge: str = "",
        name: str = "",
        top_p=1.0,
        top_k=0,
        repetition_penalty=1.0,
        stop: str = "",
        variables: str = "",
    ) -> tuple[str, int | None]:
        form = (sample, sample_seed, templates, models, adapters, max_new_tokens, temperature, seed, mode, metrics)
        more = {"top_p": top_p, "top_k": top_k, "repetition_penalty": repetition_penalty, "stop": stop}
        config = build_config(dataset, *form, judge, name, **more, variables=variables, settings=self.settings)
        run_id = self.runner.submit(config)
        message = f"▶️ Started run **#{run_id}**: {len(config.columns)} column(s) on **{config.dataset}**."
        return message, run_id

    def progress(self, run_id: int) -> dict:
        """The run's progress as plain data (``error`` holds any problem, e.g. an unknown run)."""
        number = None  # echoed only once checked: 10**30 cannot even be encoded in the reply (64-bit JSON)
        try:
            number = check_number("run_id", run_id)
            return progress_dict(self.runner.progress(number))
        except Exception as exc:
            message = _message(exc)
            return {"run_id": number, "status": "unknown", "finished": True, "error": message, "text": message}

    def poll(self, run_id) -> tuple:
        """Timer tick: progress text and bar; when the run ends, stop the timer, select the run in the results
        and set ``finished`` to its id (its change event opens the results, even of the run already shown)."""
        if _blank(run_id):
            return "", "", gr.Timer(active=False), *[gr.skip()] * 5
        try:
            progress = self.runner.progress(check_number("run_id", run_id))
        except Exception as exc:
            return format_error(_message(exc)), "", gr.Timer(active=False), *[gr.skip()] * 5
        text, bar = progress.describe(), progress_bar_html(progress)
        if not progress.finished:
            return text, bar, gr.skip(), *[gr.skip()] * 5
        icon = "✅" if progress.status == "done" else "⏹️" if progress.status == "cancelled" else "⚠️"
        return f"{icon} {text}", bar, gr.Timer(active=False), progress.run_id, *self.runs_view(progress.run_id)

    @staticmethod
    def watch(run_id) -> gr.Timer:
        return gr.Timer(active=not _blank(run_id))

    def cancel(self, run_id) -> str:
        try:
            if _blank(run_id):
                raise InvalidRequestError("No run to cancel: start one first.")
            number = check_number("run_id", run_id)
            if self.runner.cancel(number):
                return f"⏹️ Cancelling run #{number}: it stops within seconds and keeps the rows it finished."
            return f"ℹ️ Run #{number} is not running ({self.runner.progress(number).status})."
        except Exception as exc:
            return format_error(_message(exc))

    def attach(self) -> tuple:
        """On page load: follow the newest run that is still going (started from another page, or before a reload)."""
        active = [r for r in list_runs(self.settings, limit=20) if r.status in ACTIVE]
        if not active:
            return gr.skip(), gr.Timer(active=False)
        return active[0].id, gr.Timer(active=True)

    # ---- results ------------------------------------------------------------------------------------------
    def runs_view(self, selected: int | None = None) -> tuple:
        """History table and the results / old / new run pickers (default: the newest finished runs)."""
        infos = list_runs(self.settings)
        selected = int(selected) if str(selected).strip().isdigit() else None  # a custom value comes as text
        choices = [(r.label(), r.id) for r in infos]
        ids = [r.id for r in infos]
        finished = [r.id for r in infos if r.status not in ACTIVE]
        value = selected if selected in ids else (finished[0] if finished else None)
        old = next((i for i in finished if i != value), value)
        return (
            runs_frame(infos),
            gr.Dropdown(choices=choices, value=value),
            gr.Dropdown(choices=choices, value=old),
            gr.Dropdown(choices=choices, value=value),
        )

    @_safe(gr.skip(), gr.skip(), gr.skip(), gr.skip())
    def delete_run(self, run_id, confirm: bool = False) -> tuple:
        if _blank(run_id):
            raise InvalidRequestError("Choose a run to delete.")
        number = check_number("run_id", run_id)
        if not confirm:
            raise InvalidRequestError(f"Tick “Yes, delete” to confirm deleting run **#{number}**.")
        delete_run(self.settings, number)
        return (f"🗑️ Deleted run **#{number}** (its cached outputs stay for later runs).", *self.runs_view())

    def _results(self, run_id) -> RunResults:
        if _blank(run_id):
            raise InvalidRequestError("Choose a run first.")
        return load_results(self.settings, check_number("run_id", run_id))

    @_safe(_empty, "")
    def results(self, run_id) -> tuple[str, pd.DataFrame, str]:
        info = get_run(self.settings, check_number("run_id", run_id)) if not _blank(run_id) else None
        if info is None:
            raise InvalidRequestError("Choose a run first.")
        board = scoreboard(info)
        if "note" in board:
            board["note"] = board["note"].fillna("")
        return describe_run(info), _display(board), bar_chart_svg(board)

    def result_pickers(self, run_id) -> tuple:
        """Choices for the metric and column pickers of the run being shown."""
        try:
            info = get_run(self.settings, check_number("run_id", run_id))
        except (LlmplayError, TypeError, ValueError):
            return (gr.skip(),) * 4
        metrics = list(dict.fromkeys(quality_lines(scoreboard(info, usage=False))["metric"])) or info.metrics
        columns = [(f"{i}. {t}", i) for i, t in enumerate(info.titles, 1)]
        first = metrics[0] if metrics else None
        second = 2 if len(columns) > 1 else (1 if columns else None)
        return (
            gr.Dropdown(choices=metrics, value=first),
            gr.Dropdown(choices=columns, value=1 if columns else None),
            gr.Dropdown(choices=columns, value=second),
            gr.Dropdown(choices=metrics, value=first),
        )

    def grid(self, run_id, show: str = "all", metric: str | None = "") -> pd.DataFrame:
        """The grid (empty when there is nothing to show: the summary line says why)."""
        try:
            results = self._results(run_id)
            return _display(results.grid(show or "all", metric or None, max_chars=GRID_CHARS))
        except Exception as exc:
            return pd.DataFrame({"problem": [format_error(_message(exc))]})

    def grid_table(self, run_id: int, show: str = "all", metric: str = "") -> dict:
        """API: the grid as ``{"headers", "data"}``, like a Dataframe output."""
        split = json.loads(self.grid(run_id, show, metric).to_json(orient="split", index=False))
        return {"headers": split["columns"], "data": split["data"]}

    def grid_view(self, run_id, show: str = "all", metric: str | None = "") -> gr.Dataframe:
        """The grid for the page, with column widths that keep scores readable next to long texts."""
        frame = self.grid(run_id, show, metric)
        return gr.Dataframe(value=frame, column_widths=grid_widths(frame))

    def diff(self, run_id, row, a, b) -> str:
        try:
            results = self._results(run_id)
            i, j = _column_index(results, a, "A"), _column_index(results, b, "B")
            if _blank(row):
                raise InvalidRequestError("Enter a row number (the grid's row column).")
            r = check_number("row", row, high=len(results.rows) - 1)
            head = (
                f"<p><b>Row {r}</b>: <del>{html.escape(results.titles[i])}</del> → "
                f"<ins>{html.escape(results.titles[j])}</ins></p>"
            )
            return head + diff_html(_cell_text(results, r, i), _cell_text(results, r, j))
        except Exception as exc:
            return f"<p>{html.escape(format_error(_message(exc)))}</p>"

    @_safe(_empty)
    def compare_columns(self, run_id, a, b, metric: str) -> tuple[str, pd.DataFrame]:
        results = self._results(run_id)
        i, j = _column_index(results, a, "A"), _column_index(results, b, "B")
        if i == j:
            raise InvalidRequestError("Choose two different columns.")
        metric = metric or next(iter(results.info.metrics), None)
        if not metric:
            raise InvalidRequestError("This run has no metric to compare on.")
        comparison = compare_columns(results, i, j, metric)
        diff = comparison.difference
        message = (
            f"**{comparison.describe()}**\n\nBetter in B: rows {', '.join(map(str, diff.better)) or 'none'} · "
            f"worse in B: rows {', '.join(map(str, diff.worse)) or 'none'}"
        )
        return message, _display(changed_rows_frame(results, comparison, i, j))

    def export(self, run_id) -> tuple[str | None, str | None]:
        """CSV and JSON files of the run in a fresh folder under <data dir>/tmp (removed again if writing fails)."""
        try:
            results = self._results(run_id)
            with export_folder(self.settings, f"eval-run-{results.info.id}-") as folder:
                csv_path, json_path = results.export(folder)
        except Exception as exc:
            _message(exc)  # logs unexpected ones; no file to offer
            return None, None
        return str(csv_path), str(json_path)

    @_safe(_empty, _empty)
    def compare_runs(self, old, new) -> tuple[str, pd.DataFrame, pd.DataFrame]:
        if _blank(old) or _blank(new):
            raise InvalidRequestError("Choose the old and the new run.")
        old_id, new_id = check_number("run_id", old, label="old run"), check_number("run_id", new, label="new run")
        if old_id == new_id:
            raise InvalidRequestError("Choose two different runs.")
        comparison = compare_runs(self.settings, old_id, new_id)
        table, regressions = comparison.table, comparison.regressions
        if not table.empty:
            worse = table[table["delta"] < 0]
            summary = f"{len(worse)} of {len(table)} shared score(s) went down"
        else:
            summary = "no shared metric scores"
        message = f"**Run #{old_id} → #{new_id}**: {summary}; {len(regressions)} row score(s) dropped."
        return message, _display(table), _display(regressions)


# ---- layout ---------------------------------------------------------------------------------------------
PICK = {"allow_custom_value": True}  # names created after the page loaded stay usable (and API calls)
PRIVATE = {"api_visibility": "private"}


def _data_layout(tab: EvaluateTab) -> SimpleNamespace:
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


def _run_layout(tab: EvaluateTab) -> SimpleNamespace:
    ui = SimpleNamespace()
    engine, limit = tab.engine, tab.settings.max_new_tokens_limit
    models, datasets = generative_names(engine), tab.dataset_names()
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            ui.dataset = gr.Dropdown(datasets, value=datasets[0] if datasets else None, label="Dataset", **PICK)
            ui.dataset_info = gr.Markdown()
            with gr.Row():
                ui.sample = fields.number("sample", 0, label="Sample N rows (0 = all)", minimum=0)
                ui.sample_seed = fields.number("sample_seed", 0, label="Sample seed")
            ui.templates = gr.Dropdown(
                tab.template_names(), value=[], multiselect=True, label="Templates (name, or name@v2)", **PICK
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
            ui.mode = gr.Dropdown(list(MODES), value="auto", label="Answer mode")
            ui.max_new_tokens = fields.number("max_new_tokens", 64, tab.settings, label=f"Max new tokens (1–{limit})")
            ui.temperature = fields.slider("temperature", 0, step=0.05, label="Temperature (0 = greedy)")
            ui.seed = gr.Textbox("", label="Decoding seed (blank = none)")
            with gr.Accordion("More decoding options", open=False):
                ui.top_p = fields.slider("top_p", 1, step=0.05, label="Top-p")
                ui.top_k = fields.slider("top_k", 0, step=1, label="Top-k (0 = off)")
                ui.repetition_penalty = fields.slider("repetition_penalty", 1, step=0.05, label="Repetition penalty")
                ui.stop = gr.Textbox("", label="Stop strings", placeholder="comma or newline separated; \\n = newline")
            ui.judge = gr.Dropdown([("(no judge)", ""), *models], value="", label="LLM judge model (optional)", **PICK)
            ui.name = gr.Textbox(label="Run name (optional)")
            with gr.Row():
                ui.start = gr.Button("Start run", variant="primary")
                ui.cancel = gr.Button("Cancel run", variant="stop")
            ui.run_id = fields.number("run_id", None, label="Run id", interactive=False)
            ui.status = gr.Markdown(elem_id="eval-run-status")
            ui.progress = gr.Markdown(elem_id="eval-progress")
            ui.bar = gr.HTML()
            ui.finished = gr.Number(None, visible=False)  # set to a run's id when it ends
    ui.timer = gr.Timer(1.0, active=False)
    return ui


def _results_layout() -> SimpleNamespace:
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


def _wire_data(tab: EvaluateTab, data: SimpleNamespace, run: SimpleNamespace) -> None:
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
    saved.then(lambda: tab.reset_delete()[1], None, data.delete_name, **PRIVATE)
    data.refresh.click(tab.datasets_view, run.dataset, listed, api_name="eval_datasets")
    deleted = data.delete.click(
        guard("admin", "delete datasets", tab.delete_dataset),
        [data.delete_name, data.delete_confirm],
        [data.status, *listed],
        api_name="eval_delete_dataset",
    )
    deleted.then(tab.reset_delete, None, [data.delete_confirm, data.delete_name], **PRIVATE)


def _wire_run(tab: EvaluateTab, run: SimpleNamespace, res: SimpleNamespace) -> None:
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
    ticked = [run.progress, run.bar, run.timer, run.finished, res.history, res.run, res.old, res.new]
    run.timer.tick(tab.poll, run.run_id, ticked, show_progress="hidden", **PRIVATE)
    run.cancel.click(
        guard("admin", "cancel evaluation runs", tab.cancel), run.run_id, run.status, api_name="eval_cancel"
    )
    gr.api(tab.progress, api_name="eval_progress")


def row_from_grid(evt: gr.SelectData):
    """The dataset row of a clicked grid cell (the grid's first column holds it; filters hide some rows)."""
    value = (evt.row_value or [None])[0]
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else gr.skip()


def _wire_results(tab: EvaluateTab, run: SimpleNamespace, res: SimpleNamespace) -> None:
    shown = [res.summary, res.board, res.chart]
    pickers = [res.grid_metric, res.col_a, res.col_b, res.pair_metric]
    for event in (
        res.run.change(tab.results, res.run, shown, api_name="eval_results"),
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
    deleted.then(lambda: False, None, res.delete_confirm, **PRIVATE)
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


@dataclass
class EvaluateHandle:
    """What the app wires to other tabs: the "Open row in Compare" button, the run and row it opens, and the
    line under it for problems (the app knows the Compare tab; this tab does not)."""

    tab: EvaluateTab
    open_in_compare: gr.Button
    run: gr.Dropdown
    row: gr.Number
    status: gr.Markdown


def build_evaluate_tab(engine: Engine, demo: gr.Blocks, prompts_dir: Path | str | None = None) -> EvaluateHandle:
    """Lay out the tab (sub-tabs Data, Run, Results) inside the current Blocks context and wire its events."""
    library = TemplateLibrary.from_settings(engine.settings, folder=prompts_dir)
    tab = EvaluateTab(engine, library, EvalRunner(engine, library))  # one runner per app: runs go one at a time
    try:
        install_builtins(engine.settings)  # a new user can run an evaluation at once
    except Exception:
        log.exception("Installing the built-in sample datasets failed")
    with gr.Tabs(elem_id="evaluate-tabs"):
        with gr.Tab("Data", id="evaluate-data"):
            data = _data_layout(tab)
        with gr.Tab("Run", id="evaluate-run"):
            run = _run_layout(tab)
        with gr.Tab("Results", id="evaluate-results"):
            res = _results_layout()
            build_rows_to_queue(engine.settings, res.run, demo)  # "Send rows to a labeling queue"
    _wire_data(tab, data, run)
    _wire_run(tab, run, res)
    _wire_results(tab, run, res)

    # A (re)loaded page shows what exists now and follows a run that is still going.
    demo.load(tab.datasets_view, run.dataset, [data.table, run.dataset], **PRIVATE)
    demo.load(tab.runs_view, None, [res.history, res.run, res.old, res.new], **PRIVATE)
    demo.load(tab.choices, None, [run.templates, run.models, data.map_for], **PRIVATE)
    demo.load(tab.attach, None, [run.run_id, run.timer], **PRIVATE)
    return EvaluateHandle(tab, res.open_compare, res.run, res.diff_row, res.open_status)
