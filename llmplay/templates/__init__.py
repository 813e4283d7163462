"""Prompt templates: YAML files in prompts/, sandboxed Jinja2, rendering for a model, versions in SQLite.

The UI and the CLI use these plain functions and classes; nothing here imports gradio. Must not know the
features that render templates (compare, evaluation, feedback, training, the loop) nor the UI.
"""

from llmplay.templates.library import SaveResult, TemplateLibrary, TemplateSummary, validate_files
from llmplay.templates.model import (
    TASKS,
    Example,
    OutputSpec,
    Retrieval,
    Template,
    TemplateError,
    Variable,
    parse_template,
    template_problems,
)
from llmplay.templates.refs import load_template, template_ref
from llmplay.templates.render import (
    RenderedPrompt,
    build_messages,
    build_request,
    fill_values,
    render_for_model,
    request_from_messages,
)
from llmplay.templates.retrieval import select_examples
from llmplay.templates.sandbox import TemplateRenderError
from llmplay.templates.versions import Version

__all__ = [
    "TASKS",
    "Example",
    "OutputSpec",
    "RenderedPrompt",
    "Retrieval",
    "SaveResult",
    "Template",
    "TemplateError",
    "TemplateLibrary",
    "TemplateRenderError",
    "TemplateSummary",
    "Variable",
    "Version",
    "build_messages",
    "build_request",
    "fill_values",
    "load_template",
    "parse_template",
    "render_for_model",
    "request_from_messages",
    "select_examples",
    "template_problems",
    "template_ref",
    "validate_files",
]
