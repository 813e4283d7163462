"""The Labeling tab's "Manage queues" accordion: create a queue (its labels default to a template's output
labels) and change a queue's guidelines, responses per item (k) or archive it. Every change is recorded under
the labeler name typed above (the store audits it)."""

from __future__ import annotations

import logging

import gradio as gr

from llmplay.errors import LlmplayError
from llmplay.feedback import store as fb
from llmplay.store import connect
from llmplay.ui.access import Guard, declare, needs
from llmplay.ui.common import format_error
from llmplay.ui.refresh import QUEUES, bump
from llmplay.ui.tabs.labeling.view import parse_labels

log = logging.getLogger(__name__)
PRIVATE = {"api_visibility": "private"}
NO_TEMPLATE = "(none)"


class QueueSettings:
    """Handlers of the queue form: plain values in, (message, ...) out; exceptions never escape."""

    def __init__(self, tab):
        self.tab = tab  # LabelingTab: the engine's database and the template library

    def template_labels(self) -> dict[str, list[str]]:
        """Templates whose output has a label set, with their labels (the default label set of a new queue)."""
        out = {}
        library = self.tab.library
        for name in library.names() if library is not None else []:
            try:
                labels = list(library.load(name).output.labels)
            except LlmplayError:  # an invalid template file offers no labels; the Templates tab reports it
                continue
            if labels:
                out[name] = labels
        return out

    def labels_of(self, template: str) -> str:
        return ", ".join(self.template_labels().get(template or "", []))

    def create(
        self,
        name: str,
        task: str,
        template: str,
        labels: str,
        k,
        rating_min,
        rating_max,
        guidelines: str,
        show_reference: bool,
        accept_rule: str,
        user: str,
    ) -> str:
        try:
            with connect(self.tab.db_path) as db:
                queue = fb.create_queue(
                    db,
                    name,
                    task,
                    user=_user(user),
                    guidelines=guidelines or "",
                    labels=parse_labels(labels) if task == "label" else [],
                    k=_whole(k, "Responses per item (k)"),
                    rating_min=_whole(rating_min, "The lowest rating"),
                    rating_max=_whole(rating_max, "The highest rating"),
                    show_reference=bool(show_reference),
                    accept_rule=accept_rule,
                    template=template if template and template != NO_TEMPLATE else None,
                )
            return f"✅ Created the {queue.task} queue **{queue.name}** (k = {queue.k}). Pick it above to label."
        except LlmplayError as exc:
            return format_error(str(exc))
        except Exception as exc:
            log.exception("Creating a queue failed")
            return format_error(f"could not create the queue ({type(exc).__name__}).")

    @declare("admin", "see queue settings", read=True)
    def load(self, queue: str) -> tuple:
        """(guidelines, k, archived, message) of a queue for the edit form."""
        if not queue:
            return "", 1, False, ""
        try:
            with connect(self.tab.db_path) as db:
                q = fb.get_queue(db, queue)
            labels = f" · labels: {', '.join(q.labels)}" if q.labels else ""
            about = f"{q.task} queue, accept rule `{q.accept_rule}`{labels}"
            return q.guidelines, q.k, q.archived_at is not None, about
        except LlmplayError as exc:
            return gr.skip(), gr.skip(), gr.skip(), format_error(str(exc))

    def save(self, queue: str, guidelines: str, k, archived: bool, user: str) -> str:
        try:
            if not queue:
                raise fb.FeedbackError("Pick the queue to change first.")
            with connect(self.tab.db_path) as db:
                q = fb.update_queue(
                    db,
                    queue,
                    user=_user(user),
                    guidelines=guidelines or "",
                    k=_whole(k, "Responses per item (k)"),
                    archived=bool(archived),
                )
            state = "archived (hidden from the queue picker)" if q.archived_at else "open"
            return f"✅ Saved queue **{q.name}**: k = {q.k}, {state}."
        except LlmplayError as exc:
            return format_error(str(exc))
        except Exception as exc:
            log.exception("Changing a queue failed")
            return format_error(f"could not change the queue ({type(exc).__name__}).")

    def all_names(self) -> list[str]:
        try:
            with connect(self.tab.db_path) as db:
                return [q.name for q in fb.list_queues(db, include_archived=True)]
        except Exception:
            log.exception("Listing feedback queues failed")
            return []


