"""How a feature names a template (``name``: the file as it is now; ``name@v3``: a saved version) and loads
the one named. Compare columns, training data, the feedback loop and evaluation hand-offs all use it; every
template picker offers the refs of ``version_choices``."""

from __future__ import annotations

from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import Template, parse_template
from llmplay.templates.versions import Version, parse_ref, versions_by_template


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


def version_choices(library: TemplateLibrary, names: list[str]) -> list[tuple[str, str]]:
    """(label, ref) pairs for a picker: each name (the file as it is now), then its saved versions newest first
    as ``name@vN`` with their date and message, so a saved version is picked, not typed."""
    with connect(library.db_path) as db:
        saved = versions_by_template(db)
    out: list[tuple[str, str]] = []
    for name in names:
        out.append((name, name))
        for version in reversed(saved.get(name, [])):
            ref = template_ref(name, version.number)
            note = " ".join(version.message.split())
            note = note if len(note) <= 48 else note[:47] + "…"
            out.append((" · ".join(p for p in (ref, version.created_at[:10], note) if p), ref))
    return out
