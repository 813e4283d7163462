"""The Templates tab: browse the prompt library, edit a template as YAML, preview exactly what a model
receives, run it once, and keep versions (save with a message, diff, restore).

API endpoints (gradio_client and scripts)
-----------------------------------------
``template`` below is a template's YAML text, or the name of a saved template. ``values`` maps variable
names to values (a dict, or its JSON text); variables left out take their defaults.

- ``/render_preview``: ``(template, model, values, max_new_tokens) -> (text, info)``: ``text`` is exactly
  what the model receives (``render_for_model``), ``info`` Markdown with the token count and any
  context warning, or ``"⚠️ Error: ..."`` (then ``text`` is empty).
- ``/run_once``: same inputs; streams ``(reply, stats)``.
- ``/validate_template``: ``(yaml_text) -> message`` listing every problem (with line and column).
- ``/save_template``: ``(yaml_text, message) -> (status, template picker update)``; invalid -> error, nothing saved.
- ``/template_history``: ``(name) -> (versions table, from-version update, to-version update)``.
- ``/diff_versions``: ``(name, old, new) -> unified diff``; ``/restore_version``: ``(name, number) -> (status, yaml)``.
- ``/list_templates``: ``(query, selected) -> picker update`` (choices are ``(label, name)``).
- ``/new_template``: ``(name) -> (yaml skeleton, status)`` (not saved until Save);
  ``/duplicate_template``: ``(name, new_name) -> (status, picker)``;
  ``/delete_template``: ``(name, confirm) -> (status, picker)`` (refused unless ``confirm``; history kept).
- ``/import_template``: ``(file, overwrite) -> (status, picker)``; ``/export_template``: ``(name) -> file``.

Every handler returns errors as ``"⚠️ Error: ..."`` text; none raises, so the app keeps serving.

In the browser the variables form has VARIABLE_SLOTS boxes; further variables take their defaults there
(the API endpoints take any number).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterator
from contextlib import closing

import gradio as gr

from llmplay.engine import Engine, GenerationParams, GenerationResult
from llmplay.errors import LlmplayError
from llmplay.limits import check_number
from llmplay.pacing import Pacer
from llmplay.services import Services
from llmplay.tempfiles import discard_upload, export_folder
from llmplay.templates import Template, TemplateError, TemplateLibrary, parse_template, render_for_model
from llmplay.templates.model import NAME_RE
from llmplay.textdiff import unified_diff_html
from llmplay.ui import fields
from llmplay.ui.access import Guard, declare, declared, needs
from llmplay.ui.common import ERROR, error_message, format_error, safe
from llmplay.ui.decoding import format_stats
from llmplay.ui.models_panel import default_model, generative_names
from llmplay.ui.queueing import GENERATION
from llmplay.ui.template_picks import parse_values

log = logging.getLogger(__name__)

VARIABLE_SLOTS = 8  # a fixed pool of textboxes for the variables form (shown, hidden and relabelled per template)
HISTORY_HEADERS = ["version", "hash", "time", "author", "message"]
DIFF_HINT = (
    "<p>Pick a <b>From</b> and a <b>To</b> version and press <b>Diff</b>: "
    "added lines show in green, removed lines in red.</p>"
)
SKELETON = """\
name: {name}
description: What this template is for.
task: generation
variables:
  - name: text
    description: The input text.
system: You are a helpful assistant.
body: |-
  {{{{ text }}}}
output:
  format: Free text.