def _user(name: str | None) -> str:
    if not (name or "").strip():
        raise fb.FeedbackError("Type your name above first: queue changes are recorded under it.")
    return fb.labeler_name(name)


def _whole(value, what: str) -> int:
    """A whole number from a number box (which sends floats) or text."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise fb.FeedbackError(f"{what} must be a whole number, not {value!r}.") from None
    if not number.is_integer():
        raise fb.FeedbackError(f"{what} must be a whole number, not {value!r}.")
    return int(number)


def build_queue_settings(tab, handle, refresh_queues, demo=None) -> QueueSettings:
    """The accordion under the labeling area; ``handle``: the work area's name box and queue picker; ``demo``: the
    page, whose queue pickers elsewhere hear of a created or changed queue (llmplay/ui/refresh.py)."""
    settings = QueueSettings(tab)
    templates = settings.template_labels()
    with gr.Accordion("Manage queues", open=False, elem_id="labeling-manage") as manage:
        gr.Markdown("**New queue**")
        with gr.Row():
            name = gr.Textbox(label="Name", placeholder="e.g. sentiment-review", elem_id="labeling-new-name")
            task = gr.Dropdown(list(fb.TASKS), value="correction", label="Task", elem_id="labeling-new-task")
            template = gr.Dropdown(
                [NO_TEMPLATE, *templates], value=NO_TEMPLATE, label="Labels from template (label tasks)"
            )
            labels = gr.Textbox(label="Labels (comma-separated)", elem_id="labeling-new-labels")
        with gr.Row():
            k = gr.Number(1, precision=0, minimum=1, maximum=fb.MAX_K, label="Responses per item (k)")
            rating_min = gr.Number(1, precision=0, label="Lowest rating")
            rating_max = gr.Number(5, precision=0, label="Highest rating")
            accept = gr.Dropdown(list(fb.ACCEPT_RULES), value="auto", label="Accept rule")
            show_reference = gr.Checkbox(False, label="Show the reference to labelers")
        guidelines = gr.Textbox(label="Guidelines (Markdown)", lines=4, max_lines=20)
        create = gr.Button("Create queue", variant="primary", elem_id="labeling-new-create")
        created = gr.Markdown(elem_id="labeling-new-message")

        gr.Markdown("**Change a queue**")
        with gr.Row():
            which = gr.Dropdown(settings.all_names(), value=None, label="Queue (archived ones too)")
            edit_k = gr.Number(1, precision=0, minimum=1, maximum=fb.MAX_K, label="Responses per item (k)")
            archived = gr.Checkbox(False, label="Archived")
        about = gr.Markdown()
        edit_guidelines = gr.Textbox(label="Guidelines (Markdown)", lines=4, max_lines=20)
        save = gr.Button("Save changes", elem_id="labeling-edit-save")
        saved = gr.Markdown(elem_id="labeling-edit-message")

    @declare("admin", "create queues", read=True)
    def fill_labels(chosen: str, current_task: str):
        text = settings.labels_of(chosen)
        return (text, "label") if text else (gr.skip(), current_task)

    template.input(fill_labels, [template, task], [labels, task], **PRIVATE)
    inputs = [name, task, template, labels, k, rating_min, rating_max, guidelines, show_reference, accept, handle.name]

    @declare("view")
    def after_change(current):
        return refresh_queues(current), gr.Dropdown(choices=settings.all_names())

    needs("admin", manage)  # queues are admin's; the guards below are what count
    guard = Guard(tab.engine.settings)
    made = create.click(guard("admin", "create queues", settings.create, user_param="user"), inputs, created, **PRIVATE)
    made.then(after_change, handle.queue, [handle.queue, which], **PRIVATE)
    which.input(settings.load, which, [edit_guidelines, edit_k, archived, about], **PRIVATE)
    changed_ = save.click(
        guard("admin", "change queues", settings.save, user_param="user"),
        [which, edit_guidelines, edit_k, archived, handle.name],
        saved,
        **PRIVATE,
    )
    changed_.then(after_change, handle.queue, [handle.queue, which], **PRIVATE)
    if demo is not None:
        bump(demo, QUEUES, made, changed_)
    return settings
