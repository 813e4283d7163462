"""The Labeling tab's Review sub-tab: agreement & adjudication, a dashboard, and export / import.

Built on llmplay.feedback: agreement.queue_agreement / disagreements, store.adjudicate, dashboard.volume /
throughput / queue_summary, exports.export_file and imports.import_file. The adjudicator (the name typed in
the Label sub-tab) picks a row of the disagreement table, reads every labeler's answer (and the word diff of
corrections) and records the final answer, audited. Exports are written under <data dir>/tmp/exports (served
by the app; stale ones swept), imports go into the picked queue and report the file's line on an error.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from llmplay.errors import LlmplayError
from llmplay.feedback import agreement, dashboard, exports, imports
from llmplay.feedback import store as fb
from llmplay.store import connect
from llmplay.tempfiles import discard_upload, export_folder
from llmplay.ui.access import Guard, declare, declared, needs
from llmplay.ui.common import format_error
from llmplay.ui.refresh import QUEUES, View, changed, reload_on
from llmplay.ui.tabs.labeling.view import choices, item_markdown, prompt_section, value_text

log = logging.getLogger(__name__)
PRIVATE = {"api_visibility": "private"}
LABELER_HEADERS = ["labeler", "submitted", "drafts", "discarded", "compared", "agreement with others"]
DISAGREEMENT_HEADERS = ["item", "answers", "adjudicated"]
FORMAT_CHOICES = [
    ("SFT (chat messages)", "sft"),
    ("DPO (prompt / chosen / rejected)", "dpo"),
    ("KTO (prompt / completion / label)", "kto"),
    ("CSV (review table)", "csv"),
]


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def agreement_markdown(a: agreement.QueueAgreement) -> str:
    lines = [
        f"**{a.queue}** ({a.task}, k = {a.k}): {a.labelers_count} labeler(s), {a.items_compared} item(s) with two "
        "or more answers.",
        f"- Percent agreement (all answers equal): **{percent(a.percent_agreement)}**; pairwise: "
        f"{percent(a.pairwise_agreement)}",
    ]
    if a.cohen_kappa is not None or a.cohen_items:
        weighted = f"; quadratic-weighted: {figure(a.weighted_kappa)}" if a.weighted_kappa is not None else ""
        lines.append(f"- Cohen's kappa: **{figure(a.cohen_kappa)}** on {a.cohen_items} item(s){weighted}")
    if a.fleiss_kappa is not None or a.fleiss_items:
        lines.append(
            f"- Fleiss' kappa: **{figure(a.fleiss_kappa)}** on {len(a.fleiss_items)} item(s) with "
            f"{a.fleiss_raters} answers each"
        )
    if a.note:
        lines.append(f"\n<small>{html.escape(a.note)}</small>")
    return "\n".join(lines)


def labeler_rows(a: agreement.QueueAgreement) -> list[list]:
    return [
        [s.labeler, s.submitted, s.drafts, s.discarded, s.compared, percent(s.agreement_with_others)]
        for s in a.labelers
    ]


def disagreement_rows(found: list[agreement.Disagreement], task: str) -> list[list]:
    return [
        [
            d.item.id,
            " | ".join(f"{name}: {value_text(value, task)}" for name, value in d.values.items()),
            value_text(d.adjudication.value, task) if d.adjudication else "",
        ]
        for d in found
    ]


def disagreement_html(d: agreement.Disagreement, queue: fb.Queue) -> str:
    """Each labeler's answer under the item; for corrections, the word diff of the first two as well."""
    answers = "".join(
        f"<li><b>{html.escape(name)}</b>: <span style='white-space:pre-wrap'>"
        f"{html.escape(value_text(value, queue.task) if queue.task != 'correction' else str(value))}</span></li>"
        for name, value in d.values.items()
    )
    parts = [f"<ul>{answers}</ul>"]
    if d.diff_html:
        first, second = list(d.values)[:2]
        parts.append(f"<p>Word diff, {html.escape(first)} → {html.escape(second)}:</p>{d.diff_html}")
    if d.adjudication:
        final = html.escape(value_text(d.adjudication.value, queue.task))
        parts.append(f"<p>Adjudicated by <b>{html.escape(d.adjudication.adjudicator)}</b>: {final}</p>")
    return "".join(parts)


