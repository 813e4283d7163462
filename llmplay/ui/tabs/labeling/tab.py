"""The Labeling tab: a labeler names themselves, picks a queue and answers one item at a time.

The item (input, prompt, output(s), the reference when the queue shows it) sits beside the queue's Markdown
guidelines. Corrections get an editor pre-filled with the output; ratings, labels and preferences get one
button per answer (click = submit; 1-9 on the keyboard) and an Answer picker for drafts and long label sets.
Skip gives the item's slot back; Save draft keeps it; Submit stores the answer with a client token made when
the item was shown (a double click stores once); Discard says "I will not answer this one". Previous / Next
walk the labeler's own history, where a submitted answer can be changed (an audited edit). Queue settings
are in labeling_queues.py, the review panels (agreement, adjudication, dashboard, export) in
labeling_review.py.

API endpoints (gradio_client, scripts, bench/load.py); both are cheap (no model) and run outside the
generation events' concurrency limit (concurrency_limit=None, their own concurrency_id):

``/labeling_next``: ``(queue, labeler) -> dict``: the next item, claimed for ``labeler``: ``item_id``,
``prompt`` (text; chat turns as "role: content"), ``input``, ``output``, ``output_b``, ``reference`` (only
when the queue shows it), ``task``, ``labels``, ``rating_min``, ``rating_max``, ``progress`` ("12 of 50
done") and a fresh ``client_token``. ``{}`` when nothing is left for them; ``{"error": "⚠️ Error: ..."}``
for a bad request.

``/labeling_submit``: ``(queue, labeler, item_id, value, client_token) -> str``: submit ``value`` (the
correction text, the rating, the label, or ``a`` / ``b`` / ``tie``); ``"✅ ..."`` or ``"⚠️ Error: ..."``.
The same ``client_token`` twice stores one response.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import gradio as gr

from llmplay.engine import Engine
from llmplay.errors import LlmplayError
from llmplay.feedback import api as labeling_api
from llmplay.feedback import store as fb
from llmplay.services import Services
from llmplay.store import connect
from llmplay.templates import TemplateLibrary
from llmplay.ui.access import Guard, checks_inside, declare
from llmplay.ui.common import format_error
from llmplay.ui.refresh import QUEUES, View, changed, reload_on
from llmplay.ui.tabs.labeling.keys import KEYS_JS
from llmplay.ui.tabs.labeling.view import (
    HISTORY_HEADERS,
    choices,
    history_rows,
    item_markdown,
    progress_text,
    prompt_section,
    shortcuts_markdown,
)

log = logging.getLogger(__name__)
MAX_BUTTONS = 12  # one-click answers shown; the Answer picker holds every choice
FAST = {"api_visibility": "private", "concurrency_limit": None, "concurrency_id": "labeling"}
NOTHING_LEFT = "🎉 Nothing left for you in this queue: every item has its answers or yours. Pick another queue."


@dataclass
class Shown:
    """What the tab shows after a handler; ``None`` fields stay as they are (an error changes only the message)."""

    state: dict
    message: str = ""
    progress: str | None = None
    item: str | None = None
    guidelines: str | None = None
    task: str | None = None
    correction: str | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)
    answer: str | None = None
    comment: str = ""
    tags: str = ""
    history: list[list] | None = None
    in_history: bool = False
    prompt: str = ""  # the rendered prompt, behind a toggle


class LabelingTab:
    """The tab's handlers: plain values in, a Shown out; exceptions never escape."""

    def __init__(self, engine: Engine, library: TemplateLibrary | None = None):
        self.engine = engine
        self.library = library

    @property
    def db_path(self) -> Path:
        return self.engine.settings.db_path

    def queue_names(self) -> list[str]:
        try:
            with connect(self.db_path) as db:
                return [q.name for q in fb.list_queues(db)]
        except Exception:  # the picker stays empty; opening a queue reports the real problem
            log.exception("Listing feedback queues failed")
            return []

    # ---- showing items --------------------------------------------------------------------------------
    def open(self, name: str, queue: str, state: dict | None = None, message: str = "") -> Shown:
        """The labeler's next item in ``queue`` (their draft first), claimed for them."""
        state = dict(state or {})
        return self._guard(state, lambda db, labeler, q: self._fresh(db, q, labeler, state, message), name, queue)

    def _fresh(self, db, queue: fb.Queue, labeler: str, state: dict, message: str = "") -> Shown:
        if state.get("queue") != queue.name or state.get("labeler") != labeler:
            state["skipped"] = []  # skips belong to one labeler in one queue
        item = fb.next_item(db, queue, labeler, skip=state.get("skipped", []))
        if item is None:
            state.update(queue=queue.name, labeler=labeler, item_id=None, token=None, at=None, task=queue.task)
            return Shown(
                state,
                message,
                progress_text(fb.progress(db, queue, labeler), queue),
                NOTHING_LEFT,
                queue.guidelines,
                queue.task,
                history=history_rows(fb.history(db, queue, labeler)),
            )
        return self._show(db, queue, labeler, state, item, fb.get_response(db, item.id, labeler), message)

    def _show(self, db, queue, labeler, state, item, response, message="", *, at=None) -> Shown:
        state.update(
            queue=queue.name,
            labeler=labeler,
            item_id=item.id,
            token=fb.new_client_token(),  # made when the item is shown: a double click of Submit stores once
            at=at,
            task=queue.task,
            choices=[value for _, value in choices(queue)],
        )
        value = response.value if response is not None else None
        correction = None
        if queue.task == "correction":
            correction = value if isinstance(value, str) and value else (item.output or "")
        editing = response is not None and at is not None
        return Shown(
            state,
            message,
            progress_text(fb.progress(db, queue, labeler), queue),
            item_markdown(item, queue, response=response if editing else None),
            queue.guidelines or "*This queue has no guidelines.*",
            queue.task,
            correction,
            choices(queue),
            None if value is None or queue.task == "correction" else str(value),
            (response.comment or "") if response else "",
            ", ".join(response.tags) if response else "",
            history_rows(fb.history(db, queue, labeler)),
            in_history=at is not None,
            prompt=prompt_section(item),
        )

    # ---- answering ------------------------------------------------------------------------------------
    def submit(self, name, queue, state, correction="", answer=None, comment="", tags="") -> Shown:
        """Submit the shown item's answer (the editor's text for corrections, else the Answer picker's)."""
        return self._answer("submitted", name, queue, state, correction, answer, comment, tags)

    def choose(self, index: int, name, queue, state, comment="", tags="") -> Shown:
        """A one-click answer: the ``index``-th choice of the queue, submitted."""
        values = (state or {}).get("choices") or []
        if not 0 <= index < len(values):
            return Shown(dict(state or {}), format_error("That answer is not offered for this item."))
        return self._answer("submitted", name, queue, state, None, values[index], comment, tags)

    def draft(self, name, queue, state, correction="", answer=None, comment="", tags="") -> Shown:
        return self._answer("draft", name, queue, state, correction, answer, comment, tags)

    def discard(self, name, queue, state, comment="", tags="") -> Shown:
        """This labeler will not answer the item (it does not count as an answer; others still get it)."""
        return self._answer("discarded", name, queue, state, None, None, comment, tags)

    def _answer(self, status, name, queue, state, correction, answer, comment, tags) -> Shown:
        state = dict(state or {})

        def run(db, labeler, q):
            if state.get("queue") != q.name or state.get("labeler") != labeler or not state.get("item_id"):
                return self._fresh(db, q, labeler, state, "ℹ️ Here is your item in this queue; answer it now.")
            value = correction if q.task == "correction" else answer
            if status == "submitted" and q.task != "correction" and value in (None, ""):
                raise fb.FeedbackError("Pick an answer first: click one of the buttons or press 1-9.")
            item_id = state["item_id"]
            # Drafts carry no token: the token is spent by the submit it was made for.
            token = state.get("token") if status != "draft" else None
            response = fb.respond(
                db, item_id, labeler, value, status=status, comment=comment or None, tags=tags, client_token=token
            )
            if status == "draft":
                item = fb.get_item(db, item_id)
                return self._show(db, q, labeler, state, item, response, "💾 Draft saved.", at=state.get("at"))
            edited = state.get("at") is not None
            done = {"submitted": "Edited" if edited else "Submitted", "discarded": "Discarded"}[status]
            return self._fresh(db, q, labeler, state, f"✅ {done} item {item_id}.")

        return self._guard(state, run, name, queue)

    def skip(self, name, queue, state) -> Shown:
        """Give the item's slot back and show the next one; skipped items come back only when nothing else is left."""
        state = dict(state or {})

        def run(db, labeler, q):
            item_id = state.get("item_id")
            if item_id and state.get("at") is None and state.get("labeler") == labeler:
                fb.release(db, item_id, labeler)
                state["skipped"] = [*state.get("skipped", []), item_id]
            return self._fresh(db, q, labeler, state, f"⏭️ Skipped item {item_id}." if item_id else "")

        return self._guard(state, run, name, queue)

    # ---- history --------------------------------------------------------------------------------------
    def previous(self, name, queue, state) -> Shown:
        """One step back in the labeler's history (newest first)."""
        return self._step(name, queue, state, +1)

    def forward(self, name, queue, state) -> Shown:
        """One step forward in the history; past the newest, back to new items; on a new item: skip it."""
        if (state or {}).get("at") is None:
            return self.skip(name, queue, state)
        return self._step(name, queue, state, -1)

    def _step(self, name, queue, state, delta: int) -> Shown:
        state = dict(state or {})

        def run(db, labeler, q):
            ids = [item.id for item, _ in fb.history(db, q, labeler)]
            at = state.get("at")
            pos = (ids.index(at) if at in ids else -1) + delta if at is not None else (0 if delta > 0 else -1)
            if pos < 0:
                return self._fresh(db, q, labeler, state)
            if pos >= len(ids):
                return Shown(state, "ℹ️ That is the first item of your history." if ids else "ℹ️ No history yet.")
            return self._history_item(db, q, labeler, state, ids[pos])

        return self._guard(state, run, name, queue)

    def open_history(self, name, queue, state, item_id) -> Shown:
        """Open one of the labeler's answered items to change the answer."""
        state = dict(state or {})
        run = lambda db, labeler, q: self._history_item(db, q, labeler, state, item_id)  # noqa: E731
        return self._guard(state, run, name, queue)

    def _history_item(self, db, queue, labeler, state, item_id) -> Shown:
        item = fb.get_item(db, item_id)
        response = fb.get_response(db, item.id, labeler)
        if item.queue_id != queue.id or response is None:
            raise fb.FeedbackError(f"Item {item.id} is not in your history of queue {queue.name!r}.")
        if state.get("item_id") and state.get("at") is None and state.get("item_id") != item.id:
            fb.release(db, state["item_id"], labeler)  # leaving a new item for the history frees its slot
        note = f"✏️ Editing your {response.status} answer to item {item.id}: change it and submit (audited)."
        return self._show(db, queue, labeler, state, item, response, note, at=item.id)

    # ---- plumbing -------------------------------------------------------------------------------------
    def _guard(self, state: dict, run, name: str, queue: str) -> Shown:
        try:
            labeler = _labeler(name)
            if not (queue or "").strip():
                raise fb.FeedbackError("Pick a queue first (create one under 'Manage queues').")
            with connect(self.db_path) as db:
                return run(db, labeler, fb.get_queue(db, queue))
        except LlmplayError as exc:
            return Shown(state, format_error(str(exc)))
        except Exception as exc:  # never let a handler fail: the app must keep serving
            log.exception("Labeling handler failed")
            return Shown(state, format_error(f"something unexpected went wrong ({type(exc).__name__})."))

    # ---- API ------------------------------------------------------------------------------------------
    def api_next(self, queue: str, labeler: str) -> dict:
        """The next item for ``labeler`` in ``queue`` (claimed), or {} when nothing is left."""
        try:
            return labeling_api.next_payload(self.db_path, queue, labeler)
        except LlmplayError as exc:
            return {"error": format_error(str(exc))}
        except Exception as exc:
            log.exception("labeling_next failed")
            return {"error": format_error(f"could not hand out an item ({type(exc).__name__}).")}

    def api_submit(self, queue: str, labeler: str, item_id: int, value: str, client_token: str) -> str:
        """Submit ``value`` for ``item_id``; the same ``client_token`` twice stores one response."""
        try:
            response = labeling_api.submit(self.db_path, queue, labeler, item_id, value, client_token)
            return f"✅ Stored response {response.id} to item {response.item_id}."
        except LlmplayError as exc:
            return format_error(str(exc))
        except Exception as exc:
            log.exception("labeling_submit failed")
            return format_error(f"could not store the response ({type(exc).__name__}).")


