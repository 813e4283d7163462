"""The Compare tab: one input to 2-4 columns (model + optional adapter, template and decoding each), replies
streamed side by side with their speed, a word-level diff between any two, re-roll one column, export; send
replies to the feedback queues ('preferences', 'inbox'), and open a row of an evaluation run here to rerun it live.

API endpoints (gradio_client and scripts)
-----------------------------------------
``/compare`` streams one dict, the comparison so far (the last one is complete). Inputs, in this order
(or by these keyword names):

 1. ``message`` (str): sent to every column without a template; with history, the follow-up turn of every column.
 2. ``columns`` (list of 2-4 dicts), each with any of these keys (left out: the default shown):
    ``model`` (catalog name; required), ``template`` (a template's name, ``name@v3`` for a saved version;
    ``None``/``""`` = the free message),
    ``adapter`` (LoRA adapter folder, local models; ``""``), ``dtype`` (``""`` = settings default),
    ``same_as_first`` (``False``: True takes column 1's decoding), ``max_new_tokens`` (384),
    ``temperature`` (0 = greedy), ``top_p`` (1), ``top_k`` (0 = off), ``repetition_penalty`` (1),
    ``seed`` (``""`` = random), ``stop`` (stop strings separated by commas or newlines).
 3. ``values`` (dict or its JSON text): template variables, for columns with a template (first turn).
 4. ``system_message`` (str): for columns without a template, on the first turn.
 5. ``histories`` (list of lists): each column's ``history`` from the previous result; ``[]`` starts afresh.

Output: ``{"input", "columns", "done", "wall_s", "error"}``, and once it is finished ``id``: the comparison as
the server keeps it, under the caller's name (feedback names this id, see below); ``error`` is
``"⚠️ Error: ..."`` when the whole request is unusable (e.g. 1 or 5 columns), else ``None``. Each column:
``column`` (1-based), ``model``,
``config`` (model, template, ``template_version_id`` (the template version the first turn rendered, else
``None``), adapter, dtype, params incl. the seed used when sampling), ``state`` (waiting,
loading, generating, done, error), ``text``, ``error`` (that column's failure; the others still run),
``stats`` (Markdown: tokens/s, latency, time to first token, token counts, finish reason, or
``"⚠️ Error: ..."``), ``ttft_s``, ``tok_s``, ``tokens``, ``finish_reason``, ``result`` (the engine's result
as a dict), ``first_text_s`` / ``finished_s`` (seconds from the start: how the columns overlapped),
``waits_for`` (columns on the same local model take turns in column order: the column this one follows),
``request`` (exactly what was sent: ``{"prompt"}`` or ``{"messages"}``), ``history`` (the conversation
including this reply; a failed turn leaves it unchanged) and ``example_turns`` (how many turns at the start of
``history`` are the template's few-shot examples: the tab folds them into one closed box above the answer).

- ``/reroll``: ``(column, columns, comparison) -> comparison``, streamed: column ``column`` (1-based) of a
  previous ``/compare`` result of the caller's (only its ``id`` is read; the server's stored columns are used)
  generated again from the same context with that column's config in ``columns`` (a fresh seed when sampling);
  the other columns are kept, and the finished result is stored with a new ``id``.
- ``/diff_columns``: ``(comparison, a, b) -> HTML``: word-level diff from column ``a``'s reply to column ``b``'s.
- ``/export_comparison``: ``(comparison) -> dict``: the export record (format, input, per-column config, reply,
  error, ttft_s, tok_s, tokens, finish reason, request and history) that the tab's "Export JSON" file holds.
- ``/compare_preference``: ``(comparison_id, preferred, rejected, user) -> str``: send column ``preferred``'s
  reply (chosen) and column ``rejected``'s (rejected) of a finished ``/compare`` result (its ``id``; the caller's
  own, any for an admin; the replies are read from the server, never from the client) to the feedback queue
  ``preferences`` as a pair with the sender's response 'a' (source ``compare``, with both models and adapters
  and the preferred column's template version). Both columns must have answered the same prompt. ``user``
  (``""`` = anonymous; the login name when the app has users) is recorded with the sender's role: a viewer's
  pair waits for review before it becomes training data (llmplay/feedback/provenance.py).
- ``/compare_correction``: ``(comparison_id, column, correction, user) -> str``: send "column ``column`` should have
  answered ``correction``" to the queue ``inbox`` (the sender's submitted correction). Both return
  ``"✅ Sent ..."`` or ``"⚠️ Error: ..."`` (no comparison, same column twice, a failed or unfinished column, an
  empty reply or correction); the prompt kept is the column's ``request``: the chat messages, or the raw text
  a base model continued.
- ``/open_in_compare``: ``(run_id, row) -> dict``: row ``row`` (0-based, as in the Evaluate tab's grid) of
  evaluation run ``run_id`` as Compare inputs: ``{"run_id", "row", "count", "columns", "values", "titles",
  "outputs", "notes", "error"}``. ``columns`` are ``/compare`` column dicts (the run's first 4 columns: model,
  template (``name@vN`` when the run used an older version), adapter, dtype, decoding), ``values`` the row's
  template variables, ``outputs`` what the run stored per column, ``notes`` what Compare cannot repeat exactly.
  Pass ``columns`` and ``values`` to ``/compare`` to rerun the row; with greedy decoding the replies repeat the
  run's. A run with one column gets it twice (Compare needs two). The Evaluate tab's "Open row in Compare" button
  fills the form with it and switches to this tab; press Compare to run it.

Every handler returns errors as data; none raises, so the app keeps serving.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial

import gradio as gr

from llmplay.compare import (
    MAX_COLUMNS,
    Column,
    ColumnConfig,
    Comparison,
    correction_from_comparison,
    export_markdown,
    export_payload,
    preference_from_comparison,
    prepare_column,
    prepare_reroll,
)
from llmplay.compare.from_trace import trace_for_compare
from llmplay.compare.results import comparison_id, load_comparison, save_comparison
from llmplay.engine import Engine, GenerationParams
from llmplay.errors import LlmplayError, short
from llmplay.evaluation.handoff import row_for_compare
from llmplay.feedback.provenance import Sender, sender_for
from llmplay.limits import check_number
from llmplay.services import Services
from llmplay.store import connect
from llmplay.tempfiles import export_folder
from llmplay.templates import TemplateLibrary, load_template
from llmplay.textdiff import diff_html, similarity
from llmplay.ui.access import Guard, caller_of, declare, declared
from llmplay.ui.common import format_error, send_feedback
from llmplay.ui.models_panel import generative_names
from llmplay.ui.models_panel import model_dropdown as refreshed_model_dropdown
from llmplay.ui.queueing import GENERATION
from llmplay.ui.tabs.compare.columns import MIN_COLUMNS, column_widgets
from llmplay.ui.tabs.compare.form import (
    FRESH,
    NO_DIFF,
    NO_VALUES_HINT,
    clear_sent_message,
    fit_pickers,
    variables_hint,
)
from llmplay.ui.tabs.compare.view import (
    api_column,
    chat_view,
    column_choices,
    column_params,
    example_turns,
    failure,
    handoff_dict,
    handoff_status,
    with_stats,
)
from llmplay.ui.template_picks import parse_values, template_choices

log = logging.getLogger(__name__)

NO_TEMPLATE = "(none — free message)"


# ---- handlers ---------------------------------------------------------------------------------------
class CompareTab:
    """The tab's handlers: plain values in, comparison dicts out; exceptions never escape."""

    def __init__(self, engine: Engine, library: TemplateLibrary):
        self.engine = engine
        self.library = library

    # ---- building columns -------------------------------------------------------------------------------
    def column_config(self, column: dict, first: GenerationParams | None) -> ColumnConfig:
        if not isinstance(column, dict):
            raise LlmplayError(f"Each column must be a dict with at least a 'model'; got {type(column).__name__}.")
        same = column.get("same_as_first") and first is not None
        params = first if same else column_params(column, self.engine.settings)
        dtype = column.get("dtype") or None
        return ColumnConfig(
            model=(column.get("model") or "").strip(),
            params=params,
            template=(column.get("template") or "").strip() or None,
            adapter=(column.get("adapter") or "").strip() or None,  # blank = the base model
            dtype=None if dtype == self.engine.settings.dtype else dtype,
        )

    def configs(self, columns: list[dict]) -> list[ColumnConfig | str]:
        """Each column's config, or its error message (one bad column must not stop the others)."""
        out: list[ColumnConfig | str] = []
        first: GenerationParams | None = None
        for i, column in enumerate(columns):
            try:
                config = self.column_config(column, first)
            except LlmplayError as exc:
                out.append(str(exc))
                continue
            first = config.params if i == 0 else first
            out.append(config)
        return out

    def _column(
        self, config: ColumnConfig | str, history, message: str, system_message: str, values
    ) -> tuple[Column, int]:
        """The column ready to run, and how many turns at the start of its conversation are its template's
        few-shot examples (the chat view folds them)."""
        if isinstance(config, str):
            return Column(ColumnConfig(model=""), error=config), 0
        template = loaded = None
        if config.template:
            try:
                loaded, version = load_template(self.library, config.template)
                values = parse_values(values) if not history else values
            except LlmplayError as exc:
                if not history:
                    return Column(config, error=str(exc)), 0
            else:
                if not history:
                    template, config = loaded, replace(config, template_version_id=version.id)
        column = prepare_column(self.engine, config, history, message, system_message, template, values)
        chat = column.request is not None and column.request.messages is not None
        return column, 2 * len(loaded.examples) if loaded is not None and chat else 0

    # ---- endpoints --------------------------------------------------------------------------------------
    def compare(
        self,
        message: str = "",
        columns: list[dict] | None = None,
        values: dict | str | None = None,
        system_message: str = "",
        histories: list[list[dict]] | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[dict]:
        """Stream the comparison; see the module docstring for the inputs and the output."""
        try:
            columns = list(columns or [])
            if not MIN_COLUMNS <= len(columns) <= MAX_COLUMNS:
                raise LlmplayError(f"Choose {MIN_COLUMNS} to {MAX_COLUMNS} columns; got {len(columns)}.")
            histories = list(histories or [])
            histories += [[]] * (len(columns) - len(histories))
            prepared, shots = zip(
                *(
                    self._column(config, histories[i], message or "", system_message or "", values)
                    for i, config in enumerate(self.configs(columns))
                ),
                strict=True,
            )
            inputs = {"message": message or "", "values": values or {}, "system_message": system_message or ""}
            comparison = Comparison(prepared, histories, inputs)
            with closing(comparison.stream(self.engine)) as states:
                for state in states:
                    snapshot = state.snapshot()
                    for col, turns in zip(snapshot["columns"], shots, strict=True):
                        col["example_turns"] = turns
                    yield with_stats(self._stored(snapshot, request) if state.done else snapshot)
        except LlmplayError as exc:
            yield failure(str(exc))
        except Exception as exc:  # never let a handler fail: the app must keep serving
            log.exception("Compare failed")
            yield failure(f"something unexpected went wrong ({type(exc).__name__}: {exc}).")

    def reroll(
        self,
        column: int = 1,
        columns: list[dict] | None = None,
        comparison: dict | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[dict]:
        """Stream ``comparison`` with column ``column`` (1-based) generated again; see the module docstring."""
        try:
            if comparison_id(comparison) is None:
                raise LlmplayError(f"There is no column {short(column)} to re-roll: run a comparison first.")
            with connect(self.engine.settings.db_path) as db:  # the kept columns are the stored ones
                previous = load_comparison(db, comparison_id(comparison), self._caller(request)).snapshot()
            done_columns = list(previous.get("columns") or [])
            index = check_number("column", column, high=len(done_columns)) - 1
            config = self.configs(list(columns or []))[index] if index < len(columns or []) else None
            if config is None:
                raise LlmplayError(f"Give column {column}'s settings to re-roll it.")
            if isinstance(config, str):
                prepared = Column(ColumnConfig(model=""), error=config)
            else:
                before = done_columns[index].get("config") or {}
                if config.template == before.get("template"):  # the same first turn: the same template version
                    config = replace(config, template_version_id=before.get("template_version_id"))
                prepared = prepare_reroll(self.engine, config, done_columns[index].get("history") or [])
            run = Comparison([prepared], [done_columns[index].get("history") or []])
            with closing(run.stream(self.engine)) as states:
                for state in states:
                    fresh = state.snapshot()["columns"][0] | {"column": index + 1}
                    fresh["example_turns"] = done_columns[index].get("example_turns") or 0
                    merged = done_columns[:index] + [fresh] + done_columns[index + 1 :]
                    snapshot = previous | {"id": None, "columns": merged, "done": state.done}
                    yield with_stats(self._stored(snapshot, request) if state.done else snapshot)
        except LlmplayError as exc:
            yield failure(str(exc))
        except Exception as exc:
            log.exception("Re-roll failed")
            yield failure(f"something unexpected went wrong ({type(exc).__name__}: {exc}).")

    @declare("view")
    def diff_columns(self, comparison: dict | None = None, a: int = 1, b: int = 2) -> str:
        """HTML word diff from column ``a``'s reply to column ``b``'s (1-based), with their similarity."""
        columns = (comparison or {}).get("columns") or []
        try:
            left, right = columns[int(a) - 1], columns[int(b) - 1]
        except (IndexError, TypeError, ValueError):
            return NO_DIFF
        head = (
            f"<p><b>Column {a}</b> ({left.get('model')}) → <b>Column {b}</b> ({right.get('model')}): "
            f"{similarity(left.get('text') or '', right.get('text') or ''):.0%} of words in common</p>"
        )
        return head + diff_html(left.get("text") or "", right.get("text") or "")

    @declare("view")
    def export_comparison(self, comparison: dict | None = None) -> dict:
        """The export record of a comparison (input, configs, replies, stats): what the JSON file holds."""
        return export_payload(comparison or {})

    @declare("view")
    def export_file(self, comparison: dict | None = None) -> str | None:
        """The export record as a JSON file in a fresh folder under <data dir>/tmp (for download); None before any
        comparison."""
        if not (comparison or {}).get("columns"):
            return None
        with export_folder(self.engine.settings, "compare-") as folder:
            path = folder / "comparison.json"
            path.write_text(
                json.dumps(self.export_comparison(comparison), indent=2, ensure_ascii=False), encoding="utf-8"
            )
        return str(path)

    @declare("view")
    def markdown(self, comparison: dict | None = None) -> str:
        return export_markdown(comparison) if (comparison or {}).get("columns") else ""

    # ---- feedback and evaluation rows ------------------------------------------------------------------
    def send_preference(
        self, comparison_id: int | None = None, preferred: int = 1, rejected: int = 2, user: str = ""
    ) -> str:
        """Send two columns' replies of the caller's stored comparison to 'preferences' as a preferred/rejected
        pair."""
        return self._to_inbox(
            lambda db: preference_from_comparison(
                db, self._known_id(comparison_id), preferred, rejected, sender_for(self.engine.settings, user)
            )
        )

    def send_correction(
        self, comparison_id: int | None = None, column: int = 1, correction: str = "", user: str = ""
    ) -> str:
        """Send the answer column ``column`` of the caller's stored comparison should have given to 'inbox'."""
        return self._to_inbox(
            lambda db: correction_from_comparison(
                db, self._known_id(comparison_id), column, correction, sender_for(self.engine.settings, user)
            )
        )

    @staticmethod
    def _known_id(given) -> int:
        """The id of a stored comparison (the form sends its whole result: only the id is read)."""
        if comparison_id(given) is None:
            raise LlmplayError("Run a comparison first: feedback is about its replies.")
        return comparison_id(given)

    def _caller(self, request: gr.Request | None) -> Sender:
        caller = caller_of(self.engine.settings, request)
        return Sender(caller.name, caller.role)

    def _stored(self, snapshot: dict, request: gr.Request | None) -> dict:
        """A finished comparison, kept on the server under its caller's name; its id goes with the result."""
        with connect(self.engine.settings.db_path) as db:
            return snapshot | {"id": save_comparison(db, snapshot, self._caller(request).name)}

    def _to_inbox(self, send) -> str:
        return send_feedback(self.engine.settings.db_path, send, "compare")

    @declare("view")
    def open_eval_row(self, run_id: int | None = None, row: int | None = 0) -> dict:
        """Row ``row`` of evaluation run ``run_id`` as Compare inputs; see the module docstring."""
        given, run_id, row = (run_id, row), None, None  # echoed only once checked (10**30 cannot be encoded)
        try:
            if given[0] in (None, "") or given[1] in (None, ""):
                raise LlmplayError("Choose a run and a row (the grid's row column) first.")
            run_id, row = check_number("run_id", given[0]), check_number("row", given[1])
            handoff = row_for_compare(self.engine.settings, self.library, run_id, row)
            return handoff_dict(handoff, self.engine.settings.dtype)
        except (LlmplayError, ValueError, TypeError) as exc:
            message = str(exc) if isinstance(exc, LlmplayError) else f"run and row must be whole numbers ({exc})."
        except Exception as exc:
            log.exception("Opening an evaluation row failed")
            message = f"something unexpected went wrong ({type(exc).__name__}: {exc})."
        empty = {"count": 0, "columns": [], "values": {}, "titles": [], "outputs": [], "notes": []}
        return {"run_id": run_id, "row": row, **empty, "error": format_error(message)}

    @declare("view")
    def open_trace(self, trace_id: str = "") -> dict:
        """API trace ``trace_id`` as Compare inputs: its message to the version that answered it and to its line's
        other versions (llmplay/compare/from_trace.py)."""
        try:
            handoff = trace_for_compare(self.engine.settings, self.engine.catalog, str(trace_id or ""))
            columns = [api_column(c) for c in handoff.columns]
            return {
                "trace_id": handoff.trace_id, "count": len(columns), "columns": columns, "values": {},
                "titles": list(handoff.titles), "outputs": list(handoff.outputs), "notes": list(handoff.notes),
                "message": handoff.message, "system_message": handoff.system_message, "error": None,
            }  # fmt: skip
        except LlmplayError as exc:
            return {"trace_id": trace_id, "count": 0, "columns": [], "error": format_error(str(exc))}

    def template_choices(self) -> list[tuple[str, str]]:
        return template_choices(self.library, NO_TEMPLATE)

    @declare("view")
    def variables_hint(self, values: str, *templates: str) -> tuple[str, str]:
        """(values box, hint): the chosen templates' variables; an empty box gets a JSON skeleton to fill in."""
        return variables_hint(self.library, values, *templates)


# ---- layout -----------------------------------------------------------------------------------------
@dataclass
class CompareHandle:
    """What the app needs to open an evaluation row here: ``tab.open_eval_row(run_id, row)`` gives the row as
    data (a handoff), ``fill(handoff)`` the updates of ``outputs``: the form, a cleared comparison, the status."""

    tab: CompareTab
    outputs: list[gr.components.Component]
    fill: Callable[[dict], dict]


def build_compare_tab(services: Services, demo: gr.Blocks) -> CompareHandle:
    """Lay out the tab inside the current Blocks context and wire its events; the handle lets another tab
    fill the form (see ``CompareHandle``)."""
    engine = services.engine
    tab = CompareTab(engine, services.templates)
    names = generative_names(engine)
    choices = tab.template_choices()
    with gr.Row():
        count = gr.Radio([2, 3, 4], value=MIN_COLUMNS, label="Columns", scale=1)
        system_message = gr.Textbox("", label="System message (columns without a template)", scale=3)
    with gr.Row(equal_height=False):
        cols = [
            column_widgets(i + 1, names[i % len(names)] if names else None, names, choices, engine.settings)
            for i in range(MAX_COLUMNS)
        ]
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            message = gr.Textbox(
                label="Message (to every column without a template; a follow-up continues each conversation)",
                placeholder="Type a message and press Enter",
                lines=1,
                max_lines=12,
                elem_id="compare-message",
            )
        with gr.Column(scale=2):
            values = gr.Code(
                "",
                language="json",
                label="Template variables (JSON)",
                lines=3,
                interactive=True,
                elem_id="compare-values",
            )
            values_hint = gr.Markdown(NO_VALUES_HINT)
    with gr.Row():
        run_btn = gr.Button("Compare", variant="primary", elem_id="compare-run")
        stop_btn = gr.Button("Stop")
        clear_btn = gr.Button("New comparison")
    status = gr.Markdown(elem_id="compare-status")
    state = gr.State({})
    with gr.Accordion("Word diff between two replies", open=True):
        with gr.Row():
            first_choices = column_choices(None, MIN_COLUMNS)
            diff_a = gr.Dropdown(first_choices, value=1, label="From", scale=1, elem_id="compare-diff-from")
            diff_b = gr.Dropdown(first_choices, value=2, label="To", scale=1, elem_id="compare-diff-to")
        diff = gr.HTML(NO_DIFF, elem_id="compare-diff")
    with gr.Accordion("Copy / export", open=False):
        export_btn = gr.Button("Export JSON", size="sm")
        exported = gr.File(label="Comparison file", interactive=False, height=80)
        markdown = gr.Textbox(
            label="As Markdown",
            lines=6,
            max_lines=20,
            interactive=False,
            buttons=["copy"],
            elem_id="compare-markdown",
            placeholder="Run a comparison: its replies and figures appear here as a Markdown table to copy.",
        )
    with gr.Accordion("Send to feedback (a preferred/rejected pair, or the correct answer)", open=False):
        with gr.Row():
            preferred = gr.Dropdown(
                first_choices, value=1, label="Preferred column", scale=1, elem_id="compare-preferred"
            )
            rejected = gr.Dropdown(first_choices, value=2, label="Rejected column", scale=1, elem_id="compare-rejected")
            prefer_btn = gr.Button("Send as preference pair", size="sm", scale=1, elem_id="compare-prefer")
        with gr.Row():
            fix_column = gr.Dropdown(first_choices, value=1, label="Column to correct", scale=1)
            correction = gr.Textbox(label="The correct answer", lines=2, scale=2, elem_id="compare-correction")
            fix_btn = gr.Button("Send correction", size="sm", scale=1, elem_id="compare-correct")
        feedback_user = gr.Textbox("", label="Your name (recorded with the feedback)", placeholder="anonymous")
        feedback_status = gr.Markdown(elem_id="compare-feedback-status")

    # Plain-value endpoints for scripts and tests (the form is a UI detail); registered
    # before the form's events, which reuse these handlers and would otherwise take their names.
    guard = Guard(engine.settings)  # comparing spends model time; feedback is a vote or a correction
    prefer = guard("vote", "send preference pairs", tab.send_preference, user_param="user")
    correct = guard("label", "send corrections", tab.send_correction, user_param="user")
    gr.api(guard("generate", "compare models", tab.compare), api_name="compare", **GENERATION)
    gr.api(guard("generate", "compare models", tab.reroll), api_name="reroll", **GENERATION)
    gr.api(tab.diff_columns, api_name="diff_columns")
    gr.api(tab.export_comparison, api_name="export_comparison")
    gr.api(prefer, api_name="compare_preference")
    gr.api(correct, api_name="compare_correction")
    gr.api(tab.open_eval_row, api_name="open_in_compare")
    private = {"api_visibility": "private"}
    shown = [c.chatbot for c in cols] + [c.stats for c in cols]

    def form_columns(data: dict) -> list[dict]:
        return [c.read(data) for c in cols[: int(data[count])]]

    def to_outputs(snapshot: dict, only: int | None = None) -> dict:
        """Component updates from a comparison dict (``only``: update that column alone)."""
        out: dict = {state: snapshot, status: snapshot.get("error") or ""}
        for i, col in enumerate(snapshot.get("columns") or []):
            if only is None or i == only:
                out[cols[i].chatbot] = chat_view(col.get("history"), example_turns(col))
                out[cols[i].stats] = col.get("stats", "")
        return out

    def histories(snapshot: dict) -> list[list[dict]]:
        return [col.get("history") or [] for col in (snapshot or {}).get("columns") or []]

    def on_compare(data: dict, request: gr.Request) -> Iterator[dict]:
        started = tab.compare(
            data[message], form_columns(data), data[values], data[system_message], histories(data[state]), request
        )
        with closing(started):  # on Stop, closing reaches the column threads at once
            for snapshot in started:
                yield to_outputs(snapshot)

    def on_reroll(index: int, data: dict, request: gr.Request) -> Iterator[dict]:
        if index >= len((data[state] or {}).get("columns") or []):
            yield {status: format_error(f"Run a comparison with column {index + 1} first, then re-roll it.")}
            return
        with closing(tab.reroll(index + 1, form_columns(data), data[state], request)) as snapshots:
            for snapshot in snapshots:
                if snapshot.get("error"):
                    yield {status: snapshot["error"]}
                    return
                yield to_outputs(snapshot, only=index)

    form = {count, message, values, system_message, state}.union(*(c.inputs() for c in cols))
    outputs = [state, status, *shown]
    running = gr.on(
        [run_btn.click, message.submit],
        guard("generate", "compare models", on_compare),
        form,
        outputs,
        show_progress="minimal",
        **private,
        **GENERATION,
    )
    running.then(clear_sent_message, state, message, **private)
    rerolls = [  # outputs: that column alone, so the others show no progress
        col.reroll.click(
            guard("generate", "compare models", partial(on_reroll, i)),
            form,
            [state, status, col.chatbot, col.stats],
            show_progress="minimal",
            **private,
            **GENERATION,
        )
        for i, col in enumerate(cols)
    ]
    pickers = [diff_a, diff_b, preferred, rejected, fix_column]

    for event in [running, *rerolls]:  # the pickers, the diff and the Markdown copy follow every finished run
        event.then(fit_pickers, [state, count, *pickers], pickers, **private).then(
            tab.diff_columns, [state, diff_a, diff_b], diff, **private
        )
        event.then(tab.markdown, state, markdown, **private)
    for col in cols:
        if col.same is not None:
            col.same.change(declared("view", lambda same: gr.Group(visible=not same)), col.same, col.params, **private)
    stop_btn.click(declared("view", lambda: "Stopped."), None, status, cancels=[running, *rerolls], **private)
    # New comparison: no replies, no template, no variables, no message; the models and decodings stay.
    cleared = [{}, FRESH, *([[]] * MAX_COLUMNS), *([""] * MAX_COLUMNS), NO_DIFF, ""]
    cleared += ["", "", "", NO_VALUES_HINT, "", "", None, *([""] * MAX_COLUMNS)]
    fresh_outputs = [*outputs, diff, markdown, message, system_message, values, values_hint, feedback_status]
    fresh_outputs += [correction, exported, *(c.template for c in cols)]
    clear_btn.click(
        declared("view", lambda: cleared), None, fresh_outputs, cancels=[running, *rerolls], **private
    ).then(fit_pickers, [state, count, *pickers], pickers, **private)
    count.change(
        declared("view", lambda n: [gr.Column(visible=i < int(n)) for i in range(MAX_COLUMNS)]),
        count,
        [c.box for c in cols],
        **private,
    ).then(fit_pickers, [state, count, *pickers], pickers, **private)
    templates = [c.template for c in cols]
    gr.on([t.change for t in templates], tab.variables_hint, [values, *templates], [values, values_hint], **private)
    gr.on([diff_a.change, diff_b.change], tab.diff_columns, [state, diff_a, diff_b], diff, **private)
    export_btn.click(tab.export_file, state, exported, **private)
    prefer_btn.click(prefer, [state, preferred, rejected, feedback_user], feedback_status, **private)
    fix_btn.click(correct, [state, fix_column, correction, feedback_user], feedback_status, **private)

    # Models added in another tab (or session) appear after a reload; templates and their saved versions are
    # read again on load and whenever a template picker is opened, so a version saved meanwhile is offered.
    fresh_templates = declared("view", lambda: gr.Dropdown(choices=tab.template_choices()))
    for col in cols:
        demo.load(declared("view", partial(refreshed_model_dropdown, engine)), col.model, col.model, **private)
        gr.on([demo.load, col.template.focus], fresh_templates, None, col.template, **private)

    def fill(handoff: dict) -> dict:
        """The form set to rerun an evaluation row as a new comparison (a first turn, not a follow-up)."""
        notes: list[str] = []
        out = {count: handoff["count"], values: json.dumps(handoff["values"], ensure_ascii=False, indent=1)}
        if "message" in handoff:  # a trace: its request as the free message
            out |= {message: handoff["message"], system_message: handoff["system_message"]}
        for i, column in enumerate(handoff["columns"]):
            out |= cols[i].fill(column, i + 1, notes)
        out |= {state: {}, diff: "", markdown: "", feedback_status: ""}
        out |= {c.chatbot: [] for c in cols} | {c.stats: "" for c in cols}
        out[status] = handoff_status(handoff | {"notes": handoff["notes"] + notes})
        return out

    filled = [count, values, state, status, diff, markdown, feedback_status, message, system_message]
    filled += [w for c in cols for w in [*c.fields().values(), c.chatbot, c.stats]]
    return CompareHandle(tab, filled, fill)
