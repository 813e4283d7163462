"""The choices of every template picker in every tab: each valid template (the file as it is now), then its
saved versions as ``name@vN`` (newest first, with date and message), so an older version is picked, not typed.
Every feature that takes a template accepts these refs (llmplay.templates.refs). Also how a template's variable
values sent to an endpoint are read (``parse_values``), for every tab that renders one."""

from __future__ import annotations

import json
import logging

from llmplay.errors import LlmplayError
from llmplay.templates.refs import version_choices

log = logging.getLogger(__name__)


def template_choices(library, none_label: str | None = None) -> list[tuple[str, str]]:
    """(label, ref) choices of the valid templates and their versions, after a "no template" choice whose
    value is ``""`` when ``none_label`` is given. Never raises: an unreadable library offers no templates."""
    head = [(none_label, "")] if none_label is not None else []
    try:
        names = [s.name for s in library.list() if s.valid]
    except Exception:  # an unreadable folder must not break the page
        log.exception("Listing templates failed")
        return head
    try:
        return head + version_choices(library, names)
    except Exception:  # no history to read (e.g. a broken database): the names alone still work
        log.exception("Listing template versions failed")
        return head + [(n, n) for n in names]


def parse_values(values) -> dict:
    """Variable values from the API (a dict or its JSON text); empty means all defaults."""
    if values in (None, ""):
        return {}
    if isinstance(values, str):
        try:
            values = json.loads(values)
        except json.JSONDecodeError as exc:
            raise LlmplayError(f"values must be a JSON object of variable values: {exc}") from None
    if not isinstance(values, dict):
        raise LlmplayError(f"values must be a mapping of variable names to values; got {type(values).__name__}.")
    return values