_labeler = labeling_api.require_name


# ---- layout -----------------------------------------------------------------------------------------------
@dataclass
class LabelingHandle:
    tab: LabelingTab
    queue: gr.Dropdown  # the picked queue (the review panels and queue settings follow it)
    name: gr.Textbox
    queues: View | None = None  # the queue picker read afresh (the app reloads it when the tab opens)


def build_labeling_tab(services: Services, demo: gr.Blocks) -> LabelingHandle:
    """Lay out the Labeling tab inside the current Blocks context and wire its events."""
    from llmplay.ui.tabs.labeling.queues import build_queue_settings
    from llmplay.ui.tabs.labeling.review import build_review_panels

    engine = services.engine
    tab = LabelingTab(engine, services.templates)
    gr.Markdown(
        "Label model outputs: correct them, rate them, pick a label or the better of two replies. "
        "Each item needs its queue's number of independent answers; you never get an item twice."
    )
    with gr.Tabs(elem_id="labeling-tabs"):
        with gr.Tab("Label", id="labeling-label") as label_tab:
            with gr.Column(elem_id="labeling-work"):
                handle, refresh_queues = _work_area(tab)
            build_queue_settings(tab, handle, refresh_queues, demo)
        with gr.Tab("Review", id="labeling-review") as review_tab:
            build_review_panels(tab, handle, demo, review_tab)
    guard = Guard(engine.settings)  # labeling is labelers' and admins'; the labeler is the login name
    api_next = guard("label", "label items", tab.api_next, user_param="labeler", refuse=lambda m: {"error": m})
    api_submit = guard("label", "label items", tab.api_submit, user_param="labeler", refuse=format_error)
    gr.api(api_next, api_name="labeling_next", concurrency_limit=None, concurrency_id="labeling-api")
    gr.api(api_submit, api_name="labeling_submit", concurrency_limit=None, concurrency_id="labeling-api")
    demo.load(refresh_queues, handle.queue, handle.queue, **FAST)
    # a queue made in another tab or session is offered when the sub-tab opens, one made here at once
    handle.queues = View(refresh_queues, [handle.queue], [handle.queue])
    reload_on(handle.queues, label_tab.select, *changed(demo, QUEUES))
    demo.load(None, js=KEYS_JS)  # the keyboard shortcuts, installed once per page
    return handle


