"""The Evaluate tab's "Send rows to a labeling queue" panel: rows of the run shown in Results (its wrong rows,
rows that failed, all rows or chosen ones) become items of a feedback queue for labelers to review.

API endpoint: ``/eval_queue_rows``: ``(run_id, column, which, rows, queue, task, labels, show_reference, user)
-> str``. ``column``: ``"all"`` or a column number (1-based, as in the Results pickers); ``which``: ``wrong`` |
``failed`` | ``all`` | ``rows`` (then ``rows`` lists row numbers, 0-based as in the grid: ``"3, 5, 8"``);
``queue``: an existing queue's name, or a new one, created as a ``task`` queue (correction | label | rating;
``labels`` comma separated, blank = the template's labels; ``show_reference``: labelers see the reference).
Returns ``"✅ Queued 12 rows in 'fpb-review' (3 were already there)."`` or ``"⚠️ Error: ..."``.
"""

from __future__ import annotations

import logging

import gradio as gr

from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.feedback.eval_rows import EVAL_TASKS, create_eval_queue, queue_eval_rows
from llmplay.feedback.store import FeedbackError, get_queue, list_queues
from llmplay.settings import Settings
from llmplay.store import connect, immediate
from llmplay.ui.access import Guard, declare, needs
from llmplay.ui.common import format_error

log = logging.getLogger(__name__)

WHICH_CHOICES = [
    ("Wrong rows (score below 1; above 0 where lower is better, e.g. attacks that worked)", "wrong"),
    ("Rows that failed (no answer)", "failed"),
    ("All rows", "all"),
    ("These rows:", "rows"),
]
ALL_COLUMNS = "all"


def parse_rows(text: str) -> list[int]:
    numbers = [part.strip() for part in (text or "").replace(";", ",").replace(" ", ",").split(",") if part.strip()]
    if not numbers:
        raise InvalidRequestError("List the rows to queue (row numbers from the grid, e.g. 3, 5, 8).")
    if not all(n.isdigit() for n in numbers):
        raise InvalidRequestError(f"Rows are numbers from the grid's row column, e.g. 3, 5, 8; got {text!r}.")
    return [int(n) for n in numbers]


class EvalFeedbackPanel:
    def __init__(self, settings: Settings):
        self.settings = settings

    def queue_rows(
        self,
        run_id: int | str | None,
        column: int | str | None = ALL_COLUMNS,
        which: str = "wrong",
        rows: str = "",
        queue: str = "",
        task: str = "correction",
        labels: str = "",
        show_reference: bool = False,
        user: str = "",
    ) -> str:
        """Queue the chosen rows; see the module docstring."""
        try:
            if run_id in (None, ""):
                raise InvalidRequestError("Choose a run in Results first.")
            if not (queue or "").strip():
                raise InvalidRequestError("Name the queue to send the rows to (an existing one, or a new name).")
            index = None if column in (None, "", ALL_COLUMNS) else int(column) - 1
            if index is not None and index < 0:
                raise InvalidRequestError(f"Columns are numbered from 1; got {column}.")
            chosen = parse_rows(rows) if which == "rows" else which
            # One transaction: a request refused after the new queue was made leaves no queue behind.
            with connect(self.settings.db_path) as db, immediate(db):
                try:
                    target = get_queue(db, queue.strip())
                except FeedbackError:  # a new name: make the queue
                    names = [x.strip() for x in (labels or "").split(",") if x.strip()]
                    target = create_eval_queue(
                        db, run_id, queue, task, column=index, labels=names, show_reference=show_reference, user=user
                    )
                queued = queue_eval_rows(db, run_id, target, column=index, which=chosen, user=user)
            return "✅ " + queued.message
        except (LlmplayError, ValueError, TypeError) as exc:
            return format_error(str(exc))
        except Exception as exc:  # never let a handler fail: the app must keep serving
            log.exception("Queueing evaluation rows failed")
            return format_error(f"could not queue the rows ({type(exc).__name__}: {exc}).")

    @declare("view")
    def pickers(self, run_id) -> tuple:
        """The run's columns and the queues that exist, for the panel's pickers."""
        from llmplay.evaluation.results import get_run

        try:
            titles = get_run(self.settings, int(run_id)).titles if run_id not in (None, "") else []
        except (LlmplayError, ValueError, TypeError):
            titles = []
        columns = [("All columns", ALL_COLUMNS)] + [(f"{i}. {t}", str(i)) for i, t in enumerate(titles, 1)]
        return gr.Dropdown(choices=columns, value=ALL_COLUMNS), self.queues()

    @declare("view")
    def queues(self, current: str | None = None) -> gr.Dropdown:
        """The queues rows can go to (correction, label and rating tasks), keeping the one typed in."""
        with connect(self.settings.db_path) as db:
            names = [q.name for q in list_queues(db) if q.task in EVAL_TASKS]
        return gr.Dropdown(choices=names, value=current) if current else gr.Dropdown(choices=names)


QUEUE_PICKER = "evaluate-feedback-queue"


def build_rows_to_queue(settings: Settings, run: gr.Dropdown, demo: gr.Blocks) -> EvalFeedbackPanel:
    """Lay out the panel under the Results of the run picked in ``run`` and wire it."""
    panel = EvalFeedbackPanel(settings)
    with gr.Accordion("Send rows to a labeling queue", open=False, elem_id="eval-queue-rows"):
        with gr.Row():
            column = gr.Dropdown(
                [("All columns", ALL_COLUMNS)], value=ALL_COLUMNS, label="Column", allow_custom_value=True, scale=1
            )  # custom values: the API may name a column of a run the page has not loaded
            which = gr.Radio(WHICH_CHOICES, value="wrong", label="Which rows", scale=2)
            rows = gr.Textbox("", label="Rows (when 'These rows')", placeholder="3, 5, 8", scale=1)
        with gr.Row():
            queue = gr.Dropdown(
                [], label="Queue (pick one, or type a new name)", allow_custom_value=True, scale=2, elem_id=QUEUE_PICKER
            )  # the app offers a queue made elsewhere when the tab opens (llmplay/ui/refresh.py)
            task = gr.Radio(list(EVAL_TASKS), value="correction", label="Task of a new queue", scale=2)
        with gr.Row():
            labels = gr.Textbox("", label="Labels of a new label queue (blank: the template's)", scale=2)
            show_reference = gr.Checkbox(False, label="A new queue shows the reference to labelers", scale=1)
            user = gr.Textbox("", label="Your name", placeholder="anonymous", scale=1)
        send = gr.Button("Queue rows", size="sm", elem_id="eval-queue-rows-send")
        status = gr.Markdown(elem_id="eval-queue-rows-status")
    inputs = [run, column, which, rows, queue, task, labels, show_reference, user]
    needs("admin", send)
    queue_rows = Guard(settings)("admin", "send evaluation rows to queues", panel.queue_rows, user_param="user")
    sent = send.click(queue_rows, inputs, status, api_name="eval_queue_rows")
    sent.then(panel.queues, queue, queue, api_visibility="private")  # a queue made here joins the list
    run.change(panel.pickers, run, [column, queue], api_visibility="private")
    demo.load(panel.pickers, run, [column, queue], api_visibility="private")
    return panel
