"""The "Add a model" panel and the model picker it refreshes; reusable by any tab that picks a model.

Adding a model records it in the catalog (``models.yaml``) as added by a user, so the operator's limits
apply (local folders, API key variables and URLs: see models/access.py) and are checked right away;
nothing is downloaded or loaded until the model is first used, so a Hub id that does not exist or an
offline machine shows up as an error on first use. Models added here can be removed here; built-in
models and the operator's own cannot.

API endpoints: ``/add_model``: ``(name, source, location, kind, api_model, api_key_env) -> (model,
message)``; ``/remove_model``: ``(name) -> (model, removable, message)``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import gradio as gr

from llmplay.engine import Engine
from llmplay.errors import LlmplayError
from llmplay.models.catalog import ModelSpec
from llmplay.ui.access import Guard, declared, needs

# (label, value) pairs: the UI shows the label, the API takes the value.
SOURCE_CHOICES = [
    ("Hugging Face Hub id", "hub"),
    ("Local folder or .gguf file", "local"),
    ("OpenAI-compatible endpoint", "endpoint"),
]
LOCATION_HINTS = {
    "hub": "org/model, e.g. HuggingFaceTB/SmolLM2-360M-Instruct",
    "local": "/path/to/model-folder or /path/to/model.gguf",
    "endpoint": "Base URL, e.g. http://127.0.0.1:8000/v1",
}


def generative_names(engine: Engine, kinds: tuple[str, ...] | None = None) -> list[str]:
    """Models that answer a prompt: the catalog's chat and base models, then trained versions by label
    (adapters on them, fine-tuned classifiers and taggers), read afresh so a version is offered as soon as its
    job registers it. ``kinds`` keeps only those kinds. Encoders are for metrics only."""
    specs = [*engine.catalog.generative(), *engine.catalog.versions()]
    return [s.name for s in specs if s.kind != "encoder" and (kinds is None or s.kind in kinds)]


TEXT_KINDS = ("chat", "base")  # models that write free-text replies (the Arena's contestants)
_PICKER_KINDS: dict[int, tuple[str, ...]] = {}  # picker id -> the only kinds it offers (refresh keeps to them)


def offer_kinds(picker: gr.Dropdown, kinds: tuple[str, ...]) -> gr.Dropdown:
    """Mark ``picker`` as offering only ``kinds`` (e.g. TEXT_KINDS), so refreshes keep to them."""
    _PICKER_KINDS[picker._id] = kinds
    return picker


def model_pickers(blocks: gr.Blocks, engine: Engine, exclude: tuple = ()) -> list[gr.Dropdown]:
    """The dropdowns in ``blocks`` that offer the catalog's models: those whose choices hold every chat and
    base model (so new tabs' pickers are found without registering them)."""
    wanted = {s.name for s in engine.catalog.generative() if s.kind in ("chat", "base")}
    found = []
    for block in blocks.blocks.values():
        if isinstance(block, gr.Dropdown) and block not in exclude:
            values = {c[1] if isinstance(c, tuple) else c for c in block.choices or []}
            if wanted and wanted <= values:
                found.append(block)
    return found


def refresh_model_pickers(engine: Engine, pickers: list[gr.Dropdown], *events) -> None:
    """On each of ``events`` (page load, tab switch, a finished job), give every picker the current models,
    trained versions included; what a picker has selected stays selected."""

    def fresh() -> list[gr.Dropdown]:
        names = {kinds: generative_names(engine, kinds) for kinds in {_PICKER_KINDS.get(p._id) for p in pickers}}
        return [gr.Dropdown(choices=names[_PICKER_KINDS.get(p._id)]) for p in pickers]

    if pickers and events:  # /model_choices: every picker's current choices (tests check versions join them)
        gr.on(
            list(events),
            declared("view", fresh),
            None,
            pickers,
            api_name="model_choices",
            queue=False,
            show_progress="hidden",
        )


def default_model(engine: Engine) -> str | None:
    names = generative_names(engine)
    if engine.settings.default_model in names:
        return engine.settings.default_model
    return names[0] if names else None


def model_dropdown(engine: Engine, selected: str | None = None) -> gr.Dropdown:
    """An update for a model dropdown with the catalog's current models."""
    names = generative_names(engine)
    value = selected if selected in names else default_model(engine)
    return gr.Dropdown(choices=names, value=value)


def model_choices(engine: Engine) -> gr.Dropdown:
    """An update of a model dropdown's choices only, for a page load: the value stays what the user has picked by
    the time it lands (an update that also set the value put the default back over a quick pick)."""
    return gr.Dropdown(choices=generative_names(engine))


def describe_model(engine: Engine, name: str | None) -> str:
    try:
        spec = engine.catalog.get(name or "")
    except LlmplayError:
        return ""
    return f"*{spec.kind} model* · {spec.description or _where(spec)}"


def _where(spec: ModelSpec) -> str:
    """Where a model comes from, as every role may read it: a Hub id, but not a server path or an endpoint's
    address (viewers see this line)."""
    if spec.source == "local":
        return f"local model `{Path(spec.location).name}`"
    if spec.source == "endpoint":
        return "model behind an OpenAI-compatible endpoint"
    return f"{spec.source} model `{spec.location}`"


class ModelsPanel:
    """Handlers for adding models; they take plain values so tests and scripts can call them directly."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def removable(self) -> gr.Dropdown:
        """An update for the "Remove" dropdown: the models added through the UI."""
        names = [spec.name for spec in self.engine.catalog.user_added()]
        return gr.Dropdown(choices=names, value=None)

    def add_model(
        self,
        name: str,
        source: str,
        location: str,
        kind: str,
        api_model: str = "",
        api_key_env: str = "",
    ) -> tuple[gr.Dropdown, str]:
        """Add a model to the catalog; returns (model dropdown update, message)."""
        try:
            spec = self._spec(name, source, location, kind, api_model, api_key_env)
            self.engine.catalog.add(spec)
        except LlmplayError as exc:
            return gr.skip(), f"⚠️ Error: {exc}"
        except Exception as exc:  # a handler must never take the app down
            return gr.skip(), f"⚠️ Error: could not add the model ({type(exc).__name__}: {exc})"
        note = "It loads on first use." if source != "endpoint" else "Requests go to the endpoint."
        return model_dropdown(self.engine, spec.name), f"✅ Added **{spec.name}**. {note}"

    def remove_model(self, name: str | None) -> tuple[gr.Dropdown, gr.Dropdown, str]:
        """Remove a model added through the UI; returns (model dropdown, removable dropdown, message)."""
        try:
            spec = self.engine.catalog.get(name or "")
            if spec.builtin:
                raise LlmplayError(f"{spec.name!r} is a built-in model and cannot be removed.")
            if spec.added_by != "user":
                raise LlmplayError(
                    f"{spec.name!r} is set up by the operator; it can be removed only from the models file."
                )
            self.engine.catalog.remove(spec.name)
            self.engine.models.unload(spec.name)  # free a loaded copy's memory
        except LlmplayError as exc:
            return gr.skip(), gr.skip(), f"⚠️ Error: {exc}"
        except Exception as exc:  # a handler must never take the app down
            return gr.skip(), gr.skip(), f"⚠️ Error: could not remove the model ({type(exc).__name__}: {exc})"
        return model_dropdown(self.engine), self.removable(), f"✅ Removed **{spec.name}**."

    @staticmethod
    def _spec(name: str, source: str, location: str, kind: str, api_model: str, api_key_env: str) -> ModelSpec:
        endpoint = source == "endpoint"
        location = (location or "").strip()
        gguf_file = None
        if source == "hub" and location.endswith(".gguf"):
            # "org/repo/file.gguf": the repo id plus the GGUF file inside it.
            location, _, gguf_file = location.rpartition("/")
        return ModelSpec(
            name=(name or "").strip(),
            kind=kind,
            source=source,
            location=location,
            gguf_file=gguf_file,
            api_model=((api_model or "").strip() or None) if endpoint else None,
            api_key_env=((api_key_env or "").strip() or None) if endpoint else None,
            added_by="user",
        )


def _source_changed(hints: dict[str, str], source: str) -> tuple[gr.Textbox, gr.Row]:
    return gr.Textbox(placeholder=hints.get(source, "")), gr.Row(visible=source == "endpoint")


def build_add_model_panel(engine: Engine, model_picker: gr.Dropdown) -> ModelsPanel:
    """The "Add a model" accordion; a successful add refreshes and selects the model in ``model_picker``."""
    panel = ModelsPanel(engine)
    folders = ", ".join(str(d) for d in engine.catalog.access.model_dirs) or "no folder is allowed"
    hints = {**LOCATION_HINTS, "local": f"a model folder or .gguf file inside {folders}"}
    with gr.Accordion("Add a model", open=False) as accordion:
        name = gr.Textbox(label="Name", placeholder="my-model (letters, digits, . _ -)")
        source = gr.Radio(SOURCE_CHOICES, value="hub", label="Source")
        location = gr.Textbox(label="Location", placeholder=LOCATION_HINTS["hub"])
        kind = gr.Radio(["chat", "base"], value="chat", label="Kind", info="chat: has a chat template")
        with gr.Row(visible=False) as endpoint_row:
            api_model = gr.Textbox("", label="API model name", placeholder="name the server expects")
            api_key_env = gr.Textbox(
                "", label="API key env var", placeholder="optional; only variables the operator allows"
            )
        add = gr.Button("Add model")
        message = gr.Markdown(label="message")
        with gr.Row():
            removable = gr.Dropdown(
                choices=[s.name for s in engine.catalog.user_added()],
                value=None,
                label="Models added here",
                allow_custom_value=True,  # the handler checks the name (API callers may send any)
            )
            remove = gr.Button("Remove model")
    source.change(
        declared("view", partial(_source_changed, hints)), source, [location, endpoint_row], api_visibility="private"
    )
    # Refreshed on opening: other visitors may have added or removed models since the page loaded.
    removable_models = declared("admin", panel.removable, "list added models", read=True)
    accordion.expand(removable_models, None, removable, api_visibility="private")
    guard = Guard(engine.settings)
    needs("admin", accordion)  # hidden from other roles on page load; the guards are what count
    add.click(
        guard("admin", "add models", panel.add_model),
        [name, source, location, kind, api_model, api_key_env],
        [model_picker, message],
        api_name="add_model",
    ).then(removable_models, None, removable, api_visibility="private")
    remove.click(
        guard("admin", "remove models", panel.remove_model),
        removable,
        [model_picker, removable, message],
        api_name="remove_model",
    )
    return panel