@dataclass
class Review:
    """Handlers of the review panels: plain values in, plain values out; exceptions never escape."""

    tab: object  # LabelingTab: the engine's settings and database

    @property
    def settings(self):
        return self.tab.engine.settings

    def agreement(self, queue: str) -> tuple[str, list[list], list[list]]:
        """(summary Markdown, per-labeler rows, disagreement rows) of a queue."""
        try:
            with connect(self.tab.db_path) as db:
                q = fb.get_queue(db, _queue(queue))
                figures = agreement.queue_agreement(db, q)
                found = agreement.disagreements(db, q)
            return agreement_markdown(figures), labeler_rows(figures), disagreement_rows(found, q.task)
        except Exception as exc:
            return _error(exc, "agreement"), [], []

    def detail(self, queue: str, item_id) -> tuple[str, str, list, str | None, str]:
        """(item + answers HTML/Markdown, final-answer text, final-answer choices, picked choice, message) of a
        disagreement, for the adjudicator."""
        try:
            with connect(self.tab.db_path) as db:
                q = fb.get_queue(db, _queue(queue))
                item_id = fb.get_item(db, item_id).id
                found = {d.item.id: d for d in agreement.disagreements(db, q)}
                if item_id not in found:
                    raise fb.FeedbackError(f"Labelers do not disagree on item {item_id} of {q.name!r}.")
            d = found[item_id]
            text = item_markdown(d.item, q) + "\n\n##### Answers\n\n" + disagreement_html(d, q)
            current = d.adjudication.value if d.adjudication else None
            if q.task == "correction":
                start = current if current is not None else next(iter(d.values.values()))
                return text, str(start), [], None, ""
            return text, "", choices(q), None if current is None else str(current), ""
        except Exception as exc:
            return "", "", [], None, _error(exc, "the item")

    def prompt_of(self, item_id) -> str:
        """The item's rendered prompt (shown behind a toggle under the answers); "" when there is none."""
        try:
            with connect(self.tab.db_path) as db:
                return prompt_section(fb.get_item(db, item_id))
        except Exception:  # detail() reports the problem; the toggle just stays empty
            return ""

    def adjudicate(self, queue: str, item_id, text: str, choice: str | None, comment: str, user: str) -> str:
        try:
            adjudicator = _named(user)
            with connect(self.tab.db_path) as db:
                q = fb.get_queue(db, _queue(queue))
                item = fb.get_item(db, item_id)
                if item.queue_id != q.id:
                    raise fb.FeedbackError(f"Item {item.id} is not in queue {q.name!r}.")
                value = text if q.task == "correction" else choice
                if value in (None, ""):
                    raise fb.FeedbackError("Pick the final answer first.")
                done = fb.adjudicate(db, item.id, value, adjudicator=adjudicator, comment=comment or None)
            return f"✅ Final answer for item {done.item_id}: {value_text(done.value, q.task)} (by {done.adjudicator})."
        except Exception as exc:
            return _error(exc, "the adjudication")

    def dashboard(self, queue: str, by: str = "day") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
        """(volume for the chart, per-labeler throughput, one row per queue, message); blank queue = all."""
        try:
            with connect(self.tab.db_path) as db:
                picked = (queue or "").strip() or None
                volume = dashboard.volume_long(dashboard.volume(db, picked, by=by))
                speed = dashboard.throughput(db, picked)
                summary = dashboard.queue_summary(db)
            scope = f"queue {picked!r}" if picked else "all queues"
            return volume, speed, summary, f"Volume and throughput of {scope}; agreement of every queue."
        except Exception as exc:
            empty = pd.DataFrame()
            return dashboard.volume_long(empty), empty, empty, _error(exc, "the dashboard")

    def export(self, queue: str, fmt: str) -> tuple[str | None, str]:
        """(file to download, message): the queue's accepted feedback in ``fmt``."""
        try:
            name = _queue(queue)
            with connect(self.tab.db_path) as db:
                q = fb.get_queue(db, name)
                with export_folder(self.settings, f"feedback-{q.name}-") as folder:
                    path = folder / f"{q.name}-{fmt}.{'csv' if fmt == 'csv' else 'jsonl'}"
                    result = exports.export_file(db, q, fmt, path)
            left_out = ", ".join(f"{n} {why}" for why, n in result.skipped.items())
            note = f" Left out: {left_out}." if left_out else ""
            return str(path), f"✅ Exported {len(result.rows)} row(s) of {q.name!r} as {fmt}.{note}"
        except Exception as exc:
            return None, _error(exc, "the export")

    def import_file(self, queue: str, upload: str | None, user: str) -> str:
        try:
            name = _queue(queue)
            if not upload:
                raise fb.FeedbackError("Choose a JSONL, JSON or CSV file to import first.")
            labeler = _named(user)
            with connect(self.tab.db_path) as db:
                result = imports.import_file(db, upload, name, labeler)
            discard_upload(upload)  # stored in SQLite now; the upload folder is not an archive
            return f"✅ {result.text}"
        except Exception as exc:
            return _error(exc, "the import")