metrics: []
"""


def describe_error(exc: Exception) -> str:
    """A TemplateError as a bullet list (one problem a line), anything else as its message."""
    if isinstance(exc, TemplateError) and exc.problems:
        where = f" in {exc.source}" if exc.source else ""
        items = "\n".join(f"- {p}" for p in exc.problems)
        return format_error(f"{len(exc.problems)} problem(s){where}:\n{items}")
    return format_error(error_message(exc, "Templates tab"))


def format_render_info(rendered) -> str:
    if rendered.token_count is None:
        head = f"**{rendered.model}** (token count not available for endpoint models)"
    else:
        head = f"**{rendered.token_count:,} tokens** for **{rendered.model}** (context {rendered.context_length:,})"
    return "  \n".join([head, *(f"⚠️ {w}" for w in rendered.warnings)])


# ---- handlers ---------------------------------------------------------------------------------------
class TemplatesTab:
    """The tab's handlers: plain values in, plain values (or component updates) out; exceptions never escape."""

    def __init__(self, engine: Engine, library: TemplateLibrary):
        self.engine = engine
        self.library = library

    # ---- resolving inputs ------------------------------------------------------------------------------
    def template_of(self, template: str) -> Template:
        """A saved template's name, or YAML text (parsed; TemplateError lists every problem)."""
        text = (template or "").strip()
        if not text:
            raise LlmplayError("The template is empty: open one from the library or click New.")
        if "\n" not in text and NAME_RE.match(text):
            return self.library.load(text)
        return parse_template(template, source="editor")

    def _params(self, max_new_tokens) -> GenerationParams:
        # Checked, not coerced: 0 or 1.5 is refused by name (it used to become 128 or 1).
        return GenerationParams(
            max_new_tokens=check_number("max_new_tokens", max_new_tokens, settings=self.engine.settings)
        )

    # ---- library ---------------------------------------------------------------------------------------
    def choices(self, query: str = "", selected: str | None = None) -> tuple[list[tuple[str, str]], str | None]:
        """(label, name) pairs of the templates matching ``query`` (invalid ones marked), and the one to select."""
        try:
            found = self.library.list(query or "")
        except Exception:  # an unreadable folder must not break the page
            log.exception("Listing templates failed")
            found = []
        names = [s.name for s in found]
        choices = [(s.name if s.valid else f"{s.name} (invalid)", s.name) for s in found]
        return choices, selected if selected in names else (names[0] if names else None)

    @declare("view")
    def list_templates(self, query: str = "", selected: str | None = None) -> gr.Dropdown:
        """Picker update with the templates matching ``query``."""
        choices, value = self.choices(query, selected)
        return gr.Dropdown(choices=choices, value=value)

    @declare("view")
    def open_template(self, name: str | None) -> list:
        """The template's text into the editor, and an empty variables form (so its defaults apply)."""
        if not name:
            return [gr.skip()] * (1 + VARIABLE_SLOTS)  # nothing picked (e.g. after New): keep the editor
        try:
            text = self.library.read_text(name)
        except LlmplayError as exc:
            text = f"# {exc}\n"
        return [text] + [""] * VARIABLE_SLOTS

    @declare("view")
    def new_template(self, name: str = "") -> tuple[str, str]:
        """(skeleton YAML, status); nothing is written until Save."""
        try:
            name = (name or "").strip() or self._free_name("new-template")
            if self.library.path(name).exists():  # path() also checks the name
                raise LlmplayError(f"A template named {name!r} already exists.")
        except LlmplayError as exc:
            return gr.skip(), describe_error(exc)
        return SKELETON.format(name=name), f"New template **{name}**: edit it, then Save version to create it."

    def _free_name(self, stem: str) -> str:
        taken = set(self.library.names())
        return next(n for n in (stem, *(f"{stem}-{i}" for i in range(2, 1000))) if n not in taken)

    @safe(gr.skip(), describe=describe_error)
    def duplicate_template(self, name: str, new_name: str = "") -> tuple[str, gr.Dropdown]:
        if not name:
            raise LlmplayError("Pick a template to duplicate first.")
        new_name = (new_name or "").strip() or self._free_name(f"{name}-copy")
        result = self.library.duplicate(name, new_name)
        status = f"✓ Duplicated **{name}** as **{new_name}** (v{result.version.number})."
        return status, self.list_templates("", new_name)

    @safe(gr.skip(), describe=describe_error)
    def delete_template(self, name: str, confirm: bool = False) -> tuple[str, gr.Dropdown]:
        if not name:
            raise LlmplayError("Pick a template to delete first.")
        if not confirm:
            raise LlmplayError(f"Tick “Yes, delete” to confirm deleting **{name}** (its history is kept).")
        self.library.delete(name)
        return f"Deleted **{name}**. Its history is kept; restore a version to bring it back.", self.list_templates()

    @safe(gr.skip(), describe=describe_error)
    def import_template(self, file: str | None, overwrite: bool = False) -> tuple[str, gr.Dropdown]:
        if not file:
            raise LlmplayError("Choose a template file (.yaml) to import first.")
        result = self.library.import_file(file, overwrite=bool(overwrite))
        discard_upload(file)  # the template is in the library now
        name = result.version.template
        return f"✓ Imported **{name}** (v{result.version.number}).", self.list_templates("", name)

    @declare("view")
    def export_template(self, name: str) -> str | None:
        """The template's file, copied to a fresh folder under <data dir>/tmp for download; None when there is
        none (and no folder left behind)."""
        if not name:
            return None
        try:
            with export_folder(self.engine.settings, "template-") as folder:
                return str(self.library.export(name, folder))
        except LlmplayError:
            return None

    # ---- editing and versions -------------------------------------------------------------------------
    @declare("view")
    def validate_template(self, yaml_text: str) -> str:
        try:
            problems = self.library.problems(yaml_text or "")
        except Exception as exc:
            log.exception("Validating a template failed")
            return format_error(f"could not validate ({type(exc).__name__}: {exc}).")
        if problems:
            return describe_error(TemplateError(problems))
        return "✓ Valid."

    @safe(gr.skip(), describe=describe_error)
    def save_template(self, yaml_text: str, message: str = "") -> tuple[str, gr.Dropdown]:
        result = self.library.save(yaml_text or "", message=(message or "").strip())
        version = result.version
        if not result.created:
            return f"No changes: **{version.template}** is still v{version.number}.", gr.skip()
        status = f"✓ Saved **{version.template}** v{version.number} ({version.short_hash})."
        return status, self.list_templates("", version.template)

    @declare("view")
    def template_history(self, name: str | None) -> tuple[list[list], gr.Dropdown, gr.Dropdown]:
        """Versions table (newest first) and the choices for the from/to version pickers."""
        try:
            versions = self.library.versions(name) if name else []
        except Exception:
            log.exception("Reading the history of %s failed", name)
            versions = []
        rows = [[v.number, v.short_hash, v.created_at, v.author, v.message] for v in reversed(versions)]
        numbers = [v.number for v in versions]
        old = numbers[-2] if len(numbers) > 1 else (numbers[-1] if numbers else None)
        new = numbers[-1] if numbers else None
        return rows, gr.Dropdown(choices=numbers, value=old), gr.Dropdown(choices=numbers, value=new)

    @declare("view")
    def diff_versions(self, name: str, old: int | None, new: int | None) -> str:
        try:
            if not name or old in (None, "") or new in (None, ""):
                raise LlmplayError("Pick a template and two versions to compare.")
            old, new = (
                check_number("template_version", v, label=f"{end} version") for end, v in (("from", old), ("to", new))
            )
            diff = self.library.diff(name, old, new)
            return diff or f"(v{old} and v{new} have the same content)"
        except LlmplayError as exc:
            return describe_error(exc)
        except Exception as exc:
            log.exception("Diff failed")
            return format_error(f"could not diff ({type(exc).__name__}: {exc}).")

    @declare("view")
    def diff_view(self, name: str, old: int | None, new: int | None) -> str:
        """The diff of ``diff_versions`` as coloured HTML (added lines green, removed red; all text escaped)."""
        text = self.diff_versions(name, old, new)
        if text.startswith(ERROR) or not text.startswith("---"):  # an error, or "(the same content)"
            return f'<p style="white-space:pre-wrap">{html.escape(text)}</p>'
        return unified_diff_html(text)

    @declare("view")
    def history_note(self, name: str | None) -> str:
        """An empty history says what fills it."""
        try:
            if name and self.library.versions(name):
                return ""
        except Exception:
            log.exception("Reading the history of %s failed", name)
        what = f"**{name}** has" if name else "No template picked, so there are"
        return f"{what} no saved versions yet: edit the template and press **Save version** to record the first."

    @safe(gr.skip(), describe=describe_error)
    def restore_version(self, name: str, number: int | None) -> tuple[str, str]:
        if not name or number in (None, ""):
            raise LlmplayError("Pick a template and the version to restore.")
        number = check_number("template_version", number, label="the version to restore")
        result = self.library.restore(name, number)
        status = f"✓ Restored v{number} of **{name}** as v{result.version.number}."
        if not result.created:
            status = f"v{number} of **{name}** is already the current content."
        return status, self.library.read_text(name)

    # ---- preview and run -------------------------------------------------------------------------------
    @declare("view")
    def render_preview(
        self, template: str, model: str, values: dict | str | None = None, max_new_tokens: int = 128
    ) -> tuple[str, str]:
        """(exact prompt text, token info Markdown) or ("", "⚠️ Error: ...")."""
        try:
            spec_template = self.template_of(template)
            rendered = render_for_model(
                self.engine, spec_template, model or "", parse_values(values), self._params(max_new_tokens)
            )
            return rendered.text, format_render_info(rendered)
        except LlmplayError as exc:
            return "", describe_error(exc)
        except Exception as exc:
            log.exception("Rendering a preview failed")
            return "", format_error(f"could not render ({type(exc).__name__}: {exc}).")

    def run_once(
        self, template: str, model: str, values: dict | str | None = None, max_new_tokens: int = 128
    ) -> Iterator[tuple[str, str]]:
        """Stream the model's reply to the rendered template: (reply so far, status)."""
        reply = ""
        try:
            spec = self.engine.catalog.get(model or "")  # once: a trained version's lookup is a SQLite read
            rendered = render_for_model(
                self.engine, self.template_of(template), spec, parse_values(values), self._params(max_new_tokens)
            )
            self.engine.provider(spec).check_request(rendered.request)  # refuse early (e.g. too long)
            yield "", f"Generating with **{model}**…"
            result: GenerationResult | None = None
            pacer = Pacer()
            with closing(self.engine.stream(spec, rendered.request)) as events:
                for event in events:
                    if event.status:
                        yield reply, f"{event.status}…"
                    elif event.done:
                        result = event.result
                    elif event.delta:
                        reply += event.delta
                        if pacer.due():
                            yield reply, f"Generating with **{model}**…"
            if result is None:
                raise LlmplayError(f"{model} ended the reply without a result; try again.")
            if result.error:
                raise LlmplayError(result.error)
            yield result.text, format_stats(result)
        except LlmplayError as exc:
            yield reply, describe_error(exc)
        except Exception as exc:
            log.exception("Run once failed")
            yield reply, format_error(f"something unexpected went wrong ({type(exc).__name__}: {exc}).")

    # ---- the variables form (UI only) ------------------------------------------------------------------
    @staticmethod
    def _variables(yaml_text: str) -> list:
        try:
            return list(parse_template(yaml_text or "").variables)
        except Exception:
            return []  # invalid text: keep the form as it is until it parses again

    def form_values(self, yaml_text: str, *slots: str) -> dict:
        """Slot i holds the value of the template's i-th variable; an empty box means "use the default"."""
        names = [v.name for v in self._variables(yaml_text)]
        return {n: s for n, s in zip(names, slots, strict=False) if s not in (None, "")}

    def form_layout(self, yaml_text: str) -> list:
        try:
            variables = list(parse_template(yaml_text or "").variables)
        except Exception:
            return [gr.skip()] * VARIABLE_SLOTS  # mid-edit typo: don't make the form flicker away
        updates = []
        for i in range(VARIABLE_SLOTS):
            if i < len(variables):
                v = variables[i]
                default = "" if v.default is None else v.default
                shown = default if isinstance(default, str) else json.dumps(default, ensure_ascii=False)
                hint = f"default: {shown}" if not v.required else "required"
                updates.append(gr.Textbox(visible=True, label=v.name, info=v.description, placeholder=hint))
            else:
                updates.append(gr.Textbox(visible=False, label=f"variable {i + 1}"))
        return updates

    @declare("view")
    def edited(self, yaml_text: str, model: str, max_new_tokens, *slots: str) -> list:
        """On every edit: live validation, the variables form, and the preview."""
        text, info = self.preview_from_form(yaml_text, model, max_new_tokens, *slots)
        return [self.validate_template(yaml_text), *self.form_layout(yaml_text), text, info]

    @declare("view")
    def preview_from_form(self, yaml_text: str, model: str, max_new_tokens, *slots: str) -> tuple[str, str]:
        values = self.form_values(yaml_text, *slots)
        # An empty required box is the normal state of a freshly opened template: a hint, not an error.
        missing = [v.name for v in self._variables(yaml_text) if v.required and v.name not in values]
        if missing:
            return "", f"Fill in {', '.join(f'**{n}**' for n in missing)} to see the prompt."
        return self.render_preview(yaml_text, model, values, max_new_tokens)

    def run_from_form(self, yaml_text: str, model: str, max_new_tokens, *slots: str) -> Iterator[tuple[str, str]]:
        yield from self.run_once(yaml_text, model, self.form_values(yaml_text, *slots), max_new_tokens)


