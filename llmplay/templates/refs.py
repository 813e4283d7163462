"""How a feature names a template (``name``: the file as it is now; ``name@v3``: a saved version) and loads
the one named. Compare columns, training data, the feedback loop and evaluation hand-offs all use it."""

from __future__ import annotations

from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import Template, parse_template
from llmplay.templates.versions import Version, parse_ref


def template_ref(name: str, number: int | None = None) -> str:
    """How a column names a template: ``name`` (the file as it is now) or ``name@v3`` (a saved version)."""
    return name if number is None else f"{name}@v{number}"


def load_template(library: TemplateLibrary, ref: str) -> tuple[Template, Version]:
    """The template a column names (see ``template_ref``) and the version it is, for feedback items."""
    name, number = parse_ref(ref)
    if number is not None:
        version = library.version(name, number)
    else:
        library.read_text(name)  # an unknown name fails here, with the known names in the message
        version = library.current_version(name)
    return parse_template(version.content, source=f"{version.template} v{version.number}"), version