def _queue(queue: str | None) -> str:
    if not (queue or "").strip():
        raise fb.FeedbackError("Pick a queue first.")
    return queue.strip()


def _named(user: str | None) -> str:
    if not (user or "").strip():
        raise fb.FeedbackError("Type your name in the Label tab first: this is recorded under it.")
    return fb.labeler_name(user)


def _error(exc: Exception, what: str) -> str:
    if isinstance(exc, LlmplayError):
        return format_error(str(exc))
    log.exception("Labeling review: %s failed", what)
    return format_error(f"could not load {what} ({type(exc).__name__}).")


def _item_id(row) -> int | None:
    return row[0] if row else None


def build_review_panels(tab, handle, demo, review_tab: gr.Tab) -> Review:
    """The Review sub-tab (``review_tab``, admins' only: it shows every labeler's answers); ``handle``: the
    Label sub-tab's queue picker and name box."""
    review = Review(tab)
    with gr.Row(equal_height=True):
        queue = gr.Dropdown(tab.queue_names(), value=None, label="Queue", elem_id="review-queue", scale=3)
        refresh = gr.Button("Refresh", variant="primary", scale=0, elem_id="review-refresh")
    with gr.Accordion("Agreement & adjudication", open=True):
        summary = gr.Markdown(elem_id="review-agreement")
        labelers = gr.Dataframe(headers=LABELER_HEADERS, interactive=False, elem_id="review-labelers")
        gr.Markdown("**Items where labelers disagree** (click a row to adjudicate it)")
        disputes = gr.Dataframe(headers=DISAGREEMENT_HEADERS, interactive=False, elem_id="review-disagreements")
        item_id = gr.Number(None, precision=0, label="Item", elem_id="review-item")
        detail = gr.Markdown(elem_id="review-detail")
        final_text = gr.Textbox(label="Final answer (correction)", lines=4, visible=False, elem_id="review-final")
        final_choice = gr.Dropdown([], label="Final answer", visible=False, elem_id="review-final-choice")
        comment = gr.Textbox(label="Adjudication comment (optional)")
        decide = gr.Button("Record final answer", variant="primary", elem_id="review-adjudicate")
        decided = gr.Markdown(elem_id="review-adjudicate-message")
        with gr.Accordion("Rendered prompt (what the model was sent)", open=False, elem_id="review-prompt-box"):
            prompt = gr.Markdown(elem_id="review-prompt")
    with gr.Accordion("Dashboard", open=False):
        by = gr.Radio(list(dashboard.PERIODS), value="day", label="Volume per")
        chart = gr.LinePlot(
            dashboard.volume_long(pd.DataFrame()),
            x="period",
            y="count",
            color="series",
            title="Feedback volume",
            height=260,
        )
        dash_note = gr.Markdown()
        speed = gr.Dataframe(interactive=False, label="Per-labeler throughput", elem_id="review-throughput")
        queues = gr.Dataframe(interactive=False, label="Queues: agreement and progress", elem_id="review-queues")
    with gr.Accordion("Export / import", open=False):
        with gr.Row():
            fmt = gr.Radio(FORMAT_CHOICES, value="sft", label="Export format (accepted feedback)")
            export = gr.Button("Export", elem_id="review-export")
        download = gr.File(label="Download", interactive=False, elem_id="review-download")
        exported = gr.Markdown(elem_id="review-export-message")
        upload = gr.File(label="Import a file (JSONL, JSON or CSV)", file_types=[".jsonl", ".json", ".csv"])
        do_import = gr.Button("Import into the queue", elem_id="review-import")
        imported = gr.Markdown(elem_id="review-import-message")

    panels = [summary, labelers, disputes, chart, speed, queues, dash_note]

    @declare("admin", "review answers", read=True)
    def show_all(picked, period):
        return (*review.agreement(picked), *review.dashboard(picked, period))

    @declare("view")
    def pick_queue(current):
        names = tab.queue_names()
        return gr.Dropdown(choices=names, value=current if current in names else None)

    @declare("admin", "review answers", read=True)
    def show_detail(picked, chosen):
        text, start, options, value, message = review.detail(picked, chosen)
        return (
            text or message,
            gr.Textbox(value=start, visible=bool(text) and not options),
            gr.Dropdown(choices=options, value=value, visible=bool(options)),
            message,
            review.prompt_of(chosen) if text else "",
        )

    @declare("admin", "review answers", read=True)
    def pick_row(evt: gr.SelectData, picked):
        chosen = _item_id(evt.row_value)
        return (chosen, *show_detail(picked, chosen))

    detail_outputs = [detail, final_text, final_choice, decided, prompt]
    refresh.click(pick_queue, queue, queue, **PRIVATE).then(show_all, [queue, by], panels, **PRIVATE)
    queue.input(show_all, [queue, by], panels, **PRIVATE)
    by.input(show_all, [queue, by], panels, **PRIVATE)
    # The Review queue follows the one being labeled, so switching sub-tabs shows its figures.
    handle.queue.input(
        declared("view", lambda q: gr.Dropdown(choices=tab.queue_names(), value=q)), handle.queue, queue, **PRIVATE
    )
    # Its figures are read when an admin opens the sub-tab, not on a labeler's every queue switch.
    review_tab.select(show_all, [queue, by], panels, **PRIVATE)
    disputes.select(pick_row, queue, [item_id, *detail_outputs], **PRIVATE)
    item_id.submit(show_detail, [queue, item_id], detail_outputs, **PRIVATE)
    guard = Guard(tab.engine.settings)  # adjudication, exports and imports are admin's
    needs("admin", decide, export, do_import)
    decide.click(
        guard("admin", "adjudicate items", review.adjudicate, user_param="user"),
        [queue, item_id, final_text, final_choice, comment, handle.name],
        decided,
        **PRIVATE,
    ).then(show_all, [queue, by], panels, **PRIVATE)
    export.click(guard("admin", "export queues", review.export), [queue, fmt], [download, exported], **PRIVATE)
    do_import.click(
        guard("admin", "import into queues", review.import_file, user_param="user"),
        [queue, upload, handle.name],
        imported,
        **PRIVATE,
    ).then(show_all, [queue, by], panels, **PRIVATE)
    demo.load(pick_queue, queue, queue, **PRIVATE)
    # opening the sub-tab, or a queue made meanwhile, offers the current queues (the figures follow on select)
    reload_on(View(pick_queue, [queue], [queue]), review_tab.select, *changed(demo, QUEUES))
    return review
