"""The "Add a model" panel and the model picker it refreshes; reusable by any tab that picks a model.

Adding a model only records it in the catalog (``models.yaml``); nothing is downloaded or loaded until
the model is first used, so a bad Hub id or an offline machine shows up as an error on first use.
"""

from __future__ import annotations

import gradio as gr

from llmplay.engine import Engine
from llmplay.errors import LlmplayError
from llmplay.models.catalog import ModelSpec

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


def generative_names(engine: Engine) -> list[str]:
    """Models that can generate text (chat and base); encoders are for metrics only."""
    return [spec.name for spec in engine.catalog.generative()]


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


def describe_model(engine: Engine, name: str | None) -> str:
    try:
        spec = engine.catalog.get(name or "")
    except LlmplayError:
        return ""
    text = spec.description or f"{spec.source} model at `{spec.location}`"
    return f"*{spec.kind} model* · {text}"


class ModelsPanel:
    """Handlers for adding models; they take plain values so tests and scripts can call them directly."""

    def __init__(self, engine: Engine):
        self.engine = engine

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
        )


def _source_changed(source: str) -> tuple[gr.Textbox, gr.Row]:
    return gr.Textbox(placeholder=LOCATION_HINTS.get(source, "")), gr.Row(visible=source == "endpoint")


def build_add_model_panel(engine: Engine, model_picker: gr.Dropdown) -> ModelsPanel:
    """The "Add a model" accordion; a successful add refreshes and selects the model in ``model_picker``."""
    panel = ModelsPanel(engine)
    with gr.Accordion("Add a model", open=False):
        name = gr.Textbox(label="Name", placeholder="my-model (letters, digits, . _ -)")
        source = gr.Radio(SOURCE_CHOICES, value="hub", label="Source")
        location = gr.Textbox(label="Location", placeholder=LOCATION_HINTS["hub"])
        kind = gr.Radio(["chat", "base"], value="chat", label="Kind", info="chat: has a chat template")
        with gr.Row(visible=False) as endpoint_row:
            api_model = gr.Textbox("", label="API model name", placeholder="name the server expects")
            api_key_env = gr.Textbox("", label="API key env var", placeholder="e.g. OPENAI_API_KEY (optional)")
        add = gr.Button("Add model")
        message = gr.Markdown(label="message")
    source.change(_source_changed, source, [location, endpoint_row], api_visibility="private")
    add.click(
        panel.add_model,
        [name, source, location, kind, api_model, api_key_env],
        [model_picker, message],
        api_name="add_model",
    )
    return panel
