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

import gradio as gr
import pandas as pd

from llmplay.datasets import (
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
from llmplay.engine import Engine
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.evaluation.progress import ACTIVE
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
from llmplay.evaluation.runner import EvalRunner
from llmplay.limits import check_number
from llmplay.services import Services
from llmplay.tempfiles import discard_upload, export_folder
from llmplay.templates import TemplateLibrary
from llmplay.textdiff import diff_html
from llmplay.ui.access import declare
from llmplay.ui.common import error_message, format_error, safe
from llmplay.ui.models_panel import generative_names
from llmplay.ui.tabs.evaluate.estimate import run_estimate
from llmplay.ui.tabs.evaluate.feedback import build_rows_to_queue
from llmplay.ui.tabs.evaluate.layout import (
    PRIVATE,
    data_layout,
    results_layout,
    run_layout,
    wire_data,
    wire_results,
    wire_run,
)
from llmplay.ui.tabs.evaluate.view import (
    GRID_CHARS,
    PREVIEW_ROWS,
    _blank,
    _cell_text,
    _column_index,
    _display,
    _empty,
    _no_preview,
    bar_chart_svg,
    build_config,
    changed_rows_frame,
    dataset_name_for,
    datasets_frame,
    describe_run,
    grid_widths,
    parse_template_ref,
    parse_variables,
    progress_bar_html,
    progress_dict,
    quality_lines,
    runs_frame,
)
from llmplay.ui.template_picks import template_choices

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

    @declare("view")
    def choices(self) -> tuple[gr.Dropdown, gr.Dropdown, gr.Dropdown]:
        """Fresh template and model choices for the run form and the mapping picker (they change meanwhile)."""
        templates = self.template_names()
        return (
            gr.Dropdown(choices=template_choices(self.library)),
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

    @safe(_no_preview, "", lambda: gr.Dropdown(choices=[("(none)", "")], value=""), "")
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

    @declare("view")
    def resuggest(self, frame: pd.DataFrame | None, template: str | None, reference: str | None = "") -> str:
        """The variables mapping again after the user picks a template to map for (columns from the preview)."""
        columns = [str(c) for c in getattr(frame, "columns", [])]
        if not columns or columns == list(_no_preview().columns):
            return gr.skip()
        return self.suggest(columns, template, reference)[0]

    @declare("view")
    def datasets_view(self, selected: str | None = None) -> tuple[pd.DataFrame, gr.Dropdown]:
        infos = list_datasets(self.settings)
        names = [d.name for d in infos]
        value = selected if selected in names else (names[0] if names else None)
        return datasets_frame(infos), gr.Dropdown(choices=names, value=value)

    @safe(gr.skip(), gr.skip())
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

    @safe(gr.skip(), gr.skip())
    def delete_dataset(self, name: str, confirm: bool = False) -> tuple:
        if not name:
            raise DatasetError("Choose a dataset to delete.")
        if not confirm:
            raise DatasetError(f"Tick “Yes, delete” to confirm deleting **{name}** (past runs keep their rows).")
        delete_dataset(self.settings, name)
        return (f"🗑️ Deleted dataset **{name}**.", *self.datasets_view())

    @declare("view")
    def reset_delete(self) -> tuple[bool, gr.Dropdown]:
        return False, gr.Dropdown(choices=self.dataset_names(), value=None)

    @declare("view")
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

    @declare("view")
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
    @safe(None)
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

    @declare("view")
    def progress(self, run_id: int) -> dict:
        """The run's progress as plain data (``error`` holds any problem, e.g. an unknown run)."""
        number = None  # echoed only once checked: 10**30 cannot even be encoded in the reply (64-bit JSON)
        try:
            number = check_number("run_id", run_id)
            return progress_dict(self.runner.progress(number))
        except Exception as exc:
            message = error_message(exc, "Evaluate tab")
            return {"run_id": number, "status": "unknown", "finished": True, "error": message, "text": message}

    @declare("view")
    def poll(self, run_id, shown=None, show: str = "all", metric: str | None = "", seen=None) -> tuple:
        """Timer tick: progress text and bar; when the run ends, stop the timer, select the run in the results
        and set ``finished`` to its id (its change event opens the results, even of the run already shown).
        While it runs, the grid of the run being shown (``shown``) fills in as cells finish: it is renewed when
        the count of finished cells moved past ``seen`` (the last two outputs: grid, count)."""
        if _blank(run_id):
            return "", "", gr.Timer(active=False), *[gr.skip()] * 7
        try:
            progress = self.runner.progress(check_number("run_id", run_id))
        except Exception as exc:
            return format_error(error_message(exc, "Evaluate tab")), "", gr.Timer(active=False), *[gr.skip()] * 7
        text, bar = progress.describe(), progress_bar_html(progress)
        if not progress.finished:
            live = str(shown).strip() == str(progress.run_id) and progress.done != seen
            grid = (self.grid_view(progress.run_id, show, metric), progress.done) if live else (gr.skip(),) * 2
            return text, bar, gr.skip(), *[gr.skip()] * 5, *grid
        icon = "✅" if progress.status == "done" else "⏹️" if progress.status == "cancelled" else "⚠️"
        finished = (progress.run_id, *self.runs_view(progress.run_id))
        return f"{icon} {text}", bar, gr.Timer(active=False), *finished, gr.skip(), None

    @declare("view")
    def estimate(self, dataset, sample=0, templates=None, models=None, adapters="", mode="auto") -> str:
        """Before a run: how long it should take on this machine (estimate.py); ``""`` for a short run."""
        return run_estimate(self.runner, self.settings, dataset, sample, templates, models, adapters, mode)

    @staticmethod
    @declare("view")
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
            return format_error(error_message(exc, "Evaluate tab"))

    @declare("view")
    def attach(self) -> tuple:
        """On page load: follow the newest run that is still going (started from another page, or before a reload)."""
        active = [r for r in list_runs(self.settings, limit=20) if r.status in ACTIVE]
        if not active:
            return gr.skip(), gr.Timer(active=False)
        return active[0].id, gr.Timer(active=True)

    @declare("view")
    def follow(self, run_id) -> tuple:
        """After attach: the results show the run still going, whose grid fills in as its cells finish."""
        return self.runs_view(run_id) if not _blank(run_id) else (gr.skip(),) * 4

    # ---- results ------------------------------------------------------------------------------------------
    @declare("view")
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

    @safe(gr.skip(), gr.skip(), gr.skip(), gr.skip())
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

    @safe(_empty, "")
    @declare("view")
    def results(self, run_id) -> tuple[str, pd.DataFrame, str]:
        info = get_run(self.settings, check_number("run_id", run_id)) if not _blank(run_id) else None
        if info is None:
            raise InvalidRequestError("Choose a run first.")
        board = scoreboard(info)
        if "note" in board:
            board["note"] = board["note"].fillna("")
        return describe_run(info), _display(board), bar_chart_svg(board)

    @declare("view")
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
            return pd.DataFrame({"problem": [format_error(error_message(exc, "Evaluate tab"))]})

    @declare("view")
    def grid_table(self, run_id: int, show: str = "all", metric: str = "") -> dict:
        """API: the grid as ``{"headers", "data"}``, like a Dataframe output."""
        split = json.loads(self.grid(run_id, show, metric).to_json(orient="split", index=False))
        return {"headers": split["columns"], "data": split["data"]}

    @declare("view")
    def grid_view(self, run_id, show: str = "all", metric: str | None = "") -> gr.Dataframe:
        """The grid for the page, with column widths that keep scores readable next to long texts."""
        frame = self.grid(run_id, show, metric)
        return gr.Dataframe(value=frame, column_widths=grid_widths(frame))

    @declare("view")
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
            return f"<p>{html.escape(format_error(error_message(exc, 'Evaluate tab')))}</p>"

    @safe(_empty)
    @declare("view")
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

    @declare("view")
    def export(self, run_id) -> tuple[str | None, str | None]:
        """CSV and JSON files of the run in a fresh folder under <data dir>/tmp (removed again if writing fails)."""
        try:
            results = self._results(run_id)
            with export_folder(self.settings, f"eval-run-{results.info.id}-") as folder:
                csv_path, json_path = results.export(folder)
        except Exception as exc:
            error_message(exc, "Evaluate tab")  # logs unexpected ones; no file to offer
            return None, None
        return str(csv_path), str(json_path)

    @safe(_empty, _empty)
    @declare("view")
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


@dataclass
class EvaluateHandle:
    """What the app wires to other tabs: the "Open row in Compare" button, the run and row it opens, and the
    line under it for problems (the app knows the Compare tab; this tab does not)."""

    tab: EvaluateTab
    open_in_compare: gr.Button
    run: gr.Dropdown
    row: gr.Number
    status: gr.Markdown


def build_evaluate_tab(services: Services, demo: gr.Blocks) -> EvaluateHandle:
    """Lay out the tab (sub-tabs Data, Run, Results) inside the current Blocks context and wire its events."""
    engine = services.engine
    tab = EvaluateTab(engine, services.templates, services.evaluations)  # the app's runner: runs go one at a time
    try:
        install_builtins(engine.settings)  # a new user can run an evaluation at once
    except Exception:
        log.exception("Installing the built-in sample datasets failed")
    with gr.Tabs(elem_id="evaluate-tabs"):
        with gr.Tab("Data", id="evaluate-data"):
            data = data_layout(tab)
        with gr.Tab("Run", id="evaluate-run"):
            run = run_layout(tab)
        with gr.Tab("Results", id="evaluate-results"):
            res = results_layout()
            build_rows_to_queue(engine.settings, res.run, demo)  # "Send rows to a labeling queue"
    wire_data(tab, data, run)
    wire_run(tab, run, res)
    wire_results(tab, run, res)

    # A (re)loaded page shows what exists now and follows a run that is still going.
    demo.load(tab.datasets_view, run.dataset, [data.table, run.dataset], **PRIVATE)
    demo.load(tab.runs_view, None, [res.history, res.run, res.old, res.new], **PRIVATE)
    demo.load(tab.choices, None, [run.templates, run.models, data.map_for], **PRIVATE)
    attached = demo.load(tab.attach, None, [run.run_id, run.timer], **PRIVATE)
    attached.then(tab.follow, run.run_id, [res.history, res.run, res.old, res.new], **PRIVATE)
    return EvaluateHandle(tab, res.open_compare, res.run, res.diff_row, res.open_status)