@declare("view")
def _stopped() -> str:
    return "Stopped."


# ---- layout -----------------------------------------------------------------------------------------
def build_templates_tab(services: Services, demo: gr.Blocks) -> TemplatesTab:
    """Lay out the tab inside the current Blocks context and wire its events."""
    engine = services.engine
    tab = TemplatesTab(engine, services.templates)
    limit = engine.settings.max_new_tokens_limit
    first_choices, first = tab.choices()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=240):
            search = gr.Textbox(label="Search templates", placeholder="name, task or words from the description")
            # Custom values: a template created after the page loaded must still be usable by name (API calls too).
            picker = gr.Dropdown(
                first_choices, value=first, label="Template", elem_id="templates-picker", allow_custom_value=True
            )
            with gr.Row():
                new_btn = gr.Button("New", size="sm")
                duplicate_btn = gr.Button("Duplicate", size="sm")
            new_name = gr.Textbox(label="Name for New / Duplicate", placeholder="blank = pick one")
            with gr.Accordion("Delete", open=False):
                confirm = gr.Checkbox(False, label="Yes, delete (the history is kept)")
                delete_btn = gr.Button("Delete template", variant="stop", size="sm")
            with gr.Accordion("Import / export", open=False):
                upload = gr.File(label="Template file", file_types=[".yaml", ".yml"], type="filepath", height=120)
                overwrite = gr.Checkbox(False, label="Overwrite a template with the same name")
                import_btn = gr.Button("Import", size="sm")
                export_btn = gr.Button("Export current", size="sm")
                exported = gr.File(label="Exported file", interactive=False, height=80)
        with gr.Column(scale=5):
            editor = gr.Code(
                tab.open_template(first)[0] if first else "",
                language="yaml",
                label="Template (YAML: metadata, variables, system, body, examples, output)",
                lines=24,
                max_lines=40,
                wrap_lines=True,  # long prompt lines stay readable without scrolling sideways
                interactive=True,
                elem_id="templates-editor",
            )
            with gr.Row(equal_height=True):
                problems = gr.Markdown(elem_id="templates-problems")
                validate_btn = gr.Button("Validate", size="sm", scale=0, min_width=100)
            with gr.Row(equal_height=True):
                message = gr.Textbox(label="Commit message", placeholder="what changed and why", scale=4)
                save_btn = gr.Button("Save version", variant="primary", scale=1, min_width=120)
            status = gr.Markdown(elem_id="templates-status")
        with gr.Column(scale=4, min_width=320):
            model = gr.Dropdown(
                generative_names(engine), value=default_model(engine), label="Model", allow_custom_value=True
            )
            with gr.Group():
                slots = [
                    gr.Textbox(label=f"variable {i + 1}", visible=False, lines=2, max_lines=8)
                    for i in range(VARIABLE_SLOTS)
                ]
            max_new_tokens = fields.number(
                "max_new_tokens", min(128, limit), engine.settings, label=f"Max new tokens (1–{limit})"
            )
            preview = gr.Textbox(
                label="Exactly what the model receives",
                lines=12,
                max_lines=24,
                interactive=False,
                buttons=["copy"],
                elem_id="templates-preview",
            )
            token_info = gr.Markdown(elem_id="templates-token-info")
            with gr.Row():
                run_btn = gr.Button("Run once", variant="primary")
                stop_btn = gr.Button("Stop")
            reply = gr.Textbox(
                label="Reply",
                lines=4,
                max_lines=16,
                interactive=False,
                elem_id="templates-reply",
                placeholder="Press Run once: the model's reply to the prompt above streams here.",
            )
            run_status = gr.Markdown(elem_id="templates-run-status")
    with gr.Accordion("Version history", open=True):
        history = gr.Dataframe(
            headers=HISTORY_HEADERS,
            interactive=False,
            wrap=True,
            max_height=240,
            column_widths=["9%", "13%", "20%", "10%", "48%"],
        )
        with gr.Row():
            old_v = gr.Dropdown(label="From version", scale=1, allow_custom_value=True, elem_id="templates-diff-from")
            new_v = gr.Dropdown(label="To version", scale=1, allow_custom_value=True, elem_id="templates-diff-to")
            diff_btn = gr.Button("Diff", scale=1)
            restore_btn = gr.Button("Restore 'from' version", scale=1)
        history_note = gr.Markdown(elem_id="templates-history-note")
        diff = gr.HTML(DIFF_HINT, elem_id="templates-diff")

    form = [editor, model, max_new_tokens, *slots]
    private = {"api_visibility": "private"}
    guard = Guard(engine.settings)  # writes to the library are admin actions; test runs spend model time
    admin = lambda action, fn: guard("admin", action, fn)  # noqa: E731
    needs("admin", new_btn, duplicate_btn, delete_btn, import_btn, save_btn, restore_btn)

    # Library.
    search.change(tab.list_templates, [search, picker], picker, api_name="list_templates", show_progress="hidden")
    opened = picker.change(tab.open_template, picker, [editor, *slots], **private)
    opened.then(tab.template_history, picker, [history, old_v, new_v], api_name="template_history").then(
        tab.history_note, picker, history_note, **private
    )
    new_btn.click(tab.new_template, new_name, [editor, status], api_name="new_template").then(
        declared("view", lambda: None), None, picker, **private
    )
    duplicate_btn.click(
        admin("duplicate templates", tab.duplicate_template),
        [picker, new_name],
        [status, picker],
        api_name="duplicate_template",
    )
    delete_btn.click(
        admin("delete templates", tab.delete_template), [picker, confirm], [status, picker], api_name="delete_template"
    ).then(declared("view", lambda: False), None, confirm, **private)
    import_btn.click(
        admin("import templates", tab.import_template),
        [upload, overwrite],
        [status, picker],
        api_name="import_template",
    )
    export_btn.click(tab.export_template, picker, exported, api_name="export_template")

    # Editing: validation, the variables form and the preview follow every edit.
    editor.change(tab.edited, form, [problems, *slots, preview, token_info], trigger_mode="always_last", **private)
    for box in slots:
        # change, not input: a value set by a script or a paste counts too (opening a template clears them).
        box.change(tab.preview_from_form, form, [preview, token_info], trigger_mode="always_last", **private)
    gr.on([model.change, max_new_tokens.change], tab.preview_from_form, form, [preview, token_info], **private)
    validate_btn.click(tab.validate_template, editor, problems, api_name="validate_template")
    saved = save_btn.click(
        admin("save templates", tab.save_template), [editor, message], [status, picker], api_name="save_template"
    )
    saved.then(tab.template_history, picker, [history, old_v, new_v], **private).then(
        tab.history_note, picker, history_note, **private
    )

    # Versions.
    diff_btn.click(tab.diff_view, [picker, old_v, new_v], diff, **private)
    gr.api(tab.diff_versions, api_name="diff_versions")  # the unified diff as text, for scripts
    restored = restore_btn.click(
        admin("restore template versions", tab.restore_version),
        [picker, old_v],
        [status, editor],
        api_name="restore_version",
    )
    restored.then(tab.template_history, picker, [history, old_v, new_v], **private)

    # Run once.
    run = run_btn.click(
        guard("generate", "run templates", tab.run_from_form),
        form,
        [reply, run_status],
        show_progress="minimal",
        **private,
        **GENERATION,
    )
    stop_btn.click(_stopped, None, run_status, cancels=[run], **private)

    # Plain-value endpoints for scripts and tests (the form's slots are a UI detail).
    gr.api(tab.render_preview, api_name="render_preview")
    gr.api(guard("generate", "run templates", tab.run_once), api_name="run_once", **GENERATION)
    # A (re)loaded page shows the library as it is now, the first template's preview and its history.
    loaded = demo.load(tab.list_templates, [search, picker], picker, **private)
    loaded.then(tab.edited, form, [problems, *slots, preview, token_info], **private)
    loaded.then(tab.template_history, picker, [history, old_v, new_v], **private).then(
        tab.history_note, picker, history_note, **private
    )
    return tab