def _work_area(tab: LabelingTab):
    with gr.Row(equal_height=True):
        name = gr.Textbox("", label="Your name (recorded with every answer)", elem_id="labeling-name", scale=2)
        queue = gr.Dropdown(tab.queue_names(), value=None, label="Queue", elem_id="labeling-queue", scale=3)
        reload = gr.Button("↻", size="sm", scale=0, min_width=40)
        open_ = gr.Button("Open", variant="primary", scale=0, elem_id="labeling-open")
    progress = gr.Markdown(elem_id="labeling-progress")
    state = gr.State({})
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            item = gr.Markdown("Name yourself, pick a queue and press Open.", elem_id="labeling-item")
            correction = gr.Textbox(
                label="Your correction (pre-filled with the output; Ctrl+Enter submits)",
                lines=6,
                max_lines=30,
                visible=False,
                elem_id="labeling-correction",
            )
            with gr.Row():
                buttons = [
                    gr.Button(visible=False, size="sm", elem_id=f"labeling-choice-{i}") for i in range(MAX_BUTTONS)
                ]
            answer = gr.Dropdown([], value=None, label="Answer", visible=False, elem_id="labeling-answer")
            with gr.Row():
                comment = gr.Textbox(label="Comment (optional)", elem_id="labeling-comment", scale=3)
                tags = gr.Textbox(label="Tags (comma-separated)", elem_id="labeling-tags", scale=2)
            with gr.Row():
                prev = gr.Button("← Previous", elem_id="labeling-prev")
                nxt = gr.Button("Skip →", elem_id="labeling-next")
                discard = gr.Button("Discard", elem_id="labeling-discard")
                draft = gr.Button("Save draft", elem_id="labeling-draft")
                submit = gr.Button("Submit", variant="primary", elem_id="labeling-submit")
            message = gr.Markdown(elem_id="labeling-message")
            # what the model was sent (system message, few-shot turns): long, so closed under the controls
            with gr.Accordion("Rendered prompt (what the model was sent)", open=False, elem_id="labeling-prompt-box"):
                prompt = gr.Markdown(elem_id="labeling-prompt")
            gr.Markdown(shortcuts_markdown())
        with gr.Column(scale=2):
            gr.Markdown("##### Guidelines")
            guidelines = gr.Markdown(elem_id="labeling-guidelines")
    gr.Markdown("##### Your history (click a row to open and change that answer)")
    history = gr.Dataframe(headers=HISTORY_HEADERS, interactive=False, elem_id="labeling-history")

    outputs = [state, message, progress, item, guidelines, correction, *buttons, answer, comment, tags, history, nxt]
    outputs.append(prompt)

    def show(shown: Shown) -> list:
        if shown.item is None:  # an error or a note: only the message (and the state) change
            return [shown.state, shown.message] + [gr.skip()] * (len(outputs) - 2)
        buttons_ = [
            gr.Button(value=f"{i + 1} · {shown.choices[i][0]}" if i < 9 else shown.choices[i][0], visible=True)
            if i < len(shown.choices)
            else gr.Button(visible=False)
            for i in range(MAX_BUTTONS)
        ]
        return [
            shown.state,
            shown.message,
            shown.progress,
            shown.item,
            shown.guidelines,
            gr.Textbox(value=shown.correction or "", visible=shown.task == "correction"),
            *buttons_,
            gr.Dropdown(choices=shown.choices, value=shown.answer, visible=bool(shown.choices)),
            shown.comment,
            shown.tags,
            shown.history if shown.history is not None else gr.skip(),
            gr.Button(value="Next →" if shown.in_history else "Skip →"),
            shown.prompt,
        ]

    guard = Guard(tab.engine.settings)

    def wire(trigger, method, inputs) -> None:
        checked = guard("label", "label items", method, user_param="name")

        def handler(request: gr.Request, *args):  # Gradio injects the request (first positional parameter)
            return show(checked(request, *args))

        checks_inside("label", handler)

        trigger(handler, inputs, outputs, show_progress="hidden", **FAST)

    base = [name, queue, state]
    answer_fields = [*base, correction, answer, comment, tags]
    wire(open_.click, tab.open, base)
    wire(queue.input, tab.open, base)
    wire(name.submit, tab.open, base)
    wire(submit.click, tab.submit, answer_fields)
    wire(draft.click, tab.draft, answer_fields)
    wire(discard.click, tab.discard, [*base, comment, tags])
    wire(prev.click, tab.previous, base)
    wire(nxt.click, tab.forward, base)
    for i, button in enumerate(buttons):
        wire(button.click, partial(tab.choose, i), [*base, comment, tags])

    open_history = guard("label", "label items", tab.open_history, user_param="name")

    @functools.partial(checks_inside, "label")
    def pick_row(request: gr.Request, evt: gr.SelectData, name_, queue_, state_):
        row = evt.row_value or []
        return show(open_history(request, name_, queue_, state_, row[0] if row else None))

    history.select(pick_row, base, outputs, show_progress="hidden", **FAST)

    @declare("view")
    def refresh_queues(current: str | None = None) -> gr.Dropdown:
        names = tab.queue_names()
        return gr.Dropdown(choices=names, value=current if current in names else None)

    reload.click(refresh_queues, queue, queue, **FAST)
    return LabelingHandle(tab, queue, name), refresh_queues
